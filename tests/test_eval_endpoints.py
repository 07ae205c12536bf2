"""Classifying what an OpenAI-compatible endpoint answers, against a real local HTTP server."""

import asyncio
import json
import threading
import time

import pytest

from openrlhf_mtgrpo.envs.base import OWN_WORDS, CustomerPrompt, PromptInfo

from openrlhf_mtgrpo.evaluation.policy_client import (PolicyClient, PolicyContextOverflow, PolicyEndpointFailure,
                                                      PolicySettings, parse_reply)
from openrlhf_mtgrpo.rollout.local_server import LocalChatServer, context_overflow_message
from openrlhf_mtgrpo.rollout.user_sim import (BAD_REPLY, CONTEXT_OVERFLOW, REJECTED, SERVER_ERROR, EndpointError,
                                              UserSimConfig, UserSimulator, UserSimulatorError, classify_http_error,
                                              display_url, parse_chat_completion)

VLLM_NEW = json.dumps({"error": {"message": context_overflow_message(4096, 5000), "type": "BadRequestError",
                                 "param": "input_tokens", "code": 400}})
# vLLM before the nested ErrorResponse: the fields at top level, and the older wording
VLLM_OLD = json.dumps({"object": "error", "message": "This model's maximum context length is 4096 tokens. However, "
                       "you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce "
                       "the length of the messages or completion.", "type": "BadRequestError", "param": None,
                       "code": 400})
OPENAI = json.dumps({"error": {"message": "Your input exceeds the window.", "type": "invalid_request_error",
                               "param": "messages", "code": "context_length_exceeded"}})


# vLLM v1's input processor (the engine, not the OpenAI layer): a prompt longer than --max-model-len
VLLM_V1_DECODER = json.dumps({"error": {"message": "The decoder prompt (length 9000) is longer than the maximum "
                                        "model length of 8192. Make sure that `max_model_len` is no smaller than "
                                        "the number of text tokens.", "type": "BadRequestError", "param": None,
                                        "code": 400}})
# vLLM's check of max_tokens against what is left of the context, and its parts as they appear alone
VLLM_MAX_TOKENS = json.dumps({"error": {"message": "'max_tokens' or 'max_completion_tokens' is too large: 8192. This "
                                        "model's maximum context length is 8192 tokens and your request has 500 "
                                        "input tokens (8192 > 8192 - 500).", "type": "BadRequestError",
                                        "code": 400}})
MAX_TOKENS_ONLY = json.dumps({"object": "error", "message": "'max_tokens' is too large: 9000.", "code": 400})
REDUCE_ONLY = json.dumps({"object": "error", "message": "You requested 9000 tokens. Please reduce the length of the "
                          "messages or completion.", "code": 400})
REQUESTED = json.dumps({"object": "error", "message": "This model's maximum context length is 8192 tokens. However, "
                        "you requested 9000 tokens (8000 in the messages, 1000 in the completion).", "code": 400})
OVERFLOW_BODIES = {"vllm": VLLM_NEW, "vllm-old": VLLM_OLD, "openai": OPENAI, "vllm-v1-decoder": VLLM_V1_DECODER,
                   "vllm-max-tokens": VLLM_MAX_TOKENS, "max-tokens-only": MAX_TOKENS_ONLY,
                   "reduce-only": REDUCE_ONLY, "you-requested": REQUESTED}


@pytest.mark.parametrize("body", list(OVERFLOW_BODIES.values()), ids=list(OVERFLOW_BODIES))
def test_context_overflow_400_is_recognised_and_not_retryable(body):
    e = classify_http_error(400, body)
    assert e.kind == CONTEXT_OVERFLOW and not e.retryable and e.status == 400




@pytest.mark.parametrize("message", ["'max_tokens' must be at least 1, got 0.",
                                     "temperature must be non-negative, got -1.0.",
                                     "The model `x` does not exist."])
def test_other_400s_are_not_context_overflow(message):
    assert classify_http_error(400, json.dumps({"error": {"message": message, "code": 400}})).kind == REJECTED


@pytest.mark.parametrize("status,body,kind", [
    (400, json.dumps({"error": {"message": '"auto" tool choice requires --enable-auto-tool-choice',
                                "type": "BadRequestError", "code": 400}}), REJECTED),
    (404, json.dumps({"error": {"message": "The model `x` does not exist.", "type": "NotFoundError"}}), REJECTED),
    (422, "Unprocessable Entity", REJECTED),
    (401, "", REJECTED),
    (500, "<html>oops</html>", SERVER_ERROR),
    (503, "", SERVER_ERROR),
    (429, json.dumps({"error": {"message": "rate limited"}}), SERVER_ERROR),
])
def test_http_errors_are_classified(status, body, kind):
    e = classify_http_error(status, body)
    assert e.kind == kind and e.retryable == (kind == SERVER_ERROR)
    assert f"HTTP {status}" in str(e)


