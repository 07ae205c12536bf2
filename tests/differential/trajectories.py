"""Seeded agent trajectories for the differential test: gold, silent and mutated.

A trajectory is what an agent would send: a list of assistant messages, each with
text and/or tool calls, and how the conversation ended.  Nothing here imports a
benchmark; the same trajectory is then replayed through tau2-bench's own code and
through ours (:mod:`differential.compare`).

Mutations cover what the benchmark's code does in ways that are easy to get wrong:
fractional and string numbers, strings and lists of strings where lists of objects
belong, ids given as lists or dicts, non-object list items, wrong containers,
pydantic type errors, arguments the call chain itself rejects, calculator edge
cases (huge integers included), gift-card payments that fail after the debit, repeated writes; and
messages tau2 refuses: an empty (whitespace-only) message, and tool calls whose arguments are not a
JSON object (what our parser calls malformed; tau2's client fails the run on them).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

Call = Tuple[str, Dict[str, Any]]


@dataclass
class Message:
    text: Optional[str]
    calls: List[Call] = field(default_factory=list)
    #: tool calls whose arguments are not a JSON object, as (name, arguments): vLLM passes such a value on
    #: (serialised); tau2's run fails at such a message, and our episode ends there (``assistant_message(malformed=N)``)
    malformed: List[Tuple[str, Any]] = field(default_factory=list)


@dataclass
class Trajectory:
    task_id: str
    kind: str  # gold | gold_inline | silent | mutated
    messages: List[Message]
    termination: str = "user_stop"  # ours: user_stop | agent_stop | max_turns

    @property
    def has_malformed(self) -> bool:
        return any(m.malformed for m in self.messages)


CALC = ["2 + 2", "(100 * 3) / 7", "10 // 3", "2**1000", "2**10000", "1/0", "1 2", "", "()", "(1)(2)", "01",
        "...", "(-8)**(1/3)", " 1+1", "2.0**10000", "1..2", "3 - -2", "7/2*2", "0.1+0.2", "*()", "abc", "1e5",
        "-(2**3)**2", "100 * 1.5 - 30",
        # integers too large for a float, built in full by both sides (see benchmarks/airline/calculator.py)
        "2**1048577", "2**1048577-2**1048577", "2**1048576//2**1048575", "(2**600000)*(2**600000)//2**1100000",
        "10**40000/7", "-7/10**40000", "-5//2**200000", "(-1)**(10**40000)", "()*2**200000", "3**70000//3**69999"]
#: arguments that are not a JSON object, as vLLM's hermes parser passes them on
NOT_AN_OBJECT = [[], ["HATHAT"], '{"reservation_id": "HATHAT"}', None, 5, "abc", True]
CALC_ODD = [5, None, ["1", "+", "2"], [1], {"1": 2}, ["12"], 2.5, True]


def _say(info: str, rng: random.Random) -> str:
    """A sentence stating ``info`` the way the communicate check accepts it (case, commas)."""
    style = rng.randrange(4)
    if style == 1:
        info = info.upper()
    elif style == 2 and any(c.isdigit() for c in info):
        digits = [i for i, c in enumerate(info) if c.isdigit()]
        i = rng.choice(digits)
        info = info[:i] + "," + info[i:]
    return f"To confirm: {info}. Anything else I can help with?"


class Generator:
    def __init__(self, db: Dict[str, Dict[str, Any]], seed: int):
        self.db = db
        self.rng = random.Random(seed)
        self.users = sorted(db["users"])
        self.reservations = sorted(db["reservations"])
        self.flights = sorted(db["flights"])
        self.airports = sorted({f["origin"] for f in db["flights"].values()})

    # ------------------------------------------------------------------ whole trajectories
    def for_task(self, task, n_mutated: int) -> List[Trajectory]:
        gold = [(a.name, copy.deepcopy(a.arguments)) for a in task.actions]
        out = [Trajectory(task.id, "gold", [Message(None, [c]) for c in gold]
                          + [Message(_say(i, self.rng)) for i in task.communicate_info]),
               Trajectory(task.id, "silent", [Message(None, [c]) for c in gold])]
        # the required information said only in messages that also call a tool
        inline = [Message(None, [c]) for c in gold] or [Message(None, [("list_all_airports", {})])]
        for info in task.communicate_info:
            m = self.rng.choice(inline)
            m.text = ((m.text + " ") if m.text else "") + _say(info, self.rng)
        out.append(Trajectory(task.id, "gold_inline", inline, "agent_stop"))
        for _ in range(n_mutated):
            out.append(self.mutated(task, gold))
        return out

    def mutated(self, task, gold: Sequence[Call]) -> Trajectory:
        rng = self.rng
        user = self._task_user(task, gold)
        calls: List[Call] = []
        for name, args in gold:
            if rng.random() < 0.3:
                calls.append(self.random_call(user))
            if rng.random() < 0.55:
                calls.append(self.mutate(name, args, user))
            else:
                calls.append((name, copy.deepcopy(args)))
            if rng.random() < 0.15:
                calls.append((name, copy.deepcopy(args)))
        for _ in range(rng.randrange(0, 3)):
            calls.insert(rng.randrange(len(calls) + 1), self.random_call(user))
        messages: List[Message] = []
        i = 0
        while i < len(calls):
            k = 1 if rng.random() < 0.7 else rng.randint(2, 3)
            messages.append(Message(None, calls[i:i + k]))
            i += k
        for info in task.communicate_info:
            if rng.random() < 0.7:
                text = _say(info, rng)
                if messages and rng.random() < 0.5:
                    m = rng.choice(messages)
                    m.text = text
                else:
                    messages.insert(rng.randrange(len(messages) + 1), Message(text))
        r = rng.random()
        if r < 0.15 and messages:  # a call whose arguments are not an object, beside the message's others
            m = rng.choice(messages)
            name = rng.choice([c[0] for c in m.calls] or ["get_user_details"])
            m.malformed.append((name, rng.choice(NOT_AN_OBJECT)))
        elif r < 0.2:  # a message with only such a call (and perhaps text)
            messages.insert(rng.randrange(len(messages) + 1),
                            Message(rng.choice([None, "Let me check."]),
                                    malformed=[("get_reservation_details", rng.choice(NOT_AN_OBJECT))]))
        r = rng.random()
        if r < 0.2:
            messages.append(Message("   "))  # whitespace only: no text and no call, tau2 ends the run there
        elif r < 0.25:
            messages.insert(rng.randrange(len(messages) + 1), Message(rng.choice(["", None, "\n "])))
        r = rng.random()
        termination = "user_stop" if r < 0.8 else "agent_stop" if r < 0.93 else "max_turns"
        return Trajectory(task.id, "mutated", messages, termination)

    # ------------------------------------------------------------------ pieces
    def _task_user(self, task, gold: Sequence[Call]) -> str:
        for _, args in gold:
            if isinstance(args.get("user_id"), str) and args["user_id"] in self.db["users"]:
                return args["user_id"]
            rid = args.get("reservation_id")
            if isinstance(rid, str) and rid in self.db["reservations"]:
                return self.db["reservations"][rid]["user_id"]
        return task.user_id if task.user_id in self.db["users"] else self.rng.choice(self.users)

    def _payment_ids(self, user: str, source: Optional[str] = None) -> List[str]:
        methods = self.db["users"][user]["payment_methods"]
        return [k for k, m in methods.items() if source is None or m["source"] == source]

    def _date(self) -> str:
        return f"2024-05-{self.rng.randint(1, 30):02d}"

    def random_call(self, user: str) -> Call:
        rng = self.rng
        res = self.db["users"][user]["reservations"] or self.reservations[:1]
        n = rng.randrange(14)
        if n == 0:
            return "get_user_details", {"user_id": rng.choice([user, user, rng.choice(self.users), "nobody_1"])}
        if n == 1:
            return "get_reservation_details", {"reservation_id": rng.choice(res + ["ZZZZZZ", "HATHAT"])}
        if n == 2:
            return "search_direct_flight", {"origin": rng.choice(self.airports), "destination": rng.choice(self.airports),
                                            "date": self._date()}
        if n == 3:
            return "search_onestop_flight", {"origin": rng.choice(self.airports),
                                             "destination": rng.choice(self.airports), "date": self._date()}
        if n == 4:
            return "get_flight_status", {"flight_number": rng.choice(self.flights + ["HAT999"]), "date": self._date()}
        if n == 5:
            return "calculate", {"expression": rng.choice(CALC)}
        if n == 6:
            return "calculate", {"expression": rng.choice(CALC_ODD)}
        if n == 7:
            return "send_certificate", {"user_id": user, "amount": rng.choice([50, 100.0, "50", 12.5, None, True,
                                                                               "abc"])}
        if n == 8:
            return "list_all_airports", {}
        if n == 9:
            return "transfer_to_human_agents", {"summary": "The customer wants a human."}
        if n == 10:
            return rng.choice(["get_weather", "think", "book_flight"]), {"x": 1}
        if n == 11:
            return "search_direct_flight", rng.choice([
                {"origin": None, "destination": rng.choice(self.airports), "date": self._date()},
                {"origin": rng.choice(self.airports), "destination": rng.choice(self.airports),
                 "date": [self._date()]},
                {"origin": "JFK", "destination": "SEA", "date": "2024-05-3"}])
        if n == 12:
            rid = rng.choice(res)
            pays = self._payment_ids(self.db["reservations"][rid]["user_id"])
            return "update_reservation_baggages", {
                "reservation_id": rid, "total_baggages": rng.choice([1, 2, 3, "2", None]),
                "nonfree_baggages": rng.choice([0, 1, 2, 1.25, 2.5, True, "1"]), "payment_id": rng.choice(pays)}
        rid = rng.choice(res)
        n_pax = len(self.db["reservations"][rid]["passengers"])
        return "update_reservation_passengers", {"reservation_id": rid, "passengers": rng.choice([
            "x" * n_pax, ["Mei"] * n_pax, [{"first_name": "A", "last_name": "B", "dob": "1990-01-01"}] * n_pax,
            [{"first_name": "A", "last_name": "B"}] * n_pax, [{"first_name": "A", "last_name": "B", "dob": "x"}, "y"],
            {}, "", [], None, 3])}

    def mutate(self, name: str, args: Dict[str, Any], user: str) -> Call:
        rng = self.rng
        a = copy.deepcopy(args)
        special = self._specific(name, a, user)
        if special is not None and rng.random() < 0.7:
            return special
        if not a:
            return name, {"bogus": 1}
        k = rng.choice(sorted(a))
        kind = rng.randrange(11)
        if kind == 0:
            a.pop(k)
        elif kind == 1:
            a[rng.choice(["bogus", "self", "requestor", "tool_name", "db", "data"])] = 1
        elif kind == 2 and isinstance(a[k], str):
            a[k] = rng.choice([[a[k]], {"id": a[k]}])
        elif kind == 3 and isinstance(a[k], (int, float)) and not isinstance(a[k], bool):
            a[k] = rng.choice([str(a[k]), float(a[k]), a[k] + 0.5, a[k] + 0.25])
        elif kind == 4 and isinstance(a[k], str):
            a[k] = a[k] + "X"
        elif kind == 5 and isinstance(a[k], str):
            a[k] = rng.choice([12, None, True])
        elif kind == 6 and isinstance(a[k], list):
            a[k] = rng.choice(["", {}, None, 5, "abc", [x for x in a[k] if not isinstance(x, dict)] or ["HAT001"],
                               dict(a[k][0]) if a[k] and isinstance(a[k][0], dict) else {}])
        elif kind == 7 and isinstance(a[k], list) and a[k] and isinstance(a[k][0], dict):
            item = a[k][rng.randrange(len(a[k]))]
            item.pop(rng.choice(sorted(item)))
        elif kind == 8 and isinstance(a[k], list) and a[k] and isinstance(a[k][0], dict):
            item = a[k][rng.randrange(len(a[k]))]
            f = rng.choice(sorted(item))
            item[f] = rng.choice([12, 12.5, "abc", None, str(item[f])])
        elif kind == 9 and isinstance(a[k], list):
            a[k] = a[k] + [rng.choice(["x", 1, None])]
        else:
            a[k] = copy.deepcopy(a[k])
            a["extra_" + k] = a[k]
        return name, a

    def _specific(self, name: str, a: Dict[str, Any], user: str) -> Optional[Call]:
        rng = self.rng
        if name == "update_reservation_baggages" and "reservation_id" in a:
            owner = self.db["reservations"].get(a["reservation_id"], {}).get("user_id", user)
            gifts = self._payment_ids(owner, "gift_card")
            nonfree = a.get("nonfree_baggages", 0)
            a["nonfree_baggages"] = rng.choice([nonfree + 0.25, nonfree + 0.5, nonfree + 1.5, str(nonfree), True])
            if gifts and rng.random() < 0.6:
                a["payment_id"] = rng.choice(gifts)
            return name, a
        if name == "update_reservation_passengers" and isinstance(a.get("passengers"), list):
            n = len(a["passengers"])
            a["passengers"] = rng.choice(["p" * n, ["p"] * n, a["passengers"][:-1] + ["p"], {},
                                          [dict(p, dob=19900101) for p in a["passengers"]]])
            return name, a
        if name == "book_reservation":
            choice = rng.randrange(8)
            if choice == 0:
                a["nonfree_baggages"] = rng.choice([1.5, "1", 2.0, True])
            elif choice == 1 and a.get("payment_methods"):
                a["payment_methods"] = [dict(p, amount=rng.choice(["abc", float(p["amount"]), p["amount"] + 0.5,
                                                                   str(p["amount"])]))
                                        for p in a["payment_methods"]]
            elif choice == 2:
                a[rng.choice(["cabin", "flight_type", "insurance"])] = rng.choice(["first", "return", "maybe", 1])
            elif choice == 3:
                a["flights"] = rng.choice([["HAT001"], {"flight_number": "HAT001", "date": "2024-05-20"}, "", [], 7])
            elif choice == 4:
                a["passengers"] = rng.choice(["Mei", [{"first_name": "A", "last_name": "B", "dob": "x"}, "y"], {}])
            elif choice == 5:
                certs = self._payment_ids(a.get("user_id") if a.get("user_id") in self.db["users"] else user,
                                          "certificate")
                if certs:
                    a["payment_methods"] = [{"payment_id": certs[0], "amount": 1}] * 2
            elif choice == 6:
                a["total_baggages"] = rng.choice(["two", None, 1.5])
            else:
                a["user_id"] = rng.choice([[a.get("user_id")], {"u": 1}, "ghost_1"])
            return name, a
        if name == "update_reservation_flights":
            choice = rng.randrange(4)
            if choice == 0:
                a["cabin"] = rng.choice(["first", ["economy"], "business", "basic_economy"])
            elif choice == 1:
                a["flights"] = rng.choice([[], ["HAT001"], [{"flight_number": "HAT001", "date": "2024-05-01"}]])
            elif choice == 2:
                owner = self.db["reservations"].get(a.get("reservation_id"), {}).get("user_id", user)
                a["payment_id"] = rng.choice(self._payment_ids(owner))
            else:
                a["reservation_id"] = rng.choice([[a.get("reservation_id")], "NOPE00"])
            return name, a
        if name == "cancel_reservation":
            a["reservation_id"] = rng.choice([rng.choice(self.reservations), {"id": a.get("reservation_id")}])
            return name, a
        if name == "send_certificate":
            a["amount"] = rng.choice(["100", 100.5, None, "abc", True])
            return name, a
        return None
