"""One eval episode over the chat API: a served policy as the policy side of the one episode loop.

The conversation (greeting, customer, the domain's per-message rules, the run rules' endings) is run by
:func:`openrlhf_mtgrpo.rollout.loop.run_conversation`, the same loop training uses; :class:`ChatTurnSource`
asks the served policy for each message.  The episode's end is classified by :mod:`.outcomes` (scored /
infra / unscored).

How each policy reply goes back into the conversation (:func:`history_message`), so
that the policy is conditioned at eval as in training, where the sequence holds the
model's generated text as is:

* reasoning (vLLM's ``reasoning_content``) is sent back as ``reasoning_content``: a
  prefix-preserving training template keeps it in the prompt, as the training rollout
  does; a stock template drops it again;
* the content of a reply with tool calls is sent without trailing whitespace (only
  whitespace: ``""``).  With thinking on, vLLM's reasoning parser returns the
  ``"\n\n"`` between ``</think>`` and ``<tool_call>`` as content; Qwen3's templates put
  a ``"\n"`` before the first call whenever the content is non-empty, so the raw
  content would render an extra ``"\n"`` before every earlier call, tokens the
  model never generated.  Stripped, the template renders what training's sequence
  holds (``</think>\n\n<tool_call>``; ``text\n<tool_call>`` after text);
* a call whose arguments are not a JSON object is never sent back: the benchmarks'
  runs fail at such a message, and so does the episode here (``agent_error``,
  scored 0; :meth:`Episode.assistant_message`); the episode's log keeps its text.  A call sent with
  empty arguments (read as no arguments) goes back as ``"{}"``: vLLM json-loads the
  arguments of every call in the history and would refuse the empty text;
* hermes (JSON) arguments are re-serialised by the server's template (``tojson``) at
  eval, while training's sequence keeps the model's own JSON text: an earlier call
  the model wrote with other whitespace or escapes is rendered back in ``tojson``'s
  form (the same keys and values).

A context overflow on an episode's first request (nothing of the policy's own in
the prompt yet) is not the policy's failure: the served context cannot hold the
first prompt plus ``--max-tokens``; it is infrastructure and a setup error
(:func:`.outcomes.is_setup_error`), as a first prompt over training's length budget
is a configuration error there (``PromptTooLong``).
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.envs import base
from openrlhf_mtgrpo.evaluation.judge import JudgeFailure, grading_record  # noqa: F401 (JudgeFailure: public here)
from openrlhf_mtgrpo.evaluation.outcomes import (CONTEXT_OVERFLOW_KIND, DOMAIN, INFRA, JUDGE, POLICY_ENDPOINT, SCORED,
                                                 UNSCORED, USER_SIMULATOR, InfraFailure)
from openrlhf_mtgrpo.evaluation.policy_client import (PolicyClient, PolicyContextOverflow, PolicyEndpointFailure,
                                                      PolicyReply, ToolCall)
from openrlhf_mtgrpo.evaluation.transcript import RecordedCustomer, Transcript
from openrlhf_mtgrpo.rewards.sets import new_scorer
from openrlhf_mtgrpo.rollout.domain_calls import DomainCalls
from openrlhf_mtgrpo.rollout.episode import agent_prompt_of, prompt_sources
from openrlhf_mtgrpo.rollout.failures import DomainTimeout
from openrlhf_mtgrpo.rollout.loop import (InfrastructureFailure, NoTurn, PolicyCall, PolicyTurn, TurnRecord,
                                          run_conversation)


def history_arguments(tc: ToolCall) -> str:
    """The arguments of ``tc`` as the history records them: its own text, ``"{}"`` for empty text (read as no
    arguments; the server json-loads history arguments and would refuse the request).  A call whose arguments
    are not an object keeps its text as written: its message ends the episode, so it is never sent back, only
    logged."""
    return tc.raw_arguments if tc.arguments is None or tc.raw_arguments.strip() else "{}"


def history_message(reply: PolicyReply, shown: List[ToolCall]) -> Dict[str, Any]:
    """The assistant message of ``reply`` for the policy's later requests, with the tool calls ``shown``
    (see the module docstring for why each field is what it is)."""
    msg: Dict[str, Any] = {"role": "assistant", "content": reply.text.rstrip() if shown else reply.text}
    if reply.reasoning:
        msg["reasoning_content"] = reply.reasoning
    if shown:
        msg["tool_calls"] = [{"id": tc.id, "type": "function",
                              "function": {"name": tc.name, "arguments": history_arguments(tc)}} for tc in shown]
    return msg


def first_prompt_overflow(error: PolicyContextOverflow, max_tokens: Optional[int]) -> InfraFailure:
    """The infrastructure failure of a context overflow on an episode's first request."""
    cap = "none sent" if max_tokens is None else str(max_tokens)
    return InfraFailure(POLICY_ENDPOINT, CONTEXT_OVERFLOW_KIND,
                        "the policy endpoint refused the episode's first prompt as longer than the model's context, "
                        "before the policy had written anything (not the policy's failure): the served context "
                        f"must hold the first prompt and a reply (cap --max-tokens ({cap}), shrunk to what is left "
                        f"where the server says how long the prompt is); serve the model with a larger "
                        f"--max-model-len. {error}", 400, 1)


