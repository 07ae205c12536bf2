"""The LLM-simulated customer, over any OpenAI-compatible chat endpoint.

The simulator plays the task's user scenario, prompted as the benchmark's own simulator is (the
domain's :class:`~openrlhf_mtgrpo.envs.base.CustomerPrompt`: its system prompt around the scenario,
the opening line of its own conversation, its default temperature).  Its conversation is the agent's
with roles swapped (the agent's messages to it are its "user" turns; the agent's tool calls and their
results are never shown to it).  The episode loop decides which of its messages end the conversation
(the run rules' stop signals).

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
import atexit
import json
import os
import random
import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from openrlhf_mtgrpo.envs.base import CustomerPrompt
from openrlhf_mtgrpo.rollout.loop import CustomerFailure, CustomerMessage, PolicyCall

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


class SharedHttpClient:
    """One ``httpx.AsyncClient`` per event loop, shared by every episode a process runs on it: connections (and
    TLS sessions) to the customer's endpoint are reused instead of opened per episode.  :meth:`aclose` closes the
    current loop's client; what is still open when the process exits is closed then, where its loop allows."""

    def __init__(self):
        self._clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        atexit.register(self._close_at_exit)

    def get(self):
        """The running loop's client (made on first use)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None or client.is_closed:
                client = self._clients[loop] = new_http_client()
            return client

    async def aclose(self) -> None:
        """Close the running loop's client (a later :meth:`get` makes a new one)."""
        with self._lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def _close_at_exit(self) -> None:
        with self._lock:
            open_ = [(loop, c) for loop, c in self._clients.items() if not c.is_closed]
            self._clients.clear()
        for loop, client in open_:
            if loop.is_closed() or loop.is_running():
                continue  # the OS closes the sockets with the process
            try:
                loop.run_until_complete(client.aclose())
            except Exception:  # noqa: BLE001 - best effort at exit
                pass


# -- the simulated customer ----------------------------------------------------------------------------------------


class UserSimulatorError(CustomerFailure):
    """The user-simulator endpoint failed (an infrastructure failure).

    cause: the :class:`EndpointError` kind (unreachable, timeout, server_error, bad_reply,
    context_overflow, rejected); status: the HTTP status if there was one; attempts: calls made."""


@dataclass
class UserSimConfig:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    #: None: the benchmark's default for its customer (tau2: 0.0; tau-bench: none sent); a number overrides it
    temperature: Optional[float] = None
    timeout: float = 60.0
    max_retries: int = 3
    backoff: float = 0.5  # seconds, doubled per retry, with jitter
    #: tool calls a customer with tools may make between two messages to the agent; more is a simulator stuck
    #: in a loop (infrastructure: the episode is retried or excluded, never scored)
    max_tool_steps: int = 30

    def effective_temperature(self, prompt: CustomerPrompt) -> Optional[float]:
        """The temperature sent (None: none sent)."""
        return prompt.temperature if self.temperature is None else self.temperature


