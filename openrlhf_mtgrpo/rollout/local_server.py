"""A small OpenAI-compatible chat-completions server on 127.0.0.1 (stdlib only).

Serves a Python *responder* ``fn(request: dict) -> dict`` (an assistant message:
``{"content": ..., "tool_calls": [...]}``) at ``POST /v1/chat/completions``.  Used by
``mtgrpo demo`` for its rule-based user simulator and by the tests for stub policy
and user endpoints.  ``faults`` injects failures: a list consumed per request of
``None`` (answer), an HTTP status code (e.g. 500), or ``("sleep", seconds)``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional


class LocalChatServer:
    def __init__(self, responder: Callable[[Dict[str, Any]], Dict[str, Any]], faults: Optional[List] = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.responder = responder
        self.faults = list(faults or [])
        self.requests = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    return self._send(200, {"object": "list", "data": [{"id": "local", "object": "model"}]})
                self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    req = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    return self._send(400, {"error": {"message": "bad json"}})
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._send(404, {"error": {"message": "not found"}})
                with server._lock:
                    server.requests += 1
                    fault = server.faults.pop(0) if server.faults else None
                if isinstance(fault, tuple) and fault[0] == "sleep":
                    time.sleep(fault[1])
                elif isinstance(fault, int):
                    return self._send(fault, {"error": {"message": f"injected {fault}"}})
                try:
                    msg = server.responder(req)
                except Exception as e:  # a responder bug shows up as a 500, as from a real server
                    return self._send(500, {"error": {"message": f"{type(e).__name__}: {e}"}})
                message = {"role": "assistant", "content": msg.get("content")}
                if msg.get("tool_calls"):
                    message["tool_calls"] = [
                        {"id": f"call_{i}", "type": "function",
                         "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                        for i, c in enumerate(msg["tool_calls"])]
                self._send(200, {
                    "id": "chatcmpl-local", "object": "chat.completion", "created": int(time.time()),
                    "model": req.get("model", "local"),
                    "choices": [{"index": 0, "message": message,
                                 "finish_reason": "tool_calls" if msg.get("tool_calls") else "stop"}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}})

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    start = __enter__

    def stop(self):
        self.__exit__()
