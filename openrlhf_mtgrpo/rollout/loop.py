"""The one episode loop: a policy, a simulated customer and a domain's episode, under the benchmark's run rules.

Training and evaluation both run their conversations here; they differ only in the policy side (a
:class:`TurnSource`: the rollout engine token by token in training, a served chat endpoint in eval).
The loop owns the order of events and every ending:

* the agent's greeting (where the benchmark has one) opens the policy's conversation; the customer's
  opening message follows;
* each agent message is applied by the domain (:meth:`~openrlhf_mtgrpo.envs.base.Episode.assistant_message`):
  its tool calls run, or it goes to the customer, whose reply comes back;
* the run rules (:class:`~openrlhf_mtgrpo.envs.base.RunRules`) are checked where the benchmark checks
  them.  tau2 (unit ``orchestrator_steps``): every agent message, customer message and environment
  response is a step; after each step that is not a tool call waiting for the environment, the budget
  is checked (``max_steps``), then the error limit (``too_many_errors``: failed tool calls so far), each
  overriding what the step set, the customer's stop included (``orchestrator.py`` ``run`` /
  ``_check_termination``).  tau-bench (unit ``agent_actions``): each agent message is one action; a run
  not done after its budget keeps reward 0 (``tool_calling_agent.py`` ``solve``).  Neither benchmark's
  agent ends a conversation by text: an agent's ``###STOP###`` goes to the customer like any message;
* our own endings, where a turn cannot go on: a reply cut at the token cap or the context's end
  (``turn_too_long`` / ``length_budget``), a served context refusing the conversation
  (``context_overflow``), a customer that failed (``infrastructure_error``: not scored).

The loop knows no domain by name.  Per-turn features and rewards come from the reward-component scorer
and the calibration; the episode's outcome from the domain's evaluator.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, Union

from openrlhf_mtgrpo.envs import base
from openrlhf_mtgrpo.envs.base import RunRules, ToolResult
from openrlhf_mtgrpo.rewards.sets import ComponentScorer
from openrlhf_mtgrpo.rewards.turns import CallRecord, TurnInput, schema_problems
from openrlhf_mtgrpo.rollout.domain_calls import DomainCalls
from openrlhf_mtgrpo.rollout.failures import CustomerFailure, DomainTimeout, InfrastructureFailure  # noqa: F401


@dataclass
class PolicyCall:
    """One tool call of a policy message, parsed."""

    id: str
    name: str
    arguments: Any  # a dict for a usable call


@dataclass
class PolicyTurn:
    """One message of the policy, as its source read it.

    text: what the message says without reasoning or call markup (what the customer and the benchmark's
    COMMUNICATE check see); calls: its usable tool calls in order; malformed: calls whose arguments are
    not a JSON object; first_call_malformed: the first call of the message is one of them; cut: the
    ending when the reply was cut (``turn_too_long`` / ``length_budget``), else ""; record: what the
    source logs about the turn (span, finish reason, reasoning, ...)."""

    text: str
    calls: List[PolicyCall] = field(default_factory=list)
    malformed: int = 0
    first_call_malformed: bool = False
    cut: str = ""
    record: Dict[str, Any] = field(default_factory=dict)


class NoTurn(Exception):
    """The policy produced no message: the conversation ends with ``termination`` (``length_budget``,
    ``context_overflow``); ``detail`` says why."""

    def __init__(self, termination: str, detail: str = ""):
        super().__init__(detail or termination)
        self.termination = termination
        self.detail = detail


class TurnSource(Protocol):
    """The policy side of the loop."""

    def start(self, messages: List[Dict[str, Any]]) -> None:
        """The conversation so far (system message, greeting, the customer's opening) before the first turn."""

    async def next(self) -> PolicyTurn:
        """The policy's next message (raises :class:`NoTurn` when there is none)."""

    def shown(self, turn: PolicyTurn, ran: Sequence[int]) -> Dict[str, Any]:
        """The assistant message as the conversation keeps it (``ran``: the calls the domain ran)."""

    def observe(self, messages: List[Dict[str, Any]], new: List[Dict[str, Any]], record: "TurnRecord") -> str:
        """``new`` (tool results, the customer's reply) follow; "" or the ending when they do not fit."""

    def finish(self, messages: List[Dict[str, Any]]) -> None:
        """The conversation ended."""


@dataclass
class CustomerMessage:
    """What the customer sends: text, or tool calls on its own side (dual-control domains)."""

    text: str = ""
    calls: List[PolicyCall] = field(default_factory=list)


class Customer(Protocol):
    """The simulated customer: each method returns its next message (a str, or a :class:`CustomerMessage`
    with tool calls where the customer has tools of its own)."""

    async def start(self) -> Any:
        """The customer's opening message (its answer to the agent's greeting)."""

    async def reply(self, agent_text: str) -> Any:
        """Its answer to the agent's message."""

    async def tool_results(self, results: List[ToolResult]) -> Any:
        """Its next message after the results of its own tool calls (which the agent never sees)."""


@dataclass
class TurnRecord:
    """One agent turn, as the rollout log and the eval log record it."""

    index: int
    text: str  # the message's text as generated (training: with reasoning and call markup)
    answer: str  # what the customer and the COMMUNICATE check saw: no reasoning, no call markup
    tool_calls: List[Dict[str, Any]]  # the calls that ran: name, arguments, content, error
    tool_errors: int  # failed calls + malformed calls
    malformed: int
    skipped_calls: int  # usable calls the benchmark version did not run (tau1 runs only the first)
    features: Dict[str, float]
    reward: float
    steps: int = 0  # the run's step count after this turn (the rules' unit)
    source: Dict[str, Any] = field(default_factory=dict)  # what the policy side logs (span, finish_reason, ...)

    @property
    def template_drift(self) -> bool:
        """Training: the turn's observation was rendered after a sentinel (see :mod:`.chat`)."""
        return bool(self.source.get("template_drift"))

    @property
    def span(self) -> List[int]:
        """Training: [start, end) of the turn's generated tokens in the sequence."""
        return list(self.source.get("span") or [])

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("source"))
        return d


