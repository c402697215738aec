"""The people who decide: a directory of names, teams and loaded hourly rates."""

from podium.people._directory import People, Person

__all__ = ["People", "Person"]
