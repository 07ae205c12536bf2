"""One multi-turn episode: policy <-> airline tools / simulated customer, token-exact.

Framework-independent: the policy is any object with
``async generate(token_ids, max_tokens) -> Generation``; the OpenRLHF executor
(:mod:`.executor`) adapts vLLM's engine to it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Protocol

from openrlhf_mtgrpo.envs.airline import AirlineEnv, Task
from openrlhf_mtgrpo.rewards.calibration import Calibration
from openrlhf_mtgrpo.rewards.components import CallRecord, TurnClassifier, TurnInput, schema_problems
from openrlhf_mtgrpo.rollout.chat import ChatRenderer
from openrlhf_mtgrpo.rollout.tool_parsers import ParsedMessage, ToolCallParser, split_reasoning
from openrlhf_mtgrpo.rollout.user_sim import UserSimulator, UserSimulatorError, is_stop

GREETING = "Hi! How can I help you today?"
AGENT_STOP = "###STOP###"


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
class TurnRecord:
    index: int
    span: List[int]  # [start, end) in sequence space
    text: str
    tool_calls: List[Dict[str, Any]]
    tool_errors: int
    parse_errors: List[str]
    features: Dict[str, float]
    reward: float
    finish_reason: str
    template_drift: bool = False
    skipped_calls: int = 0  # tool calls the benchmark version did not run (tau1 runs only the first)
    answer: str = ""  # what the customer and the benchmark's COMMUNICATE check saw: no reasoning, no call markup
    rejected_calls: List[str] = field(default_factory=list)  # <tool_call> blocks vLLM's parser would not read


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

    def turn_rewards(self) -> List[float]:
        return [t.reward for t in self.turns]

    def log_record(self, **extra) -> Dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("tokens", "logprobs")}
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


async def message_customer(user: UserSimulator, content: str):
    """The agent's message to the customer: (termination or "", the customer's reply or None)."""
    if AGENT_STOP in content:
        return "agent_stop", None
    reply = await user.reply(content)
    return ("user_stop" if is_stop(reply) else ""), reply


def _tool_message(call_id: str, name: str, content: str) -> Dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


async def run_episode(
    env: AirlineEnv,
    task: Task,
    policy: Policy,
    renderer: ChatRenderer,
    parser: ToolCallParser,
    user: UserSimulator,
    calibration: Calibration,
    *,
    max_turns: int = 40,
    max_length: int = 32768,
    gates: Optional[Dict[str, bool]] = None,
    want_logprobs: bool = False,
) -> EpisodeResult:
    t_start = time.perf_counter()
    timings = {"generate": 0.0, "user": 0.0, "env": 0.0, "template": 0.0}
    ep = env.reset(task)
    schemas = {s["function"]["name"]: s for s in env.tool_schemas()}
    classifier = TurnClassifier(task.actions)
    messages: List[Dict[str, Any]] = [{"role": "system", "content": env.policy},
                                      {"role": "assistant", "content": GREETING}]
    turns: List[TurnRecord] = []
    ranges: List[List[int]] = []
    termination, infra_error, infra_cause, truncated = "", "", "", False
    tokens: List[int] = []
    logprobs: Optional[List[float]] = [] if want_logprobs else None

    try:
        t0 = time.perf_counter()
        first = await user.start(GREETING)
        timings["user"] += time.perf_counter() - t0
        if is_stop(first):
            termination = "user_stop"
        messages.append({"role": "user", "content": first})
        t0 = time.perf_counter()
        seen_text, tokens = renderer.prompt(messages)
        timings["template"] += time.perf_counter() - t0
        if len(tokens) >= max_length:
            raise PromptTooLong(
                f"the first prompt of {env.version} task {task.id} (policy, tool schemas, greeting and the "
                f"customer's first message) is {len(tokens)} tokens, which leaves nothing of the episode's "
                f"length budget of {max_length} tokens (OpenRLHF's --data.max_len): raise --data.max_len; "
                "the prompt is never truncated, since the policy would then miss part of its instructions")
        if logprobs is not None:
            logprobs.extend([0.0] * len(tokens))
        last_user = first
        while not termination:
            budget = max_length - len(tokens)
            if budget <= 0:
                termination = "length_budget"
                break
            t0 = time.perf_counter()
            gen = await policy.generate(list(tokens), budget)
            timings["generate"] += time.perf_counter() - t0
            start = len(tokens)
            tokens.extend(gen.token_ids)
            if logprobs is not None:
                lp = list(gen.logprobs or [0.0] * len(gen.token_ids))
                logprobs.extend(lp + [0.0] * (len(gen.token_ids) - len(lp)))
            ranges.append([start, len(tokens)])
            full_text, content, ended = renderer.content_of(gen.token_ids)
            seen_text += full_text
            assistant = renderer.assistant_message(content)
            messages.append(assistant)
            parsed = parse_assistant(assistant["content"], parser, renderer)
            new_messages: List[Dict[str, Any]] = []
            calls: List[CallRecord] = []
            call_dicts = []
            t0 = time.perf_counter()
            step = ep.assistant_message(parsed.content, [(tc.name, tc.arguments) for tc in parsed.tool_calls],
                                        malformed=len(parsed.errors),
                                        first_call_malformed=parsed.first_call_malformed)
            for i, res in zip(step.ran, step.results):
                tc = parsed.tool_calls[i]
                calls.append(CallRecord(tc.name, tc.arguments, res.error, schema_problems(schemas.get(tc.name),
                                                                                          tc.arguments)))
                call_dicts.append({"name": tc.name, "arguments": tc.arguments, "content": res.content,
                                   "error": res.error})
                new_messages.append(_tool_message(tc.id or f"call_{i}", tc.name, res.content))
            for j, err in enumerate(parsed.errors):
                new_messages.append(_tool_message(f"call_error_{j}", "error", err))
            timings["env"] += time.perf_counter() - t0
            features = classifier.features(TurnInput(calls=calls, malformed_calls=len(parsed.errors),
                                                     last_user_message=last_user))
            record = TurnRecord(index=len(turns), span=[start, len(tokens)], text=content, tool_calls=call_dicts,
                                tool_errors=sum(c.error for c in calls) + len(parsed.errors),
                                parse_errors=list(parsed.errors), rejected_calls=list(parsed.rejected),
                                features=features,
                                reward=calibration.turn_reward(features, gates), finish_reason=gen.finish_reason,
                                skipped_calls=len(parsed.tool_calls) - len(step.ran), answer=parsed.content)
            turns.append(record)
            if gen.finish_reason == "length" or not ended:
                truncated = gen.finish_reason == "length"
                # the episode's length budget ran out, or the turn hit the per-call cap (max_new_tokens)
                termination = "length_budget" if len(gen.token_ids) >= budget or not truncated else "turn_too_long"
                break
            if step.agent_error:
                termination = "agent_error"  # the benchmark's run ends here: an empty message (tau2), a malformed call
                break
            if step.to_user:  # a message to the customer: the answer, without reasoning or markup
                t0 = time.perf_counter()
                termination, reply = await message_customer(user, parsed.content)
                timings["user"] += time.perf_counter() - t0
                if termination:
                    break
                last_user = reply
                new_messages.append({"role": "user", "content": reply})
            elif step.agent_stop:
                termination = "agent_stop"  # tau1 ends the episode at its terminating tool
                break
            if len(turns) >= max_turns:
                termination = "max_turns"
                break
            t0 = time.perf_counter()
            delta = renderer.observation(seen_text, messages, new_messages)
            timings["template"] += time.perf_counter() - t0
            record.template_drift = delta.drift
            messages.extend(new_messages)
            if len(tokens) + len(delta.tokens) >= max_length:
                termination = "length_budget"
                break
            tokens.extend(delta.tokens)
            seen_text += delta.text
            if logprobs is not None:
                logprobs.extend([0.0] * len(delta.tokens))
    except UserSimulatorError as e:
        termination, infra_error, infra_cause = "infrastructure_error", str(e), e.cause
    if not tokens:  # ended before the first generation: still hand back a (prompt-only) sequence
        seen_text, tokens = renderer.prompt(messages + ([] if messages[-1]["role"] == "user"
                                                        else [{"role": "user", "content": ""}]))
        if logprobs is not None:
            logprobs = [0.0] * len(tokens)

    infra = termination == "infrastructure_error"
    if infra:
        outcome = {"reward": 0.0, "success": False, "note": "excluded: user simulator failed"}
        reward = 0.0
    else:
        res = ep.evaluate(termination, messages=messages)
        outcome = res.to_dict()
        reward = float(res.reward) if res.reward == res.reward else 0.0
    timings["total"] = time.perf_counter() - t_start
    return EpisodeResult(task_id=task.id, version=env.version, tokens=tokens, action_ranges=ranges,
                         logprobs=logprobs, turns=turns, messages=messages, termination=termination, outcome=outcome,
                         reward=reward, infra_failed=infra, infra_error=infra_error, infra_cause=infra_cause,
                         truncated=truncated,
                         timings=timings, benchmark=dict(env.data.identity), tool_schemas=dict(env.schema_source))
