"""The most a request may carry: a body is read whole (JSON is parsed in memory), so its size is bounded before any
route sees it, and an oversized one is refused with 413 in the error shape of the API at its path (the gateway's
OpenAI or Anthropic dialect, else podium's one shape)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from podium.api._errors import error_response
from podium.gateway import Problem, dialect_error

MAX_BODY_BYTES = 1024 * 1024  # a decision or an edit is a few KB; an edit's arguments at most 64 KB of JSON


class BodyLimit:
    """ASGI middleware: refuse a request whose body is over `max_bytes` (declared or sent) with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:  # a body sent in chunks, without a length: read up to the limit, no further
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is over {self.max_bytes:,} bytes; send at most {self.max_bytes:,}."
        response = dialect_error(scope["path"], Problem(413, "too_large", message)) or error_response(413, message)
        await response(scope, receive, send)
