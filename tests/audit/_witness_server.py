"""A witness of signed tree heads on loopback, speaking the protocol of docs/governance.md over real HTTP.

    GET  /heads    200, a JSON list of every head it holds, smallest tree first
    POST /heads    a head as JSON: 200 when it holds it (again), 409 when it holds another root for that size

Written from the protocol, not from podium's client. `available = False` makes it answer 503.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackWitness:
    def __init__(self) -> None:
        self.heads: dict[int, dict[str, Any]] = {}
        self.available = True
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/witness"

    @contextmanager
    def running(self) -> Iterator[LoopbackWitness]:
        witness = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self._refused():
                    return
                self._send(200, [witness.heads[size] for size in sorted(witness.heads)])

            def do_POST(self) -> None:
                if self._refused():
                    return
                head = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                held = witness.heads.setdefault(head["tree_size"], head)
                if held["root_hash"] != head["root_hash"]:
                    self._send(409, {"error": f"another root is witnessed for size {head['tree_size']}"})
                    return
                self._send(200, {"ok": True})

            def _refused(self) -> bool:
                if self.path != "/witness/heads":
                    self._send(404, {"error": "no such path"})
                    return True
                if not witness.available:
                    self._send(503, {"error": "witness down for maintenance"})
                    return True
                return False

            def _send(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
