"""One training episode, token-exact: the rollout engine as the policy side of the one episode loop.

Framework-independent: the policy is any object with ``async generate(token_ids, max_tokens) ->
Generation``; the OpenRLHF executor (:mod:`.executor`) adapts vLLM's engine to it.  The conversation
itself (greeting, customer, the domain's rules, the run rules' endings) is run by
:func:`openrlhf_mtgrpo.rollout.loop.run_conversation`; :class:`TokenTurnSource` renders the sequence
(append-only: prompt, each turn's generated ids, each observation; see :mod:`.chat`) and cuts a turn at
the episode's length budget.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Protocol

from openrlhf_mtgrpo.envs import base
from openrlhf_mtgrpo.rewards.calibration import Calibration
from openrlhf_mtgrpo.rewards.sets import new_scorer
from openrlhf_mtgrpo.rollout.chat import ChatRenderer
from openrlhf_mtgrpo.rollout.domain_calls import DomainCalls
from openrlhf_mtgrpo.rollout.loop import Customer, NoTurn, PolicyCall, PolicyTurn, TurnRecord, run_conversation
from openrlhf_mtgrpo.rollout.tool_parsers import ParsedMessage, ToolCallParser, split_reasoning


class PromptTooLong(ValueError):
    """The episode's first prompt does not fit the length budget: a configuration error, not a policy failure."""


@dataclass
class Generation:
    token_ids: List[int]
    finish_reason: str = "stop"
    logprobs: Optional[List[float]] = None


class Policy(Protocol):
    async def generate(self, token_ids: List[int], max_tokens: int) -> Generation: ...


@dataclass
class EpisodeResult:
    task_id: str
    version: str
    tokens: List[int]
    action_ranges: List[List[int]]
    logprobs: Optional[List[float]]
    turns: List[TurnRecord]
    messages: List[Dict[str, Any]]
    termination: str
    outcome: Dict[str, Any]
    reward: float
    infra_failed: bool = False
    infra_error: str = ""
    infra_cause: str = ""  # unreachable, timeout, server_error, bad_reply, context_overflow, rejected
    truncated: bool = False
    timings: Dict[str, float] = field(default_factory=dict)
    benchmark: Dict[str, str] = field(default_factory=dict)  # version, tasks_sha256, db_sha256
    tool_schemas: Dict[str, Any] = field(default_factory=dict)  # where the schemas the policy saw came from
    steps: int = 0  # the run's step count at the end, in the run rules' unit
    errors: int = 0  # failed tool calls the run rules counted
    run_rules: Dict[str, Any] = field(default_factory=dict)  # the rules the episode ran under
    prompts: Dict[str, Any] = field(default_factory=dict)  # where the agent's and the customer's prompts came from
    domain: str = ""
    customer_calls: List[Dict[str, Any]] = field(default_factory=list)  # the customer's own tool calls

    def turn_rewards(self) -> List[float]:
        return [t.reward for t in self.turns]

    @property
    def template_drift_turns(self) -> int:
        return sum(bool(t.source.get("template_drift")) for t in self.turns)

    def log_record(self, **extra) -> Dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("tokens", "logprobs", "turns")}
        d["turns"] = [t.to_dict() for t in self.turns]
        d["num_tokens"] = len(self.tokens)
        d["success"] = bool(self.outcome.get("success", False)) and not self.infra_failed
        d.update(extra)
        return d


def parse_assistant(text: str, parser: ToolCallParser, renderer: ChatRenderer) -> ParsedMessage:
    """Reasoning split off first (templates that think), then the tool calls of the rest."""
    reasoning, rest = (split_reasoning(text, renderer.enable_thinking, prefill=renderer.prefill) if renderer.thinks
                       else ("", text))
    parsed = parser.parse(rest)
    parsed.reasoning = reasoning
    return parsed


