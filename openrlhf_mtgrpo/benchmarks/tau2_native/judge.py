"""tau2's own NL-assertion judge, answered by the run's judge endpoint.

tau2 grades a task whose reward basis holds ``NL_ASSERTION`` with ``NLAssertionsEvaluator.calculate_reward``
(``tau2/evaluator/evaluator_nl_assertions.py``): no assertions, 1.0 without a judge; else one LLM request
(its system prompt, and a user prompt with the conversation, one ``role: content`` line per message, and the
assertions), whose answer it parses as JSON (``results``: ``metExpectation`` per assertion); 1.0 when every
result is met.  That code is run here as it is, from the installed tau2 (its file pinned in
:data:`.versions.SOURCE_PINS`: the same prompt and parsing as tau2-bench v1.0.1's, which the differential test
checks request for request); only the module's ``generate`` is routed: instead of litellm, it sends the
messages (converted by tau2's own ``to_litellm_messages``) with the arguments tau2 passes (its
``DEFAULT_LLM_NL_ASSERTIONS_ARGS``, read at run time) to the run's judge
(:class:`openrlhf_mtgrpo.evaluation.judge.LLMJudge`: the configured endpoint and model, by default the
benchmark's).  The model tau2's code names is not used: the judge's model is (recorded in every result).

The routing is per thread (domain calls run in threads, several episodes at once): ``generate`` answers with
the judge of the thread that is evaluating, and refuses where none is set, so nothing else in the process can
reach litellm through it.  A reply tau2 cannot parse is asked again (up to the judge's retries), then it is a
:class:`~openrlhf_mtgrpo.evaluation.judge.JudgeFailure` (infrastructure).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.evaluation.judge import BAD_REPLY_KIND, JudgeFailure, LLMJudge

#: the module whose judge runs (its file is pinned)
NL_FILE = "evaluator/evaluator_nl_assertions.py"
NL_MODULE = "tau2.evaluator.evaluator_nl_assertions"

_local = threading.local()
_install_lock = threading.Lock()


@dataclass
class JudgeUsage:
    """What one evaluation asked of the judge: requests answered, requests sent (retries included), seconds,
    and the requests themselves (what was sent besides the key)."""

    calls: int = 0
    attempts: int = 0
    seconds: float = 0.0
    requests: List[Dict[str, Any]] = field(default_factory=list)


def _routed_generate(model: str, messages: list, tools: Any = None, tool_choice: Any = None, **kwargs: Any):
    """tau2's ``generate`` as the NL judge calls it, answered by this thread's judge (see the module's notes)."""
    judge: Optional[LLMJudge] = getattr(_local, "judge", None)
    if judge is None:
        raise RuntimeError("tau2's NL-assertion judge was called outside openrlhf-mtgrpo's judge: no judge endpoint "
                           "is set for this thread (openrlhf_mtgrpo.benchmarks.tau2_native.judge)")
    if tools:
        raise RuntimeError("tau2's NL-assertion judge asked for tools; this package's judge sends none")
    from tau2.data_model.message import AssistantMessage
    from tau2.utils.llm_utils import to_litellm_messages

    # litellm's own options, never sent to the endpoint: its retries (the judge retries), tau2's log name
    params = {k: v for k, v in kwargs.items() if k not in ("num_retries", "call_name")}
    reply = judge.complete(to_litellm_messages(messages), **params)
    usage: JudgeUsage = _local.usage
    usage.calls += 1
    usage.attempts += reply.attempts
    usage.seconds += reply.seconds
    usage.requests.append(reply.request)
    return AssistantMessage(role="assistant", content=reply.text)


@functools.lru_cache(maxsize=None)
def nl_evaluator() -> Any:
    """tau2's ``NLAssertionsEvaluator`` (its file checked against the pin), its module's ``generate`` routed."""
    from openrlhf_mtgrpo.benchmarks.tau2_native.source_text import pinned_source
    from openrlhf_mtgrpo.benchmarks.tau2_native.tau2_modules import quiet_loguru

    pinned_source(NL_FILE)  # the file imported below is the pinned one
    quiet_loguru()
    # tau2's llm_utils imports litellm, which otherwise fetches its model price list from the network on import
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import importlib

    module = importlib.import_module(NL_MODULE)
    path = inspect.getsourcefile(module)
    with open(path, encoding="utf-8") as f:
        if f.read() != pinned_source(NL_FILE):
            raise RuntimeError(f"{NL_MODULE} was imported from {path}, not from the pinned {NL_FILE}")
    with _install_lock:
        module.generate = _routed_generate
    return module.NLAssertionsEvaluator


def judge_nl(judge: LLMJudge, task: Any, trajectory: list) -> Any:
    """tau2's ``NLAssertionsEvaluator.calculate_reward(task, trajectory)`` with ``judge`` answering; returns
    (tau2's ``RewardInfo``, :class:`JudgeUsage`).  :class:`JudgeFailure` where the endpoint fails or its answer
    cannot be read after the judge's retries."""
    from pydantic import ValidationError

    evaluator = nl_evaluator()
    usage = JudgeUsage()
    previous = getattr(_local, "judge", None), getattr(_local, "usage", None)
    _local.judge, _local.usage = judge, usage
    t0 = time.perf_counter()
    try:
        for attempt in range(judge.settings.max_retries + 1):
            try:
                return evaluator.calculate_reward(task=task, full_trajectory=trajectory), usage
            except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as e:
                # tau2's parsing of the answer (json.loads, result["expectedOutcome"], ...): ask again
                last = e
        raise JudgeFailure(f"judge {judge.model} at {judge.record()['base_url']}: tau2 could not read its answer "
                           f"after {judge.settings.max_retries + 1} requests: {type(last).__name__}: "
                           f"{str(last)[:300]}", BAD_REPLY_KIND, 200, usage.attempts)
    finally:
        usage.seconds = max(usage.seconds, time.perf_counter() - t0)
        _local.judge, _local.usage = previous


def judge_record(usage: Optional[JudgeUsage]) -> Dict[str, Any]:
    """The episode's judge usage as the outcome records it (JSON)."""
    if usage is None:
        return {"calls": 0, "attempts": 0, "seconds": 0.0}
    return {"calls": usage.calls, "attempts": usage.attempts, "seconds": round(usage.seconds, 3)}


def request_text(request: Dict[str, Any]) -> str:
    """A judge request as canonical JSON (for comparisons)."""
    return json.dumps(request, sort_keys=True)
