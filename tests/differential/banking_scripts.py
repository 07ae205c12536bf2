"""Seeded banking_knowledge conversations for the differential test: gold and mutated.

Events as in :mod:`differential.tau2_native_scripts` (the order tau2's orchestrator asks for them): the agent's
gold calls one per message; where the gold has customer actions the agent asks in text, the customer makes its
calls (one message each) and then says so.  Mutations draw on what banking_knowledge has and the other domains do
not: discoverable tools (unlocked or not, called with the right, a changed or a wrongly typed argument, a READ
one that the task's allowlist does or does not log), hand-overs of customer tools, the customer calling tools
the task does not give it, knowledge-base searches, numbers written as ints or floats inside the JSON
``arguments`` string, unknown tools (failed calls: enough of them end the run at tau2's error limit), messages the
run fails at (arguments that are not an object, an empty message), small step budgets and other stop signals.
Nothing here imports tau2.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

from differential.tau2_native_scripts import NOT_AN_OBJECT, Event, Script, TelecomScripts, _agent_slot, _closing

Act = Tuple[str, str, Dict[str, Any]]  # (requestor, tool, arguments)

QUERIES = ("credit card annual fee", "dispute a transaction", "debit card replacement", "transfer to a human agent",
           "referral bonus", "interest rate savings", "verify identity", "close account", "cash back rewards")


def _dual(acts: Sequence[Act]) -> List[Event]:
    events = TelecomScripts._dual(acts)
    events[0] = Event("user", "Hi, I have a question about my account.")
    return events


class BankingScripts:
    """Conversations for the tasks of one banking domain (its tools and database are read, never changed)."""

    def __init__(self, domain, seed: int):
        self.rng = random.Random(seed)
        kinds = domain.tool_kinds
        self.agent_tools = sorted(kinds.kinds)
        self.discoverable = dict(kinds.dispatch["call_discoverable_agent_tool"][1])
        self.reads = sorted(n for n, k in self.discoverable.items() if k == "read")
        self.user_discoverable = sorted(domain.customer_tool_kinds.dispatch["call_discoverable_user_tool"][1])
        self.user_tools = sorted(domain.customer_tool_kinds.kinds)
        self.users = sorted(domain.pristine.users.data)

    # -- one call's mutations
    def _mutate_json(self, text: Any) -> Any:
        rng = self.rng
        try:
            args = json.loads(text)
        except (TypeError, ValueError):
            return text
        if not isinstance(args, dict) or not args:
            return json.dumps({"user_id": rng.choice(self.users)})
        key = rng.choice(sorted(args))
        v = args[key]
        r = rng.random()
        if isinstance(v, bool):
            args[key] = not v
        elif isinstance(v, int) and r < 0.5:
            args[key] = float(v)  # the same JSON number as a float: tau2 parses every number as a float
        elif isinstance(v, (int, float)):
            args[key] = v + rng.choice([1, -1, 0.5])
        elif isinstance(v, str) and r < 0.4:
            args[key] = v + "X"
        elif r < 0.7:
            del args[key]  # a missing argument: the tool's TypeError, answered as text
        else:
            args["unexpected"] = "x"
        return json.dumps(args)

    def mutate(self, name: str, args: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
        rng = self.rng
        args = copy.deepcopy(args)
        if name == "call_discoverable_agent_tool":
            r = rng.random()
            if r < 0.5:
                args["arguments"] = self._mutate_json(args.get("arguments", "{}"))
            elif r < 0.75:
                args["agent_tool_name"] = rng.choice(sorted(self.discoverable))
            else:
                args["arguments"] = rng.choice(['{"user_id": ', "not json", "[]"])
            return name, args
        if args:
            key = rng.choice(sorted(args))
            args[key] = rng.choice([str(args[key]) + "X", 7, None, ""])
        else:
            args["extra"] = "x"
        return name, args

    def random_agent_act(self, task) -> Act:
        rng = self.rng
        n = rng.randrange(11)
        if n == 0:
            return "assistant", "KB_search", {"query": rng.choice(QUERIES)}
        if n == 1:
            return "assistant", "get_user_information_by_id", {"user_id": rng.choice(self.users + ["nobody"])}
        if n == 2:
            return "assistant", "get_current_time", {}
        if n == 3:
            return "assistant", "list_discoverable_agent_tools", {}
        if n == 4:
            return "assistant", "unlock_discoverable_agent_tool", {"agent_tool_name": rng.choice(
                sorted(self.discoverable) + ["no_such_tool_0000"])}
        if n == 5:  # a READ discoverable tool (logged only where the task's gold calls it)
            return "assistant", "call_discoverable_agent_tool", {"agent_tool_name": rng.choice(self.reads),
                                                                 "arguments": json.dumps({"user_id": rng.choice(
                                                                     self.users)})}
        if n == 6:
            return "assistant", "give_discoverable_user_tool", {"discoverable_tool_name": rng.choice(
                self.user_discoverable + ["open_webpage"]), "arguments": "{}"}
        if n == 7:
            return "assistant", "no_such_tool", {}  # a failed call (tau2: error, counted)
        if n == 8:
            return "assistant", "get_referrals_by_user", {"user": "x"}  # a wrong argument name: a failed call
        if n == 9:
            return "assistant", "transfer_to_human_agents", {"summary": "help", "reason": rng.choice(
                ["other", "not_a_reason"])}
        return "assistant", "get_credit_card_accounts_by_user", {"user_id": rng.choice(self.users)}

    def random_user_act(self) -> Act:
        rng = self.rng
        n = rng.randrange(4)
        if n == 0:
            return "user", "list_discoverable_user_tools", {}
        if n == 1:  # a discoverable tool the agent may not have handed over
            return "user", "call_discoverable_user_tool", {"discoverable_tool_name": rng.choice(
                self.user_discoverable), "arguments": json.dumps({"user_id": rng.choice(self.users)})}
        if n == 2:
            return "user", rng.choice(self.user_tools), {}
        return "user", "no_such_customer_tool", {}

    # -- scripts
    def for_task(self, task, n_mutated: int) -> List[Script]:
        acts = [(a.requestor, a.name, a.arguments) for a in task.actions]
        out = [Script(task.id, "gold", _closing(_dual(acts)))]
        for _ in range(n_mutated):
            out.append(self.mutated(task, acts))
        return out

    def mutated(self, task, acts: Sequence[Act]) -> Script:
        rng = self.rng
        out: List[Act] = []
        for req, name, args in acts:
            if rng.random() < 0.15:
                continue  # dropped
            if rng.random() < 0.3:
                out.append((req,) + self.mutate(name, args))
            else:
                out.append((req, name, copy.deepcopy(args)))
            if rng.random() < 0.12:
                out.append((req, name, copy.deepcopy(args)))  # repeated
            if rng.random() < 0.25:
                out.append(self.random_agent_act(task))
            if rng.random() < 0.08:
                out.append(self.random_user_act())
        if rng.random() < 0.05:  # enough failed calls for tau2's error limit
            out += [("assistant", "no_such_tool", {"i": i}) for i in range(11)]
        events = _dual(out)
        r = rng.random()
        callers = [e for e in events if e.calls and e.role == "agent"]
        if r < 0.06 and callers:
            m = rng.choice(callers)
            m.malformed.append((m.calls[0][0], rng.choice(NOT_AN_OBJECT)))
        elif r < 0.1:
            events.insert(_agent_slot(events, rng), Event("agent", rng.choice(["", "   ", None])))
        elif r < 0.3:  # a message with text and calls (tau2's run accepts both)
            if callers:
                rng.choice(callers).text = "Let me look into that."
        stop = rng.choice(["Bye. ###STOP###", "###TRANSFER###", "Thanks ###STOP###", "###OUT-OF-SCOPE###"])
        budget = rng.randint(3, 16) if rng.random() < 0.1 else None
        return Script(task.id, "mutated", _closing(events, stop), budget)


def scripts_for(domain, tasks, n_mutated: int, seed: int) -> List[Tuple[Any, Script]]:
    gen = BankingScripts(domain, seed)
    return [(t, s) for t in tasks for s in gen.for_task(t, n_mutated)]


def describe(script: Script) -> Dict[str, Optional[int]]:
    return {"events": len(script.events), "budget": script.budget}
