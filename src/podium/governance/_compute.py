"""What a local model's compute costs a request, as routing weighs it: the CPU seconds a token the model has taken.

Read from the ledger on first use (every call, in any process), then counted from each call the governor records
in this process, as a stage that only watches. Workflow routing (`RoutedModel`) and the gateway's `podium/auto`
both cost a local model with it, so a model that has been slow loses to a cheaper remote one on either door.
"""

from __future__ import annotations

import threading
from typing import ClassVar

import sqlalchemy as sa

from podium.governance._call import Outcome
from podium.governance._pipeline import CallContext, Stage
from podium.store import tables

NOMINAL_COMPUTE_SECONDS = 1.0  # a local model's compute for a request until it has taken any


class MeasuredCompute(Stage):
    """The compute seconds and tokens each model's calls have taken, as the ledger has them."""

    name: ClassVar[str] = "measured_compute"

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._taken: dict[str, tuple[float, int]] | None = None  # model: (seconds, tokens); None until read

    def seconds(self, model: str, tokens: int) -> float:
        """The compute `tokens` are expected to take on `model`: its seconds a token so far, else a nominal second
        (weighing nothing on a remote model: its price has no compute rate)."""
        with self._lock:
            if self._taken is None:
                self._taken = self._read()
            seconds, taken = self._taken.get(model, (0.0, 0))
        return seconds / taken * tokens if taken else NOMINAL_COMPUTE_SECONDS

    def finish(self, ctx: CallContext, outcome: Outcome | None) -> None:
        """Count a recorded model call's compute, once it is in the ledger (None: it was not recorded)."""
        usage = ctx.usage
        tokens = usage.input_tokens + usage.output_tokens
        if outcome is None or ctx.call.kind != "model" or usage.compute_seconds <= 0 or tokens <= 0:
            return
        with self._lock:
            if self._taken is None:
                return  # not read yet: the ledger, read on first use, holds this call
            seconds, taken = self._taken.get(ctx.call.resource, (0.0, 0))
            self._taken[ctx.call.resource] = (seconds + usage.compute_seconds, taken + tokens)

    def _read(self) -> dict[str, tuple[float, int]]:
        ledger = tables.ledger
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    ledger.c.resource,
                    sa.func.sum(ledger.c.compute_seconds),
                    sa.func.sum(ledger.c.input_tokens + ledger.c.output_tokens),
                )
                .where(ledger.c.kind == "model", ledger.c.compute_seconds > 0)
                .group_by(ledger.c.resource)
            ).all()
        return {model: (float(seconds), int(tokens)) for model, seconds, tokens in rows if tokens}
