"""`podium discover sanction` checks all it can before it writes (Cedar's decision on keying each person among it),
and when something fails after it has begun, what it did is audited all the same: each key as it is issued, and
the `discovery.sanction` entry with what was written and where it stopped. People named with apostrophes or
accents are keyed like anyone (Cedar once refused their ids, and stopped the sanction halfway, every time)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from podium import Podium, Settings
from podium.discovery._sanction import SeenUser, sanction
from podium.errors import ActionDenied
from podium.people import IssuedPersonKey
from podium.store import tables
from podium.testing import TEST_ADMIN, sign_in
from tests.discovery.test_sanction import CHATGPT, CONFIG

PEOPLE = ["ana@example.com", "josé@example.com", "o'brien@example.com", "🦜@example.com"]
SEEN = [SeenUser(person, "sales") for person in PEOPLE]


@pytest.fixture
def settings(sqlite_settings: Settings, tmp_path: Path) -> Settings:
    (tmp_path / "podium.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "policies").mkdir()
    return sqlite_settings.model_copy(update={"config": tmp_path / "podium.toml", "policies": tmp_path / "policies"})


@pytest.fixture
def pod(settings: Settings) -> Iterator[Podium]:
    with Podium.connect(settings) as connected:
        yield connected


def audited(pod: Podium, *actions: str) -> list[tuple[str, str, str, dict[str, str]]]:
    """The entries of `actions` on the service or on the people seen (not the test admin's own key)."""
    log = tables.audit_log
    about = ["service:chatgpt", *(f"person:{p}" for p in PEOPLE)]
    query = sa.select(log.c.action, log.c.resource, log.c.decision, log.c.detail)
    query = query.where(log.c.action.in_(actions), log.c.resource.in_(about))
    with pod.engine.connect() as conn:
        rows = conn.execute(query.order_by(log.c.seq)).all()
    return [(str(a), str(r), str(d), json.loads(detail)) for a, r, d, detail in rows]


def test_people_named_with_apostrophes_accents_or_emoji_are_keyed(pod: Podium, tmp_path: Path) -> None:
    done = sanction(
        pod, CHATGPT, SEEN, by=sign_in(pod, TEST_ADMIN), instructions=tmp_path / "k", gateway_url="http://g"
    )
    assert sorted(p.person for p in done.people if p.new_key) == sorted(PEOPLE) and not done.not_people
    for person in done.people:
        assert person.instructions is not None
        secret = next(w for w in person.instructions.read_text().split() if w.startswith("podp_"))
        assert pod.authenticate(secret).name == person.person
    ((_, _, decision, detail),) = audited(pod, "discovery.sanction")
    assert decision == "allowed" and detail["stopped"] == "" and sorted(json.loads(detail["keys"])) == sorted(PEOPLE)


def test_a_failure_while_keying_leaves_an_audit_trail_of_what_was_done(
    pod: Podium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = sign_in(pod, TEST_ADMIN)
    real_issue, issued = pod.keys.issue, []

    def failing_after_two(person: str, **options: object) -> IssuedPersonKey:
        if len(issued) == 2:
            raise ConnectionError("the database went away")
        issued.append(real_issue(person, **options))  # type: ignore[arg-type]
        return issued[-1]

    monkeypatch.setattr(pod.keys, "issue", failing_after_two)
    with pytest.raises(ConnectionError):
        sanction(pod, CHATGPT, SEEN, by=admin, instructions=tmp_path / "keys", gateway_url="http://gw")

    keyed = sorted(PEOPLE)[:2]  # people are keyed in order of name
    assert "chatgpt" in (tmp_path / "podium.toml").read_text() and (tmp_path / "policies").iterdir()
    entries = audited(pod, "keys.issue", "discovery.sanction")
    assert [(a, r) for a, r, _, _ in entries] == [
        *(("keys.issue", f"person:{p}") for p in keyed),
        ("discovery.sanction", "service:chatgpt"),
    ]
    detail = entries[-1][3]
    assert json.loads(detail["keys"]) == {k.person: k.id for k in issued}
    assert detail["alias"] == "chatgpt" and detail["config"] == str(tmp_path / "podium.toml") and detail["policy"]
    assert detail["stopped"].startswith(f"stopped keying {sorted(PEOPLE)[2]!r}: ConnectionError: the database")
    assert (detail["people_added"], detail["instructions"]) == ("2", "2")
    third = audited(pod, "people.change")[-1]  # added to the directory (its own entry), then not keyed
    assert (third[1], third[2]) == (f"person:{sorted(PEOPLE)[2]}", "allowed")

    monkeypatch.undo()
    again = sanction(pod, CHATGPT, SEEN, by=admin, instructions=tmp_path / "keys", gateway_url="http://gw")
    assert {p.person: p.new_key for p in again.people} == {p: p not in keyed for p in PEOPLE}
    assert audited(pod, "discovery.sanction")[-1][3]["stopped"] == ""


def test_a_person_the_admin_may_not_key_stops_the_sanction_before_anything_is_written(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "policies" / "no-keys.cedar").write_text(
        '@id("no-keys-for-obrien")\nforbid (principal, action == Action::"keys.issue", resource is Person)\n'
        'when { resource.name == "o\'brien@example.com" };\n',
        encoding="utf-8",
    )
    before = (tmp_path / "podium.toml").read_text()
    with Podium.connect(settings) as pod:
        with pytest.raises(ActionDenied, match="may not keys.issue person:o'brien@example.com"):
            sanction(
                pod, CHATGPT, SEEN, by=sign_in(pod, TEST_ADMIN), instructions=tmp_path / "k", gateway_url="http://g"
            )
        assert (tmp_path / "podium.toml").read_text() == before
        assert sorted(p.name for p in (tmp_path / "policies").iterdir()) == ["no-keys.cedar"]
        assert all(pod.people.find(p) is None for p in PEOPLE) and not (tmp_path / "k").exists()
        assert [(a, d) for a, _, d, _ in audited(pod, "keys.issue", "discovery.sanction")] == [("keys.issue", "denied")]
