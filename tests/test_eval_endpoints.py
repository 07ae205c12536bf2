"""Classifying what an OpenAI-compatible endpoint answers, against a real local HTTP server."""

import asyncio
import json
import threading
import time

import pytest

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


@pytest.mark.parametrize("body", [VLLM_NEW, VLLM_OLD, OPENAI], ids=["vllm", "vllm-old", "openai"])
def test_context_overflow_400_is_recognised_and_not_retryable(body):
    e = classify_http_error(400, body)
    assert e.kind == CONTEXT_OVERFLOW and not e.retryable and e.status == 400


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


def test_display_url_hides_credentials():
    assert display_url("http://u:secret@host:8000/v1") == "http://host:8000/v1"
    assert display_url("http://host/v1") == "http://host/v1"


def _user(srv, **kw):
    cfg = UserSimConfig(base_url=srv.base_url, model="m", timeout=2.0, backoff=0.01, **kw)
    return UserSimulator(cfg, "scenario")


def _ok(req):
    return {"content": "hello"}


def test_user_simulator_context_overflow_is_infrastructure_and_not_retried():
    with LocalChatServer(_ok, faults=["context_overflow", None]) as srv:
        user = _user(srv, max_retries=3)
        with pytest.raises(UserSimulatorError) as ei:
            asyncio.run(user.start("Hi"))
        assert srv.requests == 1  # the same request would get the same answer
    e = ei.value
    assert e.cause == CONTEXT_OVERFLOW and e.status == 400 and e.attempts == 1
    assert "failed after 1 attempt (not retried" in str(e) and "maximum context length" in str(e)


@pytest.mark.parametrize("fault", ["html", "no_choices", "drop", 502])
def test_user_simulator_retries_bad_replies_and_then_succeeds(fault):
    with LocalChatServer(_ok, faults=[fault, fault]) as srv:
        user = _user(srv, max_retries=2)
        assert asyncio.run(user.start("Hi")) == "hello"
        assert srv.requests == 3 and user.calls == 1


def test_user_simulator_gives_up_on_garbage_with_a_clear_error():
    with LocalChatServer(_ok, faults=["html"] * 3) as srv:
        with pytest.raises(UserSimulatorError) as ei:
            asyncio.run(_user(srv, max_retries=2).start("Hi"))
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
            assert asyncio.run(user.start("Hi")) == "hello"
            assert time.time() - t0 >= 0.3
        finally:
            timer.join()
