"""Display is literal: every command that shows data, over a home full of hostile text, prints that text as the
characters it is (markup, emoji codes and links not interpreted; control, bidi and zero-width characters as
visible escapes), crashes on none of it, and lets no ESC or other hidden character reach the terminal."""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from podium._visible import visible
from podium.cli import app
from podium.cli._display import block, literal, print_json, shorten, styled
from tests.cli.conftest import (
    FORGED_LINE,
    FORGING_TEXT,
    FREE_TEXT,
    NAME_TEXT,
    NEVER_RAW,
    SHOWN,
    SHOWN_FREE,
    HostileHome,
    home_args,
)

runner = CliRunner()


def run(home: HostileHome, *args: str, code: int = 0) -> tuple[str, str]:
    result = runner.invoke(app, [*home_args(home), "--key", home.admin_key, *args])
    assert result.exit_code == code, (args, result.output, result.exception)
    for raw in NEVER_RAW:
        assert raw not in result.output, (args, raw, result.output)
    return result.stdout, result.stderr


def shows(output: str, expected: tuple[str, ...]) -> None:
    missing = [text for text in expected if text not in output]
    assert not missing, f"{missing} not shown literally in:\n{output}"


def test_every_display_command_shows_hostile_text_literally(hostile: HostileHome) -> None:
    shows(run(hostile, "runs", "show", hostile.failed_run)[0], SHOWN_FREE)
    shows(run(hostile, "review", "show", hostile.review_id)[0], SHOWN_FREE)
    listed = run(hostile, "review", "list")[0]
    assert hostile.review_id in listed  # whole, at 2,000 columns as at 80 (test_ids_are_never_cut)
    shows(listed, ("[internal note: fraud suspect]", "[/]"))  # the summary, cut to 60 characters at a word
    shows(run(hostile, "people", "list")[0], SHOWN)
    shows(run(hostile, "agents", "show", "hostile-bot")[0], SHOWN_FREE)
    shows(run(hostile, "policy", "explain", str(hostile.kill_seq))[0], SHOWN_FREE)
    for command in (
        ("runs", "list"),
        ("runs", "show", hostile.waiting_run),
        ("review", "list", "--status", "all"),
        ("review", "stats"),
        ("agents", "list"),
        ("audit", "list", "--limit", "500"),
        ("governance", "report"),
        ("budgets", "list"),
        ("keys", "list"),
        ("models", "list"),
        ("costs",),
        ("costs", "--per", "agent"),
    ):
        run(hostile, *command)
    shows(run(hostile, "route", "status")[0], SHOWN)  # a router over a model named like an attack


def test_json_carries_hostile_text_exactly_and_prints_none_of_it_raw(hostile: HostileHome) -> None:
    def loaded(*args: str) -> object:
        return json.loads(run(hostile, *args, "--json")[0])

    review = loaded("review", "show", hostile.review_id)
    assert isinstance(review, dict)
    assert review["summary"] == f"{FREE_TEXT} asks for 640.00 back"
    assert review["action"]["arguments"]["note"] == FREE_TEXT
    failed = loaded("runs", "show", hostile.failed_run)
    assert isinstance(failed, dict) and FREE_TEXT in failed["error"]
    people = loaded("people", "list")
    assert isinstance(people, list) and NAME_TEXT in [p["display_name"] for p in people]
    agent = loaded("agents", "show", "hostile-bot")
    assert isinstance(agent, dict) and (agent["display_name"], agent["purpose"]) == (NAME_TEXT, FREE_TEXT)
    explained = loaded("policy", "explain", str(hostile.kill_seq))
    assert isinstance(explained, dict) and explained["entry"]["detail"]["reason"] == FREE_TEXT


def test_errors_show_the_data_they_name_literally(hostile: HostileHome) -> None:
    _, said = run(hostile, "review", "show", f"{NAME_TEXT}", code=2)
    assert "error:" in said and "\\u202eevil" in said and "[internal note: fraud suspect]" in said
    _, said = run(hostile, "review", "list", "--status", "\u202e[red]open", code=2)  # Typer's own error, too
    assert "\\u202e[red]open" in said


def test_free_text_cannot_forge_a_line_of_its_own(hostile: HostileHome) -> None:
    """A reviewer's note or an error that spans lines is shown under its label, each line behind a gutter: none of
    its lines can pass for a line podium printed (`approved with edits: ...`)."""
    for args in (("review", "show", hostile.decided_review), ("runs", "show", hostile.failed_run)):
        shown = run(hostile, *args)[0]
        assert f"│ {FORGED_LINE}" in shown, shown
        assert not any(line.lstrip().startswith(FORGED_LINE) for line in shown.splitlines()), shown
    assert styled("decided: {}", FORGING_TEXT).plain == f"decided: ok\\n{FORGED_LINE}"


def test_ids_are_never_cut(hostile: HostileHome, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns the other columns shrink and wrap; the review id stays whole on its line, to copy."""
    from podium.cli._common import console

    monkeypatch.setattr(console, "_width", 80)
    listed = run(hostile, "review", "list")[0]
    assert any(hostile.review_id in line for line in listed.splitlines()), listed
    assert max(len(line) for line in listed.splitlines()) <= 80


def test_visible_escapes_every_character_a_terminal_acts_on_or_hides() -> None:
    assert visible("plain text, ünïcödé, 中文, emoji 🙂") == "plain text, ünïcödé, 中文, emoji 🙂"
    assert visible("a\x1bb\x07c\rd\x7fe\x85f\x9bg") == "a\\x1bb\\x07c\\x0dd\\x7fe\\x85f\\x9bg"
    assert visible("\u202a\u202e\u2066\u2069\u200b\u200f\ufeff\u2028") == (
        "\\u202a\\u202e\\u2066\\u2069\\u200b\\u200f\\ufeff\\u2028"
    )
    assert visible("lone \ud800 surrogate, tag \U000e0041") == "lone \\ud800 surrogate, tag \\U000e0041"
    assert visible("tab\tand\nnewline kept") == "tab\tand\nnewline kept"


def test_styled_puts_values_in_literally_in_podiums_own_markup() -> None:
    shown = Console(width=200, force_terminal=False, color_system=None)
    with shown.capture() as captured:
        shown.print(styled("[bold]{}[/] waits on {}", "[/]", ":x: [red]x[/red]"))
    assert captured.get() == "[/] waits on :x: [red]x[/red]\n"
    text = styled("[bold]{}[/] and {}", "a", "b")
    assert [(text.plain[s.start : s.end], str(s.style)) for s in text.spans] == [("a", "bold")]
    with pytest.raises(ValueError, match="2 slot"):
        styled("{} {}", "one")
    assert literal("x\x1by").plain == "x\\x1by"


def test_block_puts_every_line_behind_a_gutter() -> None:
    assert block("first\n  to: attacker@example.com").plain == "  │ first\n  │   to: attacker@example.com"


def test_shorten_cuts_at_a_word_with_an_ellipsis() -> None:
    assert shorten("short", 60) == "short"
    assert shorten("the customer asks for a refund of a blender that broke", 30) == "the customer asks for a…"
    assert shorten("x" * 100, 10) == "x" * 9 + "…"
    assert shorten("spaces   and\nlines\tfolded", 60) == "spaces and lines folded"


def test_print_json_escapes_hidden_characters_and_stays_valid(capsys: pytest.CaptureFixture[str]) -> None:
    value = {"text": FREE_TEXT, "astral": "tag \U000e0041", "lone": "\ud800"}
    print_json(value)
    printed = capsys.readouterr().out
    assert not any(raw in printed for raw in NEVER_RAW)
    assert json.loads(printed) == value
