"""Seeded conversations around every point where a benchmark's own run ends a conversation (issue #22).

A :class:`Script` fixes both participants in advance: the agent's messages, consumed one per agent turn
in order, and the customer's messages, one per customer turn (the first is the customer's opening).
The same script is played through the benchmark's own loop (:mod:`differential.run_rules_reference`)
and through ours; where each side stops, and what it scores, is what the differential test compares.
A script may hold more messages than a run consumes: what lies past the ending is never read.

The scripts are placed around the run rules of each benchmark (nothing here decides how a run ends;
the labels say what a script is built to probe):

* tau2 (text mode): the greeting is not a step; every agent message, customer message and environment
  response is one step; after each step not addressed to the environment the run ends at
  ``step_count >= max_steps`` (then ``num_errors >= max_errors``, cumulative failed tool calls).  So
  the scripts put the 9th/10th/11th failed call on single-call and multi-call messages, put the
  customer's ``###STOP###`` (and the other stop signals) just before, at and after small budgets and at
  the default 200, put a tool call on the budget's last step, make both limits fall on one step, and
  add the agent's own ``###STOP###`` text, empty messages, calls whose arguments are not a JSON object,
  a stop in the customer's opening, and gold conversations.
* tau1 (tau-bench): 30 agent actions at most; a reply goes to the customer, whose ``###STOP###`` ends
  it; ``transfer_to_human_agents`` ends it; only the first tool call of a message is an action.  So
  the customer's stop arrives after the 29th, 30th and 31st action, the transfer is the last action
  (inside and past the budget, first and second call of a message), plus gold conversations.

Stdlib only, apart from reading the benchmark data through the package's own loader (tasks, database ids).
"""

from __future__ import annotations

import copy
import json
import random
import string
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

STOP, TRANSFER, OUT_OF_SCOPE = "###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###"
TAU1_VERSIONS = ("tau1",)
TAU2_VERSIONS = ("tau2", "tau2-2025")


@dataclass(frozen=True)
class Malformed:
    """A tool call's arguments as the model wrote them, which are not a JSON object
    (``'["HATHAT"]'``, ``'"abc"'``, or text that is not JSON at all)."""

    raw: str


Arguments = Union[Dict[str, Any], Malformed]
Call = Tuple[str, Arguments]


@dataclass
class AgentMessage:
    """One agent message: text, tool calls (with or without text), neither (empty), or calls of which
    some are :class:`Malformed`; ``calls`` keeps the model's order."""

    text: Optional[str] = None
    calls: List[Call] = field(default_factory=list)

    @property
    def valid_calls(self) -> List[Tuple[str, Dict[str, Any]]]:
        return [(n, a) for n, a in self.calls if not isinstance(a, Malformed)]

    @property
    def n_malformed(self) -> int:
        return sum(isinstance(a, Malformed) for _, a in self.calls)

    @property
    def first_call_malformed(self) -> bool:
        return bool(self.calls) and isinstance(self.calls[0][1], Malformed)

    @property
    def is_empty(self) -> bool:
        """Neither a tool call nor text other than whitespace."""
        return not self.calls and not (self.text or "").strip()

    def raw_calls(self) -> List[Tuple[str, str]]:
        """(name, arguments text) as a model's response carries them (a JSON object, or the malformed text)."""
        return [(n, a.raw if isinstance(a, Malformed) else json.dumps(a)) for n, a in self.calls]


@dataclass
class Script:
    """One scripted conversation.  ``user[0]`` is the customer's opening; ``user[k]`` answers the agent's
    k-th message that goes to the customer.  ``max_steps``/``max_errors``: the run's limits for this
    script (tau2: orchestrator steps and failed tool calls; tau1: ``max_num_steps``, agent actions);
    None: the benchmark's defaults."""

    task_id: str
    agent: List[AgentMessage]
    user: List[str]
    label: str
    version: str
    max_steps: Optional[int] = None
    max_errors: Optional[int] = None


# -- building ---------------------------------------------------------------------------------------------------


