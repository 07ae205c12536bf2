"""Seeded conversations for the tau2-native differential tests: gold, inline, silent and mutated.

A script is the sequence of messages both sides of a conversation send, in the order tau2's orchestrator
asks for them: after an agent message that calls tools the agent speaks again; after an agent text message
the customer does; after a customer tool call the customer speaks again.  The same script is run through
tau2's own orchestrator (its agent and customer with the LLM calls replaced by the script) and through our
episode (:mod:`differential.tau2_native_reference`).  Nothing here imports tau2.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

Call = Tuple[str, Any]

#: arguments that are not a JSON object (the run fails at such a message, on both sides)
NOT_AN_OBJECT = [[], ["x"], '{"order_id": "#W0"}', None, 5, "abc", True]


@dataclass
class Event:
    """One message: ``role`` "agent" or "user"; ``malformed`` calls have arguments that are not an object."""

    role: str
    text: Optional[str] = None
    calls: List[Call] = field(default_factory=list)
    malformed: List[Call] = field(default_factory=list)


@dataclass
class Script:
    task_id: str
    kind: str  # gold | gold_inline | silent | mutated | missing_user | wrong_user | solo_gold | solo_mutated
    events: List[Event]
    budget: Optional[int] = None  # a smaller step budget for both sides (None: the benchmark's)


def say(info: str, rng: random.Random) -> str:
    """A sentence with ``info`` in a form tau2's communicate check accepts (case; a comma between digits)."""
    style = rng.randrange(3)
    if style == 1:
        info = info.upper()
    elif style == 2 and any(c.isdigit() for c in info):
        digits = [i for i, c in enumerate(info) if c.isdigit()]
        i = rng.choice(digits)
        info = info[:i] + "," + info[i:]
    return f"To confirm: {info}."


CLOSING = "Is there anything else I can help you with?"
OPENING = "Hi, I need some help."


def _closing(events: List[Event], stop: str = "Thanks, that's all. ###STOP###") -> List[Event]:
    return events + [Event("agent", CLOSING), Event("user", stop)]


def _agent_slot(events: List[Event], rng: random.Random) -> int:
    """A position where the agent is the next to speak (before an agent message, or at the end of a list
    that a closing agent message follows), so an agent message inserted there keeps the script's order."""
    return rng.choice([i for i in range(len(events) + 1) if i == len(events) or events[i].role == "agent"])


def _group(calls: Sequence[Call], rng: random.Random) -> List[Event]:
    out, i = [], 0
    while i < len(calls):
        k = 1 if rng.random() < 0.7 else rng.randint(2, 3)
        out.append(Event("agent", None, list(calls[i:i + k])))
        i += k
    return out


# -- retail ---------------------------------------------------------------------------------------------------

