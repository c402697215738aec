"""The gateway benchmark's load generator: keep-alive HTTP/1.1 over raw asyncio streams, timing every request.

No HTTP client library: the generator shares two cores with the servers it measures, so each request costs it one
prebuilt write and one read of a head and a Content-Length (or chunked) body. A closed loop: `concurrency`
connections, each sending its next request as soon as the last one is answered. A non-200 answer or a broken
connection counts as an error (the connection is reopened), never as a latency.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from dataclasses import dataclass, field

MAX_HEAD_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Target:
    """Where requests go, and the one request every connection sends (its bytes built once)."""

    name: str
    host: str
    port: int
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def raw(self) -> bytes:
        head = [
            f"POST {self.path} HTTP/1.1",
            f"host: {self.host}:{self.port}",
            "content-type: application/json",
            f"content-length: {len(self.body)}",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + self.body


class HTTPError(Exception):
    """An answer other than 200, or one this reader cannot parse."""


@dataclass
class LoadResult:
    concurrency: int
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0

    def error(self, message: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = message

    @property
    def rps(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Connection:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.raw = target.raw
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.target.host, self.target.port, limit=MAX_HEAD_BYTES), CONNECT_TIMEOUT_S
        )
        self.reader, self.writer = reader, writer
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self) -> bytes:
        """Send the target's request, return the answer's body; HTTPError unless the status is 200."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(self.raw)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HTTPError(f"a malformed status line {status_line[:80]!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = close = False
        for line in lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = value == "close"
        if chunked:
            body = await self._chunked()
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body = await self.reader.read()
            close = True
        if close:
            self.close()
        if status != 200:
            raise HTTPError(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        return body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers expected: the empty line
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


async def _one(connection: Connection, result: LoadResult, recorded: tuple[float, float]) -> None:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(connection.request(), REQUEST_TIMEOUT_S)
    except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError, HTTPError) as exc:
        connection.close()
        if recorded[0] <= started < recorded[1]:
            result.error(f"{type(exc).__name__}: {exc}")
        return
    finished = time.perf_counter()
    if recorded[0] <= started and finished <= recorded[1]:
        result.latencies_s.append(finished - started)


async def closed_loop(target: Target, concurrency: int, duration_s: float, warmup_s: float) -> LoadResult:
    """`concurrency` connections sending back to back for warmup_s + duration_s; latencies and throughput count
    only the requests that started after the warm-up and finished before the end."""
    result = LoadResult(concurrency)
    connections = [Connection(target) for _ in range(concurrency)]
    start = time.perf_counter()
    window = (start + warmup_s, start + warmup_s + duration_s)

    async def worker(connection: Connection) -> None:
        while time.perf_counter() < window[1]:
            await _one(connection, result, window)

    try:
        await asyncio.gather(*(worker(connection) for connection in connections))
    finally:
        for connection in connections:
            connection.close()
    result.elapsed_s = duration_s
    return result


async def sequential(target: Target, requests: int) -> LoadResult:
    """`requests` requests one after another on one keep-alive connection (concurrency 1)."""
    result = LoadResult(1)
    connection = Connection(target)
    everything = (0.0, math.inf)
    start = time.perf_counter()
    try:
        for _ in range(requests):
            await _one(connection, result, everything)
    finally:
        connection.close()
    result.elapsed_s = time.perf_counter() - start
    return result


def run_closed_loop(target: Target, concurrency: int, duration_s: float, warmup_s: float) -> LoadResult:
    return asyncio.run(closed_loop(target, concurrency, duration_s, warmup_s))


def run_sequential(target: Target, requests: int) -> LoadResult:
    return asyncio.run(sequential(target, requests))
