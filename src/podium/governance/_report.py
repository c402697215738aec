"""The accountability report: every agent, who answers for it, what it may do, what it did, what was refused.

Built from the registry and the audit log in a handful of grouped queries, so it stays quick on a long log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from podium._time import format_time
from podium._visible import visible
from podium.store import tables

if TYPE_CHECKING:
    from podium._runtime import Podium

REFUSALS = ("denied", "stopped", "over_budget")


@dataclass(frozen=True)
class AgentLine:
    name: str
    owner: str
    team: str
    status: str
    permissions: str
    last_action: str
    denials: int
    last_denial: str
    key: str
    stale_key: bool  # a live key older than the report's stale_days
    key_state: str  # live | all_revoked | none (never issued one: it acts in process only)


@dataclass(frozen=True)
class GovernanceReport:
    generated_at: float
    agents: list[AgentLine]
    denials: int
    kills: list[str]
    stale_days: int

    @property
    def share_without_owner(self) -> float:
        return self._share(lambda a: not a.owner)

    @property
    def share_stale_keys(self) -> float:
        """Agents with a live key older than `stale_days`."""
        return self._share(lambda a: a.stale_key)

    @property
    def share_all_keys_revoked(self) -> float:
        """Agents that were issued keys and have none live."""
        return self._share(lambda a: a.key_state == "all_revoked")

    @property
    def share_without_keys(self) -> float:
        """Agents never issued a key (declared in code, acting in process only)."""
        return self._share(lambda a: a.key_state == "none")

    def _share(self, counted: Callable[[AgentLine], bool]) -> float:
        return sum(counted(a) for a in self.agents) / len(self.agents) if self.agents else 0.0

    def key_summary(self) -> str:
        """The key figures in words, each counting exactly what it names."""
        return (
            f"{self.share_stale_keys:.0%} with a live key older than {self.stale_days} days, "
            f"{self.share_all_keys_revoked:.0%} with every key revoked, "
            f"{self.share_without_keys:.0%} never issued a key (in process only)"
        )


def governance_report(pod: Podium, *, stale_days: int = 90) -> GovernanceReport:
    now = time.time()
    log, keys = tables.audit_log, tables.agent_keys
    with pod.engine.connect() as conn:
        last_seq = dict(conn.execute(sa.select(log.c.actor, sa.func.max(log.c.seq)).group_by(log.c.actor)).all())
        refused = conn.execute(
            sa.select(log.c.actor, sa.func.count(), sa.func.max(log.c.seq))
            .where(log.c.decision.in_(REFUSALS))
            .group_by(log.c.actor)
        ).all()
        wanted = [*last_seq.values(), *(row[2] for row in refused)]
        entries = (
            {
                row.seq: row
                for row in conn.execute(
                    sa.select(log.c.seq, log.c.at, log.c.action, log.c.resource, log.c.decision, log.c.detail).where(
                        log.c.seq.in_(wanted)
                    )
                )
            }
            if wanted
            else {}
        )
        key_rows = conn.execute(sa.select(keys.c.agent, keys.c.created_at, keys.c.revoked_at)).all()
    denials = {actor: (count, seq) for actor, count, seq in refused}
    lines = []
    for agent in pod.agents.list():
        actor = f"agent:{agent.name}"
        last = entries.get(last_seq.get(actor, -1))
        count, denial_seq = denials.get(actor, (0, -1))
        denial = entries.get(denial_seq)
        live = [k.created_at for k in key_rows if k.agent == agent.name and k.revoked_at is None]
        issued = [k for k in key_rows if k.agent == agent.name]
        oldest_days = (now - min(live)) / 86400 if live else 0.0
        stale = bool(live) and oldest_days > stale_days
        state = "live" if live else "all_revoked" if issued else "none"
        key = f"live, {oldest_days:.0f} d old" if live else "all revoked" if issued else "none (in-process only)"
        lines.append(
            AgentLine(
                name=agent.name,
                owner=agent.owner,
                team=agent.team,
                status=agent.status,
                permissions="; ".join(
                    f"{label}: {', '.join(values)}"
                    for label, values in (
                        ("models", agent.models),
                        ("tools", agent.tools),
                        ("data", agent.data_scopes),
                    )
                    if values
                )
                + (f"; ceiling {agent.tier_ceiling}" if agent.tier_ceiling else "")
                + (f"; delegate of {agent.delegated_by}" if agent.delegated_by else ""),
                last_action=f"{format_time(last.at)} {last.action} {last.resource} ({last.decision})"
                if last
                else "never",
                denials=count,
                last_denial=str(json.loads(denial.detail).get("reason", denial.decision))[:80] if denial else "",
                key=key,
                stale_key=stale,
                key_state=state,
            )
        )
    return GovernanceReport(
        generated_at=now,
        agents=lines,
        denials=sum(count for count, _ in denials.values()),
        kills=[k.scope for k in pod.kill_switch.active()],
        stale_days=stale_days,
    )


def report_markdown(report: GovernanceReport) -> str:
    """The report in writing, for people who were not at the terminal: auditors, risk, the board."""
    out = [
        f"# Agent accountability report ({format_time(report.generated_at)} UTC)",
        "",
        f"- agents: {len(report.agents)}",
        f"- without an accountable owner: {report.share_without_owner:.0%}",
        f"- with a live key older than {report.stale_days} days: {report.share_stale_keys:.0%}",
        f"- with every key revoked: {report.share_all_keys_revoked:.0%}",
        f"- never issued a key (in process only): {report.share_without_keys:.0%}",
        f"- refused actions in the audit log: {report.denials}",
        f"- active kills: {_md(', '.join(report.kills)) or 'none'}",
        "",
        "| agent | owner | team | status | may use | last action | refusals | key |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in report.agents:
        refusals = f"{a.denials}" + (f" (last: {a.last_denial})" if a.last_denial else "")
        key = "STALE, " + a.key if a.stale_key else a.key
        cells = [
            _md(a.name),
            _md(a.owner) or "**NONE**",
            _md(a.team) or "-",
            _md(a.status),
            _md(a.permissions) or "-",
            _md(a.last_action),
            _md(refusals),
            _md(key),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


# Every ASCII character Markdown (CommonMark, GFM, GitHub's emoji and math) reads as syntax within a line. Data never
# starts a line (its newlines are escaped), so only inline syntax is left: code, emphasis, links, images, HTML tags,
# entities, strike-through, emoji, math and the table's own `|`.
_MARKDOWN_SYNTAX = frozenset("\\`*_{}[]()<>#!|~&:$")


def _md(text: str) -> str:
    """`text` as Markdown that renders as the characters it is: syntax backslash-escaped, newlines and hidden
    characters (controls, bidi) as visible escapes, so no value can add a heading, a link, a tag or a line."""
    return "".join("\\" + c if c in _MARKDOWN_SYNTAX else c for c in visible(text, one_line=True))
