"""The people the tests act as. Operator actions (kills, budgets, registry changes, run control) are admins' by
default, so an operator signs in as a member of team admins, under the name their audit entries show."""

from __future__ import annotations

from podium import Podium
from podium.policy import Identity
from podium.testing import key_for, sign_in


def operator(pod: Podium, name: str) -> Identity:
    """`name`, an admin, signed in with a key of their own."""
    return sign_in(pod, name, teams=["admins"])


def operator_key(pod: Podium, name: str) -> str:
    """A key of `name`, an admin, for `--key` or `Authorization: Bearer`."""
    return key_for(pod, name, teams=["admins"])
