"""What every `podium` command shares: the consoles, the settings the root options override, a connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from podium._runtime import Podium
from podium.settings import Settings

console = Console()
err = Console(stderr=True)

_overrides: dict[str, Any] = {}


def root_options(
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: PODIUM_DATABASE_URL, else SQLite in --home).")
    ] = None,
    home: Annotated[Path | None, typer.Option(help="Folder for the SQLite file and trained models.")] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="Your key, to act as you (default: PODIUM_KEY, else the key `podium init` stored in the home).",
            show_default=False,
        ),
    ] = None,
) -> None:
    _overrides.clear()  # one process may run several commands (tests, embedding): each starts afresh
    if database_url:
        _overrides["database_url"] = database_url
    if home:
        _overrides["home"] = home
    if key:
        _overrides["key"] = key


def settings() -> Settings:
    try:
        return Settings(**_overrides)
    except ValidationError as exc:
        problems = "; ".join(f"PODIUM_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from None


@contextmanager
def connected() -> Iterator[Podium]:
    with Podium.connect(settings()) as pod:
        yield pod


def progress_bar(what: str) -> Progress:
    return Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)