#: the rollout log's line format (``rollout/executor.py`` ``LOG_SCHEMA``; ``irc/logs.py`` reads it): eval's lines
#: are written in it too, with the fields IRC reads (domain, component set and components, calibration)
LOG_SCHEMA = 2


class ChatTurnSource:
    """A served policy (OpenAI-compatible chat endpoint with tool calling) as the loop's policy side."""

    def __init__(self, policy: PolicyClient, schemas: List[Dict[str, Any]], tag: str,
                 transcript: Optional[Transcript] = None):
        self.policy, self.schemas, self.tag = policy, schemas, tag
        self.transcript = transcript
        self.messages: List[Dict[str, Any]] = []
        self.replies = 0
        self._reply: Optional[PolicyReply] = None
        self._replied_at = 0.0
        self._valid: List[ToolCall] = []

    def start(self, messages: List[Dict[str, Any]]) -> None:
        self.messages = messages  # the loop's list: it grows as the conversation does

    async def next(self) -> PolicyTurn:
        try:
            reply = await self.policy.reply(self.messages, self.schemas, self.tag)
        except PolicyContextOverflow as e:
            if not self.replies:
                raise PolicyEndpointFailure(first_prompt_overflow(e, self.policy.settings.max_tokens)) from None
            raise NoTurn(base.CONTEXT_OVERFLOW, str(e)) from None
        self.replies += 1
        self._reply = reply
        self._replied_at = time.time()
        self._valid = [tc for tc in reply.tool_calls if tc.arguments is not None]
        cut = ""
        if reply.finish_reason == "length":
            # the reply hit the per-call cap (--max-tokens), or, near the context's end, what was left of it
            # (the training rollout's length_budget)
            shrunk = reply.max_tokens is not None and reply.max_tokens != self.policy.settings.max_tokens
            cut = base.LENGTH_BUDGET if shrunk else base.TURN_TOO_LONG
        return PolicyTurn(text=reply.text, calls=[PolicyCall(tc.id, tc.name, tc.arguments) for tc in self._valid],
                          malformed=len(reply.tool_calls) - len(self._valid),
                          first_call_malformed=bool(reply.tool_calls) and reply.tool_calls[0].arguments is None,
                          cut=cut, record={"finish_reason": reply.finish_reason, "max_tokens": reply.max_tokens,
                                           "reasoning": reply.reasoning})

    def shown(self, turn: PolicyTurn, ran) -> Dict[str, Any]:
        """The history keeps the calls the domain ran (tau-bench: only the first); a message whose calls did
        not run ends the episode and is logged with its calls as written."""
        if self.transcript is not None:
            self.transcript.agent(turn, ran, self._replied_at)
        shown = [self._valid[i] for i in ran] or list(self._reply.tool_calls)
        return history_message(self._reply, shown)

    def observe(self, messages, new, record: TurnRecord) -> str:
        return ""

    def finish(self, messages) -> None:
        pass


