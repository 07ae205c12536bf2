"""An LLM endpoint a domain may use to judge an episode (e.g. a benchmark's natural-language assertions).

The core owns only the endpoint: where it is, which model, how a request is retried, how many calls an
evaluation made.  What is asked and how the answer is read is the domain's (the benchmark's own judge prompt
and parsing); the domain gets one of these as the ``judge`` of ``Episode.evaluate(termination, judge,
messages)``:

* :class:`LLMJudge` (mode ``judge``): ``complete(messages, **params)`` sends one chat-completions request
  (``{"model": ..., "messages": ..., **params}``) through :func:`~openrlhf_mtgrpo.rollout.user_sim.
  call_chat_endpoint`, retrying what a retry can fix (:func:`~openrlhf_mtgrpo.rollout.user_sim.with_retries`);
  a failure after the retries is a :class:`JudgeFailure`, an infrastructure failure (the episode is not scored:
  excluded from training, retried by eval).  It is called from a domain's plain ``evaluate``, which the rollout
  runs in a thread off the event loop (:mod:`openrlhf_mtgrpo.rollout.domain_calls`): ``complete`` blocks that
  thread on an event loop of its own; any number of threads may use one judge at once.
* :class:`JudgeOff` (mode ``off``): the explicit choice not to judge.  A domain scores what it can without
  the judge (tau2: the database alone) and says so; the run records it and its numbers are not comparable.
* ``None``: no judge was configured; a domain whose task needs one leaves the reward unfinished (NaN).

``judge_needed(task)`` (an optional domain hook) says which tasks need a judge; ``judge_default_model`` (an
optional domain attribute) is the model the benchmark itself judges with, used where none is configured.
Stdlib only at import.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.rollout.failures import InfrastructureFailure

#: the judge modes: ``judge`` (an LLM judges what the benchmark has judged), ``off`` (not judged, recorded)
JUDGE, OFF = "judge", "off"
NL_MODES = (JUDGE, OFF)
#: the endpoint tau-bench's judge calls (tau2 calls OpenAI's models through litellm: OpenAI's API)
OPENAI_BASE_URL = "https://api.openai.com/v1"
#: what every number of a run that did not judge says
NOT_JUDGED = "NL assertions not judged: not comparable"
#: the failure kind of a judge answer the domain cannot read (as an endpoint's reply that is not a completion)
BAD_REPLY_KIND = "bad_reply"


class JudgeFailure(InfrastructureFailure):
    """The judge endpoint failed, or its answer could not be read, after the retries (infrastructure)."""


@dataclass(frozen=True)
class JudgeSettings:
    """Where the judge is: ``base_url`` None means the benchmark's own endpoint (:data:`OPENAI_BASE_URL`, which
    needs the key in ``api_key_env``); ``model`` None means the domain's ``judge_default_model``."""

    base_url: Optional[str] = None
    model: Optional[str] = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0  # seconds per request
    max_retries: int = 3
    backoff: float = 1.0  # seconds before the first retry, doubled each time (with up to 25% jitter)

    @property
    def url(self) -> str:
        return self.base_url or OPENAI_BASE_URL

    def available(self) -> bool:
        """Whether requests can be sent: an endpoint given, or the benchmark's with its key set."""
        return bool(self.base_url) or bool(os.environ.get(self.api_key_env))

    def missing(self) -> str:
        """Why no judge is available ("" when one is)."""
        if self.available():
            return ""
        return (f"no judge endpoint: ${self.api_key_env} is not set for the benchmark's own judge "
                f"({OPENAI_BASE_URL}) and no other endpoint is given")

    def budget_seconds(self) -> float:
        """The longest one ``complete`` may take: every attempt timing out, with the back-offs between them."""
        waits = sum(self.backoff * (2 ** i) * 1.25 for i in range(self.max_retries))
        return (self.max_retries + 1) * self.timeout + waits