@pytest.mark.parametrize("body,why", [
    ("<html><body>502 Bad Gateway</body></html>", "not JSON"),
    (json.dumps({"id": "x", "object": "chat.completion"}), "no choices[0].message"),
    (json.dumps({"choices": []}), "no choices[0].message"),
    (json.dumps({"error": {"message": "engine dead"}}), "engine dead"),
    (json.dumps([1, 2]), "not an object"),
])
def test_garbage_200_bodies_are_bad_replies(body, why):
    with pytest.raises(EndpointError) as ei:
        parse_chat_completion(body)
    assert ei.value.kind == BAD_REPLY and ei.value.retryable and why in str(ei.value)


def test_reply_parsing_keeps_malformed_arguments_as_policy_output():
    out = {"message": {"content": None, "tool_calls": [
        {"id": "a", "function": {"name": "get_user_details", "arguments": '{"user_id": "x"}'}},
        {"id": "b", "function": {"name": "get_user_details", "arguments": '{"user_id": '}},
        {"id": "c", "function": {"name": "search", "arguments": {"k": 1}}}]}, "finish_reason": "tool_calls"}
    r = parse_reply(out)
    assert r.text == "" and [tc.arguments for tc in r.tool_calls] == [{"user_id": "x"}, None, {"k": 1}]
    assert "not valid JSON" in r.tool_calls[1].error and r.tool_calls[2].raw_arguments == '{"k": 1}'
    with pytest.raises(EndpointError) as ei:  # a tool call without a name is the server's fault
        parse_reply({"message": {"tool_calls": [{"id": "a"}]}})
    assert ei.value.kind == BAD_REPLY


def test_display_url_hides_credentials():
    assert display_url("http://u:secret@host:8000/v1") == "http://host:8000/v1"
    assert display_url("http://host/v1") == "http://host/v1"


def _user(srv, **kw):
    cfg = UserSimConfig(base_url=srv.base_url, model="m", timeout=2.0, backoff=0.01, **kw)
    prompt = CustomerPrompt("Play this customer: ", ".", "Hi", PromptInfo(OWN_WORDS, "0" * 64))
    return UserSimulator(cfg, "scenario", prompt)


def _ok(req):
    return {"content": "hello"}


def test_user_simulator_context_overflow_is_infrastructure_and_not_retried():
    with LocalChatServer(_ok, faults=["context_overflow", None]) as srv:
        user = _user(srv, max_retries=3)
        with pytest.raises(UserSimulatorError) as ei:
            asyncio.run(user.start())
        assert srv.requests == 1  # the same request would get the same answer
    e = ei.value
    assert e.cause == CONTEXT_OVERFLOW and e.status == 400 and e.attempts == 1
    assert "failed after 1 attempt (not retried" in str(e) and "maximum context length" in str(e)


@pytest.mark.parametrize("fault", ["html", "no_choices", "drop", 502])
def test_user_simulator_retries_bad_replies_and_then_succeeds(fault):
    with LocalChatServer(_ok, faults=[fault, fault]) as srv:
        user = _user(srv, max_retries=2)
        assert asyncio.run(user.start()).text == "hello"
        assert srv.requests == 3 and user.calls == 1


def test_user_simulator_gives_up_on_garbage_with_a_clear_error():
    with LocalChatServer(_ok, faults=["html"] * 3) as srv:
        with pytest.raises(UserSimulatorError) as ei:
            asyncio.run(_user(srv, max_retries=2).start())
    assert ei.value.cause == BAD_REPLY and "failed after 3 attempts" in str(ei.value)
    assert "not JSON" in str(ei.value) and "502 Bad Gateway" in str(ei.value)


def test_endpoint_that_dies_and_comes_back_within_the_retries():
    with LocalChatServer(_ok) as srv:
        srv.die()
        timer = threading.Timer(0.3, srv.revive)
        timer.start()
        try:
            t0 = time.time()
            user = _user(srv, max_retries=8)
            user.config.backoff = 0.05  # 0.05, 0.1, 0.2, 0.4, ...: the server is back before the 5th attempt
            assert asyncio.run(user.start()).text == "hello"
            assert time.time() - t0 >= 0.3
        finally:
            timer.join()


def _policy(srv, **kw):
    return PolicySettings(base_url=srv.base_url, model="pol", timeout=2.0, backoff=0.01, max_retries=1, **kw)


async def _ask(settings):
    import httpx

    async with httpx.AsyncClient() as http:
        return await PolicyClient(settings, http).reply([{"role": "user", "content": "hi"}], [], "7:0")