class _Conversation:
    """A script under construction that knows where its next message falls: ``step`` is tau2's step count
    after the last message added (the opening is step 1; an agent message and the environment's or the
    customer's answer are two more), ``actions`` tau-bench's agent actions so far."""

    def __init__(self, version: str, task_id: str, opening: str):
        self.version, self.task_id = version, task_id
        self.agent: List[AgentMessage] = []
        self.user: List[str] = [opening]
        self.step, self.actions = 1, 0

    def tool(self, *calls: Call, text: Optional[str] = None) -> "_Conversation":
        self.agent.append(AgentMessage(text, list(calls)))
        self.step += 2
        self.actions += 1
        return self

    def chat(self, text: Optional[str], reply: str) -> "_Conversation":
        self.agent.append(AgentMessage(text))
        self.user.append(reply)
        self.step += 2
        self.actions += 1
        return self

    def script(self, label: str, max_steps: Optional[int] = None, max_errors: Optional[int] = None) -> Script:
        return Script(self.task_id, copy.deepcopy(self.agent), list(self.user), label, self.version,
                      max_steps, max_errors)


_ASK = ["Could you give me your user id, please?", "Which reservation is this about?",
        "Let me look into that for you.", "Can you confirm the passenger names?",
        "Would you like me to go ahead?", "Is there anything else you would like to change?"]
_REPLY = ["Sure, it's in my profile.", "The one from last week.", "Yes, please go ahead.",
          "I'm not sure, can you check?", "Let me think... yes.", "No, that's everything for that part."]
_OPENING = ["Hi, I need help with a reservation.", "Hello! I'd like to change my trip.",
            "Hi there, I have a question about my booking."]
_BYE = ["Is there anything else I can help you with?", "Your request is complete. Anything else?"]


class _Pieces:
    """Seeded messages and calls for one benchmark version: calls that succeed, calls that fail with a
    real tool error (an unknown reservation or user), chat."""

    def __init__(self, version: str, rng: random.Random, data):
        self.version, self.rng, self.data = version, rng, data
        self.tau1 = version in TAU1_VERSIONS
        db = data.db
        self.reservations = sorted(db["reservations"])
        self.users = sorted(db["users"])
        taken = set(self.reservations)
        self.unknown_reservations = []
        while len(self.unknown_reservations) < 8:
            rid = "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6))
            if rid not in taken:
                self.unknown_reservations.append(rid)
                taken.add(rid)
        self.unknown_users = [u for u in ("nobody_0000", "jane_doe_0001", "x_y_9999") if u not in db["users"]]

    def user_of(self, task_id: str) -> str:
        uid = self.data.tasks[task_id].user_id
        return uid if uid in self.data.db["users"] else self.users[0]

    def ok(self, task_id: str) -> Call:
        r = self.rng.randrange(4)
        if r == 0:
            return "list_all_airports", {}
        if r == 1:
            return "get_user_details", {"user_id": self.user_of(task_id)}
        if r == 2:
            return "get_reservation_details", {"reservation_id": self.rng.choice(self.reservations)}
        return "calculate", {"expression": self.rng.choice(["2 + 2", "100 * 3", "(250 - 40) / 2"])}

    def fail(self) -> Call:
        if self.unknown_users and self.rng.random() < 0.3:
            return "get_user_details", {"user_id": self.rng.choice(self.unknown_users)}
        return "get_reservation_details", {"reservation_id": self.rng.choice(self.unknown_reservations)}

    def ask(self) -> str:
        return self.rng.choice(_ASK)

    def reply(self) -> str:
        return self.rng.choice(_REPLY)

    def opening(self) -> str:
        return self.rng.choice(_OPENING)

    def bye(self) -> str:
        return self.rng.choice(_BYE)

    def stop(self) -> str:
        return self.rng.choice([STOP, STOP, "Thanks, that's all. " + STOP])

    def filler(self, conv: _Conversation, units: int, task_id: str, calls: bool = True) -> None:
        """``units`` agent messages that neither fail nor end anything: chat or successful calls."""
        for _ in range(units):
            if calls and self.rng.random() < 0.5:
                k = 1 if self.tau1 or self.rng.random() < 0.75 else 2
                conv.tool(*[self.ok(task_id) for _ in range(k)])
            else:
                conv.chat(self.ask(), self.reply())


def _load(version: str, data_dir: Optional[str]):
    from openrlhf_mtgrpo.benchmarks.airline.data import load_airline

    return load_airline(version, data_dir)


