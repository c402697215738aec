"""A stream between an upstream and a client: a bounded queue the governed call fills and the response drains.

The governed call (`relay`) runs as a task of its own, so it ends, and is recorded, however the client's side ends:
when the client goes away (`ChatStream.abandon`, a plain call, safe in a cancelled task) it closes the upstream's
stream (the provider stops working) and the call is charged for what was produced until then.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from podium.cost import Tokens
from podium.errors import ActorStopped
from podium.gateway._guardrails import ChunkGuard, OutputBlocked
from podium.gateway._upstream import ChatChunk, ChatRequest, ChunkStream, Upstream, UpstreamError

HALT_CHECK_S = 0.5  # how often a stream asks whether a kill or a suspension stopped its principal
STREAM_BUFFER = 64  # chunks a slow client may fall behind before the upstream is made to wait
MAX_STREAM_S = 1800.0  # the longest a stream may last: well within the hour after which holds count as abandoned


@dataclasses.dataclass
class Tally:
    """What a stream produced, for its record: the provider's usage if it said, else counted."""

    chunks: int = 0
    chars: int = 0
    usage: Tokens | None = None
    compute_seconds: float = 0.0
    ended: str = "complete"  # complete | client_disconnected | cut: <why>
    text: list[str] = dataclasses.field(default_factory=list)  # what the model produced (not all of it sent)
    cut: Exception | None = None  # why the stream was cut: a kill, the output guardrail, the upstream failing
    blocked: OutputBlocked | None = None  # the output guardrail stopped the reply
    keeps_answer: bool = False  # keep what the first choice says, to compare the whole stream (`answer`)
    said: list[str] = dataclasses.field(default_factory=list)  # the first choice's content, apart from tool calls
    calls: dict[int | str, tuple[str, list[str]]] = dataclasses.field(default_factory=dict)  # name, argument parts

    def keep(self, body: dict[str, Any] | None) -> None:
        """Keep what a chunk adds to the first choice, if this tally keeps the answer."""
        if not self.keeps_answer:
            return
        for index, delta in _deltas(body):
            if index != 0:
                continue
            if isinstance(delta.get("content"), str):
                self.said.append(delta["content"])
            for call in _tool_calls(delta):
                function = call["function"] if isinstance(call.get("function"), dict) else {}
                at = call.get("index")  # a call's name comes once, its arguments in pieces, under its index
                at = at if isinstance(at, int) else str(call.get("id") or len(self.calls))  # or whole, by its id
                name, arguments = self.calls.get(at, ("", []))
                self.calls[at] = (name or str(function.get("name") or ""), arguments)
                if isinstance(function.get("arguments"), str):
                    arguments.append(function["arguments"])

    def answer(self) -> dict[str, Any] | None:
        """The stream's first choice as a whole chat.completion body gives it; None if it did not end whole (or
        this tally did not keep it)."""
        if not self.keeps_answer or self.ended != "complete" or self.cut is not None:
            return None
        ordered = sorted(self.calls.items(), key=lambda call: call[0] if isinstance(call[0], int) else math.inf)
        calls = [{"function": {"name": name, "arguments": "".join(parts)}} for _, (name, parts) in ordered]
        return {"choices": [{"message": {"content": "".join(self.said), "tool_calls": calls}}]}

    def cut_by(self, error: Exception) -> None:
        self.cut, self.ended = error, f"cut: {getattr(error, 'message', error)}"

    def audit_detail(self) -> dict[str, str]:
        return {"stream_end": self.ended, "usage_from": "provider" if self.usage is not None else "estimate"}


