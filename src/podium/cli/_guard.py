"""`podium guard`: the security detectors on people's own data, so they can see what they flag before relying on
them. `podium guard scan FILE --text-column COL --json OUT` scores every row of a CSV or JSON-lines file."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from podium.cli._common import console, err, output_file, progress_bar
from podium.cli._display import styled
from podium.errors import UsageError

guard_app = typer.Typer(
    help="Security detectors on your data: how likely each text is a prompt injection or a jailbreak.",
    no_args_is_help=True,
)
MAX_FIELD_CHARS = 16 * 1024 * 1024  # one CSV cell; the detector reads at most podium.security.MAX_CHARS of it
STDOUT = Path("-")


class InputFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


@guard_app.command("scan")
def scan(
    file: Annotated[Path, typer.Argument(help="A CSV (with a header row) or JSON-lines file, one text a row.")],
    text_column: Annotated[str, typer.Option(help="The column (CSV) or key (JSON lines) holding the text.")],
    json_out: Annotated[
        Path,
        typer.Option(
            "--json", metavar="OUT", help="Write one JSON line a row here: index, score, flagged (- for stdout)."
        ),
    ],
    input_format: Annotated[
        InputFormat | None,
        typer.Option("--format", help="The file's format. Default: from its suffix (.csv; .jsonl, .ndjson)."),
    ] = None,
) -> None:
    """Score every row with podium's injection detector (0 to 1; flagged at the threshold of 1% false positives on
    its validation data). A detector is defence in depth, not a boundary: see benchmarks/RESULTS.md for what it
    misses."""
    from podium.security import Detector

    texts = read_texts(file, text_column, input_format or format_of(file))
    if json_out != STDOUT:
        output_file(json_out, "the scores")
    detector = Detector.shipped()
    flagged = 0
    with _opened(json_out) as out, progress_bar(f"Scoring {len(texts):,} rows", on=err) as bar:
        task = bar.add_task("scan", total=len(texts))
        for index, text in enumerate(texts):
            score = detector.score(text)
            flagged += score >= detector.threshold
            out.write(json.dumps({"index": index, "score": round(score, 6), "flagged": score >= detector.threshold}))
            out.write("\n")
            bar.advance(task)
    (err if json_out == STDOUT else console).print(
        styled(
            "{} of {} rows flagged (threshold {}); scores in {}",
            flagged,
            len(texts),
            f"{detector.threshold:.4f}",
            str(json_out),
        )
    )


def format_of(file: Path) -> InputFormat:
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return InputFormat.csv
    if suffix in (".jsonl", ".ndjson"):
        return InputFormat.jsonl
    raise UsageError(f"cannot tell the format of {file} from its suffix: give --format csv or --format jsonl.")


def read_texts(file: Path, column: str, input_format: InputFormat) -> list[str]:
    """Every row's text, read as UTF-8 (undecodable bytes replaced: the file is data, maybe hostile)."""
    try:
        with file.open(encoding="utf-8", errors="replace", newline="") as f:
            rows = _csv_texts(f, column) if input_format is InputFormat.csv else _jsonl_texts(f, column)
            return list(rows)
    except FileNotFoundError:
        raise UsageError(f"there is no file {file}: give the path of a CSV or JSON-lines file.") from None
    except IsADirectoryError:
        raise UsageError(f"{file} is a folder: give the path of a CSV or JSON-lines file.") from None
    except csv.Error as exc:
        raise UsageError(
            f"{file} is not a CSV podium can read ({exc}). Check its quoting, or give --format jsonl."
        ) from None


def _csv_texts(f: TextIO, column: str) -> Iterator[str]:
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.DictReader(f)
    if reader.fieldnames is None:
        raise UsageError("the CSV file is empty: it needs a header row naming its columns.")
    if column not in reader.fieldnames:
        raise UsageError(
            f"the CSV has no column {column!r}; its columns: {_names(reader.fieldnames)}. Give one with --text-column."
        )
    for row in reader:
        yield row[column] or ""


def _jsonl_texts(f: TextIO, key: str) -> Iterator[str]:
    for number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            row: Any = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise UsageError(
                f"line {number} is not JSON: each line must be one JSON object. Fix or remove it."
            ) from None
        if not isinstance(row, dict):
            raise UsageError(f"line {number} is a JSON {type(row).__name__}, not an object with a {key!r} key.")
        if key not in row:
            raise UsageError(f"line {number} has no key {key!r}; its keys: {_names(row)}. Give one with --text-column.")
        value = row[key]
        yield value if isinstance(value, str) else "" if value is None else json.dumps(value)


def _names(names: Any) -> str:
    return ", ".join(repr(str(name)[:80]) for name in list(names)[:50]) or "none"


@contextmanager
def _opened(path: Path) -> Iterator[TextIO]:
    if path == STDOUT:
        yield sys.stdout
        return
    try:
        with path.open("w", encoding="utf-8") as out:
            yield out
    except OSError as exc:
        raise UsageError(f"cannot write the scores to {path} ({exc.strerror}); give a file you may write.") from None
