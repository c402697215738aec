"""The people who decide: a directory of names, teams and loaded hourly rates, and the keys that prove who they
are."""

from podium.people._directory import People, Person
from podium.people._keys import IssuedPersonKey, PersonKey, PersonKeys

__all__ = ["IssuedPersonKey", "People", "Person", "PersonKey", "PersonKeys"]
