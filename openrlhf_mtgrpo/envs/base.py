"""The domain interface: what a tool environment gives the rollout, eval, the rewards and IRC.

A *domain* is a tool environment with tasks (the airline of tau-bench, tau2's retail, a user's own
back office).  One object per (domain, version) describes it (:class:`Domain`); ``reset(task)`` hands
out an :class:`Episode`, which applies one assistant message at a time by the domain's rules and
scores the finished conversation.  Everything above a domain (the episode loop, the reward
components, IRC, eval) talks to it only through these names, never by the domain's name.

The rollout owns the text: a domain never sees the model's raw output, only its parsed tool calls and
the message's text without markup.  The episode reports what happened (:class:`AssistantTurn`, one
:class:`ToolResult` per call); per-turn rewards are computed above it from those events, so IRC can
re-weight them.

Stdlib only: imported by the CLI and the argparse hook.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

#: Tool kinds (tau2's ``ToolType``): what a call may do to the state.
READ, WRITE, GENERIC, THINK = "read", "write", "generic", "think"
TOOL_KINDS = (READ, WRITE, GENERIC, THINK)


@dataclass(frozen=True)
class ToolKinds:
    """What each tool of a domain is, for the reward components.

    kinds: tool name -> one of :data:`TOOL_KINDS`; write_targets: write tool -> the argument names that
    say what it changes (a soft match of a write must name the gold target); transfer_tool: the hand-off
    tool (to a human agent), if the domain has one; customer: the kinds of the customer's own tools, in
    dual-control domains (tau2's telecom), else None; dispatch: tools that run another tool named by one of
    their arguments (tau2's banking_knowledge: ``call_discoverable_agent_tool(agent_tool_name=..., arguments=...)``
    runs a *discoverable* tool that is in no schema): wrapper -> (that argument's name, the kinds of the tools
    it can run), so that a call is what the tool it runs is (:meth:`call_kind`)."""

    kinds: Mapping[str, str]
    write_targets: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    transfer_tool: Optional[str] = None
    customer: Optional["ToolKinds"] = None
    dispatch: Mapping[str, Tuple[str, Mapping[str, str]]] = field(default_factory=dict)

    def __post_init__(self):
        bad = {n: k for n, k in self.kinds.items() if k not in TOOL_KINDS}
        bad.update({f"{w} -> {n}": k for w, (_, inner) in self.dispatch.items() for n, k in inner.items()
                    if k not in TOOL_KINDS})
        if bad:
            raise ValueError(f"tool kinds must be one of {', '.join(TOOL_KINDS)}; got {bad}")
        unknown = sorted(set(self.write_targets) - set(self.kinds))
        if unknown:
            raise ValueError(f"write_targets name tools the domain does not have: {unknown}")
        if self.transfer_tool is not None and self.transfer_tool not in self.kinds:
            raise ValueError(f"transfer tool {self.transfer_tool!r} is not one of the domain's tools")
        stray = sorted(set(self.dispatch) - set(self.kinds))
        if stray:
            raise ValueError(f"dispatch names tools the domain does not have: {stray}")

    @property
    def writes(self) -> frozenset:
        return frozenset(n for n, k in self.kinds.items() if k == WRITE)

    def kind(self, name: str) -> Optional[str]:
        return self.kinds.get(name)

    def call_kind(self, name: str, arguments: Any) -> Optional[str]:
        """The kind of one call: for a dispatching tool (:attr:`dispatch`) the kind of the tool its arguments
        name, where it is one the wrapper can run; else the tool's own kind (None for an unknown tool)."""
        d = self.dispatch.get(name)
        if d is not None and isinstance(arguments, Mapping):
            inner = d[1].get(arguments.get(d[0])) if isinstance(arguments.get(d[0]), str) else None
            if inner is not None:
                return inner
        return self.kinds.get(name)


@dataclass(frozen=True)
class GoldAction:
    """One action of a task's gold trajectory."""

    name: str
    arguments: Dict[str, Any]
    requestor: str = "assistant"  # "assistant" (the agent) or "user" (the customer, in dual-control domains)
    compare_args: Optional[Tuple[str, ...]] = None  # only these arguments count when matching (tau2)


@dataclass
class ToolResult:
    """One tool call as the environment answered it."""

    content: str  # the observation the caller sees ("Error: ..." for a refused call, as the benchmarks write it)
    error: bool
    name: str
    arguments: Any
    #: set where the benchmark's run fails at this call instead of returning an observation (the episode
    #: must end, reward 0; e.g. tau-bench's fourth ``send_certificate`` of an episode)
    run_failure: Optional[str] = None
    requestor: str = "assistant"

    def to_dict(self) -> Dict[str, Any]:
        out = {"name": self.name, "arguments": self.arguments, "content": self.content, "error": self.error}
        if self.run_failure is not None:
            out["run_failure"] = self.run_failure
        if self.requestor != "assistant":
            out["requestor"] = self.requestor
        return out


@dataclass
class AssistantTurn:
    """What the domain did with one assistant message (see :meth:`Episode.assistant_message`)."""

    results: List[ToolResult]  # one per call that ran, in order
    ran: List[int]  # indices (into the message's calls) of the calls that ran
    to_user: bool  # the message goes to the customer (it has no tool calls)
    agent_stop: bool  # the benchmark ends the episode here (a terminating tool: tau1's transfer, a solo "done")
    agent_error: bool = False  # the benchmark's run ends here as a failure of the agent, reward 0


class DataNotFound(FileNotFoundError):
    """A domain's data is not on this machine, or not the verified files (the message names the command that
    gets it)."""


class VersionMissing(DataNotFound):
    """No place a domain looks in has the version's data (commands that try several versions go on to the next)."""


class RequirementMissing(DataNotFound):
    """What a domain version needs besides its data is not installed in this interpreter (its benchmark's own code
    in another release, or under another Python); the message names how to get it.  Like missing data, it is no
    fault of the plugin."""


# -- how a conversation ends ----------------------------------------------------------------------------------

#: Endings (the ``termination`` of an episode).  The benchmark's own names where it has one (tau2's
#: ``TerminationReason``); the rest are ours.
USER_STOP = "user_stop"  # the customer ended it (###STOP### and the other stop signals)
AGENT_STOP = "agent_stop"  # a terminating tool (tau1's transfer_to_human_agents) or a solo agent's stop
MAX_STEPS = "max_steps"  # the run's budget (tau2: orchestrator steps; tau1: agent actions)
TOO_MANY_ERRORS = "too_many_errors"  # tau2: the run's limit of failed tool calls
AGENT_ERROR = "agent_error"  # a message the benchmark's run fails at (empty, arguments that are not an object)
LENGTH_BUDGET = "length_budget"  # training: the episode's token budget ran out (eval: the context's end)
TURN_TOO_LONG = "turn_too_long"  # a reply hit the per-call token cap
CONTEXT_OVERFLOW = "context_overflow"  # eval: the policy endpoint refused the conversation as too long
INFRASTRUCTURE_ERROR = "infrastructure_error"  # the customer simulator or an endpoint failed: not scored

#: Endings the benchmark scores (every other ending scores 0, as tau2's evaluator does).
PROPER_ENDINGS = (USER_STOP, AGENT_STOP)
#: Endings the run rules produce.
RULE_ENDINGS = (MAX_STEPS, TOO_MANY_ERRORS)
#: Early endings that are the policy's doing (scored 0).
POLICY_FAILURES = (AGENT_ERROR, LENGTH_BUDGET, TURN_TOO_LONG, CONTEXT_OVERFLOW, MAX_STEPS, TOO_MANY_ERRORS)

#: Units of a run's budget.
ORCHESTRATOR_STEPS = "orchestrator_steps"  # tau2: each agent message, customer message and tool response
AGENT_ACTIONS = "agent_actions"  # tau-bench: each agent message (a tool call or a reply)


@dataclass(frozen=True)
class RunRules:
    """When the benchmark's own run ends a conversation, as data the episode loop follows.

    budget: the run's length limit in ``unit``; max_errors: failed tool calls (the customer's included,
    where the customer has tools) after which the run ends as ``too_many_errors`` (None: no such limit);
    stop_signals: what in a customer message ends the conversation as ``user_stop``; opening_can_stop:
    whether the customer's first message can end it (tau-bench never checks it); agent_greeting: the
    agent's first message, which the policy sees before the customer's first message (None: the policy's
    conversation starts with the customer's message).  ``source`` says where the values come from;
    ``benchmark_defaults`` is False when a value was set otherwise (:meth:`override`), and results run so
    are not comparable with the benchmark's."""

    budget: int
    unit: str
    max_errors: Optional[int]
    stop_signals: Tuple[str, ...]
    opening_can_stop: bool = True
    agent_greeting: Optional[str] = None
    source: str = ""
    benchmark_defaults: bool = True
    #: what the overrides changed, for people: {"budget": "200 -> 60"}
    changed: Tuple[Tuple[str, str], ...] = ()

    def __post_init__(self):
        if self.unit not in (ORCHESTRATOR_STEPS, AGENT_ACTIONS):
            raise ValueError(f"unknown budget unit {self.unit!r}")
        if not isinstance(self.budget, int) or self.budget < 1:
            raise ValueError(f"the run's budget must be a positive number of {self.unit}, got {self.budget!r}")
        if self.max_errors is not None and (not isinstance(self.max_errors, int) or self.max_errors < 1):
            raise ValueError(f"max_errors must be a positive integer or None, got {self.max_errors!r}")

    def override(self, budget: Optional[int] = None, max_errors: Any = "keep") -> "RunRules":
        """These rules with another budget and/or error limit (``max_errors=None``: no limit); unchanged
        values keep the benchmark's defaults."""
        changed = dict(self.changed)
        new = {}
        if budget is not None and budget != self.budget:
            new["budget"] = int(budget)
            changed["budget"] = f"{self.budget} -> {budget} {self.unit}"
        if max_errors != "keep" and max_errors != self.max_errors:
            new["max_errors"] = max_errors
            changed["max_errors"] = f"{self.max_errors} -> {max_errors}"
        if not new:
            return self
        return replace(self, benchmark_defaults=False, changed=tuple(sorted(changed.items())), **new)

    def to_dict(self) -> Dict[str, Any]:
        return {"budget": self.budget, "unit": self.unit, "max_errors": self.max_errors,
                "stop_signals": list(self.stop_signals), "opening_can_stop": self.opening_can_stop,
                "agent_greeting": self.agent_greeting, "source": self.source,
                "benchmark_defaults": self.benchmark_defaults, "changed": dict(self.changed)}

    def describe(self) -> str:
        """One line for people: the limits, and whether they are the benchmark's own."""
        errs = "no error limit" if self.max_errors is None else f"{self.max_errors} failed tool calls"
        unit = "steps" if self.unit == ORCHESTRATOR_STEPS else "agent actions"
        own = "the benchmark's defaults" if self.benchmark_defaults else \
            "NOT the benchmark's defaults (" + "; ".join(f"{k} {v}" for k, v in self.changed) + ")"
        return f"{self.budget} {unit}, {errs}: {own}"


# -- how the agent and the customer are prompted ---------------------------------------------------------------

#: ``source`` of a prompt read from the benchmark's own files, and of our own words (the fallback).
BENCHMARK, OWN_WORDS = "benchmark", "own words"


@dataclass(frozen=True)
class PromptInfo:
    """Where a prompt's text came from: recorded with every rollout and eval result.

    source: :data:`BENCHMARK` or :data:`OWN_WORDS` (or another label a domain chooses); where: the
    files or package it was read from, for people; sha256: of the prompt's text around the task's own
    parts (the agent prompt's full text; the customer prompt's text around the scenario), so two runs
    with the same sha256 prompted alike; files: file name -> sha256 of each file read; note: the flag
    printed with every number when the prompt is not the benchmark's ("customer: own words, not
    comparable"); reason: why the benchmark's text was not used."""

    source: str
    sha256: str
    where: str = ""
    files: Tuple[Tuple[str, str], ...] = ()
    note: str = ""
    reason: str = ""

    @property
    def comparable(self) -> bool:
        return self.source == BENCHMARK

    def to_dict(self) -> Dict[str, Any]:
        d = {"source": self.source, "sha256": self.sha256, "where": self.where, "files": dict(self.files)}
        if self.note:
            d["note"] = self.note
        if self.reason:
            d["reason"] = self.reason
        return d


@dataclass(frozen=True)
class AgentPrompt:
    """The policy's system message (the domain policy inside the benchmark agent's instructions)."""

    text: str
    info: PromptInfo


@dataclass(frozen=True)
class CustomerPrompt:
    """How the simulated customer is prompted: its system prompt is ``prefix + scenario + suffix``;
    ``opening`` is the first message of its own conversation, in the user role (the agent's greeting);
    ``temperature`` the benchmark's default for the customer's model (None: none sent, the endpoint's
    own, as tau-bench does)."""

    prefix: str
    suffix: str
    opening: str
    info: PromptInfo
    temperature: Optional[float] = 0.0

    def system_prompt(self, scenario: str) -> str:
        return f"{self.prefix}{scenario}{self.suffix}"


# -- what a domain gives ---------------------------------------------------------------------------------------


@runtime_checkable
class Outcome(Protocol):
    """A finished episode's benchmark reward with its breakdown."""

    reward: float
    note: str

    @property
    def success(self) -> bool: ...

    def to_dict(self) -> Dict[str, Any]: ...


@runtime_checkable
class Episode(Protocol):
    """One conversation's environment state.  ``assistant_message`` is the one place where the domain's
    rules for an agent message live; ``evaluate`` scores the conversation as the benchmark does."""

    task: Any

    def assistant_message(self, text: str, calls: Sequence[Tuple[str, Any]], malformed: int = 0,
                          first_call_malformed: bool = False) -> AssistantTurn: ...

    def evaluate(self, termination: str, judge: Any = None,
                 messages: Optional[List[Dict[str, Any]]] = None) -> Outcome: ...


@runtime_checkable
class Domain(Protocol):
    """One version of one tool environment, loaded (see docs/domains.md)."""

    name: str  # the registered domain name ("airline", "retail", "my_crm")
    version: str  # the version ("tau2", "retail-2025", ...)
    identity: Dict[str, str]  # version and file hashes: recorded with every rollout and result
    schema_source: Dict[str, Any]  # where the agent's tool schemas came from ({"source": "benchmark", ...})
    run_rules: RunRules
    tool_kinds: ToolKinds
    agent_prompt: AgentPrompt  # the policy's system message, and where it came from
    customer_prompt: Optional[CustomerPrompt]  # how the simulated customer is prompted (None: no customer, solo)

    @property
    def policy(self) -> str: ...  # the domain policy alone (without the agent's instructions)

    def customer_tool_schemas(self) -> Optional[List[Dict[str, Any]]]: ...  # None: the customer only talks

    def tool_schemas(self) -> List[Dict[str, Any]]: ...

    def task(self, task_id: Any) -> Any: ...

    def tasks(self, split: str = "base") -> List[Any]: ...

    def reset(self, task: Any) -> Episode: ...


# -- optional: results in the benchmark's own format -----------------------------------------------------------


@dataclass
class BenchmarkExport:
    """What :meth:`BenchmarkResults.write_benchmark_results` did with an eval run's episodes.

    written: whether the file(s) in ``paths`` now hold every scored episode of the run (False: refused,
    ``problems`` says why, and no file of an earlier write is left behind); included: the episodes in the
    file; excluded_infra: episodes left out because the infrastructure failed (never scored); unscored:
    episodes without a final reward (the file is refused while there are any: it would be silently partial);
    missing: requested (task, trial) pairs the file lacks (infrastructure failures, not run yet);
    complete: every requested (task, trial) is in the file; problems: what makes the file not what the
    benchmark's own tools would accept or agree with (refusals, re-grading disagreements), for people;
    notes: other lines to print.  ``format`` names the format ("tau2 Results")."""

    format: str
    paths: List[str] = field(default_factory=list)
    written: bool = False
    included: int = 0
    excluded_infra: int = 0
    unscored: int = 0
    missing: int = 0
    complete: bool = False
    problems: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {"format": self.format, "paths": list(self.paths), "written": self.written, "included": self.included,
                "excluded_infra": self.excluded_infra, "unscored": self.unscored, "missing": self.missing,
                "complete": self.complete, "problems": list(self.problems), "notes": list(self.notes)}


@dataclass
class SubmissionDraft:
    """What :meth:`BenchmarkResults.write_submission_draft` wrote: ``paths`` (the draft and the trajectory
    files next to it; empty when refused), ``placeholders`` (fields the user must fill in, by name), ``refused``
    (why nothing was written, else "") and ``notes`` (lines to print)."""

    paths: List[str] = field(default_factory=list)
    placeholders: List[str] = field(default_factory=list)
    refused: str = ""
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {"paths": list(self.paths), "placeholders": list(self.placeholders), "refused": self.refused,
                "notes": list(self.notes)}


@runtime_checkable
class BenchmarkResults(Protocol):
    """Optional for a domain: results in its benchmark's own format, for the benchmark's own tools (its viewer,
    its grader, its leaderboard).  ``mtgrpo eval`` calls it after every run when the domain has it, resumed
    runs included, so the file always holds every scored episode so far (docs/domains.md, section 8: "Results
    in the benchmark's own format").

    ``episodes``: the latest eval record (a line of ``rollouts-eval.jsonl``) of every requested (task, trial)
    that ran, with ``status`` (scored / infra / unscored), ``reward``, ``termination``, ``transcript`` (the
    whole conversation as it happened, both sides, in order, with times) and ``started``; ``run``: the run's
    settings (``identity`` as in ``run.json``, ``task_ids``, ``trials``, ``split``, ``policy``, ``user`` (None
    without a customer), ``run_rules``, ``prompts``, ``package``, ``engine``, ``pass_k``, ``training``: what
    the user said about how the policy was trained, or None)."""

    def write_benchmark_results(self, out_dir: str, episodes: Sequence[Mapping[str, Any]],
                                run: Mapping[str, Any]) -> BenchmarkExport: ...

    def write_submission_draft(self, submission_dir: str, export: BenchmarkExport,
                               run: Mapping[str, Any]) -> SubmissionDraft: ...