@dataclass
class UserSimulator:
    """One episode's customer (the loop's :class:`~openrlhf_mtgrpo.rollout.loop.Customer`).

    instructions: the task's scenario text; prompt: how the domain's benchmark prompts its customer; tools:
    the customer's own tool schemas (dual-control domains: it may answer with tool calls, whose results come
    back to it only); ``http_client``: an ``httpx.AsyncClient`` to share (else one is made)."""

    config: UserSimConfig
    instructions: str
    prompt: CustomerPrompt
    tools: Optional[List[Dict[str, Any]]] = None
    history: List[Dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0
    http_client: Any = None
    tool_steps: int = 0  # tool-calling messages since its last message to the agent
    #: sent as the request's ``user`` field (OpenAI's end-user id; the task and trial, for server logs and
    #: for rule-based customers that must know the task); never part of the prompt
    tag: Optional[str] = None

    def _get_client(self):
        if self.http_client is None:
            self.http_client = new_http_client()
        return self.http_client

    def request(self) -> Dict[str, Any]:
        """The chat-completions request for the customer's next message."""
        cfg = self.config
        payload: Dict[str, Any] = {"model": cfg.model, "messages": [
            {"role": "system", "content": self.prompt.system_prompt(self.instructions)}] + self.history}
        if self.tools:
            payload["tools"] = self.tools
        if self.tag is not None:
            payload["user"] = self.tag
        temperature = cfg.effective_temperature(self.prompt)
        if temperature is not None:
            payload["temperature"] = temperature
        return payload

    def _failure(self, e: EndpointError) -> UserSimulatorError:
        cfg = self.config
        why = "" if e.retryable else " (not retried: the same request gets the same answer)"
        return UserSimulatorError(
            f"user simulator at {display_url(cfg.base_url)} (model {cfg.model}) failed after {e.attempts} "
            f"attempt{'s' if e.attempts != 1 else ''}{why}: {e}", e.kind, e.status, e.attempts)

    async def _complete(self) -> CustomerMessage:
        cfg = self.config
        payload = self.request()
        key = os.environ.get(cfg.api_key_env)

        async def once() -> CustomerMessage:
            t0 = time.perf_counter()
            try:
                out = await call_chat_endpoint(self._get_client(), cfg.base_url, payload, key, cfg.timeout)
            finally:
                self.seconds += time.perf_counter() - t0
            return self._read(out)

        try:
            msg, _ = await with_retries(once, cfg.max_retries, cfg.backoff)
        except EndpointError as e:
            raise self._failure(e) from None
        self.calls += 1
        return msg

    def _read(self, out: Dict[str, Any]) -> CustomerMessage:
        """The customer's message of a completion (text, or tool calls where it has tools); a reply of another
        shape is a bad reply (retried)."""
        message = out["message"]
        raw_calls = message.get("tool_calls") or []
        text = message.get("content")
        if not raw_calls:
            if not isinstance(text, str):
                raise EndpointError(BAD_REPLY, f"a completion without text content: {_snippet(repr(out))}", 200)
            return CustomerMessage(text=text)
        if not self.tools:
            raise EndpointError(BAD_REPLY, f"tool calls from a customer that has no tools: {_snippet(repr(out))}", 200)
        calls = []
        for i, tc in enumerate(raw_calls if isinstance(raw_calls, list) else [None]):
            fn = tc.get("function") if isinstance(tc, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise EndpointError(BAD_REPLY, f"customer tool call {i} has no function name: {_snippet(repr(tc))}",
                                    200)
            raw = fn.get("arguments")
            try:
                args = raw if isinstance(raw, dict) else json.loads(raw or "{}")
            except (TypeError, ValueError):
                args = None
            if not isinstance(args, dict):
                raise EndpointError(BAD_REPLY, f"customer tool call {fn['name']} with arguments that are not a "
                                               f"JSON object: {_snippet(repr(raw))}", 200)
            calls.append(PolicyCall(str(tc.get("id") or f"user_call_{self.calls}_{i}"), fn["name"], args))
        return CustomerMessage(text=text if isinstance(text, str) else "", calls=calls)

    def _remember(self, msg: CustomerMessage) -> CustomerMessage:
        """Its own message into its history (a tool-calling one as the assistant message with its calls)."""
        entry: Dict[str, Any] = {"role": "assistant", "content": msg.text}
        if msg.calls:
            self.tool_steps += 1
            if self.tool_steps > self.config.max_tool_steps:
                raise UserSimulatorError(
                    f"user simulator {self.config.model} made more than {self.config.max_tool_steps} tool-calling "
                    "messages without a message to the agent (a simulator in a loop; UserSimConfig.max_tool_steps)",
                    "tool_loop")
            entry["tool_calls"] = [{"id": c.id, "type": "function",
                                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                                   for c in msg.calls]
        else:
            self.tool_steps = 0
        self.history.append(entry)
        return msg

    async def start(self) -> CustomerMessage:
        """The customer's first message, answering the opening line of its conversation (the greeting)."""
        self.history.append({"role": "user", "content": self.prompt.opening})
        return self._remember(await self._complete())

    async def reply(self, agent_text: str) -> CustomerMessage:
        self.history.append({"role": "user", "content": agent_text})
        return self._remember(await self._complete())

    async def tool_results(self, results) -> CustomerMessage:
        """Its next message after the results of its own tool calls (in the order of its last message's calls)."""
        last = self.history[-1] if self.history else {}
        ids = [tc["id"] for tc in last.get("tool_calls") or []]
        if len(ids) != len(results):
            raise UserSimulatorError(f"{len(results)} tool results for {len(ids)} customer tool calls", "bad_reply")
        for call_id, res in zip(ids, results):
            self.history.append({"role": "tool", "tool_call_id": call_id, "content": res.content})
        return self._remember(await self._complete())