class TokenTurnSource:
    """The rollout engine as the loop's policy side: one append-only token sequence per episode."""

    def __init__(self, policy: Policy, renderer: ChatRenderer, parser: ToolCallParser, max_length: int,
                 want_logprobs: bool = False, what: str = "the episode"):
        self.policy, self.renderer, self.parser = policy, renderer, parser
        self.max_length = max_length
        self.what = what
        self.tokens: List[int] = []
        self.logprobs: Optional[List[float]] = [] if want_logprobs else None
        self.ranges: List[List[int]] = []
        self.seen_text = ""
        self.truncated = False
        self.seconds = {"generate": 0.0, "template": 0.0}
        self._assistant: Dict[str, Any] = {}

    def _pad(self, n: int) -> None:
        if self.logprobs is not None:
            self.logprobs.extend([0.0] * n)

    def start(self, messages: List[Dict[str, Any]]) -> None:
        t0 = time.perf_counter()
        self.seen_text, self.tokens = self.renderer.prompt(messages)
        self.seconds["template"] += time.perf_counter() - t0
        if len(self.tokens) >= self.max_length:
            raise PromptTooLong(
                f"the first prompt of {self.what} (policy, tool schemas, greeting and the customer's first "
                f"message) is {len(self.tokens)} tokens, which leaves nothing of the episode's length budget of "
                f"{self.max_length} tokens (OpenRLHF's --data.max_len): raise --data.max_len; the prompt is never "
                "truncated, since the policy would then miss part of its instructions")
        self._pad(len(self.tokens))

    async def next(self) -> PolicyTurn:
        budget = self.max_length - len(self.tokens)
        if budget <= 0:
            raise NoTurn(base.LENGTH_BUDGET, "no tokens of the episode's length budget left for another turn")
        t0 = time.perf_counter()
        gen = await self.policy.generate(list(self.tokens), budget)
        self.seconds["generate"] += time.perf_counter() - t0
        start = len(self.tokens)
        self.tokens.extend(gen.token_ids)
        if self.logprobs is not None:
            lp = list(gen.logprobs or [0.0] * len(gen.token_ids))
            self.logprobs.extend(lp + [0.0] * (len(gen.token_ids) - len(lp)))
        self.ranges.append([start, len(self.tokens)])
        full_text, content, ended = self.renderer.content_of(gen.token_ids)
        self.seen_text += full_text
        self._assistant = self.renderer.assistant_message(content)
        parsed = parse_assistant(self._assistant["content"], self.parser, self.renderer)
        cut = ""
        if gen.finish_reason == "length" or not ended:
            self.truncated = gen.finish_reason == "length"
            # the episode's length budget ran out, or the turn hit the per-call cap (max_new_tokens)
            cut = base.LENGTH_BUDGET if len(gen.token_ids) >= budget or not self.truncated else base.TURN_TOO_LONG
        calls = [PolicyCall(tc.id or f"call_{i}", tc.name, tc.arguments) for i, tc in enumerate(parsed.tool_calls)]
        return PolicyTurn(text=parsed.content, calls=calls, malformed=len(parsed.errors),
                          first_call_malformed=parsed.first_call_malformed, cut=cut,
                          record={"text": content, "span": [start, len(self.tokens)],
                                  "finish_reason": gen.finish_reason, "parse_errors": list(parsed.errors),
                                  "rejected_calls": list(parsed.rejected), "template_drift": False})

    def shown(self, turn: PolicyTurn, ran) -> Dict[str, Any]:
        return self._assistant  # the sequence holds what was generated, every call included

    def observe(self, messages: List[Dict[str, Any]], new: List[Dict[str, Any]], record: TurnRecord) -> str:
        t0 = time.perf_counter()
        delta = self.renderer.observation(self.seen_text, messages, new)
        self.seconds["template"] += time.perf_counter() - t0
        record.source["template_drift"] = delta.drift
        if len(self.tokens) + len(delta.tokens) >= self.max_length:
            return base.LENGTH_BUDGET
        self.tokens.extend(delta.tokens)
        self.seen_text += delta.text
        self._pad(len(delta.tokens))
        return ""

    def finish(self, messages: List[Dict[str, Any]]) -> None:
        if not self.tokens:  # ended before the first prompt: still hand back a (prompt-only) sequence
            pad = [] if messages[-1]["role"] == "user" else [{"role": "user", "content": ""}]
            self.seen_text, self.tokens = self.renderer.prompt(messages + pad)
            if self.logprobs is not None:
                self.logprobs = [0.0] * len(self.tokens)


async def run_episode(
    env: base.Domain,
    task: Any,
    policy: Policy,
    renderer: ChatRenderer,
    parser: ToolCallParser,
    user: Customer,
    calibration: Calibration,
    *,
    max_length: int = 32768,
    gates: Optional[Dict[str, bool]] = None,
    want_logprobs: bool = False,
    rules: Optional[base.RunRules] = None,
    calls: Optional[DomainCalls] = None,
    judge: Any = None,
) -> EpisodeResult:
    """One training episode of ``task`` in the loaded domain ``env`` (see the module docstring).

    rules: the run rules (default: the domain's own, the benchmark's); calls: how the domain is called (off the
    event loop, under a time limit; default :class:`~openrlhf_mtgrpo.rollout.domain_calls.DomainCalls`); judge:
    the run's judge for tasks whose outcome needs one (:mod:`openrlhf_mtgrpo.evaluation.judge`), passed to the
    episode's ``evaluate``; its requests are counted in ``timings`` (``judge_calls``, ``judge``: seconds)."""
    rules = rules or env.run_rules
    source = TokenTurnSource(policy, renderer, parser, max_length, want_logprobs,
                             what=f"{env.version} task {task.id}")
    conv = await run_conversation(
        functools.partial(env.reset, task), source, user, rules, agent_prompt_of(env, task).text,
        schemas={s["function"]["name"]: s for s in env.tool_schemas()},
        scorer=new_scorer(calibration.component_set, env.tool_kinds, task),
        turn_reward=lambda f: calibration.turn_reward(f, gates), judge=judge, calls=calls, task_id=str(task.id))
    timings = dict(conv.timings, **source.seconds)
    used = conv.outcome.get("judge_calls") or {}
    timings["judge_calls"] = float(used.get("calls", 0))
    timings["judge"] = float(used.get("seconds", 0.0))
    infra = conv.infra
    return EpisodeResult(task_id=task.id, version=env.version, tokens=source.tokens, action_ranges=source.ranges,
                         logprobs=source.logprobs, turns=conv.turns, messages=conv.messages,
                         termination=conv.termination, outcome=conv.outcome, reward=conv.reward,
                         infra_failed=infra is not None, infra_error=str(infra) if infra else "",
                         infra_cause=infra.cause if infra else "", truncated=source.truncated, timings=timings,
                         benchmark=dict(env.identity), tool_schemas=dict(env.schema_source), steps=conv.steps,
                         errors=conv.errors, run_rules=rules.to_dict(), prompts=prompt_sources(env),
                         domain=env.name, customer_calls=conv.customer_calls)


def agent_prompt_of(env, task) -> base.AgentPrompt:
    """The policy's system message for ``task``: the domain's, or its per-task one where it has one (tau2's solo
    agent gets the task's ticket in its system prompt)."""
    per_task = getattr(env, "agent_prompt_for", None)
    return per_task(task) if per_task is not None else env.agent_prompt


def prompt_sources(env) -> Dict[str, Any]:
    """Where the policy's and the customer's prompts came from (recorded with every rollout and result)."""
    out = {"agent": env.agent_prompt.info.to_dict()}
    if env.customer_prompt is not None:
        out["customer"] = env.customer_prompt.info.to_dict()
    return out
