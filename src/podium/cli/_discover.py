"""`podium discover LOG...`: find the AI services people use outside podium in network logs, and who uses them.

`discover` is a group, so that `podium discover sanction SERVICE` and `podium discover export-blocklist` live
beside the scan; a first argument that names no subcommand is a log, read by `scan`, so `podium discover LOG...`
works as the issue asks and `podium discover --help` lists both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text
from typer._click import Context
from typer.core import TyperGroup

from podium.cli._common import connected, console, err, output_file, progress_bar, write_output
from podium.cli._display import iso, literal, print_json, row, styled, table
from podium.errors import UsageError

if TYPE_CHECKING:
    from podium.discovery import Report

SCAN = "scan"
SHOWN_ROWS = 25  # rows of the who-uses-what table; --json, --csv and --html carry them all
SHOWN_BAD_LINES = 5


class DiscoverGroup(TyperGroup):
    """A group whose default command is `scan`: `podium discover LOG...` is `podium discover scan LOG...`."""

    default_command = SCAN

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


discover_app = typer.Typer(
    cls=DiscoverGroup,
    no_args_is_help=True,
    subcommand_metavar="LOG... | COMMAND [ARGS]...",
    help="Find the AI services people use outside podium in network logs (Zeek, Squid, DNS servers, proxy and "
    "firewall exports), and move that use onto the gateway. `podium discover LOG...` reads logs (it is "
    "`podium discover scan LOG...`); the other commands act on what was found. See docs/shadow-ai.md.",
)


class LogFormat(StrEnum):
    """Every format `podium discover` reads (podium.discovery.FORMATS)."""

    zeek_conn = "zeek-conn"
    zeek_dns = "zeek-dns"
    zeek_ssl = "zeek-ssl"
    zeek_http = "zeek-http"
    squid = "squid"
    bind_query = "bind-query"
    dnsmasq = "dnsmasq"
    pihole = "pihole"
    csv = "csv"
    cef = "cef"


class By(StrEnum):
    person = "person"
    department = "department"


def column_mapping(text: str | None) -> dict[str, str] | None:
    """`--map host=dst,user=uid` as {"host": "dst", "user": "uid"}."""
    if text is None:
        return None
    mapping: dict[str, str] = {}
    for pair in text.split(","):
        field, equals, column = (part.strip() for part in pair.partition("="))
        if not equals or not field or not column:
            raise UsageError(f"--map {text!r}: give FIELD=COLUMN pairs separated by commas, e.g. host=dst,user=uid.")
        mapping[field] = column
    return mapping


@discover_app.command(SCAN)
def scan(
    logs: Annotated[
        list[Path], typer.Argument(help="Log files, plain or gzipped; the same file given again is counted once.")
    ],
    log_format: Annotated[
        LogFormat | None,
        typer.Option("--format", help="The logs' format. Default: recognised from each file's first lines."),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--map",
            metavar="FIELD=COLUMN,...",
            help="For CSV/TSV exports: which column holds each field, e.g. host=dst,user=uid,bytes_up=sent.",
        ),
    ] = None,
    users: Annotated[
        Path | None,
        typer.Option(
            help="A CSV of address,person,department,valid_from,valid_to (DHCP leases, an inventory): who held an "
            "address when. A log's own user field wins over it."
        ),
    ] = None,
    pseudonymise: Annotated[
        bool,
        typer.Option(
            "--pseudonymise",
            help="Store and show users as keyed hashes (stable across runs; the key stays in the home). "
            "Departments stay readable.",
        ),
    ] = False,
    as_json: Annotated[
        str | None,
        typer.Option(
            "--json",
            metavar="FILE",
            help="Write the report as JSON to FILE (fields: docs/cli-json.md); `--json -` prints it instead of the "
            "tables.",
        ),
    ] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", metavar="FILE", help="Write the findings as CSV.")] = None,
    html_file: Annotated[
        Path | None,
        typer.Option("--html", metavar="FILE", help="Write a self-contained HTML report with charts (opens offline)."),
    ] = None,
    by: Annotated[By, typer.Option(help="Show use per person or per department.")] = By.person,
) -> None:
    """Read network logs, store which AI services each person (or department) used, and report on everything
    stored: requests, bytes up and down (unknown where only DNS saw it), first and last seen, weekly trend, risk,
    and whether each service is sanctioned."""
    from podium.discovery import Catalogue, discover

    mapping = column_mapping(columns)
    outputs = _checked_outputs(logs, as_json, csv_file, html_file)
    printing_json = as_json == "-"  # then stdout is the JSON alone: progress and notes go to stderr
    with connected() as pod:
        catalogue = Catalogue.from_settings(pod.settings)
        with progress_bar("Reading logs", on=err if printing_json else console) as bar:
            steps = bar.add_task("read", total=2 * len(logs))  # each file's fingerprint, then each new one read
            report = discover(
                pod,
                logs,
                by=pod.operator(),
                catalogue=catalogue,
                format=None if log_format is None else log_format.value,
                mapping=mapping,
                users=users,
                pseudonymise=pseudonymise,
                progress=lambda done, total: bar.update(steps, completed=done, total=total),
            )
    _write(report, outputs, err if printing_json else console)
    if printing_json:
        print_json(report.as_json())
        return
    _show(report, by)


def _checked_outputs(
    logs: Sequence[Path], as_json: str | None, csv_file: Path | None, html_file: Path | None
) -> dict[str, Path]:
    """The files to write, checked before the logs are read; a log given as an output is refused (`--json LOG`
    would overwrite it: put the logs first, or give --json a file)."""
    named = {"JSON": as_json if as_json not in (None, "-") else None, "CSV": csv_file, "HTML": html_file}
    outputs = {what: output_file(Path(path), f"the {what} report") for what, path in named.items() if path}
    given = {log.resolve() for log in logs}
    for what, path in outputs.items():
        if path.resolve() in given:
            raise UsageError(
                f"{path} is both a log to read and where the {what} report would go. Name another file for "
                f"--{what.lower()}."
            )
    return outputs


def _write(report: Report, outputs: Mapping[str, Path], say: Console) -> None:
    from podium.discovery import render_html

    texts: dict[str, Callable[[], str]] = {
        "JSON": lambda: json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n",
        "CSV": report.findings_csv,
        "HTML": lambda: render_html(report),
    }
    for what, path in outputs.items():
        write_output(path, texts[what](), f"the {what} report")
        say.print(styled("Wrote the {} report to {}.", what, path), soft_wrap=True)


def _day(epoch: float) -> str:
    return (iso(epoch) or "")[:10]


def _bytes(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def _show(report: Report, by: By) -> None:
    """The tables: services, then who uses them; then what the run read, skipped and already had."""
    for file in report.files:
        if file.already_ingested:
            said = styled("{}: already ingested (sha256 {}…): not counted again.", file.path, file.sha256[:12])
            console.print(said, soft_wrap=True)
    if not report.services:
        console.print("No AI service found in the logs read so far.")
    else:
        services = table("service", "risk", "requests", "bytes up", "bytes down", "users", "last seen", "days",
                         "weeks", ids=("service",), title="AI services seen", title_justify="left")  # fmt: skip
        for s in report.services:
            mark = " [bold yellow]new[/]" if s.new else ""
            mark += " [green]sanctioned[/]" if s.service.sanctioned else ""
            trend = " ".join(f"{week[5:]}:{n:,}" for week, n in list(s.weekly.items())[-4:])
            services.add_row(*row(styled("{}" + mark, s.service.id), s.service.risk, f"{s.requests:,}",
                                  _bytes(s.bytes_up), _bytes(s.bytes_down), s.users, _day(s.last_seen), s.active_days,
                                  trend))  # fmt: skip
        console.print(services)
        per_person = by is By.person
        findings = report.findings if per_person else report.by_department()
        head = ("user", "department") if per_person else ("department",)
        who = table(*head, "service", "requests", "bytes up", "bytes down", "last seen", "days",
                    title=f"Who uses them (the {SHOWN_ROWS} busiest)", title_justify="left")  # fmt: skip
        for f in findings[:SHOWN_ROWS]:
            names = (f.user, f.department or "") if per_person else (f.department or "(none)",)
            who.add_row(*row(*names, f.service, f"{f.requests:,}", _bytes(f.bytes_up), _bytes(f.bytes_down),
                             _day(f.last_seen), f.active_days))  # fmt: skip
        console.print(who)
    _show_skipped(report)


def _show_skipped(report: Report) -> None:
    if not report.skipped_lines:
        return
    console.print(styled("{} line(s) could not be used; the first:", f"{report.skipped_lines:,}"))
    for bad in report.bad_lines[:SHOWN_BAD_LINES]:
        where = literal(f"{bad.path}:{bad.line}: {bad.reason}", one_line=True)
        console.print(Text.assemble("  ", where), soft_wrap=True)  # a file:line a terminal can click, whole
