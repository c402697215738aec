"""Group commit: many threads' small writes share one transaction, and each caller waits for its commit.

A governed call returns only once its ledger row and audit entry are committed (a step checkpointed before its
record would lose the record for good). Under load, hundreds of calls ride on one commit and a handful of
statements instead of paying for their own.

There is no writer thread: the caller that finds no commit in progress leads, writing every item queued so far;
callers that arrive meanwhile queue up, and when the leader is done it hands the lead to the first of them. An
uncontended write therefore costs no thread switch, and a busy process no extra thread competing for the GIL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
MAX_BATCH = 256


class _Pending(Generic[T]):
    """One caller's item, and what happened to it: committed, failed, or its turn to lead."""

    __slots__ = ("error", "item", "leads", "settled")

    def __init__(self, item: T) -> None:
        self.item = item
        self.settled = threading.Event()
        self.error: BaseException | None = None
        self.leads = False


class GroupCommitter(Generic[T]):
    """Collects items from many threads and writes them with `write_batch` in one transaction per batch."""

    def __init__(self, engine: sa.Engine, write_batch: Callable[[sa.Connection, list[T]], None]) -> None:
        self._engine = engine
        self._write_batch = write_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending[T]] = []
        self._leading = False

    def write(self, item: T) -> None:
        """Write `item`; return once it is committed, or raise what writing it raised."""
        mine = _Pending(item)
        with self._lock:
            self._queue.append(mine)
            mine.leads = not self._leading
            self._leading = True
        if not mine.leads:
            mine.settled.wait()
        if mine.leads:  # first in, or handed the lead by the previous leader
            self._lead()
        if mine.error is not None:
            raise mine.error

    def close(self) -> None:
        """Nothing to stop: every write finished before its caller returned."""

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        try:
            self._commit(batch)
        except BaseException as exc:  # interrupted mid-commit: no waiter may be left blocked
            for pending in batch:
                if not pending.settled.is_set():
                    pending.error = exc
                    pending.settled.set()
            raise
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.leads = True
                    successor.settled.set()
                else:
                    self._leading = False

    def _commit(self, batch: list[_Pending[T]]) -> None:
        try:
            with self._engine.begin() as conn:
                self._write_batch(conn, [pending.item for pending in batch])
        except Exception as exc:  # noqa: BLE001 - handed to the callers below
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for single in batch:  # find the item that failed; the others still commit
                    self._commit([single])
                return
        for pending in batch:
            pending.settled.set()
