"""The bounds of what a person gives the review queue: a decision's details, and the filters of a listing."""

from __future__ import annotations

from podium._bounds import MAX_MINUTES, MAX_USD, check_count, check_name, check_number, check_text
from podium.errors import UsageError

STATUSES = ("pending", "held", "approved", "rejected", "expired", "cancelled")


def check_decision(
    *, rationale: str = "", minutes: float = 0.0, label: str | None = None, expected_digest: str | None = None
) -> None:
    """The bounds of what a person adds to a decision, checked before anything is read or written."""
    check_text(rationale, "the note")
    check_number(minutes, "minutes (the time the decision took)", low=0, high=MAX_MINUTES)
    if label is not None:
        check_name(label, "--label")
    if expected_digest is not None:
        check_name(expected_digest, "--digest")


def check_filters(
    status: str | None,
    reason: str | None,
    min_value_usd: float | None,
    older_than_s: float | None,
    waiting_on: str | None,
    limit: int,
) -> None:
    """The bounds of the queue's filters, checked before the query is made."""
    if status is not None and status != "open" and status not in STATUSES:
        raise UsageError(f"unknown review status {status!r}; use open, {', '.join(STATUSES)} (or all).")
    for value, what in ((reason, "--reason"), (waiting_on, "--waiting-on")):
        if value is not None:
            check_name(value, what)
    if min_value_usd is not None:
        check_number(min_value_usd, "--min-value (USD)", low=0, high=MAX_USD)
    if older_than_s is not None:
        check_number(older_than_s, "--older-than (seconds)", low=0, high=100 * 365 * 86400)
    check_count(limit, "--limit")
