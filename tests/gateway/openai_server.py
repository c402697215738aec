"""A real OpenAI-shaped HTTP server on loopback for the gateway's tests: it answers, streams, calls tools, reports
the usage it is told to (cached and reasoning details included), fails with a status on purpose, and records what
it was sent and whether a client cut a stream short.

    with OpenAIServer() as upstream:
        upstream.script = Script(text="hi", usage={"prompt_tokens": 10, "completion_tokens": 2}, chunks=2)
        ...  # point a client at upstream.base_url
        assert upstream.requests[-1].body["tools"] == [...]

Starlette under uvicorn in a thread, on a socket bound before the thread starts (clients can connect at once).
asyncio sets TCP_NODELAY on every connection, so small answers are not held back by Nagle's algorithm.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_USAGE: dict[str, Any] = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


@dataclass
class Script:
    """What the server does with a chat request."""

    text: str = "Hello from the test upstream."
    usage: dict[str, Any] | None = field(default_factory=lambda: dict(DEFAULT_USAGE))  # None: report none
    tool_calls: list[dict[str, Any]] | None = None  # [{"name": ..., "arguments": "{...}"}]: answer with these
    chunks: int = 3  # a stream sends the text in this many pieces
    chunk_delay_s: float = 0.0  # before each piece of a stream
    delay_s: float = 0.0  # before answering at all
    fail_status: int | None = None  # answer with this error status instead
    retry_after: str | None = None  # the Retry-After header of a failure
    error_message: str = "the test upstream fails on purpose"
    send_done: bool = True  # end a stream with data: [DONE]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class OpenAIServer:
    """`/v1/chat/completions` (plain and streaming), `/v1/embeddings` and `/v1/models`, scripted by `script`, or by
    `queue` for the next requests in turn (each popped by one chat request)."""

    def __init__(self, model: str = "gpt-4o-test") -> None:
        self.model = model
        self.script = Script()
        self.queue: list[Script] = []
        self.usage_of: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # a request's usage, from its body
        self.requests: list[Received] = []
        self.streams_finished = 0
        self.streams_cut = 0  # streams the client closed before the last byte
        self._cut = threading.Event()
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._socket is not None, "start the server first"
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}/v1"

    def wait_for_cut(self, timeout_s: float = 10.0) -> bool:
        """True once a client has cut a stream short."""
        return self._cut.wait(timeout_s)

    def chat_requests(self) -> list[Received]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def reset(self) -> None:
        """Forget what was scripted and seen so far (a server that a module's tests share)."""
        self.script, self.queue = Script(), []
        self.requests.clear()
        self.streams_finished = self.streams_cut = 0
        self._cut.clear()

    def start(self) -> OpenAIServer:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(512)
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        # Idle connections are kept longer than a client keeps them (httpx: 5 s), as providers do: closing one just
        # as the client sends on it would fail a request for a reason of the test server's own.
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=75,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    async def _chat(self, request: Request) -> Response:
        body = await self._record(request)
        script = self.queue.pop(0) if self.queue else self.script
        if self.usage_of is not None:
            script = replace(script, usage=self.usage_of(body))
        if script.delay_s:
            await asyncio.sleep(script.delay_s)
        if script.fail_status is not None:
            headers = {"Retry-After": script.retry_after} if script.retry_after is not None else None
            error = {"error": {"message": script.error_message, "type": "server_error", "code": None}}
            return JSONResponse(error, status_code=script.fail_status, headers=headers)
        model = str(body.get("model", self.model))
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(self._events(script, model, include_usage), media_type="text/event-stream")
        finish = "tool_calls" if script.tool_calls else "stop"
        message: dict[str, Any] = {"role": "assistant", "content": None if script.tool_calls else script.text}
        if script.tool_calls:
            message["tool_calls"] = [_tool_call(i, call) for i, call in enumerate(script.tool_calls)]
        answer = _completion(model, "chat.completion", [{"index": 0, "message": message, "finish_reason": finish}])
        if script.usage is not None:
            answer["usage"] = script.usage
        return JSONResponse(answer)

    async def _events(self, script: Script, model: str, include_usage: bool) -> AsyncIterator[bytes]:
        finished = False
        try:
            deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
            if script.tool_calls:
                deltas += [
                    {"tool_calls": [_tool_call(i, call) | {"index": i}]} for i, call in enumerate(script.tool_calls)
                ]
            else:
                deltas += [{"content": piece} for piece in _pieces(script.text, script.chunks)]
            for delta in deltas:
                if script.chunk_delay_s:
                    await asyncio.sleep(script.chunk_delay_s)
                yield _event(self._chunk(model, delta, None, include_usage))
            finish = "tool_calls" if script.tool_calls else "stop"
            yield _event(self._chunk(model, {}, finish, include_usage))
            if include_usage and script.usage is not None:
                yield _event(_completion(model, "chat.completion.chunk", []) | {"usage": script.usage})
            if script.send_done:
                yield b"data: [DONE]\n\n"
            finished = True
        finally:
            if finished:
                self.streams_finished += 1
            else:
                self.streams_cut += 1
                self._cut.set()

    def _chunk(self, model: str, delta: dict[str, Any], finish: str | None, include_usage: bool) -> dict[str, Any]:
        chunk = _completion(model, "chat.completion.chunk", [{"index": 0, "delta": delta, "finish_reason": finish}])
        return chunk | {"usage": None} if include_usage else chunk  # as OpenAI does: null until the last chunk

    async def _embeddings(self, request: Request) -> Response:
        body = await self._record(request)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [{"object": "embedding", "index": i, "embedding": _vector(text)} for i, text in enumerate(texts)]
        tokens = sum(len(str(text).split()) for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"object": "list", "data": data, "model": body.get("model"), "usage": usage})

    async def _models(self, request: Request) -> Response:
        self.requests.append(Received(request.url.path, dict(request.headers), {}))
        return JSONResponse({"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "tests"}]})

    async def _record(self, request: Request) -> dict[str, Any]:
        body = json.loads(await request.body())
        self.requests.append(Received(request.url.path, dict(request.headers), body))
        return body if isinstance(body, dict) else {}


def _completion(model: str, kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": kind, "created": int(time.time()), "model": model, "choices": choices}


def _tool_call(index: int, call: dict[str, Any]) -> dict[str, Any]:
    function = {"name": call["name"], "arguments": call.get("arguments", "{}")}
    return {"id": f"call_{index}", "type": "function", "function": function}


def _pieces(text: str, count: int) -> list[str]:
    """`text` in `count` pieces (as even as it goes), which join back to it."""
    count = max(1, min(count, len(text) or 1))
    size, extra = divmod(len(text), count)
    bounds = [i * size + min(i, extra) for i in range(count + 1)]
    return [text[bounds[i] : bounds[i + 1]] for i in range(count)]


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _vector(text: object) -> list[float]:
    digest = hashlib.sha256(str(text).encode()).digest()
    return [byte / 255 for byte in digest[:8]]
