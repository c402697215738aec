"""Help that reads like any command line's.

typer 0.29 writes `<bool>` after every flag, `<list[str]>` after a repeatable option and `{name}` for a required
argument. podium's help writes a flag bare, a value's kind as TEXT, INTEGER, FLOAT or PATH, choices as
`[a|b]`, and arguments as NAME, [NAME] or NAME... (click's convention). typer builds its parameters from its
own classes, with no hook to give it others, so `conventional_help` adjusts those classes' help methods once;
tests/cli/test_conventions.py reads the help of every command and fails if an artefact comes back.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

_KINDS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "file": "FILE", "bool": "BOOLEAN"}


def _kind(label: str) -> str:
    """typer's type label (`<str>`, `<list[str]>`, `<int range>`, `<open|all>`) in click's words."""
    label = label.strip("<>").removesuffix(" range")
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]  # a repeatable option: its help says so, each occurrence takes one value
    if "|" in label:
        return f"[{label}]"
    return _KINDS.get(label, label.upper())


def _option_kind(self: TyperOption, ctx: Any) -> str | None:
    if self.metavar is not None:
        return self.metavar or None
    if self.is_flag:
        return None
    label = self.display_type(ctx)
    return _kind(label) if label else None


def _argument_kind(self: TyperArgument, ctx: Any) -> str | None:
    desc = self.type_descriptor
    if desc.is_choice:
        label = self.display_type(ctx)
        return _kind(label) if label else None
    return None  # the argument's NAME already says what it is


def _argument_name(self: TyperArgument) -> str:
    return self.metavar if self.metavar is not None else (self.name or "").upper()


def _argument_usage(self: TyperArgument) -> str:
    name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
    return f"{name}..." if self.nargs != 1 else name


def conventional_help() -> None:
    """Make typer's help for every podium command conventional (idempotent)."""
    TyperOption.display_type_rich = _option_kind  # type: ignore[method-assign]
    TyperArgument.display_type_rich = _argument_kind  # type: ignore[method-assign,assignment]
    TyperArgument.display_name_raw = property(_argument_name)  # type: ignore[assignment,method-assign]
    TyperArgument._usage_display_name = _argument_usage  # type: ignore[method-assign]
