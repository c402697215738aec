"""What every `podium` command shares: the consoles, the settings the root options override, a connection."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text
from typer._click import Context
from typer._click import exceptions as click_errors  # Typer 0.29 vendors click: these are the ones it raises
from typer.core import TyperGroup

from podium._bounds import check_text
from podium.cli._display import literal, styled
from podium.errors import GovernanceError, PodiumError, UsageError

if TYPE_CHECKING:
    from podium._runtime import Podium
    from podium.settings import Settings

console = Console(emoji=False, highlight=False)  # data goes in as Text (cli/_display.py), never as markup
err = Console(stderr=True, emoji=False, highlight=False)

_overrides: dict[str, Any] = {}


def _version(value: bool) -> None:
    if value:
        from podium._version import __version__

        typer.echo(f"podium {__version__}")
        raise typer.Exit


def root_options(
    database_url: Annotated[
        str | None, typer.Option(help="Database URL (default: PODIUM_DATABASE_URL, else SQLite in --home).")
    ] = None,
    home: Annotated[Path | None, typer.Option(help="Folder for the SQLite file and trained models.")] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="Your key, to act as you (default: PODIUM_KEY, else the key `podium init` stored in the home). "
            "Prefer PODIUM_KEY: an option is visible to other users in the process list.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", help="Print podium's version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    _overrides.clear()  # one process may run several commands (tests, embedding): each starts afresh
    if database_url:
        _overrides["database_url"] = database_url
    if home:
        _overrides["home"] = home
    if key:
        _overrides["key"] = key


def settings() -> Settings:
    from pydantic import ValidationError

    from podium.settings import Settings

    try:
        return Settings(**_overrides)
    except ValidationError as exc:
        problems = "; ".join(f"PODIUM_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from None


@contextmanager
def connected(*, read: bool = False) -> Iterator[Podium]:
    """The database, for one command. A read command (`read=True`) says in one dim line on stderr which database
    it reads, and never creates one: on a home without a database it says so and exits 2."""
    from podium._runtime import Podium  # the runtime loads only for a command that connects

    config = settings()
    if read:
        from podium.store import safe_url

        where = styled("[dim]home {}, database {}[/]", config.home, safe_url(config.resolved_database_url))
        err.print(where, soft_wrap=True)
    with Podium.connect(config, create=not read) as pod:
        yield pod


def progress_bar(what: str, on: Console = console) -> Progress:
    """A bar on a terminal; elsewhere (a log, a pipe, CI) progress lines, which a bar would leave empty. `on=err`
    keeps stdout for a command's output (JSON)."""
    if on.is_terminal:
        return Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=on)
    return ProgressLines(what, on=on)


class ProgressLines(Progress):
    """Progress as lines: the first update, then at most one line every `every_s` seconds, and the last."""

    def __init__(self, what: str, every_s: float = 5.0, on: Console = console) -> None:
        super().__init__(console=on, disable=True)
        self._what, self._every_s = what, every_s
        self._said = -every_s

    def update(
        self,
        task_id: TaskID,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        visible: bool | None = None,
        refresh: bool = False,
        **fields: Any,
    ) -> None:
        super().update(
            task_id,
            total=total,
            completed=completed,
            advance=advance,
            description=description,
            visible=visible,
            refresh=refresh,
            **fields,
        )
        self._tell(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._tell(task_id)

    def stop(self) -> None:
        super().stop()
        for task in self.tasks:
            self._tell(task.id, last=True)

    def _tell(self, task_id: TaskID, *, last: bool = False) -> None:
        now = time.monotonic()
        if last or now - self._said >= self._every_s:
            self._said = now
            task = self._tasks[task_id]
            said = f"{self._what}: {task.completed:g}/{task.total or 0:g} ({task.elapsed or 0:.0f} s)"
            self.console.print(literal(said))


@contextmanager
def working(what: str) -> Iterator[None]:
    """A spinner on a terminal; elsewhere a line as the work starts and one as it ends."""
    if console.is_terminal:
        with console.status(what):
            yield
        return
    started = time.monotonic()
    console.print(literal(what))
    yield
    console.print(literal(f"{what} done ({time.monotonic() - started:.0f} s)"))


_ARGV = "podium.argv"
MAX_ARGUMENT_CHARS = 1_000_000


class PodiumGroup(TyperGroup):
    """The root command. Whatever a command raises ends as one line on stderr and an exit code, never a traceback:
    a mistake to fix (UsageError) exits 2, a refusal (GovernanceError) 1, and any other failure 1, never 0."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        ctx.meta[_ARGV] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            for arg in ctx.meta.get(_ARGV, ()):  # the shell hands over bytes: what is not UTF-8 text stops here
                check_text(arg, "an argument", max_chars=MAX_ARGUMENT_CHARS)
            return super().invoke(ctx)
        except click_errors.NoArgsIsHelpError:
            raise  # `podium runs` alone: the help, as Typer shows it
        except click_errors.UsageError as exc:  # an option or argument Typer could not parse: said in one line too
            code, message = exc.exit_code, f"{_sentence(exc.format_message())} See `{_command_path(exc)} --help`."
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise  # Typer's own: explicit exits, Ctrl-C
        except PodiumError as exc:
            code, message = (1 if isinstance(exc, GovernanceError) else 2), str(exc)
        except Exception as exc:  # noqa: BLE001 - the last resort: a failure no check above foresaw
            code, message = 1, failure_line(exc)
        error_line(message)
        raise typer.Exit(code)


def output_file(path: Path, what: str) -> Path:
    """A file a command will write, checked before the work that fills it: not a folder, in a folder that exists."""
    if path.is_dir() or not path.parent.is_dir():
        problem = "it is a folder" if path.is_dir() else f"there is no folder {path.parent}"
        raise UsageError(f"cannot write {what} to {path}: {problem}. Give the path of a file to write.")
    return path


def write_output(path: Path, text: str, what: str) -> None:
    """Write a file a person named, or say in one line why it cannot be written."""
    try:
        output_file(path, what).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {what} to {path} ({exc.strerror}); give a file you may write.") from None


def _command_path(exc: click_errors.UsageError) -> str:
    return exc.ctx.command_path if exc.ctx is not None else "podium"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def error_line(message: str) -> None:
    """Print `message` as one literal line: no markup interpreted, no wrapping, whitespace runs made one space."""
    err.print(Text.assemble(("error:", "bold red"), " ", literal(" ".join(message.split()))), soft_wrap=True)


def failure_line(exc: Exception) -> str:
    """What went wrong, for a failure podium did not turn into an error of its own: a file the system refused, a
    database that failed, or a bug (named as one)."""
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}. Check the path and its permissions."
    database_errors = sys.modules.get("sqlalchemy.exc")  # a database error needs SQLAlchemy loaded first
    if database_errors is not None and isinstance(exc, database_errors.DBAPIError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return (
            f"the database failed: {reason}. Check that it answers (PODIUM_DATABASE_URL), or restore it from a "
            "backup if it is damaged."
        )
    return (
        f"podium failed unexpectedly ({type(exc).__name__}: {exc}). This is a bug in podium: please report it "
        "with the command you ran."
    )