def boundary_scripts(version: str, seed: int, task_ids: Sequence[str], data_dir: Optional[str] = None) -> List[Script]:
    """The boundary scripts of ``version`` (tau2, tau2-2025 or tau1), seeded: the same arguments give the
    same scripts.  Every task id gets a gold script; the other scripts use task ids drawn from
    ``task_ids``."""
    task_ids = [str(t) for t in task_ids]
    if not task_ids:
        raise ValueError("boundary_scripts needs at least one task id")
    data = _load(version, data_dir)
    unknown = [t for t in task_ids if t not in data.tasks]
    if unknown:
        raise KeyError(f"{version} has no task(s) {unknown}")
    rng = random.Random(f"{seed}/{version}")
    pieces = _Pieces(version, rng, data)
    if version in TAU1_VERSIONS:
        return _tau1_scripts(version, rng, pieces, data, task_ids)
    if version in TAU2_VERSIONS:
        return _tau2_scripts(version, rng, pieces, data, task_ids)
    raise ValueError(f"unknown benchmark version {version!r}")


# -- tau2 -------------------------------------------------------------------------------------------------------


def _spread(units: List[Tuple[str, Any]], rng: random.Random, n_filler: int) -> List[Tuple[str, Any]]:
    out = list(units)
    for _ in range(n_filler):
        out.insert(rng.randrange(len(out) + 1), ("filler", None))
    return out


def _play(conv: _Conversation, pieces: _Pieces, units: List[Tuple[str, Any]], task_id: str) -> None:
    for kind, what in units:
        if kind == "filler":
            pieces.filler(conv, 1, task_id)
        elif kind == "calls":
            conv.tool(*what)
        elif kind == "chat":
            conv.chat(*what)
        else:
            raise ValueError(kind)


def _finish(conv: _Conversation, pieces: _Pieces, extra: int = 2) -> None:
    """The agent's closing words and the customer's stop, then ``extra`` messages a run should never read."""
    conv.chat(pieces.bye(), pieces.stop())
    for _ in range(extra):
        conv.chat(pieces.ask(), pieces.reply())


