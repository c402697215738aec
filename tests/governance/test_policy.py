"""Cedar policies: loaded and validated with clear errors, unit-tested by `podium policy test`, and every audited
decision explained by `podium policy explain`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from podium import Settings
from podium.cli import app
from podium.errors import ActionDenied, ConfigurationError
from podium.policy import PolicySet
from podium.store import tables
from podium.testing import sign_in
from tests import _apps
from tests._people import operator

EXAMPLES = Path(__file__).parents[2] / "examples" / "policies"
runner = CliRunner()


def test_policy_test_passes_on_the_baseline_and_the_example_policies() -> None:
    result = runner.invoke(app, ["policy", "test", str(EXAMPLES)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "all cases pass" in result.output and "support-stays-below-frontier" in result.output


def test_a_case_that_does_not_hold_fails_the_command(tmp_path: Path) -> None:
    (tmp_path / "strict.cedar").write_text(
        '@id("nobody-sends")\nforbid (principal, action == Action::"tool.call", resource);\n'
    )
    (tmp_path / "strict.test.toml").write_text(
        '[agents.a]\nowner = "o"\ntools = ["send_reply"]\n\n[[case]]\nname = "a sends"\nprincipal = "agent:a"\n'
        'action = "tool.call"\nresource = "tool:send_reply"\nexpect = "allow"\n'
    )
    result = runner.invoke(app, ["policy", "test", str(tmp_path)], env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert "FAIL a sends" in result.output and "1 case(s) failed" in result.output


def test_a_project_tests_its_egress_allow_list_with_url_cases(tmp_path: Path) -> None:
    """`url:` resources are parsed as the HTTP tools parse them, so a case checks the host the agent would reach."""
    (tmp_path / "egress.cedar").write_text(
        '@id("researcher-reads-python-docs")\npermit (principal == Agent::"researcher", action == Action::"egress", '
        'resource)\nwhen { resource.scheme == "https" && resource.host == "docs.python.org" };\n'
    )
    case = '\n[[case]]\nname = "{name}"\nprincipal = "agent:researcher"\naction = "egress"\nresource = "url:{url}"\n'
    (tmp_path / "egress.test.toml").write_text(
        '[agents.researcher]\nowner = "o"\n'
        + case.format(name="the docs", url="https://DOCS.python.org./3/")
        + 'expect = "allow"\n'
        + case.format(name="a look-alike", url="https://evil.test\\\\@docs.python.org/")
        + 'expect = "allow"\n'
        + case.format(name="plain http", url="http://docs.python.org/")
        + 'expect = "deny"\n'
    )
    result = runner.invoke(app, ["policy", "test", str(tmp_path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    (tmp_path / "egress.test.toml").write_text(
        '[agents.researcher]\nowner = "o"\n' + case.format(name="no host", url="/relative") + 'expect = "deny"\n'
    )
    result = runner.invoke(app, ["policy", "test", str(tmp_path)], env={"COLUMNS": "250"})
    assert result.exit_code != 0 and "is not an absolute URL with a host" in result.output


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("permit (principal, action, resource);\n", r"bad\.cedar:1: every policy needs an @id"),
        (
            '// a comment\n\n@id("typo")\npermit (principal is Agent, action, resource)\n'
            'when { principal.tols == "" };\n',
            r'bad\.cedar:3: policy "typo" does not fit podium\'s schema',
        ),
        (
            '@id("only-active-agents-act")\npermit (principal, action, resource);\n',
            r'policy id "only-active-agents-act" is used twice: podium:base\.cedar:\d+ and .*bad\.cedar:1',
        ),
        ('@id("x")\npermit (principal, action, resource)\n', r"bad\.cedar:1: a policy does not end with ';'"),
        ('@id("x")\npermit (principal, action, resource) when { ;\n', r"bad\.cedar:1: this policy does not parse"),
    ],
)
def test_a_bad_policy_file_is_refused_with_where_and_what(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "bad.cedar").write_text(text)
    with pytest.raises(ConfigurationError, match=problem):
        PolicySet.load(tmp_path)


def test_a_policies_setting_that_is_not_a_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PODIUM_POLICIES names .* which is not a folder"):
        PolicySet.load(tmp_path / "missing")


def test_explain_shows_the_policy_that_denied_an_audited_call(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "podium", policies=EXAMPLES)
    with _apps.launch(settings) as pod:
        with pytest.raises(ActionDenied, match="denied by support-stays-below-frontier"):
            _apps.teller.run("hello", model="echo", max_tokens=10)  # echo is frontier; teller is in team support
        assert _apps.worker.run("hello", model="echo", max_tokens=10) == "echo"  # tester has no team: allowed
        with pod.engine.connect() as conn:
            denied, allowed = (
                conn.execute(
                    sa.select(tables.audit_log.c.seq).where(
                        tables.audit_log.c.action == "model.call", tables.audit_log.c.decision == decision
                    )
                ).scalar_one()
                for decision in ("denied", "allowed")
            )
    base = ["--home", str(settings.home)]
    explained = runner.invoke(
        app, [*base, "policy", "explain", str(denied)], env={"PODIUM_POLICIES": str(EXAMPLES), "COLUMNS": "250"}
    )
    assert explained.exit_code == 0, explained.output
    assert "agent:teller model.call echo -> denied" in explained.output
    assert "forbid support-stays-below-frontier" in explained.output and "support.cedar:6" in explained.output
    assert 'principal.team == "support"' in explained.output
    explained = runner.invoke(
        app, [*base, "policy", "explain", str(allowed)], env={"PODIUM_POLICIES": str(EXAMPLES), "COLUMNS": "250"}
    )
    assert "permit agents-use-granted-models" in explained.output and "base.cedar" in explained.output
    changed = runner.invoke(app, [*base, "policy", "explain", str(denied)], env={"COLUMNS": "250"})
    assert "the policies changed since" in changed.output and "no longer in the loaded policies" in changed.output


def test_every_governed_call_records_its_deciding_policies_and_policy_set(tmp_path: Path) -> None:
    with _apps.launch(Settings(home=tmp_path / "podium")) as pod:
        _apps.worker.call_tool("note", text="hi")
        (stored,) = [s for s in pod.audit.entries() if s.entry.action == "tool.call"]
    assert stored.entry.policies == ("agents-use-granted-tools",)
    assert json.loads(stored.entry.detail)["policy_set"] == pod.policies.digest[:16]


def test_the_context_attributes_policies_read_are_known_so_decisions_can_be_reused() -> None:
    assert PolicySet.load(EXAMPLES).context_keys == (
        "amount_nano_usd",
        "confidential_out",
        "decided_after_untrusted",
        "decision",
        "killed",
        "run_stopped",
        "touches_admins",
        "untrusted_content",
        "untrusted_targets",
        "widens",
    )
    from podium.policy._cedar import _context_keys

    assert _context_keys('when { context has x && context["y"] } // context.z') == ("x", "y")
    assert _context_keys("when { context == {} };") is None  # the whole context: no reuse across contexts


def test_policy_explain_names_the_deciding_policy_of_allowed_operator_actions(sqlite_settings: Settings) -> None:
    """Kills, budgets, registry changes and review decisions are audited with the policies that allowed them."""
    import podium
    from tests.cost._budget_app import FEE_NANO, budget_flow
    from tests.cost._budget_app import app as spending_app
    from tests.review.test_review import waiting

    with podium.launch(sqlite_settings, spending_app) as pod:
        ciso = operator(pod, "ciso@example.com")
        pod.budgets.set("team:ops", FEE_NANO / 1e9, by=operator(pod, "cfo@example.com"), on_exhausted="review")
        assert budget_flow.start("q0").result() == "found q0"
        request = waiting(pod, budget_flow.start("q1").id)
        pod.reviews.approve(request.id, by=sign_in(pod, "finance-lead@example.com"), rationale="month-end")
        pod.agents.set_status("spender", "suspended", by=ciso)
        pod.kill_switch.kill("team:ops", by=ciso, reason="drill")
        entries = {e.entry.action: e for e in pod.audit.entries()}
    expected = {
        "budget.set": "admins-set-budgets",
        "review.approve": "reviews-are-decided-by-their-chain",
        "registry.suspend": "admins-manage-the-registry",
        "governance.kill": "admins-pull-the-kill-switch",
    }
    for action, policy in expected.items():
        stored = entries[action]
        assert stored.entry.decision in ("allowed", "approved")
        assert policy in stored.entry.policies, action
        result = runner.invoke(
            app, ["--home", str(sqlite_settings.home), "policy", "explain", str(stored.seq)], terminal_width=200
        )
        assert result.exit_code == 0, result.output
        assert f"permit {policy}" in result.output and "podium:base.cedar:" in result.output
        assert "not a policy decision" not in result.output


def test_a_policy_naming_an_unknown_context_attribute_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "typo.cedar").write_text(
        '@id("typo")\nforbid (principal, action == Action::"tool.call", resource) when { context.injection_sen };\n'
    )
    with pytest.raises(ConfigurationError) as refused:
        PolicySet.load(tmp_path)
    assert "attribute `injection_sen` in context" in refused.value.message
    assert "did you mean `injection_seen`?" in refused.value.message
    has = "the context of tool.call has: amount_nano_usd, confidential_out, data, decided_after_untrusted"
    assert has in refused.value.message
