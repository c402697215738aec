"""How the CLI shows data: literally.

Whatever a command prints that came from data (a ticket, a model's draft, a name, an exception message) is shown as
the characters it is: never read as Rich markup (`[internal note]` stays, `[/]` does not crash), never turned into
an emoji (`:x:`), never passed to the terminal as a control sequence (ESC, OSC links, BEL, carriage return) and
never reordered or hidden (bidi overrides, zero-width characters): those become visible escapes such as `\\x1b` or
`\\u202e`. podium's own words may carry markup; data goes in only through `literal` or `styled`. A value in a
one-line template (`styled`, `field`) shows its newlines as `\\n`; text that may span lines is a `block`, each of its
lines behind a gutter, so no line of data can pass for a line podium printed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from podium._visible import KEPT, KEPT_IN_A_LINE, escape, hidden

ESCAPE_STYLE = "bold reverse"  # an escape stands out from the text around it: it is not what the data says


def literal(value: object, style: str = "", *, one_line: bool = False) -> Text:
    """`value` as a Rich Text that shows it literally (no markup, no emoji), its hidden characters as escapes;
    `one_line` escapes its newlines too, for a value inside a line of podium's."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return Text(text, style=style)
    kept = KEPT_IN_A_LINE if one_line else KEPT
    shown = Text(style=style)
    plain_from = 0
    for index, char in enumerate(text):
        if hidden(char, kept):
            shown.append(text[plain_from:index])
            shown.append(escape(char), style=ESCAPE_STYLE)
            plain_from = index + 1
    shown.append(text[plain_from:])
    return shown


_SLOT = "\x00"  # stands for a value while podium's own markup is parsed; podium's templates never contain it


def styled(template: str, *values: object) -> Text:
    """podium's own one-line `template` (Rich markup) with each `{}` replaced by a value shown literally and on
    that line (newlines as `\\n`), in the style the template gives that place:
    `styled("[bold]{}[/] waits on {}", review_id, person)`. Text that may span lines goes in a `field` or `block`."""
    pieces = template.split("{}")
    if len(pieces) != len(values) + 1:
        raise ValueError(f"template has {len(pieces) - 1} slot(s) for {len(values)} value(s): {template!r}")
    marked = Text.from_markup(_SLOT.join(pieces), emoji=False)
    result = Text(style=marked.style)
    start = 0
    slots = [index for index, char in enumerate(marked.plain) if char == _SLOT]
    for index, value in zip(slots, values, strict=True):
        result.append_text(marked[start:index])
        shown = literal(value, one_line=True)
        for span in marked.spans:
            if span.start <= index < span.end:
                shown.stylize(span.style)
        result.append_text(shown)
        start = index + 1
    result.append_text(marked[start:])
    return result


def block(value: object, indent: str = "  ") -> Text:
    """Text that may span lines, each line behind a gutter: no line of it can pass for a line podium printed."""
    lines = (value if isinstance(value, str) else str(value)).split("\n")
    return Text("\n").join(Text.assemble((f"{indent}│ ", "dim"), literal(line)) for line in lines)


def field(label: Text, value: object, indent: str = "  ") -> Text:
    """`label: value` on one line, or, when `value` spans lines, `label:` and the value as a `block` under it."""
    text = value if isinstance(value, str) else str(value)
    if "\n" not in text:
        return Text.assemble(label, ": ", literal(text))
    return Text.assemble(label, ":\n", block(text, indent=indent))


def shorten(text: str, width: int) -> str:
    """`text` on one line and at most `width` characters, cut at a word boundary with an ellipsis if it is longer."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    cut = flat[: width - 1]
    word_end = cut.rfind(" ")
    if word_end > width // 2:  # a very long word is cut inside rather than leaving almost nothing
        cut = cut[:word_end]
    return cut.rstrip(" ,;:.-") + "…"


def table(*columns: str, ids: Sequence[str] = (), **options: Any) -> Table:
    """A table that never drops a character: a cell too long for its column folds onto more lines instead of
    ending in an ellipsis, and the id columns (named in `ids`) keep their width while the others shrink first."""
    shown = Table(**options)
    for column in columns:
        shown.add_column(column, overflow="fold", no_wrap=column in ids)
    return shown


def row(*values: object) -> list[Text]:
    """Table cells that show `values` literally (a Text built with `styled` is kept as it is)."""
    return [value if isinstance(value, Text) else literal("" if value is None else value) for value in values]


def iso(epoch: float | None) -> str | None:
    """An epoch time as ISO 8601 in UTC, to the microsecond (the form every `--json` output uses)."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def print_json(data: Mapping[str, Any] | Sequence[Any]) -> None:
    """Write `data` to stdout as one JSON document. Characters a terminal would act on are \\u escapes, so the
    JSON is valid and the same bytes are safe on a terminal."""
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    typer.echo("".join(_json_escape(c) if hidden(c) else c for c in text))


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP, JSON writes a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table (fields: docs/cli-json.md).")]