def _until_step(conv: _Conversation, pieces: _Pieces, task_id: str, step: int, calls: bool = True) -> None:
    """Filler until tau2's step count is ``step`` (same parity as the current count)."""
    if (step - conv.step) % 2 or step < conv.step:
        raise ValueError(f"cannot reach step {step} from {conv.step}")
    pieces.filler(conv, (step - conv.step) // 2, task_id, calls)


def _gold_calls(task) -> List[Call]:
    return [(a.name, copy.deepcopy(a.arguments)) for a in task.actions]


def _tau2_scripts(version, rng, pieces: _Pieces, data, task_ids) -> List[Script]:
    out: List[Script] = []
    pick = lambda: rng.choice(task_ids)  # noqa: E731
    fail, ok = pieces.fail, pieces.ok

    # failed tool calls: the 9th, 10th and 11th, one call a message (max_errors 10)
    for n in (9, 10, 11):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        _play(conv, pieces, _spread([("calls", [fail()]) for _ in range(n)], rng, rng.randint(0, 3)), t)
        _finish(conv, pieces)
        out.append(conv.script(f"errors/single/{n}"))
    # ... and several calls a message, crossing 10 inside one message
    for before, layout in ((9, "FO"), (9, "OF"), (9, "FF"), (8, "FFF"), (8, "FO"), (9, "OOF")):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        _play(conv, pieces, _spread([("calls", [fail()]) for _ in range(before)], rng, rng.randint(0, 2)), t)
        conv.tool(*[fail() if c == "F" else ok(t) for c in layout])
        _finish(conv, pieces)
        out.append(conv.script(f"errors/multi/{before}+{layout}"))
    # messages whose calls partly fail (one of three): 9 such messages, then 10
    for n in (9, 10):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        for _ in range(n):
            calls = [ok(t), ok(t)]
            calls.insert(rng.randrange(3), fail())
            conv.tool(*calls)
        _finish(conv, pieces)
        out.append(conv.script(f"errors/partial/{n}x[1 of 3 fails]"))
    # failures not in a row: each separated by successful calls and talk with the customer
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    for _ in range(10):
        conv.tool(fail())
        conv.tool(ok(t))
        conv.chat(pieces.ask(), pieces.reply())
    _finish(conv, pieces)
    out.append(conv.script("errors/interleaved/10"))
    # a smaller error limit
    for n in (2, 3):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        _play(conv, pieces, _spread([("calls", [fail()]) for _ in range(n)], rng, 1), t)
        _finish(conv, pieces)
        out.append(conv.script(f"errors/limit3/{n}", max_errors=3))

    # the customer's stop around the step budget: small budgets of both parities, and the default 200
    m_odd = rng.choice([13, 15, 17, 19])
    m_even = rng.choice([12, 14, 16, 18, 20])
    for m, stop_at, where in ((m_odd, m_odd - 2, "before"), (m_odd, m_odd, "at"), (m_odd, m_odd + 2, "after"),
                              (m_even, m_even - 1, "one-before"), (m_even, m_even + 1, "one-after")):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        _until_step(conv, pieces, t, stop_at - 2)
        _finish(conv, pieces)
        out.append(conv.script(f"budget/{m}/user-stop-{where}@{stop_at}", max_steps=m))
    for m in (m_even, 200):
        for k in (1, 2):  # the agent's tool message on the budget's last step: the environment still answers
            t = pick()
            conv = _Conversation(version, t, pieces.opening())
            _until_step(conv, pieces, t, m - 1)
            conv.tool(*[ok(t) for _ in range(k)])
            _finish(conv, pieces)
            out.append(conv.script(f"budget/{m}/{k}-call-message@{m}", max_steps=m if m != 200 else None))
    for stop_at, where in ((199, "one-before"), (201, "one-after")):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        _until_step(conv, pieces, t, stop_at - 2)
        _finish(conv, pieces)
        out.append(conv.script(f"budget/200/user-stop-{where}@{stop_at}"))
    # both limits on one step: the 10th failure's response lands on the budget's step (shift 0), or its
    # call does and the response comes one step past it (shift 1)
    for m_shift in (0, 1):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        for _ in range(10):
            conv.tool(fail())
        answered = conv.step
        m = answered - m_shift
        _finish(conv, pieces)
        out.append(conv.script(f"budget/{m}/10th-error-answered@{answered}", max_steps=m))
    # the budget passed while errors stay under the limit
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    for _ in range(4):
        conv.tool(fail())
    m = conv.step
    _finish(conv, pieces)
    out.append(conv.script(f"budget/{m}/4-errors-then-budget", max_steps=m))

    # the agent's "###STOP###" goes to the customer (tau2's LLM agent has no stop)
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    pieces.filler(conv, rng.randint(1, 3), t)
    conv.chat(STOP, "What do you mean? I still need help.")
    pieces.filler(conv, rng.randint(1, 2), t)
    _finish(conv, pieces)
    out.append(conv.script("agent-stop-text/mid"))
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    pieces.filler(conv, rng.randint(1, 3), t)
    conv.chat("Goodbye! " + STOP, STOP)
    _finish(conv, pieces, extra=1)
    out.append(conv.script("agent-stop-text/answered-by-stop"))
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    conv.chat(STOP, pieces.reply())
    conv.chat(STOP, pieces.reply())
    _finish(conv, pieces)
    out.append(conv.script("agent-stop-text/twice"))
    # tau2's transfer tool is a tool like the others; the customer's ###TRANSFER### ends it
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    pieces.filler(conv, rng.randint(0, 2), t)
    conv.tool(("transfer_to_human_agents", {"summary": "The customer asks for a human agent."}))
    conv.chat("I have transferred you to a human agent.", TRANSFER)
    _finish(conv, pieces, extra=1)
    out.append(conv.script("transfer/tool-then-user-transfer"))

    # the customer's signals
    for label, text in (("transfer", "I want to talk to a human. " + TRANSFER), ("out-of-scope", OUT_OF_SCOPE),
                        ("stop-inside-text", "Great, thank you! " + STOP + " Bye.")):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        pieces.filler(conv, rng.randint(1, 3), t)
        conv.chat(pieces.ask(), text)
        _finish(conv, pieces, extra=1)
        out.append(conv.script(f"user-signal/{label}"))
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    conv.chat(pieces.ask(), "Please stop. STOP. ###stop###")
    pieces.filler(conv, 1, t)
    _finish(conv, pieces)
    out.append(conv.script("user-signal/not-a-signal"))

    # the customer's opening
    no_actions = [t for t in task_ids if not data.tasks[t].actions and not data.tasks[t].communicate_info]
    with_actions = [t for t in task_ids if data.tasks[t].actions]
    for label, t, opening in (("stop/task-without-actions", no_actions, STOP),
                              ("stop/task-with-actions", with_actions, STOP),
                              ("transfer", with_actions or task_ids, TRANSFER)):
        if not t:
            continue
        conv = _Conversation(version, rng.choice(t), opening)
        pieces.filler(conv, 2, conv.task_id)
        _finish(conv, pieces)
        out.append(conv.script(f"opening/{label}"))

    # messages tau2's run fails at
    for label, text, units in (("first", "", 0), ("after-calls", None, 2), ("whitespace", "  \n", 1),
                               ("after-chat", "", 1)):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        if label == "after-chat":
            conv.chat(pieces.ask(), pieces.reply())
        else:
            for _ in range(units):
                conv.tool(ok(t))
        conv.agent.append(AgentMessage(text))
        _finish(conv, pieces)
        out.append(conv.script(f"empty/{label}"))
    for label, calls, text in (("only", [("get_reservation_details", Malformed('["HATHAT"]'))], None),
                               ("after-valid", "ok+bad", None),
                               ("first-then-valid", "bad+ok", "Let me check."),
                               ("not-json", [("get_user_details", Malformed('{"user_id": '))], None),
                               ("string", [("get_reservation_details", Malformed('"ABC123"'))], None)):
        t = pick()
        if calls == "ok+bad":
            calls = [ok(t), ("get_reservation_details", Malformed("[]"))]
        elif calls == "bad+ok":
            calls = [("get_user_details", Malformed("5")), ok(t)]
        conv = _Conversation(version, t, pieces.opening())
        pieces.filler(conv, rng.randint(0, 2), t)
        conv.tool(*calls, text=text)
        _finish(conv, pieces)
        out.append(conv.script(f"malformed/{label}"))
    # text and calls in one message (tau2 runs the calls; the text counts for its communicate check)
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    conv.tool(ok(t), text="One moment while I check your booking.")
    _finish(conv, pieces)
    out.append(conv.script("mixed/text-and-call"))

    # gold conversations: the task's actions one a message, its required information said, then the stop
    for t in task_ids:
        task = data.tasks[t]
        conv = _Conversation(version, t, pieces.opening())
        for c in _gold_calls(task):
            conv.tool(c)
        for info in task.communicate_info:
            conv.chat(f"To confirm: {info}.", pieces.reply())
        _finish(conv, pieces)
        out.append(conv.script(f"gold/{t}"))
    multi = [t for t in task_ids if len(data.tasks[t].actions) > 1]
    if multi:
        t = rng.choice(multi)
        task = data.tasks[t]
        conv = _Conversation(version, t, pieces.opening())
        conv.tool(*_gold_calls(task))
        for info in task.communicate_info:
            conv.chat(f"To confirm: {info}.", pieces.reply())
        _finish(conv, pieces)
        out.append(conv.script(f"gold-one-message/{t}"))
    return out


# -- tau1 -------------------------------------------------------------------------------------------------------


def _tau1_filler(conv: _Conversation, pieces: _Pieces, task_id: str, actions: int) -> None:
    """``actions`` agent actions that do not end the conversation: successful or failing calls, replies."""
    for _ in range(actions):
        r = pieces.rng.random()
        if r < 0.4:
            conv.tool(pieces.ok(task_id))
        elif r < 0.55:
            conv.tool(pieces.fail())
        else:
            conv.chat(pieces.ask(), pieces.reply())


TAU1_TRANSFER = "transfer_to_human_agents"


def _transfer(summary: str = "The customer asks for a human agent.") -> Call:
    return TAU1_TRANSFER, {"summary": summary}


def _tau1_scripts(version, rng, pieces: _Pieces, data, task_ids) -> List[Script]:
    out: List[Script] = []
    pick = lambda: rng.choice(task_ids)  # noqa: E731
    # the customer's stop answering the 29th, 30th and 31st action (a reply)
    for n in (29, 30, 31):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        _tau1_filler(conv, pieces, t, n - 1)
        conv.chat(pieces.bye(), pieces.stop())
        for _ in range(2):
            conv.chat(pieces.ask(), pieces.reply())
        out.append(conv.script(f"actions/stop-after-{n}"))
    # the 30th action a tool call: nothing more is asked of the customer
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    _tau1_filler(conv, pieces, t, 29)
    conv.tool(pieces.ok(t))
    conv.chat(pieces.bye(), pieces.stop())
    out.append(conv.script("actions/30th-a-call"))
    # the transfer tool as the last action: early, the 30th, the 31st; first or second call of a message
    for n in (rng.randint(1, 8), 30, 31):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        _tau1_filler(conv, pieces, t, n - 1)
        conv.tool(_transfer())
        conv.chat(pieces.bye(), pieces.stop())
        out.append(conv.script(f"transfer/action-{n}"))
    for label, calls in (("second-of-two", "ok+transfer"), ("first-of-two", "transfer+ok"),
                         ("bad-arguments", [(TAU1_TRANSFER, {})])):
        t = pick()
        if calls == "ok+transfer":
            calls = [pieces.ok(t), _transfer()]
        elif calls == "transfer+ok":
            calls = [_transfer(), pieces.ok(t)]
        conv = _Conversation(version, t, pieces.opening())
        _tau1_filler(conv, pieces, t, rng.randint(0, 3))
        conv.tool(*calls)
        conv.chat(pieces.bye(), pieces.stop())
        conv.chat(pieces.ask(), pieces.reply())
        out.append(conv.script(f"transfer/{label}"))
    # the opening is never checked for a stop; the agent's ###STOP### text goes to the customer
    t = pick()
    conv = _Conversation(version, t, STOP)
    conv.chat(pieces.ask(), pieces.reply())
    conv.chat(pieces.bye(), pieces.stop())
    conv.chat(pieces.ask(), pieces.reply())
    out.append(conv.script("opening/stop"))
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    _tau1_filler(conv, pieces, t, rng.randint(1, 3))
    conv.chat(STOP, "What do you mean? I still need help.")
    conv.chat(pieces.bye(), pieces.stop())
    out.append(conv.script("agent-stop-text/mid"))
    for label, text in (("transfer", "I want a human. " + TRANSFER), ("out-of-scope", OUT_OF_SCOPE),
                        ("stop-inside-text", "Great, thanks! " + STOP + " Bye.")):
        t = pick()
        conv = _Conversation(version, t, pieces.opening())
        _tau1_filler(conv, pieces, t, rng.randint(1, 3))
        conv.chat(pieces.ask(), text)
        conv.chat(pieces.bye(), pieces.stop())
        conv.chat(pieces.ask(), pieces.reply())
        out.append(conv.script(f"user-signal/{label}"))
    # no error limit
    t = pick()
    conv = _Conversation(version, t, pieces.opening())
    for _ in range(12):
        conv.tool(pieces.fail())
    conv.chat(pieces.bye(), pieces.stop())
    out.append(conv.script("errors/12-failures"))
    # what tau-bench's run fails at, or lets through
    for label, calls in (("first", [("get_reservation_details", Malformed('["HATHAT"]'))]),
                         ("not-json", [("get_user_details", Malformed('{"user_id": '))]),
                         ("after-valid", "ok+bad")):
        t = pick()
        if calls == "ok+bad":
            calls = [pieces.ok(t), ("get_reservation_details", Malformed("[]"))]
        conv = _Conversation(version, t, pieces.opening())
        _tau1_filler(conv, pieces, t, rng.randint(0, 2))
        conv.tool(*calls)
        conv.chat(pieces.bye(), pieces.stop())
        out.append(conv.script(f"malformed/{label}"))
    with_outputs = [t for t in task_ids if data.tasks[t].communicate_info]
    without = [t for t in task_ids if not data.tasks[t].communicate_info]
    for label, pool, text in (("none", without, None), ("blank", without, ""),
                              ("none-task-with-outputs", with_outputs, None)):
        if not pool:
            continue
        t = rng.choice(pool)
        conv = _Conversation(version, t, pieces.opening())
        _tau1_filler(conv, pieces, t, rng.randint(0, 2))
        conv.chat(text, pieces.reply())
        conv.chat(pieces.bye(), pieces.stop())
        out.append(conv.script(f"empty/{label}"))
    # gold conversations: the actions one a message (a final transfer ends it), the outputs said, the stop
    for t in task_ids:
        task = data.tasks[t]
        conv = _Conversation(version, t, pieces.opening())
        for c in _gold_calls(task):
            conv.tool(c)
        for info in task.communicate_info:
            conv.chat(f"To confirm: {info}.", pieces.reply())
        conv.chat(pieces.bye(), pieces.stop())
        out.append(conv.script(f"gold/{t}"))
    return out