class LLMJudge:
    """One judge endpoint and model (mode ``judge``; see the module docstring).  Thread-safe."""

    mode = JUDGE

    def __init__(self, settings: JudgeSettings, model: str):
        if not model:
            raise ValueError("a judge needs a model: give one, or use a domain that names its benchmark's")
        self.settings = settings
        self.model = model
        self._lock = threading.Lock()
        self.calls = 0  # requests answered, over every evaluation
        self.attempts = 0  # requests sent, retries included
        self.seconds = 0.0

    def record(self) -> Dict[str, Any]:
        """What the run records about its judge (never the key)."""
        from openrlhf_mtgrpo.rollout.user_sim import display_url

        return {"mode": JUDGE, "base_url": display_url(self.settings.url), "model": self.model}

    def budget_seconds(self) -> float:
        return self.settings.budget_seconds()

    def complete(self, messages: List[Dict[str, Any]], **params: Any) -> "JudgeReply":
        """One chat completion of ``messages`` (OpenAI-format dicts) with the request fields ``params``
        (e.g. ``temperature``); its text.  Blocks the calling thread; :class:`JudgeFailure` after the retries."""
        payload: Dict[str, Any] = {"model": self.model, "messages": messages, **params}
        t0 = time.perf_counter()
        text, attempts = _run_blocking(lambda: self._send(payload))
        seconds = time.perf_counter() - t0
        with self._lock:
            self.calls += 1
            self.attempts += attempts
            self.seconds += seconds
        return JudgeReply(text, attempts, seconds, payload)

    async def _send(self, payload: Dict[str, Any]):
        from openrlhf_mtgrpo.rollout.user_sim import (BAD_REPLY, EndpointError, call_chat_endpoint, display_url,
                                                      new_http_client, with_retries)

        s = self.settings
        key = os.environ.get(s.api_key_env)
        client = new_http_client()

        async def once() -> str:
            out = await call_chat_endpoint(client, s.url, payload, key, s.timeout)
            text = out["message"].get("content")
            if not isinstance(text, str):
                raise EndpointError(BAD_REPLY, f"a judge reply without text content: {str(out)[:200]}", 200)
            return text

        try:
            return await with_retries(once, s.max_retries, s.backoff)
        except EndpointError as e:
            why = "" if e.retryable else " (not retried: the same request gets the same answer)"
            raise JudgeFailure(f"judge at {display_url(s.url)} (model {self.model}) failed after {e.attempts} "
                               f"attempt{'s' if e.attempts != 1 else ''}{why}: {e}", e.kind, e.status,
                               e.attempts) from None
        finally:
            await client.aclose()


@dataclass
class JudgeReply:
    """A judge's answer: its text, the requests it took (retries included), its time and what was sent."""

    text: str
    attempts: int
    seconds: float
    request: Dict[str, Any]


class JudgeOff:
    """The explicit choice not to judge (mode ``off``): a domain scores what it can without a judge."""

    mode = OFF

    def __init__(self, reason: str = "--nl-assertions off"):
        self.reason = reason

    def record(self) -> Dict[str, Any]:
        return {"mode": OFF}

    def budget_seconds(self) -> float:
        return 0.0


def make_judge(mode: str, settings: JudgeSettings, default_model: Optional[str]):
    """The judge of a run: :class:`JudgeOff` for mode ``off``; else an :class:`LLMJudge` on ``settings`` (its
    model, else ``default_model``: the benchmark's), or None where no endpoint is available (see
    :meth:`JudgeSettings.available`)."""
    if mode not in NL_MODES:
        raise ValueError(f"the NL-assertion mode must be one of {', '.join(NL_MODES)}, got {mode!r}")
    if mode == OFF:
        return JudgeOff()
    model = settings.model or default_model
    if not settings.available() or not model:
        return None
    return LLMJudge(settings, model)


def grading_record(env: Any, task: Any, judge: Any) -> Optional[Dict[str, Any]]:
    """What a rollout-log line or eval result records about how its task's judged part was graded: the
    judge's record (mode ``judge`` with its endpoint and model, or mode ``off``), ``{"mode": "none"}`` where
    no judge was configured; None where the task needs no judge (its outcome does not depend on one)."""
    if not judge_needed(env, task):
        return None
    return judge.record() if judge is not None else {"mode": "none"}


def judge_needed(env: Any, task: Any) -> bool:
    """Whether ``task`` of domain ``env`` needs a judge for its reward (the domain's ``judge_needed`` hook)."""
    hook = getattr(env, "judge_needed", None)
    return bool(hook(task)) if hook is not None else False


def _run_blocking(make_coro):
    """Run the coroutine ``make_coro()`` to its end from plain code: on a loop of its own in this thread, or,
    where this thread already runs a loop, in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mtgrpo-judge") as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()
