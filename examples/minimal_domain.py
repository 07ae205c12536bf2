"""A minimal domain for openrlhf-mtgrpo: one file to start your own from (docs/domains.md, "A minimal domain").

An order desk: a customer asks about an order or wants one cancelled; the agent looks orders up, cancels them
and can hand the conversation to a human.  Everything a domain needs is here, top to bottom: the data, the tools
and what kind each is, the outcome, the episode (the benchmark's rules for one agent message, and its score),
the domain, its factory, a reward-component set and the demo's scripted mistakes.  The demo's starting weights
for the component set are the file beside this one, ``minimal_domain.yaml``.  Nothing else is needed.

Try it from the checkout (this folder on PYTHONPATH, the domain named as ``module:factory``)::

    PYTHONPATH=examples mtgrpo demo --domain minimal_domain:make_domain --out runs/minimal-demo
    PYTHONPATH=examples python -c "import minimal_domain as m; from openrlhf_mtgrpo.testing import assert_domain; \
print(assert_domain(m.make_domain()).describe())"

Importing this module registers its component set (``minimal``) in that process, which is enough wherever the
domain is loaded before the calibration (the demo, the checklist).  To train with it, or to run ``mtgrpo irc
analyze`` on its logs in a fresh process, make it a package that registers both by entry point
(docs/domains.md, sections 2 and 14): a process that never imports this file does not know the set.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from openrlhf_mtgrpo.envs.base import (BENCHMARK, GENERIC, ORCHESTRATOR_STEPS, PROPER_ENDINGS, READ, WRITE,
                                       AgentPrompt, AssistantTurn, CustomerPrompt, GoldAction, PromptInfo, RunRules,
                                       ToolKinds, ToolResult)
from openrlhf_mtgrpo.offline.scripted import tool_call_text
from openrlhf_mtgrpo.registry import register_reward_components

NAME, VERSION = "minimal", "v1"
#: the demo's starting weights of the component set below (a calibration file: docs/domains.md, section 10)
CALIBRATION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "minimal_domain.yaml")

# -- the data: the database, the tasks, the prompts ------------------------------------------------------------

DB: Dict[str, Dict[str, Dict[str, str]]] = {"orders": {
    "A12": {"customer": "Ana Diaz", "item": "desk lamp", "status": "processing"},
    "A13": {"customer": "Ana Diaz", "item": "bookshelf", "status": "shipped"},
    "A14": {"customer": "Ana Diaz", "item": "printer paper", "status": "processing"},
    "B22": {"customer": "Ben Okafor", "item": "office chair", "status": "processing"},
    "B23": {"customer": "Ben Okafor", "item": "monitor arm", "status": "processing"},
    "C32": {"customer": "Chen Wei", "item": "standing desk", "status": "delivered"},
    "C33": {"customer": "Chen Wei", "item": "cable tray", "status": "processing"},
    "D42": {"customer": "Dana Novak", "item": "keyboard", "status": "processing"},
    "D43": {"customer": "Dana Novak", "item": "mouse", "status": "shipped"},
    "D44": {"customer": "Dana Novak", "item": "webcam", "status": "processing"},
}}

#: id, the customer, their scenario (the customer simulator's instructions), the gold actions, what the agent must say
TASKS: List[Dict[str, Any]] = [
    {"id": "t1", "customer": "Ana Diaz", "scenario": "You are Ana Diaz. You want to know where your order A13 is.",
     "actions": [("get_order", {"order_id": "A13"})], "say": ["shipped"]},
    {"id": "t2", "customer": "Ben Okafor", "scenario": "You are Ben Okafor. You want to cancel your order B22, the "
     "office chair.", "actions": [("get_order", {"order_id": "B22"}), ("cancel_order", {"order_id": "B22"})],
     "say": ["cancelled"]},
    {"id": "t3", "customer": "Chen Wei", "scenario": "You are Chen Wei. You want to cancel your order C32, the "
     "standing desk.", "actions": [("get_order", {"order_id": "C32"})], "say": ["delivered"]},
    {"id": "t4", "customer": "Dana Novak", "scenario": "You are Dana Novak. You want to cancel your order D42, the "
     "keyboard.", "actions": [("get_order", {"order_id": "D42"}), ("cancel_order", {"order_id": "D42"})],
     "say": ["cancelled"]},
    {"id": "t5", "customer": "Ana Diaz", "scenario": "You are Ana Diaz. You want to cancel your order A12, the desk "
     "lamp.", "actions": [("get_order", {"order_id": "A12"}), ("cancel_order", {"order_id": "A12"})],
     "say": ["cancelled"]},
    {"id": "t6", "customer": "Ben Okafor", "scenario": "You are Ben Okafor. You want to know the status of your "
     "order B23.", "actions": [("get_order", {"order_id": "B23"})], "say": ["processing"]},
    {"id": "t7", "customer": "Dana Novak", "scenario": "You are Dana Novak. You want to know where your order D43 "
     "is.", "actions": [("get_order", {"order_id": "D43"})], "say": ["shipped"]},
    {"id": "t8", "customer": "Chen Wei", "scenario": "You are Chen Wei. You want to cancel your order C33, the "
     "cable tray.", "actions": [("get_order", {"order_id": "C33"}), ("cancel_order", {"order_id": "C33"})],
     "say": ["cancelled"]},
]
SPLITS = {"train": ["t1", "t2", "t3", "t4", "t5", "t6"], "test": ["t7", "t8"]}

POLICY = ("You work at the order desk of a furniture shop. You can look up an order (get_order) and cancel an "
          "order whose status is processing (cancel_order); a shipped or delivered order cannot be cancelled. "
          "Before you cancel, say what you will do and get the customer's explicit yes. Tell the customer the "
          "order's status, or that it is cancelled. Transfer to a human (transfer_to_human) only when the "
          "customer asks for something you cannot do.")
AGENT_INSTRUCTIONS = "You are a customer service agent. Follow the policy below.\n\n<policy>\n{policy}\n</policy>"
GREETING = "Hi! This is the order desk. How can I help you?"
CUSTOMER_PREFIX = "You are a customer talking to a shop's order desk. Your situation:\n\n"
CUSTOMER_SUFFIX = "\n\nSay one thing at a time. When your request is done, write ###STOP###."


def _sha(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Task:
    """A task: what the interface needs (``id``, ``user_instructions``, ``actions``, ``communicate_info``)."""

    id: str
    customer: str
    user_instructions: str
    actions: Tuple[GoldAction, ...]
    communicate_info: Tuple[str, ...] = ()


# -- the tools: their schemas, their kinds, their code ---------------------------------------------------------

def _schema(name: str, description: str, **params: str) -> Dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": {k: {"type": "string", "description": d}
                                                       for k, d in params.items()},
                       "required": list(params)}}}


SCHEMAS = [
    _schema("get_order", "Look up an order by its id: the customer, the item and the status.",
            order_id="the order's id, such as A12"),
    _schema("cancel_order", "Cancel an order whose status is processing.", order_id="the order's id"),
    _schema("transfer_to_human", "Hand the conversation to a human agent.", summary="what the customer needs"),
]
#: what each tool does, for the reward components (never read from the names): a read, a write (and which argument
#: names the record it changes), the hand-off tool
TOOL_KINDS = ToolKinds({"get_order": READ, "cancel_order": WRITE, "transfer_to_human": GENERIC},
                       write_targets={"cancel_order": ("order_id",)}, transfer_tool="transfer_to_human")


class ToolError(Exception):
    """A refused call: comes back to the agent as an ``Error: ...`` observation."""


def _order(db: Dict[str, Any], order_id: str) -> Dict[str, str]:
    if order_id not in db["orders"]:
        raise ToolError(f"order {order_id} not found")
    return db["orders"][order_id]


def get_order(db: Dict[str, Any], order_id: str) -> str:
    return json.dumps({"order_id": order_id, **_order(db, order_id)})


def cancel_order(db: Dict[str, Any], order_id: str) -> str:
    order = _order(db, order_id)
    if order["status"] != "processing":
        raise ToolError(f"order {order_id} is {order['status']} and cannot be cancelled")
    order["status"] = "cancelled"
    return json.dumps({"order_id": order_id, **order})


def transfer_to_human(db: Dict[str, Any], summary: str) -> str:
    return "Transfer successful"


TOOLS = {"get_order": get_order, "cancel_order": cancel_order, "transfer_to_human": transfer_to_human}


def run_tool(db: Dict[str, Any], name: str, arguments: Any) -> ToolResult:
    """One call on ``db`` (an episode's own copy): an unknown tool, missing or unknown arguments and refusals
    are error observations, never exceptions."""
    schema = next((s["function"] for s in SCHEMAS if s["function"]["name"] == name), None)
    if schema is None:
        return ToolResult(f"Error: unknown tool {name!r}", True, name, arguments)
    args = arguments if isinstance(arguments, dict) else {}
    props, required = schema["parameters"]["properties"], schema["parameters"]["required"]
    bad = [f"missing argument {k!r}" for k in required if k not in args]
    bad += [f"unknown argument {k!r}" for k in args if k not in props]
    bad += [f"{k!r} must be a string" for k, v in args.items() if k in props and not isinstance(v, str)]
    if bad:
        return ToolResult("Error: " + "; ".join(bad), True, name, arguments)
    try:
        return ToolResult(TOOLS[name](db, **args), False, name, arguments)
    except ToolError as e:
        return ToolResult(f"Error: {e}", True, name, arguments)


# -- the outcome and the episode -------------------------------------------------------------------------------

@dataclass
class Outcome:
    """A finished episode's reward and why (the interface: ``reward``, ``note``, ``success``, ``to_dict()``)."""

    reward: float
    termination: str
    db_match: bool = False
    communicated: Dict[str, bool] = field(default_factory=dict)
    note: str = ""

    @property
    def success(self) -> bool:
        return self.reward >= 1.0

    def to_dict(self) -> Dict[str, Any]:
        return dict(asdict(self), success=self.success)


class Episode:
    """One conversation's state, made by :meth:`OrderDesk.reset`: its own copy of the database.

    The rules of an agent message (:meth:`assistant_message`): a malformed call, or a message with neither
    text nor calls, ends the run as ``agent_error`` with nothing run; otherwise every call runs in order, up
    to and including a successful transfer, which ends the episode (``agent_stop``); a message without calls
    goes to the customer.  The score (:meth:`evaluate`): 1 when the conversation ended properly (the customer
    stopped, or the agent transferred), the database equals the gold replay's and the agent said every piece
    of ``communicate_info``; else 0."""

    def __init__(self, domain: "OrderDesk", task: Task):
        self.domain, self.task = domain, task
        self.db = copy.deepcopy(DB)
        self.said: List[str] = []
        self.transferred = False

    def assistant_message(self, text: str, calls: Sequence[Tuple[str, Any]], malformed: int = 0,
                          first_call_malformed: bool = False) -> AssistantTurn:
        calls = list(calls)
        if malformed or (not calls and not (text or "").strip()):
            return AssistantTurn([], [], to_user=False, agent_stop=False, agent_error=True)
        if text:
            self.said.append(text)
        results, ran = [], []
        for i, (name, arguments) in enumerate(calls):
            res = run_tool(self.db, name, copy.deepcopy(arguments))
            results.append(res)
            ran.append(i)
            if name == TOOL_KINDS.transfer_tool and not res.error:
                self.transferred = True
                break
        return AssistantTurn(results, ran, to_user=not calls, agent_stop=self.transferred)

    def evaluate(self, termination: str, judge: Any = None,
                 messages: Optional[List[Dict[str, Any]]] = None) -> Outcome:
        if termination not in PROPER_ENDINGS:
            return Outcome(0.0, termination, note=f"ended by {termination}: scored 0")
        db_match = self.db == self.domain.gold_db[self.task.id]
        said = " ".join(self.said).lower()
        communicated = {info: info.lower() in said for info in self.task.communicate_info}
        ok = db_match and all(communicated.values())
        return Outcome(1.0 if ok else 0.0, termination, db_match, communicated)


# -- the domain and its factory --------------------------------------------------------------------------------

class OrderDesk:
    """The domain (the interface of ``openrlhf_mtgrpo.envs.base.Domain``).  Its data is never written: every
    episode works on its own copy, so one object serves many episodes at once."""

    name, version = NAME, VERSION
    demo_calibration = CALIBRATION  # optional hook: the calibration `mtgrpo demo` starts from
    tool_kinds = TOOL_KINDS

    def __init__(self):
        # what the runs played: recorded with every rollout and eval result, printed by the reports (every key)
        self.identity = {"version": VERSION, "data_sha256": _sha([DB, TASKS, POLICY])}
        self.schema_source = {"source": BENCHMARK, "where": "examples/minimal_domain.py (this file is the benchmark)",
                              "sha256": _sha(SCHEMAS), "tools": [s["function"]["name"] for s in SCHEMAS]}
        where = "examples/minimal_domain.py"
        text = AGENT_INSTRUCTIONS.format(policy=POLICY)
        self.agent_prompt = AgentPrompt(text, PromptInfo(BENCHMARK, _sha(text), where=where))
        self.customer_prompt = CustomerPrompt(
            CUSTOMER_PREFIX, CUSTOMER_SUFFIX, GREETING,
            PromptInfo(BENCHMARK, _sha(CUSTOMER_PREFIX + CUSTOMER_SUFFIX), where=where), temperature=0.0)
        self.run_rules = RunRules(budget=40, unit=ORCHESTRATOR_STEPS, max_errors=5,
                                  stop_signals=("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###"),
                                  opening_can_stop=True, agent_greeting=GREETING,
                                  source="examples/minimal_domain.py: 40 orchestrator steps, 5 failed tool calls")
        self._tasks = {t["id"]: Task(t["id"], t["customer"], t["scenario"],
                                     tuple(GoldAction(n, a) for n, a in t["actions"]), tuple(t["say"]))
                       for t in TASKS}
        self.gold_db = {}  # task id -> the database after its gold actions (computed once: never written later)
        for task in self._tasks.values():
            db = copy.deepcopy(DB)
            for a in task.actions:
                res = run_tool(db, a.name, copy.deepcopy(a.arguments))
                if res.error:
                    raise ValueError(f"task {task.id}: gold action {a.name} fails: {res.content}")
            self.gold_db[task.id] = db

    @property
    def policy(self) -> str:
        return POLICY

    def tool_schemas(self) -> List[Dict[str, Any]]:
        return copy.deepcopy(SCHEMAS)

    def customer_tool_schemas(self) -> None:
        return None  # the customer only talks

    @property
    def splits(self) -> Dict[str, List[str]]:
        return {**{k: list(v) for k, v in SPLITS.items()}, "base": list(self._tasks)}

    def task(self, task_id: Any) -> Task:
        if isinstance(task_id, Task):
            return task_id
        if str(task_id) not in self._tasks:
            raise KeyError(f"unknown {NAME} task id {task_id!r} (ids: {', '.join(self._tasks)})")
        return self._tasks[str(task_id)]

    def tasks(self, split: str = "base") -> List[Task]:
        if split not in self.splits:
            raise KeyError(f"unknown {NAME} split {split!r} (splits: {', '.join(self.splits)})")
        return [self._tasks[i] for i in self.splits[split]]

    def reset(self, task: Any) -> Episode:
        return Episode(self, self.task(task))

    # optional hook of `mtgrpo demo`'s scripted policy (docs/domains.md, "The demo's scripted mistakes")
    def scripted_mistake(self, kind: str, task: Task, done: int, last_call: Optional[Dict[str, Any]],
                         rng: Any) -> Optional[str]:
        """The order desk's own mistakes: ``wrong_write`` cancels another of the customer's open orders (one
        they never named: what ``other_write`` below scores); ``extra_read`` looks one of them up.  None: the
        generic mistake of that kind."""
        named = {a.arguments.get("order_id") for a in task.actions}
        others = sorted(k for k, o in DB["orders"].items() if o["customer"] == task.customer and k not in named)
        open_others = [k for k in others if DB["orders"][k]["status"] == "processing"]
        if kind == "wrong_write" and open_others:
            return tool_call_text("cancel_order", {"order_id": rng.choice(open_others)})
        if kind == "extra_read" and others:
            return tool_call_text("get_order", {"order_id": rng.choice(others)})
        return None


def make_domain(version: Optional[str] = None, data_dir: Optional[str] = None) -> OrderDesk:
    """The factory: ``--domain minimal_domain:make_domain`` (or register it: ``register_domain("minimal",
    make_domain)``).  ``data_dir`` is for domains that read their data from files; this one holds it in code."""
    if version not in (None, VERSION):
        raise ValueError(f"{NAME} has only version {VERSION}, not {version!r}")
    return OrderDesk()


make_domain.versions = (VERSION,)
make_domain.default_version = VERSION
make_domain.preferred_versions = (VERSION,)


# -- a reward-component set ------------------------------------------------------------------------------------

COMPONENTS = ("gold_action", "lookup", "other_write", "tool_error", "message")


class Scorer:
    """One episode's scorer: ``features(turn)`` gives every component a value in [0, 1] for one assistant turn
    (here: the share of the turn's calls it applies to; ``message`` is 1 for a turn without calls)."""

    def __init__(self, task: Any, tool_kinds: ToolKinds):
        self.pending = [a for a in task.actions if getattr(a, "requestor", "assistant") == "assistant"]
        self.kinds = tool_kinds

    def features(self, turn: Any) -> Dict[str, float]:  # turn: openrlhf_mtgrpo.rewards.turns.TurnInput
        x = dict.fromkeys(COMPONENTS, 0.0)
        n = len(turn.calls) + turn.malformed_calls
        if n == 0:
            x["message"] = 1.0
            return x
        x["tool_error"] += turn.malformed_calls
        for call in turn.calls:
            gold = next((a for a in self.pending if a.name == call.name and a.arguments == call.arguments), None)
            if call.error:
                x["tool_error"] += 1
            elif gold is not None:
                self.pending.remove(gold)
                x["gold_action"] += 1
            elif call.name in self.kinds.writes:
                x["other_write"] += 1
            elif self.kinds.kind(call.name) == READ:
                x["lookup"] += 1
        return {k: v / n if k != "message" else v for k, v in x.items()}


@dataclass(frozen=True)
class MinimalComponents:
    """The set for one domain's tools: ``name`` (the registered one), ``names`` (the ordered components: the axis
    of calibrations and IRC), ``pinned`` (kept fixed by IRC unless told otherwise), ``new_episode(task)``."""

    tool_kinds: ToolKinds
    name: str = "minimal"
    names: Tuple[str, ...] = COMPONENTS
    pinned: Tuple[str, ...] = ("gold_action",)

    def new_episode(self, task: Any) -> Scorer:
        return Scorer(task, self.tool_kinds)


def minimal_components(tool_kinds: ToolKinds) -> MinimalComponents:
    """The set's factory (an entry point of ``openrlhf_mtgrpo.reward_components`` names such a function)."""
    return MinimalComponents(tool_kinds)


register_reward_components("minimal", minimal_components)  # in this process; a package uses an entry point
