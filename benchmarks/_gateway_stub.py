"""A fast OpenAI-compatible upstream for the gateway benchmark: the same small answer, with usage, at once.

    python -m benchmarks._gateway_stub --port 8101

Raw asyncio, standard library only, so that the stub costs next to nothing and every gateway measured against it
pays only for itself. TCP_NODELAY on every connection (without it a keep-alive client waits ~40 ms for the
delayed ACK of each answer) and a listen backlog of a few hundred (a sweep opens many connections at once).
`POST …/chat/completions` answers a `chat.completion` (or, with `"stream": true`, the same answer as SSE with a
final usage chunk); `GET …/models` lists the one model; anything else is a 404. Prints `ready PORT` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import time

BACKLOG = 512
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 4 * 1024 * 1024
MODEL = "stub-model"
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
REPLY_TEXT = "Hello from the stub."


def _response(status: str, body: bytes, content_type: str = "application/json", *, close: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
        f"connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _completion() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REPLY_TEXT},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        },
        separators=(",", ":"),
    ).encode()


def _stream() -> bytes:
    created = int(time.time())
    base = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": created, "model": MODEL}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        *(
            {**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            for word in re.findall(r"\S+\s*", REPLY_TEXT)
        ),
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": USAGE},
    ]
    events = "".join(f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n" for chunk in chunks)
    return (events + "data: [DONE]\n\n").encode()


MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "stub"}]}).encode()
NOT_FOUND = json.dumps({"error": {"message": "not found", "type": "invalid_request_error"}}).encode()


class StubConnection(asyncio.Protocol):
    """One keep-alive connection: requests are parsed from the buffer as they complete, answered in order."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self.transport.close()
                return
            head = bytes(self.buffer[:end]).decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip() == "content-length":
                    length = int(value.strip()) if value.strip().isdigit() else -1
            if not 0 <= length <= MAX_BODY_BYTES:
                self.transport.write(_response("400 Bad Request", NOT_FOUND, close=True))
                self.transport.close()
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, _, rest = head.partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            close = "connection: close" in head
            self.transport.write(self._answer(method, path, body, close=close))
            if close:
                self.transport.close()

    def _answer(self, method: str, path: str, body: bytes, *, close: bool) -> bytes:
        if method == "post" and path.endswith("/chat/completions"):
            try:
                streamed = json.loads(body).get("stream") is True
            except (ValueError, AttributeError):
                return _response("400 Bad Request", NOT_FOUND, close=close)
            if streamed:
                return _response("200 OK", _stream(), "text/event-stream", close=close)
            return _response("200 OK", _completion(), close=close)
        if method == "get" and path.endswith("/models"):
            return _response("200 OK", MODELS, close=close)
        return _response("404 Not Found", NOT_FOUND, close=close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(StubConnection, host, port, backlog=BACKLOG, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"ready {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
