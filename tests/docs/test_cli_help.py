"""What the docs say about the command line is what `podium … --help` says.

The README's command table names every command and subcommand there is, and only those; every option a page
names in a `podium …` code span (the table, and prose like `podium people add NAME --team T`) is in that
command's real help, and so are the choices it lists (`--per workflow|run|agent|team`). The help is rendered as a
person reads it (`podium … --help`), with its boxes and line breaks taken out. Commands in shell blocks are checked
by running them (test_commands_run.py).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from podium.cli import app
from tests.docs._pages import REPO, pages

ROOT = typer.main.get_command(app)
_SPAN = re.compile(r"`(podium [^`]+)`")
_CHOICES = re.compile(r"(--[a-z][\w-]*) ([a-z][\w-]*(?:\|[a-z][\w-]*)+)")


@functools.cache
def help_text(*path: str) -> str:
    """`podium PATH --help` as printed, boxes and wrapping removed."""
    shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    return " ".join(re.sub(r"[│╭╮╰╯─┃━┏┓┗┛]", " ", shown.output).split())


def subcommands(path: tuple[str, ...]) -> set[str]:
    """The subcommands `podium PATH --help` lists (none for a command that is not a group)."""
    command = resolve(path)
    if not isinstance(command, TyperGroup):
        return set()
    ctx = typer.Context(command)
    return {n for n in command.list_commands(ctx) if not getattr(command.get_command(ctx, n), "hidden", False)}


def resolve(path: tuple[str, ...]) -> Any:
    command: Any = ROOT
    for name in path:
        assert isinstance(command, TyperGroup), f"`podium {' '.join(path)}`: {command.name} has no subcommands"
        found = command.get_command(typer.Context(command), name)
        assert found is not None, f"`podium {' '.join(path)}`: there is no command {name!r}"
        command = found
    return command


def _alternatives(text: str) -> list[str]:
    """`list|verify [DIR]|export DIR` -> its alternatives; a `|` inside brackets separates values, not commands."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "[") - (char == "]")
        if char == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


def named(span: str) -> list[tuple[str, ...]]:
    """The commands a span like `podium audit list|verify [DIR]|key export FILE` names, each as its path."""
    return _named((), span.split()[1:])


def _named(path: tuple[str, ...], words: list[str]) -> list[tuple[str, ...]]:
    while words and subcommands(path):
        default = getattr(resolve(path), "default_command", None)
        if default and re.fullmatch(r"[A-Z][A-Z_]*(\.\.\.)?", words[0]):  # `podium discover LOG...` is its `scan`
            path = (*path, default)
            break
        alternatives = [alt for alt in _alternatives(" ".join(words)) if alt]
        if words[0] in subcommands(path) and (len(alternatives) == 1 or subcommands((*path, words[0]))):
            path, words = (*path, words[0]), words[1:]
            continue
        found = [
            command
            for alt in alternatives
            if not alt.startswith(("-", "…"))
            for command in _named((*path, alt.split()[0].strip("[]")), alt.split()[1:])
        ]
        return found or [path]
    return [path]


def spans(page: str) -> list[str]:
    """The inline `podium …` spans of a page, outside fenced blocks, table pipes unescaped."""
    text = re.sub(r"(?ms)^\s*```.*?^\s*```", "", (REPO / page).read_text())
    return [s.replace("\\|", "|").split(" | ")[0] for s in _SPAN.findall(text)]  # ` | ` pipes to another program


def test_the_readme_table_names_every_command_and_only_those() -> None:
    table = [line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("| `podium")]
    first_cells = [line.split(" | ")[0].replace("\\|", "|") for line in table]
    listed = {path for cell in first_cells for span in _SPAN.findall(cell) for path in named(span)}
    groups = {path[:1] for path in listed if len(path) > 1}
    wrong = _differ("podium", {p[0] for p in listed}, subcommands(()))
    for group in sorted(groups):
        wrong += _differ(f"podium {group[0]}", {p[1] for p in listed if p[:1] == group}, subcommands(group))
    assert not wrong, "README.md's command table and the real help differ:\n" + "\n".join(wrong)


def _differ(command: str, listed: set[str], real: set[str]) -> list[str]:
    return [f"`{command} --help` lists {sorted(real - listed)}, the table does not"] * bool(real - listed) + [
        f"the table lists {sorted(listed - real)}, `{command} --help` does not"
    ] * bool(listed - real)


@pytest.mark.parametrize("page", pages())
def test_every_option_a_page_names_is_in_the_real_help(page: str) -> None:
    wrong = []
    for span in spans(page):
        helps = " ".join(help_text(*path) for path in named(span))
        for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", span):
            if f"{option} " not in f"{helps} ":
                wrong.append(f"`{span}`: {option} is not in its --help")
        for option, choices in _CHOICES.findall(span):
            missing = [c for c in choices.split("|") if not re.search(rf"\b{re.escape(c)}\b", helps)]
            if missing:
                wrong.append(f"`{span}`: {option} {missing} are not in its --help")
    assert not wrong, f"{page}:\n" + "\n".join(wrong)
