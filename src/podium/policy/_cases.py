"""Policy unit tests: TOML files of cases (principal, action, resource, context, expected decision) that
`podium policy test` runs against the loaded policies. See docs/governance.md for the format.

    [agents.triage]                      # the agents the cases name, as the registry would hold them
    owner = "ops@example.com"
    team = "support"
    tools = ["send_reply"]

    [[case]]
    name = "triage may send replies"
    principal = "agent:triage"
    action = "tool.call"
    resource = "tool:send_reply"
    expect = "allow"
    decided_by = ["agents-use-granted-tools"]   # optional: the policies that must have decided
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from podium._tiers import LOCAL
from podium.errors import InputDataError
from podium.policy._cedar import (
    Decision,
    Entity,
    PolicySet,
    agent_entity,
    data_entity,
    model_entity,
    person_entity,
    review_entity,
    run_entity,
    scope_entity,
    tool_entity,
    url_entity,
)

CALL_CONTEXT = {
    "run": "",
    "workflow": "",
    "amount_nano_usd": 0,
    "killed": False,
    "run_stopped": False,
    "data": [],
    "untrusted_targets": [],
    "untrusted_content": [],
    "confidential_out": [],
    "decided_after_untrusted": False,
    "injection_seen": False,
    "injection_score": 0,
}
DEFAULT_CONTEXT: dict[str, dict[str, Any]] = {
    "registry.change": {"change": "grant"},
    "registry.delegate": {"widens": False},
    "review.decide": {"decision": "approved"},
    "people.change": {"touches_admins": False},
    "keys.issue": {"touches_admins": False},
    "keys.revoke": {"touches_admins": False},
    "governance.kill": {},
    "governance.restore": {},
    "budget.set": {},
    "models.train": {},
    "discovery.scan": {},
    "discovery.read": {},
    "discovery.sanction": {},
    "run.start": {},
    "run.cancel": {},
    "run.resume": {},
    "egress": {"tool": "http_get", "hop": 0},
}


@dataclass(frozen=True)
class CaseResult:
    file: str
    name: str
    expected: str
    decision: Decision
    decided_by: tuple[str, ...]

    @property
    def passed(self) -> bool:
        if ("allow" if self.decision.allowed else "deny") != self.expected:
            return False
        return not self.decided_by or set(self.decided_by) <= set(self.decision.policies)


def test_suites(directory: Path | None) -> list[tuple[PolicySet, Path]]:
    """podium's own policy tests against its baseline alone (a project may restrict what the baseline allows),
    then the project's (`*.test.toml` beside its policies) against the baseline and the project's policies."""
    base = Path(str(resources.files("podium.policy") / "policies" / "base.test.toml"))
    suites = [(PolicySet.load(None), base)]
    if directory is not None:
        project = PolicySet.load(directory)
        suites += [(project, path) for path in sorted(directory.glob("*.test.toml"))]
    return suites


def run_file(policies: PolicySet, path: Path) -> list[CaseResult]:
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InputDataError(f"{path}: cannot read this policy test file: {exc}") from exc
    cases = spec.get("case", [])
    if not cases:
        raise InputDataError(f"{path}: no [[case]] tables; a policy test file holds at least one case.")
    results = []
    for number, case in enumerate(cases, start=1):
        where = f"{path}: case {number} ({case.get('name', 'unnamed')})"
        try:
            principal = _entity(spec, str(case["principal"]), where)
            resource = _entity(spec, str(case["resource"]), where)
            action = str(case["action"])
            expected = str(case["expect"])
        except KeyError as exc:
            raise InputDataError(
                f"{where}: missing {exc.args[0]!r}; a case needs principal, action, resource, expect."
            ) from None
        if expected not in ("allow", "deny"):
            raise InputDataError(f'{where}: expect = {expected!r}; use "allow" or "deny".')
        context = {**DEFAULT_CONTEXT.get(action, CALL_CONTEXT), **case.get("context", {})}
        decision = policies.decide(principal, action, resource, context)
        results.append(
            CaseResult(
                path.name,
                str(case.get("name", f"case {number}")),
                expected,
                decision,
                tuple(case.get("decided_by", ())),
            )
        )
    return results


def _entity(spec: Mapping[str, Any], ref: str, where: str) -> Entity:
    kind, _, name = ref.partition(":")
    if kind == "agent":
        declared = spec.get("agents", {}).get(name)
        if declared is None:
            raise InputDataError(f"{where}: agent {name!r} is not declared; add an [agents.{name}] table.")
        return agent_entity(
            name,
            owner=str(declared.get("owner", "")),
            team=str(declared.get("team", "")),
            status=str(declared.get("status", "active")),
            models=declared.get("models", ()),
            tools=declared.get("tools", ()),
            data_scopes=declared.get("data_scopes", ()),
            tier_ceiling=str(declared.get("tier_ceiling", "")),
            delegated_by=str(declared.get("delegated_by", "")),
        )
    builders = {
        "person": lambda: person_entity(name, spec.get("people", {}).get(name, {}).get("teams", ())),
        "model": lambda: model_entity(
            name,
            str(spec.get("models", {}).get(name, {}).get("tier", LOCAL)),
            provider=str(spec.get("models", {}).get(name, {}).get("provider", "local")),
        ),
        "tool": lambda: tool_entity(
            name,
            str(spec.get("tools", {}).get(name, {}).get("team", "")),
            consequential=bool(spec.get("tools", {}).get(name, {}).get("consequential", False)),
        ),
        "data": lambda: data_entity(name),
        "review": lambda: review_entity(name, **spec.get("reviews", {}).get(name, {})),
        "scope": lambda: scope_entity(name),
        "run": lambda: run_entity(name),
        "url": lambda: url_entity(name),
    }
    if kind not in builders or not name:
        raise InputDataError(
            f"{where}: {ref!r} is not an entity reference; use agent:, person:, model:, tool:, data:, review:, "
            "scope:, run: or url: followed by a name."
        )
    try:
        return builders[kind]()
    except ValueError as exc:  # a url: that is not one
        raise InputDataError(f"{where}: {exc}") from None
