"""A small OpenAI-compatible chat-completions server on 127.0.0.1 (stdlib only).

Serves a Python *responder* ``fn(request: dict) -> dict`` (an assistant message:
``{"content": ..., "tool_calls": [...], "finish_reason": ...}``) at
``POST /v1/chat/completions``.  Used by ``mtgrpo demo`` for its rule-based user
simulator and by the tests for stub policy and user endpoints.

Fault injection, for tests of what clients do with a misbehaving endpoint.  A
fault is one of:

* ``None``: answer normally;
* an HTTP status code (e.g. ``500``): that status with an OpenAI-style error body;
* ``("sleep", seconds)``: wait, then answer (a client with a shorter timeout gives up);
* ``"context_overflow"`` or ``("context_overflow", max_len)``: HTTP 400 with vLLM's
  context-overflow error (vllm/entrypoints/renderer.py ``_create_tokens_prompt``);
* ``"html"``: HTTP 200 with an HTML page (what a proxy in front of a dead server sends);
* ``"no_choices"``: HTTP 200 with JSON that has no ``choices``;
* ``"drop"``: close the connection without any reply.

``faults`` is a list consumed one per request; after it runs out, ``fault_fn(request)``
(if given) picks the fault, so tests can fail chosen episodes deterministically.
``context_limit`` makes the server refuse (as vLLM 0.29.0 does) every request whose
estimated prompt length plus its ``max_tokens`` exceeds it, naming both.  :meth:`die` stops listening (clients get
"connection refused") and :meth:`revive` serves again on the same port.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def estimated_tokens(request: Dict[str, Any]) -> int:
    """A stand-in for the prompt's token count: 1 token per 4 characters of the messages' JSON."""
    return len(json.dumps(request.get("messages") or [])) // 4


def context_overflow_message(max_len: int, prompt_tokens: int, max_output: Optional[int] = None) -> str:
    """vLLM's wording: with ``max_output`` (the request's ``max_tokens``) vLLM 0.29.0's
    (vllm/renderers/params.py, ``TokenizeParams._token_len_check``), else older vLLM's
    (vllm/entrypoints/renderer.py, ``_create_tokens_prompt``)."""
    if max_output is not None:
        return (f"This model's maximum context length is {max_len} tokens. However, you requested {max_output} "
                f"output tokens and your prompt contains {prompt_tokens} input tokens, for a total of "
                f"{prompt_tokens + max_output} tokens. Please reduce the length of the input prompt or the number "
                f"of requested output tokens.")
    return (f"This model's maximum context length is {max_len} tokens. However, your request has "
            f"{prompt_tokens} input tokens. Please reduce the length of the input messages.")


class _Server(ThreadingHTTPServer):
    # the listen backlog: many episodes connect at once (the standard library's default of 5 overflows under
    # load, and the kernel then resets connections the client sees as a failing customer)
    request_queue_size = 256


class LocalChatServer:
    def __init__(self, responder: Callable[[Dict[str, Any]], Dict[str, Any]], faults: Optional[List] = None,
                 host: str = "127.0.0.1", port: int = 0, fault_fn: Optional[Callable[[Dict[str, Any]], Any]] = None,
                 context_limit: Optional[int] = None):
        self.responder = responder
        self.faults = list(faults or [])
        self.fault_fn = fault_fn
        self.context_limit = context_limit
        self.requests = 0
        self.log: List[Dict[str, Any]] = []  # per chat request: its ``user`` tag, message count, fault
        self._lock = threading.Lock()
        self._address = (host, port)
        self.httpd: Optional[ThreadingHTTPServer] = None
        self.thread: Optional[threading.Thread] = None
        self._bind()

    # -- lifecycle
    def _bind(self) -> None:
        self.httpd = _Server(self._address, self._handler())
        self.httpd.daemon_threads = True
        self._address = self.httpd.server_address[:2]  # keep the port across die()/revive()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._address
        return f"http://{host}:{port}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.httpd is not None:
            if self.thread.is_alive():  # shutdown() waits for serve_forever(): only when it runs
                self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    start = __enter__

    def stop(self):
        self.__exit__()

    def die(self) -> None:
        """Stop listening: new connections are refused until :meth:`revive`."""
        self.__exit__()

    def revive(self) -> None:
        """Serve again, on the same port."""
        if self.httpd is None:
            self._bind()
            self.thread.start()

    # -- what is sent
    def _pick_fault(self, req: Dict[str, Any]):
        with self._lock:
            self.requests += 1
            if self.faults:
                return self.faults.pop(0)
        if self.fault_fn is not None:
            return self.fault_fn(req)
        if self.context_limit is not None and estimated_tokens(req) + (req.get("max_tokens") or 0) > self.context_limit:
            return ("context_fit", self.context_limit)
        return None

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, status, obj, content_type="application/json"):
                body = obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status, message, err_type="BadRequestError", param=None):
                # vLLM's ErrorResponse: {"error": {"message", "type", "param", "code"}}
                self._send(status, {"error": {"message": message, "type": err_type, "param": param, "code": status}})

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    return self._send(200, {"object": "list", "data": [{"id": "local", "object": "model"}]})
                self._error(404, "not found", "NotFoundError")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    req = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    return self._error(400, "bad json")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._error(404, "not found", "NotFoundError")
                fault = server._pick_fault(req)
                with server._lock:
                    server.log.append({"user": req.get("user"), "messages": len(req.get("messages") or []),
                                       "fault": fault})
                if isinstance(fault, tuple) and fault[0] == "sleep":
                    time.sleep(fault[1])
                elif isinstance(fault, int):
                    return self._error(fault, f"injected {fault}",
                                       "InternalServerError" if fault >= 500 else "BadRequestError")
                elif isinstance(fault, tuple) and fault[0] == "context_fit":  # as vLLM 0.29.0 checks
                    return self._error(400, context_overflow_message(fault[1], estimated_tokens(req),
                                                                     req.get("max_tokens") or 0),
                                       param="input_tokens")
                elif fault == "context_overflow" or (isinstance(fault, tuple) and fault[0] == "context_overflow"):
                    limit = fault[1] if isinstance(fault, tuple) else 32768
                    prompt = max(estimated_tokens(req), limit + 1)
                    return self._error(400, context_overflow_message(limit, prompt), param="input_tokens")
                elif fault == "html":
                    return self._send(200, HTML_PAGE, "text/html")
                elif fault == "no_choices":
                    return self._send(200, {"id": "chatcmpl-local", "object": "chat.completion",
                                            "model": req.get("model", "local"),
                                            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})
                elif fault == "drop":
                    self.close_connection = True
                    return
                elif fault is not None:
                    raise ValueError(f"unknown fault {fault!r}")
                try:
                    msg = server.responder(req)
                except Exception as e:  # a responder bug shows up as a 500, as from a real server
                    return self._error(500, f"{type(e).__name__}: {e}", "InternalServerError")
                message = {"role": "assistant", "content": msg.get("content")}
                if msg.get("reasoning_content"):  # what vLLM's reasoning parsers return beside the content
                    message["reasoning_content"] = msg["reasoning_content"]
                if msg.get("tool_calls"):
                    message["tool_calls"] = [
                        {"id": f"call_{i}", "type": "function",
                         "function": {"name": c["name"], "arguments": c["arguments"] if isinstance(c["arguments"], str)
                                      else json.dumps(c["arguments"])}}
                        for i, c in enumerate(msg["tool_calls"])]
                finish = msg.get("finish_reason") or ("tool_calls" if msg.get("tool_calls") else "stop")
                self._send(200, {
                    "id": "chatcmpl-local", "object": "chat.completion", "created": int(time.time()),
                    "model": req.get("model", "local"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})

        return Handler
