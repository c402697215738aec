"""A real OpenAI-compatible HTTP server on loopback that can misbehave on purpose: answer, fail with 5xx, reject
the request with 400, or hang.

It stands in for a remote provider at the wire level: podium's client speaks real HTTP to it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Mode = Literal["ok", "error", "reject", "hang"]


class FakeProvider:
    def __init__(self, name: str) -> None:
        self.name = name
        self.mode: Mode = "ok"
        self.completions = 0  # chat-completion requests received, whatever the answer
        self.reply: str | None = None  # what it answers (default: "<name> answers: <prompt>")
        self.hang_s = 2.0
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @contextmanager
    def running(self) -> Iterator[FakeProvider]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": provider.name, "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                provider.completions += 1
                if provider.mode == "error":
                    self._send(503, {"error": {"message": "upstream overloaded", "type": "server_error"}})
                    return
                if provider.mode == "reject":
                    self._send(400, {"error": {"message": "prompt too long", "type": "invalid_request_error"}})
                    return
                if provider.mode == "hang":
                    time.sleep(provider.hang_s)
                prompt = body["messages"][-1]["content"]
                self._send(
                    200,
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {
                                    "role": "assistant",
                                    "content": provider.reply or f"{provider.name} answers: {prompt}",
                                },
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
                    },
                )

            def _send(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout): that is the point of "hang"

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