class RetailScripts:
    """Retail conversations over the ids of the pristine database (read, never changed)."""

    def __init__(self, pristine, seed: int):
        self.rng = random.Random(seed)
        self.orders = sorted(pristine.orders)
        self.users = sorted(pristine.users)
        self.products = sorted(pristine.products)
        self.db = pristine

    def for_task(self, task, n_mutated: int) -> List[Script]:
        rng = self.rng
        gold = [(a.name, copy.deepcopy(a.arguments)) for a in task.actions]
        out = [Script(task.id, "gold", [Event("user", OPENING)] + _closing(
            [Event("agent", None, [c]) for c in gold]
            + [e for info in task.communicate_info for e in (Event("agent", say(info, rng)),
                                                             Event("user", "I see."))]))]
        inline = [Event("agent", None, [c]) for c in gold] or [Event("agent", None, [("list_all_product_types", {})])]
        for info in task.communicate_info:
            m = rng.choice(inline)
            m.text = ((m.text + " ") if m.text else "") + say(info, rng)
        out.append(Script(task.id, "gold_inline", [Event("user", OPENING)] + _closing(inline)))
        out.append(Script(task.id, "silent", [Event("user", OPENING)] + _closing([Event("agent", None, [c])
                                                                                   for c in gold])))
        for _ in range(n_mutated):
            out.append(self.mutated(task, gold))
        return out

    def _user_of(self, gold: Sequence[Call]) -> str:
        for _, args in gold:
            if isinstance(args.get("user_id"), str) and args["user_id"] in self.db.users:
                return args["user_id"]
            oid = args.get("order_id")
            if isinstance(oid, str) and oid in self.db.orders:
                return dict.__getitem__(self.db.orders, oid).user_id
        return self.rng.choice(self.users)

    def random_call(self, user: str) -> Call:
        rng, db = self.rng, self.db
        u = dict.__getitem__(db.users, user)
        orders = list(u.orders) or self.orders[:1]
        n = rng.randrange(12)
        if n == 0:
            return "get_user_details", {"user_id": rng.choice([user, rng.choice(self.users), "nobody_1"])}
        if n == 1:
            return "get_order_details", {"order_id": rng.choice(orders + ["#W0000000", "W123"])}
        if n == 2:
            return "get_product_details", {"product_id": rng.choice(self.products + ["0"])}
        if n == 3:
            return "find_user_id_by_email", {"email": rng.choice([u.email, "x@y.z", 5])}
        if n == 4:
            return "find_user_id_by_name_zip", {"first_name": u.name.first_name, "last_name": u.name.last_name,
                                                "zip": rng.choice([u.address.zip, "00000"])}
        if n == 5:
            return "calculate", {"expression": rng.choice(["2 + 2", "(100 * 3) / 7", "1/0", "abc", "2**3"])}
        if n == 6:
            return "list_all_product_types", {}
        if n == 7:
            return "cancel_pending_order", {"order_id": rng.choice(orders), "reason": rng.choice(
                ["no longer needed", "ordered by mistake", "because"])}
        if n == 8:
            return "modify_user_address", {"user_id": user, "address1": "1 Main St", "address2": "", "city": "X",
                                           "state": "CA", "country": "USA", "zip": rng.choice(["12345", 12345])}
        if n == 9:
            pm = list(u.payment_methods)
            return "modify_pending_order_payment", {"order_id": rng.choice(orders),
                                                    "payment_method_id": rng.choice(pm + ["paypal_0"])}
        if n == 10:
            return rng.choice(["get_weather", "think", "get_item_details"]), {"x": 1}
        return "transfer_to_human_agents", {"summary": "The customer wants a human."}

    def mutate(self, name: str, args: Dict[str, Any], user: str) -> Call:
        rng = self.rng
        args = copy.deepcopy(args)
        keys = sorted(args)
        if not keys:
            return self.random_call(user)
        k = rng.choice(keys)
        v = args[k]
        r = rng.random()
        if r < 0.2:
            args.pop(k)
        elif r < 0.3:
            args["unexpected"] = 1
        elif isinstance(v, list) and v:
            choice = rng.randrange(3)
            args[k] = v[:-1] if choice == 0 else v + v[:1] if choice == 1 else list(reversed(v))
        elif k == "order_id":
            args[k] = rng.choice(self.orders + ["#W0"])
        elif k == "user_id":
            args[k] = rng.choice(self.users)
        elif k == "product_id":
            args[k] = rng.choice(self.products)
        else:
            args[k] = rng.choice([None, 7, "wrong", [v]])
        return name, args

    def mutated(self, task, gold: Sequence[Call]) -> Script:
        rng = self.rng
        user = self._user_of(gold)
        calls: List[Call] = []
        for name, args in gold:
            r = rng.random()
            if r < 0.15:
                continue  # dropped
            if rng.random() < 0.25:
                calls.append(self.random_call(user))
            calls.append(self.mutate(name, args, user) if rng.random() < 0.4 else (name, copy.deepcopy(args)))
            if rng.random() < 0.15:
                calls.append((name, copy.deepcopy(args)))  # duplicated
        for _ in range(rng.randrange(3)):
            calls.insert(rng.randrange(len(calls) + 1), self.random_call(user))
        if len(calls) > 1 and rng.random() < 0.3:
            i = rng.randrange(len(calls) - 1)
            calls[i], calls[i + 1] = calls[i + 1], calls[i]  # swapped
        events = _group(calls, rng)
        for info in task.communicate_info:
            if rng.random() < 0.7:
                callers = [e for e in events if e.calls]
                if callers and rng.random() < 0.5:
                    rng.choice(callers).text = say(info, rng)
                else:
                    i = _agent_slot(events, rng)
                    events[i:i] = [Event("agent", say(info, rng)), Event("user", "OK.")]
        r = rng.random()
        callers = [e for e in events if e.calls]
        if r < 0.1 and callers:
            m = rng.choice(callers)
            m.malformed.append((rng.choice([c[0] for c in m.calls]), rng.choice(NOT_AN_OBJECT)))
        elif r < 0.15:
            events.insert(_agent_slot(events, rng), Event("agent", rng.choice([None, "Let me check."]),
                                                          malformed=[("get_order_details",
                                                                      rng.choice(NOT_AN_OBJECT))]))
        elif r < 0.22:
            events.insert(_agent_slot(events, rng), Event("agent", rng.choice(["", "   ", None])))
        stop = rng.choice(["Bye. ###STOP###", "###TRANSFER###", "Thanks ###STOP###", "###OUT-OF-SCOPE###"])
        budget = rng.randint(3, 14) if rng.random() < 0.12 else None
        return Script(task.id, "mutated", [Event("user", OPENING)] + _closing(events, stop), budget)


# -- telecom --------------------------------------------------------------------------------------------------

