"""The LLM-simulated customer, over any OpenAI-compatible chat endpoint.

The simulator plays the task's user scenario.  Its conversation is the agent's
with roles swapped (the agent's messages are its "user" turns).  It ends the
conversation with the benchmark's stop signals.

Every failure of the simulator is an infrastructure failure (never the policy's
fault): :class:`UserSimulatorError` is raised, with ``cause`` saying which kind,
and the rollout marks the episode as failed by infrastructure.  Which failures
are retried is decided by :func:`call_chat_endpoint` (shared with ``mtgrpo
eval``'s policy client):

* retried with exponential back-off: connection errors and dropped connections,
  timeouts, HTTP 408/409/425/429 and 5xx, and HTTP 200 replies that are not a
  chat completion (an HTML page from a proxy, JSON without ``choices``);
* not retried, because the same request gets the same answer: every other 4xx
  (400, 401, 403, 404, 413, 422, ...).  This includes the simulator's own context
  overflow (vLLM: HTTP 400 "This model's maximum context length is N tokens ...");
  it stays an infrastructure failure (cause ``context_overflow``): the customer's
  model ran out of room, which says nothing about the policy.  The wordings that
  count as a context overflow are listed at ``_CONTEXT_OVERFLOW`` (vLLM's OpenAI
  layer and its v1 engine, OpenAI, SGLang).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

STOP_SIGNALS = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")

# -- failures of an OpenAI-compatible chat endpoint ---------------------------------------------------------------

#: Kinds of :class:`EndpointError`.
UNREACHABLE = "unreachable"  # connection refused / dropped, DNS, TLS
TIMEOUT = "timeout"
SERVER_ERROR = "server_error"  # HTTP 5xx, 408, 409, 425, 429
BAD_REPLY = "bad_reply"  # HTTP 200 whose body is not a chat completion
CONTEXT_OVERFLOW = "context_overflow"  # HTTP 4xx saying the conversation does not fit the model's context
REJECTED = "rejected"  # any other 4xx: bad request, unknown model, authentication

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
#: The wordings of "the conversation does not fit the model's context" (HTTP 400):
#: vLLM's OpenAI layer: "This model's maximum context length is N tokens. However, your request has M input
#: tokens ..." / "... However, you requested M tokens (...). Please reduce the length of the messages or
#: completion." / "'max_tokens' (or 'max_completion_tokens') is too large: K. ..."; vLLM v1's input processor
#: (the engine): "The decoder prompt (length M) is longer than the maximum model length of N. ...";
#: OpenAI: code "context_length_exceeded"; SGLang: "... longer than the model's context length (N tokens)".
_CONTEXT_OVERFLOW = re.compile(
    r"context[ _]length|context window|maximum model length"
    r"|'max_tokens'(?: or 'max_completion_tokens')? is too large"
    r"|reduce the length of the (?:input )?messages", re.I)


#: How many tokens the context had left for the reply, from the wording of a refusal that gives both the
#: model's context N and the prompt's M (vLLM 0.29.0, vllm/renderers/params.py: "This model's maximum context
#: length is N tokens. However, you requested K output tokens and your prompt contains [at least] M input
#: tokens, ..."; older vLLM: "... and your request has M input tokens" / "However, your request has M input
#: tokens").
_CONTEXT_AND_PROMPT = re.compile(r"maximum context length is (\d+) tokens.*?(?:prompt contains|request has) "
                                 r"(at least )?(\d+) input tokens", re.I | re.S)


def context_room(message: str) -> Optional[int]:
    """N - M of a context-overflow message that names the context N and the prompt's length M, else None
    (also for "at least M": the prompt's true length is unknown)."""
    m = _CONTEXT_AND_PROMPT.search(message or "")
    if m is None or m.group(2):
        return None
    return int(m.group(1)) - int(m.group(3))


class EndpointError(RuntimeError):
    """A chat-completions call that failed; ``kind`` is one of the constants above."""

    def __init__(self, kind: str, message: str, status: Optional[int] = None, attempts: int = 1):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.attempts = attempts

    @property
    def retryable(self) -> bool:
        return self.kind in (UNREACHABLE, TIMEOUT, SERVER_ERROR, BAD_REPLY)

    def __str__(self) -> str:
        return f"{self.kind}: {self.args[0]}"


def _snippet(text: str, n: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n] + "..."


def _error_message(body: str) -> Tuple[str, str]:
    """(message, code) of an error body: OpenAI/vLLM ``{"error": {...}}``, older vLLM top-level, or text."""
    try:
        obj = json.loads(body)
    except ValueError:
        return _snippet(body), ""
    if isinstance(obj, dict):
        err = obj.get("error") if isinstance(obj.get("error"), dict) else obj
        msg = err.get("message") or err.get("detail") or obj.get("error") or body
        return _snippet(msg if isinstance(msg, str) else json.dumps(msg)), str(err.get("code") or "")
    return _snippet(body), ""


def classify_http_error(status: int, body: str) -> EndpointError:
    """The :class:`EndpointError` for an HTTP error reply (status >= 400)."""
    message, code = _error_message(body)
    text = f"HTTP {status}: {message}"
    if status >= 500 or status in RETRYABLE_STATUS:
        return EndpointError(SERVER_ERROR, text, status)
    if _CONTEXT_OVERFLOW.search(message) or _CONTEXT_OVERFLOW.search(code):
        return EndpointError(CONTEXT_OVERFLOW, text, status)
    return EndpointError(REJECTED, text, status)


def parse_chat_completion(body: str) -> Dict[str, Any]:
    """``{"message": {...}, "finish_reason": ...}`` of a 200 reply, or :class:`EndpointError` (bad_reply)."""
    try:
        obj = json.loads(body)
    except ValueError:
        raise EndpointError(BAD_REPLY, f"HTTP 200 with a body that is not JSON: {_snippet(body)!r}", 200) from None
    if not isinstance(obj, dict):
        raise EndpointError(BAD_REPLY, f"HTTP 200 with JSON that is not an object: {_snippet(body)!r}", 200)
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict) \
            or not isinstance(choices[0].get("message"), dict):
        if obj.get("error"):
            why = f"an error object: {_error_message(body)[0]!r}"
        else:
            why = f"no choices[0].message: {_snippet(body)!r}"
        raise EndpointError(BAD_REPLY, f"HTTP 200 with JSON that is not a chat completion ({why})", 200)
    return {"message": choices[0]["message"], "finish_reason": choices[0].get("finish_reason")}


