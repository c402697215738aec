"""`podium discover sanction`'s parts on a real database: the alias written into podium.toml with its comments
kept, a Cedar policy that lets exactly the people seen call the alias's models, a key each (once), their
instructions owner-only, and refusals that change nothing and say what to do."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from podium import Podium, Settings
from podium.discovery import Service
from podium.discovery._sanction import Sanctioned, SeenUser, choose_models, sanction
from podium.errors import ActionDenied, UsageError
from podium.policy import PolicySet, model_entity, person_entity
from podium.store import tables
from podium.testing import TEST_ADMIN, sign_in

CONFIG = """# the organisation's podium.toml: comments stay where they are
[models.big]   # the frontier model people should use instead
tier = "frontier"
base_url = "http://127.0.0.1:9/v1"
model = "big-upstream"
price = { input_per_mtok = 1.0, output_per_mtok = 2.0 }

[models.mid]
tier = "intermediate"
base_url = "http://127.0.0.1:9/v1"
model = "mid-upstream"
price = { input_per_mtok = 0.5, output_per_mtok = 1.0 }

[gateway.aliases]
cheap = ["mid"]   # an alias of the organisation's own
"""
CHATGPT = Service("chatgpt", "ChatGPT", "OpenAI", "chat-assistant", ("chatgpt.com",), risk=62, equivalent="chat")
SEEN = [
    SeenUser("ana@example.com", "sales"),
    SeenUser("bo@example.com", None),
    SeenUser("10.0.0.7", None),  # no address book entry: an address, not a person
    SeenUser("u-0123456789abcdef0123", "sales"),  # a pseudonym
    SeenUser("root@example.com", "admins"),  # a log names no admin
]


@pytest.fixture
def pod(settings: Settings, tmp_path: Path) -> Iterator[Podium]:
    (tmp_path / "podium.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "policies").mkdir()
    configured = settings.model_copy(update={"config": tmp_path / "podium.toml", "policies": tmp_path / "policies"})
    with Podium.connect(configured) as connected:
        yield connected


def run(pod: Podium, tmp_path: Path, service: Service = CHATGPT, **options: object) -> Sanctioned:
    admin = sign_in(pod, TEST_ADMIN)
    options = {"instructions": tmp_path / "keys", "gateway_url": "http://gw.example.com:8000", **options}
    return sanction(pod, service, SEEN, by=admin, **options)  # type: ignore[arg-type]


def test_a_sanction_makes_the_alias_the_policy_the_keys_and_the_instructions(pod: Podium, tmp_path: Path) -> None:
    done = run(pod, tmp_path)

    config = (tmp_path / "podium.toml").read_text()
    assert config.startswith(CONFIG.rstrip("\n").rsplit("\n", 1)[0])  # the file as it was, comments included
    assert 'chatgpt = ["big"]' in config and 'sanctioned = ["chatgpt"]' in config
    assert done.models == ("big",) and not done.alias_existed

    assert [p.person for p in done.people] == ["ana@example.com", "bo@example.com"]
    assert {user for user, _ in done.not_people} == {"10.0.0.7", "u-0123456789abcdef0123", "root@example.com"}
    assert pod.people.get("ana@example.com").teams == ("sales",) and pod.people.get("bo@example.com").teams == ()
    assert pod.people.find("root@example.com") is None

    policies = PolicySet.load(tmp_path / "policies")
    may = lambda who, model: policies.decide(  # noqa: E731
        person_entity(who), "model.call", model_entity(model, "frontier", provider="127.0.0.1"), _call_context()
    )
    assert may("ana@example.com", "big").policies == ("sanctioned-chatgpt",)
    assert not may("eve@example.com", "big").allowed  # not seen using it: not theirs
    assert not may("ana@example.com", "mid").allowed  # not the alias's model

    for person in done.people:
        assert person.new_key and person.instructions is not None
        text = person.instructions.read_text()
        assert stat.S_IMODE(person.instructions.stat().st_mode) == 0o600
        key = next(line.split()[-1] for line in text.splitlines() if line.startswith("Your key"))
        assert pod.authenticate(key).name == person.person
        assert "export OPENAI_BASE_URL=http://gw.example.com:8000/v1" in text and 'model="chatgpt"' in text
        assert f"export OPENAI_API_KEY={key}" in text

    (entry,) = [e.entry for e in pod.audit.entries() if e.entry.action == "discovery.sanction"]
    assert entry.actor == f"person:{TEST_ADMIN}" and entry.resource == "service:chatgpt"
    assert json.loads(json.loads(entry.detail)["keys"]) == {p.person: p.key_id for p in done.people}
    assert not any(key in entry.detail for key in _secrets(done))


def test_sanctioning_again_issues_no_second_key_and_keeps_what_it_wrote(pod: Podium, tmp_path: Path) -> None:
    first = run(pod, tmp_path)
    files = {p.person: p.instructions.read_text() for p in first.people if p.instructions}
    again = run(pod, tmp_path)
    assert again.alias_existed and again.models == first.models
    assert [(p.person, p.key_id, p.new_key, p.added) for p in again.people] == [
        (p.person, p.key_id, False, False) for p in first.people
    ]
    assert all(p.instructions is None for p in again.people)  # the files holding their keys are left alone
    assert {
        p.person: (tmp_path / "keys" / p.instructions.name).read_text() for p in first.people if p.instructions
    } == files
    assert (tmp_path / "podium.toml").read_text().count("chatgpt") == 2  # one alias, one sanctioned entry
    live = [k for k in pod.keys.list("ana@example.com") if k.state() == "live"]
    assert len(live) == 1 and live[0].created_by == f"person:{TEST_ADMIN} for sanction:chatgpt"


def test_only_an_admin_sanctions_and_a_refusal_changes_nothing(pod: Podium, tmp_path: Path) -> None:
    before = (tmp_path / "podium.toml").read_text()
    bob = sign_in(pod, "bob@example.com", teams=["sales"])
    with pytest.raises(ActionDenied, match="may not discovery.sanction service:chatgpt"):
        sanction(pod, CHATGPT, SEEN, by=bob, instructions=tmp_path / "keys", gateway_url="http://gw:8000")
    assert (tmp_path / "podium.toml").read_text() == before
    assert not (tmp_path / "keys").exists() and not list((tmp_path / "policies").iterdir())
    assert pod.people.find("ana@example.com") is None
    with pod.engine.connect() as conn:
        log = tables.audit_log
        refused = conn.execute(sa.select(log.c.decision).where(log.c.action == "discovery.sanction")).scalars().all()
    assert refused == ["denied"]


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_what_cannot_be_sanctioned_is_refused_with_the_fix_before_anything_changes(pod: Podium, tmp_path: Path) -> None:
    before = (tmp_path / "podium.toml").read_text()
    image = Service("midjourney", "Midjourney", "Midjourney", "image", ("midjourney.com",), equivalent=None)
    with pytest.raises(UsageError, match=r"no model podium serves stands in for midjourney.*--model NAME"):
        run(pod, tmp_path, image)
    with pytest.raises(UsageError, match=r"--model 'gpt-9' is not a model podium serves \(big, mid, smollm2-135m\)"):
        run(pod, tmp_path, models=["gpt-9"])
    with pytest.raises(UsageError, match="names the alias 'cheap' already"):
        run(pod, tmp_path, alias="cheap", models=["big"])
    with pytest.raises(UsageError, match="not a name podium writes"):
        run(pod, tmp_path, alias="Chat GPT")
    blocked = Service("deepseek", "DeepSeek", "DeepSeek", "chat-assistant", ("deepseek.com",), blocked=True)
    with pytest.raises(UsageError, match="blocked in podium.toml"):
        run(pod, tmp_path, blocked)
    with pytest.raises(UsageError, match="--gateway-url"):
        run(pod, tmp_path, gateway_url="gw.example.com\nexport X=1")
    assert (tmp_path / "podium.toml").read_text() == before and pod.people.find("ana@example.com") is None


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_an_image_service_is_sanctioned_onto_the_models_named(pod: Podium, tmp_path: Path) -> None:
    image = Service("midjourney", "Midjourney", "Midjourney", "image", ("midjourney.com",), equivalent=None)
    done = run(pod, tmp_path, image, models=["mid", "smollm2-135m"], alias="images")
    assert done.alias == "images" and done.models == ("mid", "smollm2-135m")
    assert 'images = ["mid", "smollm2-135m"]' in (tmp_path / "podium.toml").read_text()


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_hostile_name_from_the_logs_stays_one_name_in_the_policy_and_in_the_folder(
    pod: Podium, tmp_path: Path
) -> None:
    hostile = 'x" ) || true || ("../../evil'
    admin = sign_in(pod, TEST_ADMIN)
    done = sanction(
        pod, CHATGPT, [SeenUser(hostile, "sales")], by=admin, instructions=tmp_path / "keys", gateway_url="http://gw"
    )
    (person,) = done.people
    assert person.person == hostile and person.instructions is not None
    assert person.instructions.parent == tmp_path / "keys" and "/" not in person.instructions.name
    policies = PolicySet.load(tmp_path / "policies")
    model = model_entity("big", "frontier", provider="127.0.0.1")
    assert policies.decide(person_entity(hostile), "model.call", model, _call_context()).allowed
    assert not policies.decide(person_entity("eve@example.com"), "model.call", model, _call_context()).allowed


def test_the_models_chosen_are_the_strongest_tier_served() -> None:
    served = {"smollm2-135m": "local", "mid": "intermediate", "big": "frontier", "big2": "frontier"}
    assert choose_models(CHATGPT, served) == ("big", "big2")
    assert choose_models(CHATGPT, {"smollm2-135m": "local"}) == ("smollm2-135m",)
    assert choose_models(CHATGPT, served, ["mid", "mid"]) == ("mid",)


def _call_context() -> dict[str, object]:
    return {"run": "", "workflow": "", "amount_nano_usd": 0, "killed": False, "run_stopped": False, "data": []}


def _secrets(done: Sanctioned) -> list[str]:
    found = []
    for person in done.people:
        if person.instructions is not None:
            text = person.instructions.read_text()
            found += [line.split()[-1] for line in text.splitlines() if line.startswith("Your key")]
    return found


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_an_admin_seen_in_the_logs_gets_no_key_from_a_sanction(pod: Podium, tmp_path: Path) -> None:
    admin = sign_in(pod, TEST_ADMIN)
    keys_before = [k.id for k in pod.keys.list(TEST_ADMIN)]
    seen = [SeenUser(TEST_ADMIN, "sales"), SeenUser("ana@example.com", "sales")]

    done = sanction(pod, CHATGPT, seen, by=admin, instructions=tmp_path / "keys", gateway_url="http://gw")

    assert [p.person for p in done.people] == ["ana@example.com"]
    assert [user for user, _ in done.not_people] == [TEST_ADMIN]
    assert [k.id for k in pod.keys.list(TEST_ADMIN)] == keys_before  # a key that acts as an admin: never minted
    assert pod.people.get(TEST_ADMIN).teams == ("admins",)