def test_policy_context_overflow_is_a_policy_failure_not_retried():
    with LocalChatServer(_ok, context_limit=3) as srv:
        with pytest.raises(PolicyContextOverflow, match="maximum context length is 3 tokens"):
            asyncio.run(_ask(_policy(srv)))
        assert srv.requests == 1


def test_near_the_context_end_the_reply_cap_shrinks_to_what_is_left():
    """vLLM 0.29.0 refuses a prompt that fits when prompt + max_tokens exceeds the context, and says how long
    the prompt is: the request goes again with max_tokens = context - prompt (training caps a turn at the
    remaining budget the same way), and only a prompt that leaves no room is a context overflow."""
    from openrlhf_mtgrpo.rollout.local_server import estimated_tokens

    prompt = estimated_tokens({"messages": [{"role": "user", "content": "hi"}]})
    seen = []

    def ok(req):
        seen.append(req["max_tokens"])
        return {"content": "hello"}

    with LocalChatServer(ok, context_limit=prompt + 100) as srv:
        reply = asyncio.run(_ask(_policy(srv, max_tokens=8192)))
        assert reply.text == "hello" and reply.max_tokens == 100 and seen == [100] and srv.requests == 2
    with LocalChatServer(ok, context_limit=prompt) as srv:  # no room left: the policy's failure
        with pytest.raises(PolicyContextOverflow, match=f"your prompt contains {prompt} input tokens"):
            asyncio.run(_ask(_policy(srv, max_tokens=8192)))
        assert srv.requests == 1


@pytest.mark.parametrize("message,room", [
    ("This model's maximum context length is 16384 tokens. However, you requested 8192 output tokens and your "
     "prompt contains 9000 input tokens, for a total of 17192 tokens. Please reduce the length of the input prompt "
     "or the number of requested output tokens.", 7384),
    ("This model's maximum context length is 16384 tokens. However, you requested 8192 output tokens and your "
     "prompt contains at least 8193 input tokens, for a total of at least 16385 tokens.", None),  # length unknown
    ("'max_tokens' or 'max_completion_tokens' is too large: 8192. This model's maximum context length is 16384 "
     "tokens and your request has 9000 input tokens (8192 > 16384 - 9000).", 7384),
    ("This model's maximum context length is 4096 tokens. However, your request has 5000 input tokens. Please "
     "reduce the length of the input messages.", -904),
    ("The decoder prompt (length 9000) is longer than the maximum model length of 8192.", None),
])
def test_context_room_is_read_from_vllms_wordings(message, room):
    from openrlhf_mtgrpo.rollout.user_sim import context_room

    assert context_room(message) == room


@pytest.mark.parametrize("fault,kind,requests", [("html", "bad_reply", 2), ("no_choices", "bad_reply", 2),
                                                 (404, "rejected", 1), (400, "rejected", 1), (500, "server_error", 2)])
def test_policy_endpoint_failures_are_infrastructure(fault, kind, requests):
    with LocalChatServer(_ok, fault_fn=lambda req: fault) as srv:
        with pytest.raises(PolicyEndpointFailure) as ei:
            asyncio.run(_ask(_policy(srv)))
        assert srv.requests == requests  # 400/404 are not retried; the others once (max_retries=1)
    f = ei.value.failure
    assert f.kind == kind and f.source == "policy endpoint" and f.attempts == requests


def test_policy_request_carries_training_chat_template_options():
    seen = []

    def responder(req):
        seen.append(req)
        return {"content": "ok"}

    with LocalChatServer(responder) as srv:
        asyncio.run(_ask(_policy(srv)))
        asyncio.run(_ask(_policy(srv, enable_thinking=True, max_tokens=256, top_p=0.9)))
        asyncio.run(_ask(_policy(srv, enable_thinking=None)))
    assert seen[0]["chat_template_kwargs"] == {"enable_thinking": False} and "max_tokens" not in seen[0]
    assert seen[1]["chat_template_kwargs"] == {"enable_thinking": True}
    assert seen[1]["max_tokens"] == 256 and seen[1]["top_p"] == 0.9
    assert "chat_template_kwargs" not in seen[2]
    assert seen[0]["user"] == "7:0" and seen[0]["model"] == "pol"


class FixedReplyServer:
    """An HTTP server on 127.0.0.1 that answers every POST with one status and body (counts the requests)."""

    def __init__(self, status, body):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        owner = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.requests += 1
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("body", [VLLM_V1_DECODER, MAX_TOKENS_ONLY, REDUCE_ONLY], ids=["decoder", "max-tokens",
                                                                                      "reduce"])
def test_engine_overflow_wordings_are_policy_failures_not_rejections(body):
    with FixedReplyServer(400, body) as srv:
        with pytest.raises(PolicyContextOverflow, match="HTTP 400"):
            asyncio.run(_ask(_policy(srv)))
        assert srv.requests == 1  # not retried