def display_url(url: str) -> str:
    """``url`` without user:password (safe to print and record)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


async def call_chat_endpoint(client, base_url: str, payload: Dict[str, Any], api_key: Optional[str] = None,
                             timeout: Optional[float] = None) -> Dict[str, Any]:
    """POST ``payload`` to ``{base_url}/chat/completions`` once; the parsed first choice, or :class:`EndpointError`.

    client: an ``httpx.AsyncClient``."""
    import httpx

    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key or 'EMPTY'}"}
    try:
        kw = {} if timeout is None else {"timeout": timeout}
        resp = await client.post(url, json=payload, headers=headers, **kw)
    except httpx.TimeoutException as e:
        raise EndpointError(TIMEOUT, f"no reply from {display_url(url)} within {timeout} s ({type(e).__name__})") \
            from None
    except httpx.TransportError as e:  # refused, reset, closed without a reply, DNS, TLS
        raise EndpointError(UNREACHABLE, f"cannot connect to {display_url(url)}: {type(e).__name__}: {e}") \
            from None
    if resp.status_code >= 400:
        raise classify_http_error(resp.status_code, resp.text)
    if resp.status_code != 200:
        raise EndpointError(BAD_REPLY, f"HTTP {resp.status_code} (expected 200): {_snippet(resp.text)!r}",
                            resp.status_code)
    return parse_chat_completion(resp.text)


async def with_retries(call: Callable[[], Awaitable[Any]], max_retries: int, backoff: float) -> Tuple[Any, int]:
    """(result, attempts) of ``call``, retrying retryable :class:`EndpointError` up to ``max_retries`` times
    with exponential back-off and jitter; the last error is raised with ``attempts`` set."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call(), attempt
        except EndpointError as e:
            e.attempts = attempt
            if not e.retryable or attempt > max_retries:
                raise
            await asyncio.sleep(backoff * (2 ** (attempt - 1)) * (1 + 0.25 * random.random()))


