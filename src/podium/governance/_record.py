"""The governor's record of a call: a ledger row (if it ran) and an audit entry, written in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import sqlalchemy as sa

from podium.audit import AuditEntry, append_many, canonical_json
from podium.cost import Charge, settle
from podium.governance._call import Call, Outcome, Usage
from podium.governance._site import CallSite
from podium.store import insert_many_if_absent, tables


@dataclass(frozen=True)
class CallRecord:
    """What the governor writes about one call: a ledger row (if it was allowed) and an audit entry."""

    call: Call
    site: CallSite
    decision: Outcome
    usage: Usage
    output_digest: str
    extra: dict[str, str]
    at: float
    team: str = ""
    budget_scopes: tuple[str, ...] = ()  # budgets covering the call: charged, and its reservation settled, with it
    policies: tuple[str, ...] = ()  # the Cedar policies that decided
    retry: str = ""  # a request's call that ran again after it was recorded: its own id (waste, charged)

    @property
    def ran(self) -> bool:
        """Whether the call executed (and so has a ledger row), as opposed to being refused."""
        return self.decision in ("allowed", "failed") and self.call.kind in ("model", "tool")

    @property
    def key(self) -> str:
        # A refusal or failure gets its own key, so the same call allowed on a retry is still recorded; a request's
        # refusal one of its execution's, so each time a client sends it is audited (two at once, too).
        key = self.site.key if self.decision == "allowed" else f"{self.site.key}:{self.decision}"
        if not self.ran and self.site.execution:
            key = f"{key}:{self.site.execution}"
        return f"{key}:retry-{self.retry}" if self.retry else key

    def ledger_row(self) -> dict[str, object]:
        return {
            "call_key": self.key,
            "run_id": self.site.run_id,
            "step_id": self.site.step_id,
            "agent": self.call.agent if self.call.principal == "agent" else "",
            "person": self.call.agent if self.call.principal == "person" else None,
            "kind": self.call.kind,
            "resource": self.call.resource,
            "tier": self.call.tier,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cached_input_tokens": self.usage.cached_input_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "reasoning_tokens": self.usage.reasoning_tokens,
            "compute_seconds": self.usage.compute_seconds,
            "cost_nano_usd": self.usage.cost_nano_usd,
            "at": self.at,
            "wall_seconds": self.usage.wall_seconds,
            "wasted": int(self.decision == "failed" or bool(self.retry)),
            "workflow": self.site.workflow,
            "team": self.team or None,
            "api_key": self.site.api_key,
        }

    def audit_entry(self) -> AuditEntry:
        detail = {"kind": self.call.kind, "tier": self.call.tier, **self.extra}
        if self.site.api_key:
            detail["api_key"] = self.site.api_key
        if self.site.person:
            detail["on_behalf_of"] = self.site.person
        if self.retry:
            detail["retry_of"] = self.site.key
        if self.decision == "allowed":
            usage = self.usage
            detail.update(input_tokens=str(usage.input_tokens), output_tokens=str(usage.output_tokens))
            for name in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens"):
                if getattr(usage, name):
                    detail[name] = str(getattr(usage, name))
            detail["cost_nano_usd"] = str(usage.cost_nano_usd)
        return AuditEntry(
            call_key=self.key,
            actor=self.call.actor,
            action=self.call.action,
            resource=self.call.resource,
            decision=self.decision,
            run_id=self.site.run_id,
            step_id=self.site.step_id,
            input_digest=self.call.input_digest,
            output_digest=self.output_digest,
            policies=self.policies,
            cost_nano_usd=self.usage.cost_nano_usd,
            detail=canonical_json(detail),
            at=self.at,
        )


def write_records(conn: sa.Connection, records: list[CallRecord]) -> None:
    """Write a batch of call records: the ledger rows first, then the audit entries, in the caller's transaction.

    Calls that ran (allowed or failed) have a ledger row; refused ones only an audit entry. A call whose ledger
    row already existed is a re-run step's: its audit entry was committed with that row.
    """
    records = _apart(records)
    ran = [r for r in records if r.ran]
    first_time = insert_many_if_absent(conn, tables.ledger, [r.ledger_row() for r in ran]) if ran else set()
    # A client that sends a request again gets its calls run again (a step re-run after a crash is the workflow's
    # own doing): what they cost is real, so each such run is ledgered, charged and audited as waste of its own.
    again = {id(r): replace(r, retry=uuid.uuid4().hex[:12]) for r in ran if r.key not in first_time and _asked(r)}
    if again:
        first_time |= insert_many_if_absent(conn, tables.ledger, [r.ledger_row() for r in again.values()])
        records = [again.get(id(r), r) for r in records]
        ran = [r for r in records if r.ran]
    # Charge what each call cost, unless an earlier execution of the step already paid (its row existed).
    settle(
        conn,
        [
            Charge(r.site.hold_key, r.budget_scopes, r.usage.cost_nano_usd if r.key in first_time else None)
            for r in ran
            if r.budget_scopes
        ],
    )
    entries = [r.audit_entry() for r in records if r.key in first_time or not r.ran]
    append_many(conn, entries, known_new=first_time)


def _apart(records: list[CallRecord]) -> list[CallRecord]:
    """Two runs of one client request in the same batch (sent twice at once, recorded in one group commit) would
    share a ledger key: one row for two charges. The second and later runs get retry keys of their own here, as a
    run recorded in a later batch does below."""
    seen: set[str] = set()
    apart = []
    for record in records:
        twin = record.ran and record.key in seen and _asked(record)
        apart.append(replace(record, retry=uuid.uuid4().hex[:12]) if twin else record)
        if record.ran:
            seen.add(record.key)
    return apart


def _asked(record: CallRecord) -> bool:
    """Whether the call came through a request from outside (whose retries are the client's, not podium's)."""
    return record.site.door == "request"
