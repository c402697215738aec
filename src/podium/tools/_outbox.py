"""The outbox: where governed tools put messages for the outside world, exactly once each."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa

from podium import _current
from podium.governance import current_call
from podium.store import insert_if_absent, tables


@dataclass(frozen=True)
class OutboxMessage:
    idempotency_key: str
    run_id: str | None
    channel: str
    recipient: str
    body: str
    created_at: float


def send_to_outbox(channel: str, recipient: str, body: str) -> bool:
    """Queue a message for delivery from inside a governed tool call; return False if it was already queued.

    The key is the governed call's site (run, step, n-th call), so a step that re-runs after a crash queues
    nothing the second time. A relay (not part of this issue) delivers the outbox to e-mail or a ticket system.
    """
    site = current_call()
    podium = _current.get()
    with podium.engine.begin() as conn:
        podium.governor.fence(conn)  # a kill acknowledged before this commits means no message
        return insert_if_absent(
            conn,
            tables.outbox,
            idempotency_key=site.key,
            run_id=site.run_id,
            channel=channel,
            recipient=recipient,
            body=body,
            created_at=time.time(),
        )


class Outbox:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def messages(self, *, run_ids: list[str] | None = None) -> list[OutboxMessage]:
        query = sa.select(tables.outbox).order_by(tables.outbox.c.created_at)
        if run_ids is not None:
            query = query.where(tables.outbox.c.run_id.in_(run_ids))
        with self._engine.connect() as conn:
            return [OutboxMessage(**row._mapping) for row in conn.execute(query)]