def infra_failure(e: InfrastructureFailure) -> InfraFailure:
    """The eval record's failure of an infrastructure exception."""
    if isinstance(e, PolicyEndpointFailure):
        return e.failure
    if isinstance(e, JudgeFailure):
        return InfraFailure(JUDGE, e.cause or "error", str(e), e.status, e.attempts)
    if isinstance(e, DomainTimeout):
        return InfraFailure(DOMAIN, e.cause, str(e))
    return InfraFailure(USER_SIMULATOR, e.cause or "error", str(e), e.status, e.attempts)


async def run_chat_episode(env: base.Domain, task: Any, policy: PolicyClient, user, calibration, trial: int,
                           judge=None, rules: Optional[base.RunRules] = None,
                           calls: Optional[DomainCalls] = None) -> Dict[str, Any]:
    """Run (task, trial) to its end; the episode record (``status``, ``success``, ``termination``, ``infra``, ...).

    rules: the run rules (default: the domain's own, the benchmark's); calls: how the domain is called (off the
    event loop, under a time limit), as in training."""
    t0 = time.perf_counter()
    rules = rules or env.run_rules
    calls = calls or DomainCalls()
    schemas = env.tool_schemas()
    transcript = Transcript(rules.agent_greeting)
    source = ChatTurnSource(policy, schemas, f"{task.id}:{trial}", transcript)
    customer = RecordedCustomer(user, transcript) if user is not None else None
    episode: Dict[str, Any] = {}

    def reset():
        episode["ep"] = env.reset(task)
        return episode["ep"]

    def evaluate(termination: str, messages: List[Dict[str, Any]]):
        # runs off the event loop like every domain call (DomainCalls); a judge's failure is a JudgeFailure
        return episode["ep"].evaluate(termination, judge, messages)

    conv = await run_conversation(
        reset, source, customer, rules, agent_prompt_of(env, task).text, schemas={s["function"]["name"]: s for s in schemas},
        scorer=new_scorer(calibration.component_set, env.tool_kinds, task),
        turn_reward=calibration.turn_reward, judge=judge, evaluate=evaluate, calls=calls, task_id=str(task.id))
    infra = infra_failure(conv.infra) if conv.infra is not None else None
    outcome = conv.outcome
    status, unscored_reason = (INFRA, "") if infra is not None else (SCORED, "")
    if infra is None and isinstance(outcome.get("reward"), float) and math.isnan(outcome["reward"]):
        status, unscored_reason = UNSCORED, outcome.get("note") or "reward not final"
    reward = float(outcome.get("reward") or 0.0) if status == SCORED else 0.0
    if infra is not None:
        outcome = {"reward": 0.0, "success": False}
    ended = time.time()
    turns = [t.to_dict() for t in conv.turns]
    config = getattr(user, "config", None)
    return {"task_id": task.id, "trial": trial, "domain": env.name, "version": env.version,
            "benchmark": dict(env.identity), "status": status,
            "success": status == SCORED and bool(outcome.get("success")), "reward": reward,
            "termination": conv.termination, "steps": conv.steps, "errors": conv.errors,
            "policy_error": conv.policy_error, "infra": infra.to_dict() if infra else None,
            # as the training rollout log (rollout/executor.py): IRC reads an eval log of any domain by these
            "infra_failed": status == INFRA, "log_schema": LOG_SCHEMA,
            "component_set": calibration.component_set, "components": list(calibration.components),
            "calibration": calibration.name, "calibration_sha256": calibration.sha256,
            "calibration_path": calibration.path,
            "user_model": getattr(config, "model", None),
            "user_temperature": (config.effective_temperature(env.customer_prompt)
                                 if config is not None and env.customer_prompt is not None else None),
            "unscored_reason": unscored_reason, "outcome": outcome, "messages": conv.messages,
            "turns": turns, "customer_calls": conv.customer_calls,
            "transcript": transcript.entries(turns, conv.customer_calls, ended),
            "started": transcript.started, "ended": ended,
            "run_rules": rules.to_dict(), "prompts": prompt_sources(env),
            "nl_grading": grading_record(env, task, judge),
            "judge_calls": int((outcome.get("judge_calls") or {}).get("calls", 0)),
            "policy_calls": policy.calls, "user_calls": getattr(user, "calls", 0), "seconds": time.perf_counter() - t0}
