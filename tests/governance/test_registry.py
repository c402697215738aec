"""The agent registry: identities with accountable owners, keys shown once and stored hashed, every change
audited; and the accountability report over it."""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from markdown_it import MarkdownIt
from typer.testing import CliRunner

import podium
from podium import Podium, Settings
from podium.cli import app
from podium.errors import ActionDenied, ActorStopped, UsageError
from podium.governance._report import AgentLine, GovernanceReport, governance_report, report_markdown
from podium.store import tables
from podium.testing import key_for
from tests import _apps
from tests._people import operator, operator_key

runner = CliRunner()


def cli(settings: Settings, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["--home", str(settings.home), *args], env={"COLUMNS": "250"})
    assert result.exit_code == code, result.output
    return result.output


def test_an_agent_is_added_its_key_shown_once_and_stored_only_as_a_digest(sqlite_settings: Settings) -> None:
    with Podium.connect(sqlite_settings) as pod:
        ops, ciso = operator_key(pod, "ops"), operator_key(pod, "ciso")
    added = cli(
        sqlite_settings,
        "--key",
        ops,
        "agents",
        "add",
        "bot",
        "--owner",
        "ops-lead@example.com",
        "--team",
        "support",
        "--purpose",
        "answers order questions",
        "--model",
        "smollm2-135m",
        "--tool",
        "note",
        "--budget-usd",
        "2.5",
    )
    secret = next(word for word in added.split() if word.startswith("pod_"))
    with Podium.connect(sqlite_settings) as pod:
        assert pod.agents.authenticate(secret).name == "bot"
        with pod.engine.connect() as conn:
            (key_row,) = conn.execute(sa.select(tables.agent_keys)).all()
            everything = " ".join(str(v) for row in conn.execute(sa.select(tables.audit_log)) for v in row)
        assert secret.split("_")[2] not in f"{key_row} {everything}", "the key itself was stored"
    shown = cli(sqlite_settings, "agents", "show", "bot")
    assert "answers order questions" in shown and "ops-lead@example.com" in shown and f"{key_row.id} live" in shown
    assert "$0.0000 spent of $2.50 (stop when spent)" in shown

    rotated = cli(sqlite_settings, "--key", ops, "agents", "rotate-key", "bot")
    new_secret = next(word for word in rotated.split() if word.startswith("pod_"))
    with Podium.connect(sqlite_settings) as pod:
        with pytest.raises(ActionDenied, match="revoked by person:ops"):
            pod.agents.authenticate(secret)
        assert pod.agents.authenticate(new_secret).name == "bot"

    assert "bot: retired" in cli(sqlite_settings, "--key", ciso, "agents", "retire", "bot")
    with Podium.connect(sqlite_settings) as pod:
        with pytest.raises(ActionDenied, match="revoked"):
            pod.agents.authenticate(new_secret)
        with pytest.raises(UsageError, match="retired, which is final"):
            pod.agents.set_status("bot", "active", by=pod.authenticate(ciso))
        actions = [(s.entry.actor, s.entry.action) for s in pod.audit.entries() if s.entry.action.startswith("reg")]
    assert actions == [
        ("person:ops", "registry.add"),
        ("person:ops", "registry.rotate-key"),
        ("person:ciso", "registry.retire"),
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"owner": " "}, "needs an accountable owner"),
        ({"tier_ceiling": "galactic"}, "is not a tier"),
        ({"name": "Bad Name"}, "is not valid"),
        ({"name": "tester"}, "exists already"),
    ],
)
def test_bad_registry_input_is_refused_with_the_fix(
    sqlite_settings: Settings, changes: dict[str, str], message: str
) -> None:
    with _apps.launch(sqlite_settings) as pod:
        arguments = {"name": "bot", "owner": "ops@example.com", **changes}
        with pytest.raises(UsageError, match=message):
            pod.agents.add(arguments.pop("name"), by=operator(pod, "ops"), **arguments)  # type: ignore[arg-type]
        assert [a.name for a in pod.agents.list()] == ["intruder", "teller", "tester"]


def test_the_tier_ceiling_holds_whatever_the_grants(sqlite_settings: Settings) -> None:
    capped = podium.Agent("capped", owner="ops@example.com", models=["echo"])
    with _apps.launch(sqlite_settings) as pod:
        ops = operator(pod, "ops")
        pod.agents.add(
            "capped", owner="ops@example.com", models=["echo", "tier:frontier"], tier_ceiling="local", by=ops
        )
        with pytest.raises(ActionDenied, match="denied by model-tier-ceiling"):
            capped.run("hi", model="echo")


