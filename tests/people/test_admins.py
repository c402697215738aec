"""The admins: made once by `podium init`, never by whoever comes first, never all removed, never made by
someone who is not one; and the home that holds their key is theirs alone."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from podium import Podium, Settings
from podium.cli import app
from podium.errors import ActionDenied, Unauthenticated, UsageError
from podium.testing import sign_in


def at_once(*actions: object) -> list[object]:
    """Run each callable in its own thread, released together; return what each returned or raised."""
    results: list[object] = [None] * len(actions)
    start = threading.Barrier(len(actions))

    def run(i: int, action: object) -> None:
        start.wait()
        try:
            results[i] = action()  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - the result under test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_inits_at_once_make_one_admin(settings: Settings) -> None:
    with Podium.connect(settings) as pod:
        results = at_once(*(lambda n=n: pod.keys.bootstrap(f"admin{n}@example.com") for n in range(3)))
        made = [r for r in results if not isinstance(r, Exception)]
        assert len(made) == 1, results
        assert all(isinstance(r, UsageError) and "already has an admin" in str(r) for r in results if r not in made)
        assert len(pod.people.admins()) == 1


def test_two_admins_removing_each_other_at_once_leave_one(settings: Settings) -> None:
    with Podium.connect(settings) as pod:
        ana, bob = (sign_in(pod, name, teams=["admins"]) for name in ("ana@example.com", "bob@example.com"))
        pod.people.remove("admin@podium.test", by=ana)  # two admins left: each removes the other
        results = at_once(
            lambda: pod.people.remove("bob@example.com", by=ana), lambda: pod.people.remove("ana@example.com", by=bob)
        )
        assert sum(isinstance(r, Exception) for r in results) == 1, results
        assert len(pod.people.admins()) == 1


def test_a_team_named_with_a_colon_is_refused_so_no_hidden_admin_is_made(sqlite_settings: Settings) -> None:
    with Podium.connect(sqlite_settings) as pod:
        admin = sign_in(pod, "admin@podium.test")
        with pytest.raises(UsageError, match="a team's name has no ':'"):
            pod.people.add("mallory@example.com", teams=["team:team:admins"], by=admin)
        assert pod.people.find("mallory@example.com") is None


def test_a_project_that_lets_leads_manage_people_does_not_let_them_make_admins(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "leads.cedar").write_text(
        '@id("leads-manage-people")\n'
        'permit (principal is Person, action in [Action::"people.change", Action::"keys.issue"], resource is Person)\n'
        'when { principal.teams.contains("team:leads") };\n'
    )
    with Podium.connect(Settings(home=tmp_path / "podium", policies=policies)) as pod:
        lead = sign_in(pod, "lead@example.com", teams=["leads"])
        pod.people.add("new@example.com", teams=["support"], by=lead)  # what the project allows
        for attempt in (
            lambda: pod.people.add("lead@example.com", teams=["leads", "admins"], by=lead),
            lambda: pod.people.add("admin@podium.test", teams=["support"], by=lead),  # demote an admin
            lambda: pod.keys.issue("admin@podium.test", by=lead),  # a key to act as an admin
        ):
            with pytest.raises(ActionDenied, match="only-admins-touch-admins|may not"):
                attempt()
        assert pod.people.admins() == {"admin@podium.test"}


def test_an_agents_key_is_not_an_operators(sqlite_settings: Settings) -> None:
    with Podium.connect(sqlite_settings) as pod:
        _, key = pod.agents.add("bot", owner="o@example.com", by=sign_in(pod, "admin@podium.test"))
    with (
        Podium.connect(Settings(home=sqlite_settings.home, key=key.secret)) as pod,
        pytest.raises(Unauthenticated, match="operator commands take a person's key"),
    ):
        pod.operator()


def test_a_new_home_and_its_database_and_key_are_its_owners_alone(tmp_path: Path) -> None:
    home = tmp_path / "podium"
    result = CliRunner().invoke(app, ["--home", str(home), "init", "--admin", "ana@example.com", "--json"])
    assert result.exit_code == 0, result.output
    assert {p.name: p.stat().st_mode & 0o777 for p in (home, home / "podium.db", home / "operator.key")} == {
        "podium": 0o700,
        "podium.db": 0o600,
        "operator.key": 0o600,
    }
    assert not list(home.glob(".operator.key.*")), "no temporary key file left behind"
    again = CliRunner().invoke(app, ["--home", str(home), "init", "--admin", "eve@example.com"])
    assert again.exit_code == 2 and "initialised already" in again.output
    with Podium.connect(Settings(home=home)) as pod:
        assert pod.people.admins() == {"ana@example.com"}


NAMES_CEDAR_TEXT_REFUSED = ["o'brien@example.com", "josé@example.com", 'quote"back\\slash@example.com', "李@例え.jp"]


@pytest.mark.parametrize("name", NAMES_CEDAR_TEXT_REFUSED)
def test_a_person_named_with_quotes_or_accents_is_added_keyed_and_acts(sqlite_settings: Settings, name: str) -> None:
    """Cedar's text form of an id needs its own escaping, which an apostrophe or an accent broke: "failed to build
    request" for anyone so named. Ids reach Cedar in its JSON form, and name exactly the one person meant."""
    with Podium.connect(sqlite_settings) as pod:
        admin = sign_in(pod, "admin@podium.test")
        pod.people.add(name, teams=["support"], by=admin)
        issued = pod.keys.issue(name, by=admin)
        them = pod.authenticate(issued.key)
        assert them.name == name
        assert [k.person for k in pod.keys.list(name)] == [name]
        with pytest.raises(ActionDenied):  # and they are who they are: no more (a key for the admin is refused)
            pod.keys.issue("admin@podium.test", by=them)