class TelecomScripts:
    """Telecom conversations: the agent's gold calls, the customer's gold tool calls (asked for by the
    agent), and their mutations; and solo runs."""

    def __init__(self, user_tool_names: Sequence[str], agent_tool_names: Sequence[str], seed: int):
        self.rng = random.Random(seed)
        self.user_tools = sorted(user_tool_names)
        self.agent_tools = sorted(agent_tool_names)

    @staticmethod
    def _dual(actions: Sequence[Tuple[str, str, Dict[str, Any]]]) -> List[Event]:
        """Events for (requestor, name, arguments) actions: the agent asks, the customer acts, then says so."""
        events: List[Event] = [Event("user", "My phone has a problem.")]
        i = 0
        while i < len(actions):
            req, name, args = actions[i]
            if req == "assistant":
                events.append(Event("agent", None, [(name, copy.deepcopy(args))]))
                i += 1
                continue
            events.append(Event("agent", f"Please do this on your phone: {name}."))
            while i < len(actions) and actions[i][0] == "user":
                events.append(Event("user", None, [(actions[i][1], copy.deepcopy(actions[i][2]))]))
                i += 1
            events.append(Event("user", "Done."))
        return events

    def for_task(self, task, n_mutated: int) -> List[Script]:
        rng = self.rng
        acts = [(a.requestor, a.name, a.arguments) for a in task.actions]
        out = [Script(task.id, "gold", _closing(self._dual(acts)))]
        users = [i for i, a in enumerate(acts) if a[0] == "user"]
        if users:
            drop = rng.choice(users)
            out.append(Script(task.id, "missing_user", _closing(self._dual(acts[:drop] + acts[drop + 1:]))))
            wrong = list(acts)
            k = rng.choice(users)
            req, name, args = wrong[k]
            if args and rng.random() < 0.5:
                key = rng.choice(sorted(args))
                args = dict(args, **{key: rng.choice(["wrong", None, 3, "pin"])})
            else:
                name, args = rng.choice([n for n in self.user_tools if n != name]), {}
            wrong[k] = (req, name, args)
            out.append(Script(task.id, "wrong_user", _closing(self._dual(wrong))))
        for _ in range(n_mutated):
            out.append(self.mutated(task, acts))
        return out

    def _random_agent_call(self, task) -> Call:
        rng = self.rng
        n = rng.randrange(6)
        if n == 0:
            return "get_customer_by_phone", {"phone_number": rng.choice(["555-123-2002", "000", 5])}
        if n == 1:
            return "get_details_by_id", {"id": rng.choice(["L1002", "C1001", "B1002", "P1001", "X"])}
        if n == 2:
            return "get_customer_by_id", {"customer_id": rng.choice(["C1001", "C1002", "C9"])}
        if n == 3:
            return rng.choice(self.user_tools), {}  # a customer's tool, called by the agent
        if n == 4:
            return "refuel_data", {"customer_id": "C1001", "line_id": "L1002", "gb_amount": rng.choice([1.0, -2, "2"])}
        return rng.choice(self.agent_tools), {}

    def mutated(self, task, acts) -> Script:
        rng = self.rng
        out = []
        for req, name, args in acts:
            if rng.random() < 0.15:
                continue
            if req == "assistant" and rng.random() < 0.3:
                key = rng.choice(sorted(args)) if args else None
                out.append((req, name, dict(args, **{key: "wrong"}) if key else args))
            else:
                out.append((req, name, args))
            if rng.random() < 0.15:
                out.append((req, name, args))
            if rng.random() < 0.2:
                out.append(("assistant",) + self._random_agent_call(task))
            if rng.random() < 0.1:
                out.append(("user", rng.choice(self.user_tools), {}))
        events = self._dual(out)
        if rng.random() < 0.06:
            events.insert(_agent_slot(events, rng),
                          Event("agent", None, malformed=[("get_customer_by_id", rng.choice(NOT_AN_OBJECT))]))
        budget = rng.randint(3, 14) if rng.random() < 0.12 else None
        return Script(task.id, "mutated", _closing(events), budget)

    def solo(self, task, n_mutated: int) -> List[Script]:
        rng = self.rng
        calls = [(a.name, copy.deepcopy(a.arguments)) for a in task.actions]
        out = [Script(task.id, "solo_gold", _group(calls, rng) + [Event("agent", None, [("done", {})])])]
        for _ in range(n_mutated):
            cs = []
            for c in calls:
                if rng.random() < 0.15:
                    continue
                cs.append(c if rng.random() > 0.2 else (c[0], {k: "wrong" for k in c[1]}))
                if rng.random() < 0.2:
                    cs.append(self._random_agent_call(task))
            events = _group(cs, rng)
            r = rng.random()
            if r < 0.5:
                events.append(Event("agent", None, [("done", {})]))
            elif r < 0.65 and events:
                events[-1].calls.append(("done", {}))  # done beside other calls: none of them runs
            elif r < 0.75:
                events.append(Event("agent", "I am done."))  # text only: the solo agent fails
            elif r < 0.85:
                events.append(Event("agent", "###STOP###", [("check_status_bar", {})]))
            elif r < 0.92:
                events.append(Event("agent", None, malformed=[("check_status_bar", rng.choice(NOT_AN_OBJECT))]))
            else:
                events.append(Event("agent", "Working on it.", [("check_sim_status", {}), ("done", {})]))
            budget = rng.randint(2, 10) if rng.random() < 0.12 else None
            out.append(Script(task.id, "solo_mutated", events, budget))
        return out

