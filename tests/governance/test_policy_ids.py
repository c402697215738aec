"""Entity ids reach Cedar in its JSON form, so any name a person may have is one id, decided as written: quotes,
backslashes, accents and emoji neither break the request ("failed to build request") nor let a name pose as
another's, as text spliced into `Person::"…"` could."""

from __future__ import annotations

import pytest

from podium.policy import PolicySet
from podium.policy._cedar import person_entity, scope_entity

NAMES = [
    "o'brien@example.com",
    'say "hi"@example.com',
    "back\\slash@example.com",
    "josé@example.com",
    "李@例え.jp",
    "🦜@example.com",
    'x", "id": "root',  # JSON spliced into an id
    'root"',  # text spliced into Person::"…"
    "\\u0072oot",  # an escape Cedar's text form would read as "root"
]


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return PolicySet.load()


@pytest.mark.parametrize("name", NAMES)
def test_a_name_with_quotes_accents_or_emoji_is_decided_as_its_person(policies: PolicySet, name: str) -> None:
    admin, plain = person_entity(name, ["admins"]), person_entity(name, ["support"])
    allowed = policies.decide(admin, "discovery.scan", scope_entity("discovery"), {})
    assert allowed.allowed and allowed.policies == ("admins-scan-logs",)
    assert not policies.decide(plain, "discovery.scan", scope_entity("discovery"), {}).allowed
    own = policies.decide(plain, "keys.revoke", person_entity(name, ["support"]), {"touches_admins": False})
    assert own.allowed and own.policies == ("people-revoke-their-own-keys",)


@pytest.mark.parametrize("name", NAMES)
def test_a_hostile_name_does_not_mean_another_person(policies: PolicySet, name: str) -> None:
    """A person may revoke their own keys only: each hostile name tries to revoke root's, and each of the others'."""
    actor = person_entity(name, ["support"])
    for other in ["root", *(n for n in NAMES if n != name)]:
        decided = policies.decide(actor, "keys.revoke", person_entity(other, ["support"]), {"touches_admins": False})
        assert not decided.allowed, (name, other)
