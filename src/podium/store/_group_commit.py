"""Group commit: many threads' small writes share one transaction, and each caller waits for its commit.

A governed call returns only once its ledger row and audit entry are committed (a step checkpointed before its
record would lose the record for good). Under load, hundreds of calls ride on one commit instead of paying for
one each.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

import sqlalchemy as sa

Write = Callable[[sa.Connection], None]
MAX_BATCH = 256


class GroupCommitter:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[tuple[Write, Future[None]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, write: Write) -> None:
        """Run `write` in a shared transaction; return once it is committed, or raise what it raised."""
        done: Future[None] = Future()
        self._start()
        self._queue.put((write, done))
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
        while (item := self._queue.get()) is not None:
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._commit(batch)
                    return
                batch.append(more)
            self._commit(batch)

    def _commit(self, batch: list[tuple[Write, Future[None]]]) -> None:
        try:
            with self._engine.begin() as conn:
                for write, _ in batch:
                    write(conn)
        except Exception as exc:  # noqa: BLE001 - handed to the callers below, one by one
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for single in batch:  # find the write that failed; the others still commit
                self._commit([single])
            return
        for _, done in batch:
            done.set_result(None)