def test_the_governance_report_flags_agents_without_owners_and_stale_keys(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """Each key figure counts what its words say: a live key past the age, every key revoked, never a key."""
    with _apps.launch(sqlite_settings) as pod:
        pod.agents.add("old-bot", owner="ops@example.com", team="support", by=operator(pod, "ops"))
        with pod.engine.begin() as conn:
            conn.execute(tables.agent_keys.update().values(created_at=time.time() - 120 * 86400))
            # an agent imported from an older system, with no owner: the report must not let it pass unnoticed
            conn.execute(
                tables.agents.insert().values(
                    name="orphan", owner="", models="[]", tools="[]", status="active", updated_at=0.0
                )
            )
            # an agent whose one key was revoked
            conn.execute(
                tables.agents.insert().values(
                    name="gone-bot", owner="ops@example.com", models="[]", tools="[]", status="active", updated_at=0.0
                )
            )
            conn.execute(
                tables.agent_keys.insert().values(
                    id="k-gone",
                    agent="gone-bot",
                    secret_sha256="0" * 64,
                    created_at=0.0,
                    revoked_at=1.0,
                    revoked_by="ops",
                )
            )
        with pytest.raises(ActionDenied):
            _apps.intruder.call_tool("note", text="x")
        report = governance_report(pod, stale_days=90)
    lines = {line.name: line for line in report.agents}
    assert lines["old-bot"].stale_key and lines["orphan"].owner == ""
    assert lines["gone-bot"].key == "all revoked" and not lines["gone-bot"].stale_key
    assert report.share_without_owner == pytest.approx(1 / 6) and report.share_stale_keys == pytest.approx(1 / 6)
    assert report.share_all_keys_revoked == pytest.approx(1 / 6)
    assert report.share_without_keys == pytest.approx(4 / 6)  # intruder, teller, tester, orphan
    assert lines["intruder"].denials == 1 and "not allowed tool 'note'" in lines["intruder"].last_denial
    assert lines["tester"].key == "none (in-process only)"
    markdown = tmp_path / "report.md"
    printed = cli(sqlite_settings, "governance", "report", "--markdown", str(markdown))
    assert "17% without an owner" in printed
    assert "17% with a live key older than 90 days, 17% with every key revoked, 67% never issued a key" in printed
    assert "1 refused action(s) in the log" in printed
    written = markdown.read_text()
    assert "| orphan | **NONE** |" in written and "STALE" in written
    assert "- with every key revoked: 17%" in written and "- refused actions in the audit log: 1" in written


def test_the_markdown_report_shows_data_literally() -> None:
    """Names and notes are data: rendered, the report shows them as the characters they are, and none of them adds a
    heading, a line, a link, an image, code, emphasis, an HTML tag, an entity or a table column."""
    name = "x`code` *em* __b__ [link](http://evil.example) ![i](http://evil.example/i.png) ~~s~~ :x: $m$ a|b \\"
    owner = "ok\n# approved by the board\n<script>alert(1)</script>"
    team = "&lt;b&gt; \x1b[32mOK\x1b[0m \u202eevil"
    line = AgentLine(name, owner, team, "active", "<img src=x onerror=alert(1)>", "-", 0, "", "none", False, "none")
    report = GovernanceReport(0.0, [line], 0, ["agent:[kill](http://evil.example)"], 90)
    written = report_markdown(report)
    assert "\x1b" not in written and "\u202e" not in written
    assert not any(row.startswith(("#", "<")) for row in written.splitlines()[1:]), written
    rendered = MarkdownIt("commonmark").enable("table").render(written)
    for tag in ("<script", "<img", "<a ", "<code", "<em", "<strong", "<del", "<h2", "&lt;b&gt;"):
        assert tag not in rendered, (tag, rendered)
    cells = [html.unescape(cell) for cell in re.findall(r"<td>(.*?)</td>", rendered)]
    assert cells[:5] == [
        name,
        "ok\\n# approved by the board\\n<script>alert(1)</script>",
        "&lt;b&gt; \\x1b[32mOK\\x1b[0m \\u202eevil",
        "active",
        "<img src=x onerror=alert(1)>",
    ]
    assert "active kills: agent:[kill](http://evil.example)</li>" in html.unescape(rendered)


def cli_on(settings: Settings, *args: str) -> str:
    """The CLI against `settings`' database (SQLite or PostgreSQL)."""
    return cli(settings, "--database-url", settings.resolved_database_url, *args)


def test_a_revoke_or_suspend_made_in_an_incident_survives_a_worker_restart(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Code declares an agent; it does not re-grant what a person withdrew. Only `podium agents grant` does."""
    with _apps.launch(settings) as pod:
        assert _apps.use("tester", "note", "before") == "queued"
        ciso = operator_key(pod, "ciso")
    cli_on(settings, "--key", ciso, "agents", "revoke", "tester", "--tool", "note")
    cli_on(settings, "--key", ciso, "agents", "suspend", "teller")

    with caplog.at_level("WARNING", logger="podium.agents"), _apps.launch(settings) as pod:  # the worker restarts
        with pytest.raises(ActionDenied, match="not allowed tool 'note'"):
            _apps.use("tester", "note", "after the restart")
        with pytest.raises(ActorStopped, match="teller.* is suspended"):
            _apps.use("teller", "note", "after the restart")
        assert pod.agents.get("tester").tools == ("slow_note",)
        withheld = [e.entry for e in pod.audit.entries() if e.entry.action == "registry.withheld"]
    (warning,) = [r.getMessage() for r in caplog.records if "tester" in r.getMessage()]
    assert "withheld" in warning and "restores it: `podium agents grant tester --tool note`" in warning
    assert [(e.actor.split(":")[0], e.resource, e.decision) for e in withheld] == [("deploy", "agent:tester", "denied")]
    assert json.loads(withheld[0].detail) == {
        "withheld": "tool note",
        "restore": "podium agents grant tester --tool note",
    }

    # A developer adds a tool nobody withdrew: code may grant that; the withdrawn one still stays out.
    wider = podium.Agent("tester", owner="qa-lead@example.com", models=["echo"], tools=["note", "slow_note", "shout"])
    with podium.launch(settings, replace(_apps.APP, agents=[wider, _apps.intruder, _apps.teller])) as pod:
        assert pod.agents.get("tester").tools == ("slow_note", "shout")
        assert pod.agents.get("teller").status == "suspended"

    cli_on(settings, "--key", ciso, "agents", "grant", "tester", "--tool", "note")  # a person restores it
    with _apps.launch(settings) as pod:
        assert _apps.use("tester", "note", "restored") == "queued"
        assert pod.agents.get("tester").tools == ("note", "slow_note")


def test_an_agent_added_with_a_budget_its_adder_may_not_set_is_not_added(tmp_path: Path) -> None:
    """A project lets registrars add agents but not budget them: the add is refused before anything is written."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "registrars.cedar").write_text(
        '@id("registrars-add-agents")\n'
        'permit (principal is Person, action == Action::"registry.change", resource is Agent)\n'
        'when { principal.teams.contains("team:registrars") };\n'
    )
    settings = Settings(home=tmp_path / "podium", policies=policies)
    with Podium.connect(settings) as pod:
        registrar = key_for(pod, "reg@example.com", teams=["registrars"])
    args = ["--home", str(settings.home), "--key", registrar, "agents", "add", "bot", "--owner", "o@example.com"]
    result = runner.invoke(app, [*args, "--budget-usd", "5"], env={"COLUMNS": "250", "PODIUM_POLICIES": str(policies)})
    assert result.exit_code == 1 and "may not budget.set agent:bot" in result.output, result.output
    with Podium.connect(settings) as pod:
        assert [a.name for a in pod.agents.list()] == [], "nothing half-written: no agent, no live key"
    added = runner.invoke(app, args, env={"COLUMNS": "250", "PODIUM_POLICIES": str(policies)})
    assert added.exit_code == 0, "without a budget the registrar may add it"


def test_an_agent_its_key_and_its_budget_are_written_together_or_not_at_all(sqlite_settings: Settings) -> None:
    with Podium.connect(sqlite_settings) as pod:
        admin = operator(pod, "ops")
        with pod.engine.begin() as conn:  # the budget's write fails, as a full disk or a lost connection would
            conn.execute(
                sa.text(
                    "CREATE TRIGGER no_budgets BEFORE INSERT ON podium_budgets "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )
        with pytest.raises(sa.exc.IntegrityError, match="disk full"):
            pod.agents.add("bot", owner="o@example.com", by=admin, budget_usd=5.0)
        with pod.engine.connect() as conn:
            assert conn.execute(sa.select(tables.agents)).all() == []
            assert conn.execute(sa.select(tables.agent_keys)).all() == [], "no live key nobody saw"
        assert not [e for e in pod.audit.entries() if e.entry.action in ("registry.add", "budget.set")]
        with pod.engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER no_budgets"))
        pod.agents.add("bot", owner="o@example.com", by=admin, budget_usd=5.0)
        assert pod.budgets.get("agent:bot").limit_nano_usd == 5_000_000_000
        assert [e.entry.action for e in pod.audit.entries()][-2:] == ["budget.set", "registry.add"]
