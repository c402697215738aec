"""Group commit: many threads' small writes share one transaction, and each caller waits for its commit.

A governed call returns only once its ledger row and audit entry are committed (a step checkpointed before its
record would lose the record for good). Under load, hundreds of calls ride on one commit and a handful of
statements instead of paying for their own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
MAX_BATCH = 256


class GroupCommitter(Generic[T]):
    """Collects items from many threads and writes them with `write_batch` in one transaction per batch."""

    def __init__(self, engine: sa.Engine, write_batch: Callable[[sa.Connection, list[T]], None]) -> None:
        self._engine = engine
        self._write_batch = write_batch
        self._queue: queue.SimpleQueue[tuple[T, Future[None]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def write(self, item: T) -> None:
        """Write `item`; return once it is committed, or raise what writing it raised."""
        done: Future[None] = Future()
        self._start()
        self._queue.put((item, done))
        done.result()

    def close(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="podium-group-commit", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            closing = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                batch.append(more)
            self._commit(batch)
            if closing:
                return

    def _commit(self, batch: list[tuple[T, Future[None]]]) -> None:
        try:
            with self._engine.begin() as conn:
                self._write_batch(conn, [item for item, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to the callers below
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for single in batch:  # find the item that failed; the others still commit
                self._commit([single])
            return
        for _, done in batch:
            done.set_result(None)