class End:
    """The stream is over: `error` says why, if it ended badly."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class ChatStream:
    """The client's side of a stream: iterate it for chunks (the last may be a usage chunk); `abandon` it when the
    client is gone."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[ChatChunk | End] = asyncio.Queue(STREAM_BUFFER)
        self.gone = asyncio.Event()
        self.delivered = False  # a chunk is on its way to the client: no other upstream may answer in its place

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> ChatChunk:
        if self.gone.is_set():
            raise StopAsyncIteration
        item = await self.queue.get()
        if isinstance(item, End):
            self.gone.set()
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    def abandon(self) -> None:
        self.gone.set()

    async def put(self, item: ChatChunk | End) -> bool:
        """Hand `item` to the client's side; False if the client went away first (a slow client makes the
        upstream wait, up to STREAM_BUFFER chunks behind)."""
        if self.gone.is_set():
            return False
        if not self.queue.full():
            self.queue.put_nowait(item)
            return True
        put, left = asyncio.ensure_future(self.queue.put(item)), asyncio.ensure_future(self.gone.wait())
        done, pending = await asyncio.wait({put, left}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return put in done


async def relay(
    upstream: Upstream,
    request: ChatRequest,
    stream: ChatStream,
    halted: Callable[[], Awaitable[str | None]],
    guard: ChunkGuard | None = None,
    *,
    keep: bool = False,
) -> Tally:
    """Pass the upstream's chunks to `stream` until it ends or the client leaves; through the output `guard`, if
    there is one, which releases text only once it is checked. Every HALT_CHECK_S, whatever the stream is doing
    (flowing, or stalled on a quiet upstream or a client that stopped reading), `halted` is asked why it may not go
    on (a kill, a suspension), and a stream older than MAX_STREAM_S is cut: either stops the upstream. An upstream
    failure before the upstream produced anything is raised (another upstream may answer); after that, it ends
    the stream, which is paid for what was produced."""
    tally, started = Tally(keeps_answer=keep), time.monotonic()  # keep: the answer, for a shadow to compare
    chunks = upstream.stream(request)
    pump = asyncio.ensure_future(_pump(chunks, stream, tally, guard))
    try:
        while not (await asyncio.wait({pump}, timeout=HALT_CHECK_S))[0]:
            why = await halted()
            if why is None and time.monotonic() - started > MAX_STREAM_S:
                why = f"the stream ran past {MAX_STREAM_S / 60:.0f} minutes, the longest a gateway stream may last"
            if why is not None:
                tally.cut_by(ActorStopped(f"{why}: the stream was cut."))
                break
        else:
            pump.result()  # an upstream failure before anything was produced: raised, for a fallback
    finally:
        if not pump.done():
            pump.cancel()
            await asyncio.wait({pump})
        await chunks.aclose()  # stops the provider's work if the stream ended early
    produced = getattr(chunks, "produced", None)  # what an in-process model made, exactly, even if cut short
    if tally.usage is None and produced is not None:
        tally.usage, tally.compute_seconds = produced.usage, produced.compute_seconds
    if tally.usage is None:
        tally.compute_seconds = time.monotonic() - started  # the upstream's work, as near as known
    return tally


async def _pump(chunks: ChunkStream, stream: ChatStream, tally: Tally, guard: ChunkGuard | None) -> None:
    """Move the upstream's chunks to the client's side, counting what was produced."""
    try:
        async for chunk in chunks:
            if chunk.usage is not None:
                tally.usage, tally.compute_seconds = chunk.usage, chunk.compute_seconds
                if guard is not None and (rest := guard.finish()) is not None:
                    await _deliver(stream, ChatChunk(body=rest))  # what the guard held, now checked
                await stream.put(chunk)  # for a client that asked for usage in the stream
                continue
            tally.chunks += 1
            text = delta_text(chunk.body)
            tally.chars += len(text)
            tally.text.append(text)
            tally.keep(chunk.body)
            released = chunk.body if guard is None or chunk.body is None else guard.filter(chunk.body)
            if released is not None and not await _deliver(stream, ChatChunk(body=released)):
                tally.ended = "client_disconnected"
                return
    except OutputBlocked as blocked:
        tally.blocked = blocked
        tally.cut_by(blocked)
    except UpstreamError as exc:
        if not stream.delivered and not tally.chunks:
            raise
        tally.cut_by(exc)  # it produced something (delivered or held by the guard): that is paid for


async def _deliver(stream: ChatStream, chunk: ChatChunk) -> bool:
    """Hand a chunk to the client's side; False if the client went away."""
    if not await stream.put(chunk):
        return False
    stream.delivered = True
    return True


def delta_text(body: dict[str, Any] | None) -> str:
    """The text a chunk adds (content and tool-call arguments), for counting and the reply's digest."""
    text = []
    for _, delta in _deltas(body):
        if isinstance(delta.get("content"), str):
            text.append(delta["content"])
        for call in _tool_calls(delta):
            function = call.get("function")
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                text.append(function["arguments"])
    return "".join(text)


def _deltas(body: object) -> Iterator[tuple[object, dict[str, Any]]]:
    """Each choice's delta in a chunk, with the choice's index, whatever shape the upstream sent."""
    choices = body.get("choices") if isinstance(body, dict) else None
    for choice in choices if isinstance(choices, list) else ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            yield choice.get("index", 0), delta


def _tool_calls(delta: dict[str, Any]) -> Iterator[dict[str, Any]]:
    calls = delta.get("tool_calls")
    yield from (call for call in (calls if isinstance(calls, list) else ()) if isinstance(call, dict))
