"""One eval episode over the chat API: served policy <-> airline tools / simulated customer.

The benchmark version's rules for each assistant message come from
:meth:`Episode.assistant_message` (the same code the training rollout uses); the
episode's end is classified by :mod:`.outcomes` (scored / infra / unscored).

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

import asyncio
import math
import time
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.envs.airline import AirlineEnv, Task
from openrlhf_mtgrpo.evaluation.outcomes import (CONTEXT_OVERFLOW_KIND, INFRA, JUDGE, POLICY_ENDPOINT, SCORED,
                                                 UNSCORED, USER_SIMULATOR, InfraFailure)
from openrlhf_mtgrpo.evaluation.policy_client import (PolicyClient, PolicyContextOverflow, PolicyEndpointFailure,
                                                      PolicyReply, ToolCall)
from openrlhf_mtgrpo.rewards.components import CallRecord, TurnClassifier, TurnInput, schema_problems
from openrlhf_mtgrpo.rollout.episode import GREETING, message_customer
from openrlhf_mtgrpo.rollout.user_sim import UserSimulator, UserSimulatorError, is_stop


def _tool_message(call_id: str, name: str, content: str) -> Dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


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


async def run_chat_episode(env: AirlineEnv, task: Task, policy: PolicyClient, user: UserSimulator, calibration,
                           trial: int, max_turns: int = 40, judge=None) -> Dict[str, Any]:
    """Run (task, trial) to its end; the episode record (``status``, ``success``, ``termination``, ``infra``, ...)."""
    t0 = time.perf_counter()
    ep = env.reset(task)
    schemas = env.tool_schemas()
    by_name = {s["function"]["name"]: s for s in schemas}
    classifier = TurnClassifier(task.actions)
    messages: List[Dict[str, Any]] = [{"role": "system", "content": env.policy},
                                      {"role": "assistant", "content": GREETING}]
    turns: List[Dict[str, Any]] = []
    termination, policy_error = "", ""
    infra: Optional[InfraFailure] = None
    tag = f"{task.id}:{trial}"
    try:
        first = await user.start(GREETING)
        messages.append({"role": "user", "content": first})
        last_user = first
        termination = "user_stop" if is_stop(first) else ""
        while not termination:
            try:
                reply = await policy.reply(messages, schemas, tag)
            except PolicyContextOverflow as e:
                if not turns:
                    infra = first_prompt_overflow(e, policy.settings.max_tokens)
                    break
                termination, policy_error = "context_overflow", str(e)
                break
            valid = [tc for tc in reply.tool_calls if tc.arguments is not None]
            malformed = len(reply.tool_calls) - len(valid)
            step = ep.assistant_message(reply.text, [(tc.name, tc.arguments) for tc in valid], malformed=malformed,
                                        first_call_malformed=bool(reply.tool_calls)
                                        and reply.tool_calls[0].arguments is None)
            ran = {id(valid[i]): res for i, res in zip(step.ran, step.results)}
            if env.family == "tau2":
                shown = reply.tool_calls
            else:  # tau1 keeps only the call it ran in the history (tool_calling_agent.py)
                shown = [tc for tc in valid if id(tc) in ran][:1] or reply.tool_calls[:1]
            messages.append(history_message(reply, shown))
            new: List[Dict[str, Any]] = []
            calls, call_dicts = [], []
            for tc in shown:
                res = ran.get(id(tc))
                if res is not None:
                    calls.append(CallRecord(tc.name, tc.arguments, res.error,
                                            schema_problems(by_name.get(tc.name), tc.arguments)))
                    call_dicts.append(res.to_dict())
                    new.append(_tool_message(tc.id, tc.name, res.content))
                elif tc.error:
                    new.append(_tool_message(tc.id, tc.name, f"Error: {tc.error}"))
            feats = classifier.features(TurnInput(calls, malformed, last_user))
            turns.append({"index": len(turns), "text": reply.text, "tool_calls": call_dicts, "malformed": malformed,
                          "finish_reason": reply.finish_reason, "max_tokens": reply.max_tokens,
                          "reasoning": reply.reasoning,
                          "features": feats, "reward": calibration.turn_reward(feats)})
            if reply.finish_reason == "length":
                # the reply hit the per-call cap (--max-tokens), or, near the context's end, what was left of it
                # (the training rollout's length_budget)
                shrunk = reply.max_tokens is not None and reply.max_tokens != policy.settings.max_tokens
                termination = "length_budget" if shrunk else "turn_too_long"
                break
            if step.agent_error:
                termination = "agent_error"  # the benchmark's run ends here: an empty message (tau2), a malformed call
                break
            if step.to_user:
                termination, answer = await message_customer(user, reply.text)
                if termination:
                    break
                last_user = answer
                new.append({"role": "user", "content": answer})
            elif step.agent_stop:
                termination = "agent_stop"
                break
            messages.extend(new)
            if len(turns) >= max_turns:
                termination = "max_turns"
    except UserSimulatorError as e:
        infra = InfraFailure(USER_SIMULATOR, e.cause or "error", str(e), e.status, e.attempts)
    except PolicyEndpointFailure as e:
        infra = e.failure

    outcome: Dict[str, Any] = {"reward": 0.0, "success": False}
    status, unscored_reason = INFRA, ""
    if infra is None:
        try:  # the NL judge is synchronous (one request per episode): keep it off the event loop
            res = await asyncio.to_thread(ep.evaluate, termination, judge, messages) if judge else \
                ep.evaluate(termination, messages=messages)
            outcome = res.to_dict()
            status = SCORED
            if isinstance(res.reward, float) and math.isnan(res.reward):
                status, unscored_reason = UNSCORED, res.note or "reward not final"
        except Exception as e:  # the judge endpoint or its answer
            infra = InfraFailure(JUDGE, "error", f"NL judge failed: {type(e).__name__}: {e}")
    if infra is not None:
        termination = "infrastructure_error"
        status = INFRA
    reward = float(outcome.get("reward") or 0.0) if status == SCORED else 0.0
    return {"task_id": task.id, "trial": trial, "version": env.version, "benchmark": dict(env.data.identity),
            "status": status, "success": status == SCORED and bool(outcome.get("success")), "reward": reward,
            "termination": termination, "policy_error": policy_error,
            "infra": infra.to_dict() if infra else None, "unscored_reason": unscored_reason,
            "outcome": outcome, "messages": messages, "turns": turns,
            "policy_calls": policy.calls, "user_calls": user.calls, "seconds": time.perf_counter() - t0}