@dataclass
class Conversation:
    """How a conversation went: its turns and messages, how and where it ended, and its outcome."""

    task_id: str
    turns: List[TurnRecord]
    messages: List[Dict[str, Any]]  # the policy's conversation
    termination: str
    steps: int  # the run's step count at the end, in the rules' unit
    errors: int  # failed tool calls counted by the rules (tau2)
    outcome: Dict[str, Any]
    reward: float
    infra: Optional[InfrastructureFailure] = None
    policy_error: str = ""  # why the policy produced no further message (context overflow text)
    customer_calls: List[Dict[str, Any]] = field(default_factory=list)  # the customer's tool calls and results
    timings: Dict[str, float] = field(default_factory=dict)


def tool_message(call_id: str, name: str, content: str) -> Dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


def _as_customer_message(reply: Any) -> CustomerMessage:
    return reply if isinstance(reply, CustomerMessage) else CustomerMessage(text=reply if isinstance(reply, str)
                                                                                else "")


class _Ladder:
    """The run rules' counters and checks, in the benchmark's order."""

    def __init__(self, rules: RunRules):
        self.rules = rules
        self.steps = 0
        self.errors = 0
        self.tau2 = rules.unit == base.ORCHESTRATOR_STEPS

    def is_stop(self, text: str) -> bool:
        return any(s in (text or "") for s in self.rules.stop_signals)

    def step(self, n: int = 1) -> None:
        if self.tau2:
            self.steps += n

    def action(self) -> None:
        if not self.tau2:
            self.steps += 1

    def check_before_customer(self, termination: str) -> str:
        """After an agent message to the customer: tau2 checks here (the customer may never answer);
        tau-bench's action goes on to the customer's reply first."""
        return self.check(termination) if self.tau2 else termination

    def check(self, termination: str) -> str:
        """The ending after a step that does not wait for the environment (tau2), or at the end of an
        action (tau-bench): tau2's budget, then its error limit, each overriding what the step set;
        tau-bench's budget only where the action did not end the run."""
        r = self.rules
        if self.tau2:
            if self.steps >= r.budget:
                termination = base.MAX_STEPS
            if r.max_errors is not None and self.errors >= r.max_errors:
                termination = base.TOO_MANY_ERRORS
            return termination
        if not termination and self.steps >= r.budget:
            termination = base.MAX_STEPS
        return termination


