"""What `--json` prints: one function per kind of record, each the schema docs/cli-json.md documents.

The keys are a contract (tests/cli/test_json.py checks them against the document): add a key freely, never rename
or drop one. Times are ISO 8601 in UTC, money is USD, a missing value is null.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from podium.cli._display import iso

if TYPE_CHECKING:
    from podium.agents import AgentRecord
    from podium.audit import StoredEntry
    from podium.cost import Budget
    from podium.governance import GovernanceReport
    from podium.models import ModelState
    from podium.people import IssuedPersonKey, Person, PersonKey
    from podium.review import ReviewRequest
    from podium.workflows import RunInfo, StepInfo


def run_fields(run: RunInfo) -> dict[str, Any]:
    """A run in `runs list --json` (docs/cli-json.md)."""
    return {
        "id": run.id,
        "workflow": run.workflow,
        "status": run.status.lower(),
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "updated_at": iso(run.updated_at),
        "seconds": run.seconds,
        "executor_id": run.executor_id,
        "app_version": run.app_version,
    }


def run_detail_fields(run: RunInfo, steps: list[StepInfo]) -> dict[str, Any]:
    """A run in `runs show --json`: the list's fields, its error or output, and its steps."""
    return {
        **run_fields(run),
        "error": run.error,
        "output": run.output,
        "steps": [
            {
                "step_id": s.step_id,
                "name": s.name,
                "started_at": iso(s.started_at),
                "finished_at": iso(s.finished_at),
                "error": s.error,
            }
            for s in steps
        ],
    }


def review_fields(r: ReviewRequest) -> dict[str, Any]:
    """A request in `review list --json` (docs/cli-json.md)."""
    return {
        "id": r.id,
        "run_id": r.run_id,
        "agent": r.agent,
        "team": r.team,
        "workflow": r.workflow,
        "reasons": list(r.reasons),
        "summary": r.summary,
        "value_usd": r.value_usd,
        "status": r.status,
        "waiting_on": r.waiting_on,
        "claimed_by": r.claimed_by,
        "created_at": iso(r.created_at),
        "deadline_at": iso(r.deadline_at),
        "level_deadline_at": iso(r.level_deadline_at),
    }


def review_detail_fields(r: ReviewRequest) -> dict[str, Any]:
    """A request in `review show --json` (docs/cli-json.md): the list's fields and what it would release."""
    return {
        **review_fields(r),
        "action": r.action,
        "action_digest": r.action_digest,
        "judgement": r.judgement,
        "chain": list(r.chain),
        "level": r.level,
        "on_expiry": r.on_expiry,
        "assignee": r.assignee,
        "decided_by": r.decided_by,
        "decided_at": iso(r.decided_at),
        "rationale": r.rationale,
        "minutes": r.minutes,
        "label": r.label,
        "approved_action": r.approved_action,
        "edited": r.edited,
    }


def person_fields(p: Person) -> dict[str, Any]:
    """A person in `people list --json` (docs/cli-json.md); usd_per_hour null: the default rate."""
    return {"name": p.name, "display_name": p.display_name, "teams": list(p.teams), "usd_per_hour": p.usd_per_hour}


def agent_fields(a: AgentRecord) -> dict[str, Any]:
    """An agent in `agents list --json` (docs/cli-json.md)."""
    return {
        "name": a.name,
        "display_name": a.display_name,
        "purpose": a.purpose,
        "owner": a.owner or None,
        "team": a.team,
        "status": a.status,
        "models": list(a.models),
        "tools": list(a.tools),
        "data_scopes": list(a.data_scopes),
        "tier_ceiling": a.tier_ceiling or None,
        "delegated_by": a.delegated_by,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
    }


def budget_fields(b: Budget) -> dict[str, Any]:
    """A budget in `budgets list --json` and `agents show --json` (docs/cli-json.md)."""
    from podium.cost import usd

    return {
        "scope": b.scope,
        "limit_usd": usd(b.limit_nano_usd),
        "spent_usd": usd(b.spent_nano_usd),
        "reserved_usd": usd(b.reserved_nano_usd),
        "left_usd": usd(b.left_nano_usd),
        "on_exhausted": b.on_exhausted,
    }


def entry_fields(stored: StoredEntry) -> dict[str, Any]:
    """An audit entry in `audit list --json` and `agents show --json` (docs/cli-json.md)."""
    from podium.cost import usd

    e = stored.entry
    return {
        "seq": stored.seq,
        "at": iso(e.at),
        "actor": e.actor,
        "action": e.action,
        "resource": e.resource,
        "decision": e.decision,
        "policies": list(e.policies),
        "run_id": e.run_id,
        "step_id": e.step_id,
        "cost_usd": usd(e.cost_nano_usd),
        "detail": json.loads(e.detail),
    }


def report_fields(report: GovernanceReport) -> dict[str, Any]:
    """`governance report --json` (docs/cli-json.md): the agents' lines and the shares the summary gives."""
    return {
        "generated_at": iso(report.generated_at),
        "stale_days": report.stale_days,
        "agents": [
            {
                "name": a.name,
                "owner": a.owner or None,
                "team": a.team,
                "status": a.status,
                "permissions": a.permissions,
                "last_action": a.last_action,
                "denials": a.denials,
                "last_denial": a.last_denial or None,
                "key": a.key,
                "stale_key": a.stale_key,
                "key_state": a.key_state,
            }
            for a in report.agents
        ],
        "share_without_owner": report.share_without_owner,
        "share_stale_keys": report.share_stale_keys,
        "share_all_keys_revoked": report.share_all_keys_revoked,
        "share_without_keys": report.share_without_keys,
        "denials": report.denials,
        "kills": report.kills,
    }


def key_fields(key: PersonKey) -> dict[str, Any]:
    """A person's key in `keys list --json` (docs/cli-json.md): never the secret."""
    return {
        "id": key.id,
        "person": key.person,
        "state": key.state(),
        "created_at": iso(key.created_at),
        "created_by": key.created_by,
        "expires_at": iso(key.expires_at),
        "revoked_at": iso(key.revoked_at),
        "revoked_by": key.revoked_by,
    }


def issued_key_fields(issued: IssuedPersonKey) -> dict[str, Any]:
    """A key just issued, in `keys issue --json` and `init --json`: the secret, shown this once."""
    return {"key": issued.key, "id": issued.id, "person": issued.person, "expires_at": iso(issued.expires_at)}


def model_fields(model: ModelState) -> dict[str, Any]:
    """A model in `models list --json` (docs/cli-json.md)."""
    return {
        "name": model.name,
        "tier": model.tier,
        "kind": model.kind,
        "sha256": model.sha256,
        "ok": model.ok,
        "state": model.state,
    }
