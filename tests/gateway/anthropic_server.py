"""A real Anthropic-shaped HTTP server on loopback (`POST /v1/messages`), scripted per test.

It answers whole or streamed (Anthropic's server-sent events, chunked, N text deltas with a delay between
events), with text, a tool call, and usage with cache reads and writes; or fails with a status; or replays canned
bytes (to feed podium's own translated bodies and streams to the official SDK). It records every request and
whether a client cut a stream short. TCP_NODELAY, as a stub upstream needs (FACTS.md).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the server answers next (every request gets the same reply until the test changes it)."""

    text: str = "Hello from the stub."
    tool_use: tuple[str, dict[str, Any]] | None = None  # (name, input): a tool_use block after the text
    usage: dict[str, Any] = field(default_factory=lambda: {"input_tokens": 12, "output_tokens": 5})
    # usage the stream's message_delta carries (cumulative); None: output_tokens only, as Anthropic long did
    delta_usage: dict[str, Any] | None = None
    stop_reason: str | None = None  # default: tool_use with a tool call, else end_turn
    deltas: int = 3  # text deltas when streamed
    delay_s: float = 0.0  # pause before each streamed event after message_start
    status: int = 200
    error_type: str = "api_error"
    error_message: str = "scripted failure"
    retry_after: str | None = None
    error_mid_stream: str | None = None  # an error event of this type after the first delta
    stop_early: bool = False  # end the stream after the first delta without message_stop
    raw: bytes | None = None  # canned bytes to answer with, as they are
    raw_content_type: str = "application/json"
    raw_status: int = 200
    raw_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class AnthropicServer:
    def __init__(self) -> None:
        self.reply = Reply()
        self.requests: list[Recorded] = []
        self.cut = threading.Event()  # a client went away in the middle of a stream
        self.finished_streams = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        """Forget what was scripted and seen so far (a server that a module's tests share)."""
        self.reply = Reply()
        self.requests.clear()
        self.cut.clear()
        self.finished_streams = 0

    def message(self, model: str) -> dict[str, Any]:
        """The whole answer the current reply scripts."""
        reply = self.reply
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        if reply.tool_use is not None:
            content.append(
                {"type": "tool_use", "id": "toolu_stub_1", "name": reply.tool_use[0], "input": reply.tool_use[1]}
            )
        return {
            "id": "msg_stub_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": self._stop_reason(),
            "stop_sequence": None,
            "usage": reply.usage,
        }

    def events(self, model: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The stream the current reply scripts, as Anthropic sends it."""
        reply = self.reply
        start_usage = {**reply.usage, "output_tokens": 1}
        start_usage.pop("output_tokens_details", None)
        message = {**self.message(model), "content": [], "stop_reason": None, "usage": start_usage}
        yield "message_start", {"type": "message_start", "message": message}
        yield "ping", {"type": "ping"}
        index = 0
        if reply.text:
            yield (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
            for n, piece in enumerate(_pieces(reply.text, reply.deltas)):
                yield (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
                if n == 0 and reply.error_mid_stream:
                    yield (
                        "error",
                        {"type": "error", "error": {"type": reply.error_mid_stream, "message": "scripted failure"}},
                    )
                    return
                if n == 0 and reply.stop_early:
                    return
            yield "content_block_stop", {"type": "content_block_stop", "index": 0}
            index = 1
        if reply.tool_use is not None:
            name, tool_input = reply.tool_use
            block = {"type": "tool_use", "id": "toolu_stub_1", "name": name, "input": {}}
            yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
            arguments = json.dumps(tool_input)
            for piece in _pieces(arguments, 3) if tool_input else [""]:  # no input: one empty piece, as Anthropic
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
        delta_usage = (
            reply.delta_usage if reply.delta_usage is not None else {"output_tokens": reply.usage["output_tokens"]}
        )
        delta = {"stop_reason": self._stop_reason(), "stop_sequence": None}
        yield "message_delta", {"type": "message_delta", "delta": delta, "usage": delta_usage}
        yield "message_stop", {"type": "message_stop"}

    def _stop_reason(self) -> str:
        return self.reply.stop_reason or ("tool_use" if self.reply.tool_use is not None else "end_turn")

    @contextmanager
    def running(self) -> Iterator[AnthropicServer]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                reply = stub.reply
                if reply.raw is not None:
                    self._send(reply.raw_status, reply.raw, reply.raw_content_type, reply.raw_headers)
                elif reply.status != 200:
                    error = {"type": "error", "error": {"type": reply.error_type, "message": reply.error_message}}
                    headers = {"retry-after": reply.retry_after} if reply.retry_after else {}
                    self._send(reply.status, json.dumps(error).encode(), "application/json", headers)
                elif body.get("stream"):
                    self._stream(body["model"])
                else:
                    self._send(200, json.dumps(stub.message(body["model"])).encode(), "application/json", {})

            def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for n, (name, data) in enumerate(stub.events(model)):
                        if n and stub.reply.delay_s:
                            time.sleep(stub.reply.delay_s)
                        event = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
                        self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    stub.finished_streams += 1
                except (BrokenPipeError, ConnectionResetError):
                    stub.cut.set()
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def _pieces(text: str, count: int) -> list[str]:
    """`text` in `count` pieces (fewer if it is shorter), which join back to it."""
    count = max(1, min(count, len(text)))
    step = -(-len(text) // count)
    return [text[i : i + step] for i in range(0, len(text), step)]


def openai_chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    """An OpenAI chunk body as an upstream yields it: what podium's Anthropic front door turns into events."""
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


TOOL_CHUNKS = [  # text in two pieces, then a tool call whose arguments arrive in fragments
    openai_chunk({"role": "assistant", "content": ""}),
    openai_chunk({"content": "Let me "}),
    openai_chunk({"content": "check."}),
    openai_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather"}}]}),
    openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Os'}}]}),
    openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'lo", "days": 2}'}}]}),
    openai_chunk({}, "tool_calls"),
]
