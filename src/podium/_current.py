"""The podium runtime launched in this process (DBOS, which it owns, is a process-wide singleton too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from podium.errors import UsageError

if TYPE_CHECKING:
    from podium._runtime import Podium

_podium: Podium | None = None


def get() -> Podium:
    if _podium is None:
        raise UsageError(
            "no podium runtime is launched in this process. Start one first: "
            "`with podium.launch(settings, podium.App(agents=[...])) as pod: ...`."
        )
    return _podium


def get_or_none() -> Podium | None:
    return _podium


def set(podium: Podium | None) -> None:
    global _podium  # noqa: PLW0603
    _podium = podium