async def run_conversation(
    episode: Union[base.Episode, Callable[[], Any]],
    source: TurnSource,
    customer: Optional[Customer],
    rules: RunRules,
    system_message: str,
    *,
    schemas: Dict[str, Dict[str, Any]],
    scorer: ComponentScorer,
    turn_reward: Callable[[Dict[str, float]], float],
    judge: Any = None,
    evaluate: Optional[Callable[[str, List[Dict[str, Any]]], Any]] = None,
    calls: Optional[DomainCalls] = None,
    task_id: Optional[str] = None,
) -> Conversation:
    """Run one conversation to its end (see the module docstring).

    episode: the domain's episode, or a function that makes it (``functools.partial(domain.reset, task)``),
    called as every other domain call is, so a reset that hangs ends the episode as infrastructure (then
    ``task_id`` names the task); schemas: the agent's tool schemas by name (for the components' schema check); scorer: the reward
    components' per-episode scorer (``features(TurnInput)``; :func:`~openrlhf_mtgrpo.rewards.sets.new_scorer`
    checks every turn's features against the set); turn_reward: features -> the turn's reward; customer: None
    in solo mode (the agent acts alone from the system message; tau2's ``solo_mode``: its first message is not
    a step); judge: the run's judge (:mod:`openrlhf_mtgrpo.evaluation.judge`), passed to ``episode.evaluate``
    (its ``budget_seconds()`` is added to the evaluation's time limit, also with ``evaluate``); evaluate:
    (termination, messages) -> the outcome (default ``episode.evaluate``; ``messages``: the conversation's
    messages, the last ones after the policy's last turn included, e.g. the customer's stop message, which the
    returned ``messages`` lack: they are in no prompt of the policy); calls: how the
    episode's methods are called (:class:`~openrlhf_mtgrpo.rollout.domain_calls.DomainCalls`: off the event
    loop, under a time limit; default: the default limit)."""
    calls = calls or DomainCalls()
    t_start = time.perf_counter()
    timings = {"user": 0.0, "env": 0.0}
    ladder = _Ladder(rules)
    messages: List[Dict[str, Any]] = [{"role": "system", "content": system_message}]
    if rules.agent_greeting is not None:
        messages.append({"role": "assistant", "content": rules.agent_greeting})
    turns: List[TurnRecord] = []
    customer_calls: List[Dict[str, Any]] = []
    termination, policy_error = "", ""
    last: List[Dict[str, Any]] = []  # the messages after the policy's last turn (see below)
    infra: Optional[InfrastructureFailure] = None
    last_user = ""

    async def customer_turn(reply: Any) -> Tuple[str, str]:
        """Play the customer's message (and its own tool calls, which the agent never sees) as steps; the
        ending it led to and the text that reaches the agent."""
        nonlocal termination
        msg = _as_customer_message(reply)
        while True:
            ladder.step()  # the customer's message
            if not msg.calls:
                ending = base.USER_STOP if ladder.is_stop(msg.text) else ""
                return ladder.check(ending), msg.text
            customer_tools = getattr(episode, "user_tool_calls", None)
            if customer_tools is None:
                raise CustomerFailure("the customer sent tool calls, but this domain's customer has no tools",
                                      "bad_reply")
            t0 = time.perf_counter()
            results = await calls("customer's tool calls", customer_tools,  # one message: tau2 syncs after it
                                  [(c.name, c.arguments) for c in msg.calls])
            for call, res in zip(msg.calls, results):
                customer_calls.append(dict(res.to_dict(), id=call.id, after_turn=len(turns)))
            timings["env"] += time.perf_counter() - t0
            ladder.errors += sum(1 for r in results if r.error)
            ladder.step()  # the environment's response, to the customer
            ending = ladder.check("")
            if ending:
                return ending, ""
            t0 = time.perf_counter()
            msg = _as_customer_message(await customer.tool_results(results))
            timings["user"] += time.perf_counter() - t0

    solo = customer is None
    uncounted = [solo]  # tau2's solo agent's first message comes in its initialize(): not a step
    probe_fn = None

    async def probe() -> Dict[str, float]:
        return dict(await calls("probes", probe_fn)) if probe_fn is not None else {}

    async def answer(turn: PolicyTurn, step, record: TurnRecord, new: List[Dict[str, Any]]) -> str:
        """What follows the agent's message (the environment's results, or the customer's reply) under the run
        rules; the ending it led to ("" to go on)."""
        nonlocal last_user
        if turn.cut:
            return turn.cut
        if step.agent_error:
            return base.AGENT_ERROR  # the benchmark's run fails at this message (tau2: before it becomes a step)
        if uncounted[0]:
            uncounted[0] = False
        else:
            ladder.step()  # the agent's message
        ladder.action()
        ending = ""
        if step.results:  # tool calls: the environment responds
            ladder.errors += sum(1 for r in step.results if r.error)
            if any(r.run_failure is not None for r in step.results):
                record.steps = ladder.steps
                return base.AGENT_ERROR
            ladder.step()
            ending = ladder.check(base.AGENT_STOP if step.agent_stop else "")
        elif step.to_user and solo:
            ending = base.AGENT_ERROR  # no one to talk to (the domain should have said so)
        elif step.to_user:
            ending = ladder.check_before_customer("")
            if not ending:
                t0 = time.perf_counter()
                reply = await customer.reply(turn.text)
                timings["user"] += time.perf_counter() - t0
                ending, text = await customer_turn(reply)
                last_user = text
                new.append({"role": "user", "content": text})
        else:
            ending = ladder.check(base.AGENT_STOP if step.agent_stop else "")
        record.steps = ladder.steps
        return ending

    try:
        if not hasattr(episode, "assistant_message"):  # a reset to make it
            t0 = time.perf_counter()
            episode = await calls("reset", episode)
            timings["env"] += time.perf_counter() - t0
        probe_fn = getattr(episode, "probes", None)
        if not solo:
            t0 = time.perf_counter()
            opening = await customer.start()
            timings["user"] += time.perf_counter() - t0
            ending, first = await customer_turn(opening)
            if ending == base.USER_STOP and not rules.opening_can_stop:
                ending = ""  # tau-bench never reads its customer's first message for a stop
            termination = ending
            messages.append({"role": "user", "content": first})
            last_user = first
        source.start(messages)
        probes_now = await probe()
        while not termination:
            try:
                turn = await source.next()
            except NoTurn as e:
                termination, policy_error = e.termination, e.detail
                break
            t0 = time.perf_counter()
            try:
                step = await calls("assistant_message", episode.assistant_message, turn.text,
                                   [(c.name, c.arguments) for c in turn.calls], malformed=turn.malformed,
                                   first_call_malformed=turn.first_call_malformed)
            except InfrastructureFailure:  # the turn was generated: it keeps its record (unscored, reward 0)
                source_record = dict(turn.record)
                turns.append(TurnRecord(index=len(turns), text=source_record.pop("text", turn.text),
                                        answer=turn.text, tool_calls=[], tool_errors=0, malformed=turn.malformed,
                                        skipped_calls=len(turn.calls), features={}, reward=0.0,
                                        source=source_record))
                raise
            timings["env"] += time.perf_counter() - t0
            call_records, call_dicts, new = [], [], []
            for i, res in zip(step.ran, step.results):
                c = turn.calls[i]
                call_records.append(CallRecord(c.name, c.arguments, res.error,
                                               schema_problems(schemas.get(c.name), c.arguments)))
                call_dicts.append(res.to_dict())
                new.append(tool_message(c.id, c.name, res.content))
            source_record = dict(turn.record)
            record = TurnRecord(index=len(turns), text=source_record.pop("text", turn.text), answer=turn.text,
                                tool_calls=call_dicts, tool_errors=sum(c.error for c in call_records) + turn.malformed,
                                malformed=turn.malformed, skipped_calls=len(turn.calls) - len(step.ran),
                                features={}, reward=0.0, source=source_record)
            turns.append(record)
            messages.append(source.shown(turn, step.ran))
            before_user = last_user
            first_customer_call = len(customer_calls)
            termination = await answer(turn, step, record, new)
            # the turn's features once it was answered: its calls, and what the customer did in answer to it
            user_calls = [CallRecord(c["name"], c["arguments"], c["error"])
                          for c in customer_calls[first_customer_call:]]
            after = await probe()
            record.features = scorer.features(TurnInput(calls=call_records, malformed_calls=turn.malformed,
                                                        last_user_message=before_user, user_calls=user_calls,
                                                        probes=after, probes_before=probes_now))
            record.reward = turn_reward(record.features)
            probes_now = after
            if termination:
                # the conversation's last messages (the customer's last reply, the last results) are in no
                # prompt of the policy, but the evaluation reads them (a judge reads the whole conversation)
                last = new
                break
            ending = source.observe(messages, new, record)
            messages.extend(new)
            if ending:
                termination = ending
    except InfrastructureFailure as e:
        termination, infra = base.INFRASTRUCTURE_ERROR, e
    finally:
        source.finish(messages)

    outcome: Dict[str, Any] = {}
    if infra is None:
        # a judge's requests (with their retries) run inside the evaluation: its limit grows by what they may take
        eval_calls = calls.longer(getattr(judge, "budget_seconds", lambda: 0.0)())
        conversation = messages + last
        try:
            res = await (eval_calls("evaluate", evaluate, termination, conversation) if evaluate is not None else
                         eval_calls("evaluate", episode.evaluate, termination, judge, conversation))
            outcome = res if isinstance(res, dict) else res.to_dict()
        except InfrastructureFailure as e:
            termination, infra = base.INFRASTRUCTURE_ERROR, e
    if infra is not None:
        outcome = {"reward": 0.0, "success": False, "note": f"excluded: {infra}"}
    r = outcome.get("reward")
    reward = float(r) if infra is None and isinstance(r, (int, float)) and not math.isnan(r) else 0.0
    timings["total"] = time.perf_counter() - t_start
    task_id = task_id if task_id is not None else str(episode.task.id)
    return Conversation(task_id=task_id, turns=turns, messages=messages, termination=termination,
                        steps=ladder.steps, errors=ladder.errors, outcome=outcome, reward=reward, infra=infra,
                        policy_error=policy_error, customer_calls=customer_calls, timings=timings)
