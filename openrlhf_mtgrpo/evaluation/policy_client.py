"""The policy under evaluation: an OpenAI-compatible chat endpoint with tool calling.

Each request carries the chat-template options training used (``chat_template_kwargs``,
e.g. ``{"enable_thinking": false}``: vLLM passes them to the model's chat template),
so the served model is prompted the way it was trained.  Failures are classified
as in :mod:`openrlhf_mtgrpo.rollout.user_sim` and :mod:`.outcomes`: a context
overflow is the policy's own failure (:class:`PolicyContextOverflow`); anything
else that goes wrong with the endpoint is infrastructure (:class:`PolicyEndpointFailure`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from openrlhf_mtgrpo.evaluation.outcomes import POLICY_ENDPOINT, InfraFailure
from openrlhf_mtgrpo.rollout.loop import InfrastructureFailure
from openrlhf_mtgrpo.rollout.tool_parsers import ARGUMENTS_NOT_AN_OBJECT
from openrlhf_mtgrpo.rollout.user_sim import (BAD_REPLY, CONTEXT_OVERFLOW, EndpointError, call_chat_endpoint,
                                              context_room, display_url, with_retries)


@dataclass(frozen=True)
class PolicySettings:
    base_url: str
    model: str
    temperature: float = 0.0
    top_p: Optional[float] = None
    max_tokens: Optional[int] = None  # per-call cap (training: rollout.max_new_tokens); None: the server decides
    enable_thinking: Optional[bool] = False  # None: send no chat_template_kwargs (endpoints that reject it)
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    max_retries: int = 3
    backoff: float = 0.5

    def chat_template_kwargs(self) -> Optional[Dict[str, Any]]:
        return None if self.enable_thinking is None else {"enable_thinking": bool(self.enable_thinking)}

    def identity(self) -> Dict[str, Any]:
        """What decides the policy's answers (recorded in the run identity)."""
        return {"policy_model": self.model, "policy_base_url": display_url(self.base_url),
                "temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens,
                "chat_template_kwargs": self.chat_template_kwargs()}


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: Optional[Dict[str, Any]]  # None when the arguments are not a JSON object
    raw_arguments: str
    error: str = ""  # why the arguments could not be used


@dataclass
class PolicyReply:
    text: str
    tool_calls: List[ToolCall] = field(default_factory=list)
    finish_reason: Optional[str] = None
    reasoning: Optional[str] = None
    attempts: int = 1
    max_tokens: Optional[int] = None  # the cap this reply was asked for (less than --max-tokens near the context end)


class PolicyContextOverflow(Exception):
    """The endpoint refused the conversation as longer than the model's context: a policy failure."""


class PolicyEndpointFailure(InfrastructureFailure):
    """The policy endpoint failed (after retries where a retry can help): infrastructure."""

    def __init__(self, failure: InfraFailure):
        super().__init__(failure.message, failure.kind, failure.status, failure.attempts)
        self.failure = failure


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    raise EndpointError(BAD_REPLY, f"message content of type {type(content).__name__}", 200)


def parse_reply(out: Dict[str, Any]) -> PolicyReply:
    """A :class:`PolicyReply` from a parsed completion; :class:`EndpointError` (bad_reply) if its shape is wrong."""
    msg = out["message"]
    text = _text_of(msg.get("content"))
    raw_calls = msg.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise EndpointError(BAD_REPLY, f"tool_calls is a {type(raw_calls).__name__}, not a list", 200)
    calls = []
    for i, tc in enumerate(raw_calls):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise EndpointError(BAD_REPLY, f"tool call {i} has no function name: {str(tc)[:200]}", 200)
        raw = fn.get("arguments")
        if isinstance(raw, dict):  # some servers send an object
            args, raw_text, err = raw, json.dumps(raw), ""
        else:
            raw_text = raw if isinstance(raw, str) else json.dumps(raw)
            try:
                args = json.loads(raw_text or "{}")
                err = "" if isinstance(args, dict) else ARGUMENTS_NOT_AN_OBJECT.removeprefix("Error: ")
            except json.JSONDecodeError as e:
                args, err = None, f"tool call arguments are not valid JSON ({e.msg})"
            if err:
                args = None
        calls.append(ToolCall(str(tc.get("id") or f"call_{i}"), fn["name"], args, raw_text, err))
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    return PolicyReply(text, calls, out.get("finish_reason"), reasoning if isinstance(reasoning, str) else None)


class PolicyClient:
    """Asks the served policy for one assistant message.  ``http_client``: an ``httpx.AsyncClient``."""

    def __init__(self, settings: PolicySettings, http_client):
        self.settings = settings
        self.http = http_client
        self.calls = 0

    def payload(self, messages: List[Dict[str, Any]], tools: List[Dict[str, Any]], user_tag: str) -> Dict[str, Any]:
        s = self.settings
        body: Dict[str, Any] = {"model": s.model, "messages": messages, "tools": tools,
                                "temperature": s.temperature, "user": user_tag}
        if s.top_p is not None:
            body["top_p"] = s.top_p
        if s.max_tokens is not None:
            body["max_tokens"] = s.max_tokens
        kwargs = s.chat_template_kwargs()
        if kwargs is not None:
            body["chat_template_kwargs"] = kwargs
        return body

    async def reply(self, messages: List[Dict[str, Any]], tools: List[Dict[str, Any]], user_tag: str) -> PolicyReply:
        """One assistant message.  Near the end of the context the reply cap shrinks to what is left, as the
        training rollout caps each turn at min(max_new_tokens, the remaining budget): vLLM refuses a request
        whose prompt plus ``max_tokens`` exceeds the context, and its message says how long the prompt is;
        the request is sent again with ``max_tokens`` = context - prompt.  Only a prompt that leaves no room
        is a context overflow (:class:`PolicyContextOverflow`)."""
        s = self.settings
        body = self.payload(messages, tools, user_tag)
        key = os.environ.get(s.api_key_env) or None

        async def once() -> PolicyReply:
            self.calls += 1
            return parse_reply(await call_chat_endpoint(self.http, s.base_url, body, key, s.timeout))

        while True:
            try:
                reply, attempts = await with_retries(once, s.max_retries, s.backoff)
                break
            except EndpointError as e:
                room = context_room(str(e)) if e.kind == CONTEXT_OVERFLOW else None
                cap = body.get("max_tokens")
                if room is not None and cap is not None and 0 < room < cap:
                    body = dict(body, max_tokens=room)  # the prompt fits: ask for what the context has left
                    continue
                if e.kind == CONTEXT_OVERFLOW:
                    raise PolicyContextOverflow(str(e)) from None
                where = f"{display_url(s.base_url)} (model {s.model})"
                raise PolicyEndpointFailure(InfraFailure(
                    POLICY_ENDPOINT, e.kind, f"policy endpoint {where} failed after {e.attempts} attempt"
                    f"{'s' if e.attempts != 1 else ''}{'' if e.retryable else ' (not retried)'}: {e}",
                    e.status, e.attempts)) from None
        reply.max_tokens = body.get("max_tokens")
        reply.attempts = attempts
        return reply