def new_http_client():
    """An ``httpx.AsyncClient`` for :func:`call_chat_endpoint`, without a cap on open connections (the
    caller's concurrency is the cap; a pool wait would turn into spurious timeouts)."""
    import httpx

    return httpx.AsyncClient(limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))


# -- the simulated customer ----------------------------------------------------------------------------------------


class UserSimulatorError(RuntimeError):
    """The user-simulator endpoint failed (an infrastructure failure).

    cause: the :class:`EndpointError` kind (unreachable, timeout, server_error, bad_reply,
    context_overflow, rejected); status: the HTTP status if there was one; attempts: calls made."""

    def __init__(self, message: str, cause: str = "", status: Optional[int] = None, attempts: int = 0):
        super().__init__(message)
        self.cause = cause
        self.status = status
        self.attempts = attempts


@dataclass
class UserSimConfig:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    timeout: float = 60.0
    max_retries: int = 3
    backoff: float = 0.5  # seconds, doubled per retry, with jitter


def system_prompt(instructions: str) -> str:
    return (
        "You are playing a customer who contacts an airline's customer-service agent. Stay in character and "
        "follow the scenario below. Write only what the customer says, one message at a time, briefly and "
        "naturally. Do not invent information the scenario does not give you; if asked for something you do not "
        "know, say so. Reveal details only when they are needed.\n\n"
        f"Scenario:\n{instructions}\n\n"
        "When your goal is reached or cannot be reached, reply with exactly ###STOP###. If you are transferred to "
        "a human agent, reply with exactly ###TRANSFER###. If the scenario does not say what to do next, reply "
        "with exactly ###OUT-OF-SCOPE###."
    )


def prompt_sha256() -> str:
    """SHA-256 of the simulator's system prompt around the scenario (recorded in eval run identities)."""
    import hashlib

    return hashlib.sha256(system_prompt("{scenario}").encode("utf-8")).hexdigest()


def is_stop(text: str) -> Optional[str]:
    for s in STOP_SIGNALS:
        if s in (text or ""):
            return s
    return None


@dataclass
class UserSimulator:
    """One episode's customer.  ``http_client``: an ``httpx.AsyncClient`` to share (else one is made)."""

    config: UserSimConfig
    instructions: str
    history: List[Dict[str, str]] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0
    http_client: Any = None

    def _get_client(self):
        if self.http_client is None:
            self.http_client = new_http_client()
        return self.http_client

    async def _complete(self) -> str:
        cfg = self.config
        payload = {"model": cfg.model, "temperature": cfg.temperature,
                   "messages": [{"role": "system", "content": system_prompt(self.instructions)}] + self.history}
        key = os.environ.get(cfg.api_key_env)

        async def once() -> str:
            t0 = time.perf_counter()
            try:
                out = await call_chat_endpoint(self._get_client(), cfg.base_url, payload, key, cfg.timeout)
            finally:
                self.seconds += time.perf_counter() - t0
            text = out["message"].get("content")
            if not isinstance(text, str):
                raise EndpointError(BAD_REPLY, f"a completion without text content: {_snippet(repr(out))}", 200)
            return text

        try:
            text, _ = await with_retries(once, cfg.max_retries, cfg.backoff)
        except EndpointError as e:
            why = "" if e.retryable else " (not retried: the same request gets the same answer)"
            raise UserSimulatorError(
                f"user simulator at {display_url(cfg.base_url)} (model {cfg.model}) failed after {e.attempts} "
                f"attempt{'s' if e.attempts != 1 else ''}{why}: {e}", e.kind, e.status, e.attempts) from None
        self.calls += 1
        return text

    async def start(self, greeting: str) -> str:
        """The customer's first message, answering the agent's greeting."""
        self.history.append({"role": "user", "content": greeting})
        text = await self._complete()
        self.history.append({"role": "assistant", "content": text})
        return text

    async def reply(self, agent_text: str) -> str:
        self.history.append({"role": "user", "content": agent_text})
        text = await self._complete()
        self.history.append({"role": "assistant", "content": text})
        return text
