"""Times as podium shows them: UTC, to the second."""

from __future__ import annotations

import datetime as dt


def format_time(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
