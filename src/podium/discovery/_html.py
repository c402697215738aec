"""The report as one self-contained HTML file: inline CSS, and charts drawn by pygal as inline SVG with its
scripts removed, so opening the file fetches nothing and runs nothing. Every string from a log (users, hosts,
paths, bad lines) is HTML-escaped: a host named `<script>` shows as those characters."""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys
from collections.abc import Iterable, Sequence
from html import escape as html_escape
from types import ModuleType
from typing import Any

from podium._visible import visible
from podium.discovery._report import Report, ServiceUse, iso_time

MAX_FINDINGS_SHOWN = 1_000  # rows of the findings table; the JSON and CSV carry them all
TOP_SERVICES = 15  # bars in the requests chart
TREND_SERVICES = 6  # lines in the weekly trend

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.yes { color: #2a7a2a; } .no { color: #b22; } .new { font-weight: bold; color: #b26b00; }
.charts svg { max-width: 900px; width: 100%; height: auto; display: block; margin: 1rem 0; }
code { white-space: pre-wrap; word-break: break-all; }
"""


def escape(value: object) -> str:
    """Text as HTML shows it literally: markup escaped, and characters a reader would not see (controls, bidi
    overrides, zero-width) as visible escapes such as `\\x1b`."""
    return html_escape(visible(value, one_line=True), quote=True)


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S)  # pygal escapes `<` in its text: the first close ends it
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def render_html(report: Report, *, title: str = "Shadow AI: AI services seen in network logs") -> str:
    """The whole report as one HTML document."""
    services = report.services
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Made {escape(iso_time(dt.datetime.now(dt.UTC).timestamp()))} by podium discover: "
        f"{len(services)} services, {len(report.new_services)} new since the last run, {len(report.findings)} "
        f"findings; {report.skipped_lines:,} lines of this run's logs could not be used.</p>",
    ]
    if services:
        parts += ['<div class="charts">', _requests_chart(services), _trend_chart(services), _risk_chart(services)]
        parts.append("</div>")
    parts += ["<h2>Services</h2>", _services_table(services)]
    parts += ["<h2>Who uses them</h2>", _findings_table(report)]
    parts += ["<h2>Files</h2>", _files_table(report)]
    parts.append("</body></html>")
    return "\n".join(parts)


@functools.cache
def _pygal() -> ModuleType:
    """pygal, imported on first use, without the import hook it adds for its map plugins (`pygal.maps.*`, unused
    here): the hook answers every later import in the process through a finder API Python deprecated, so each one
    warns (and a warning is an error in podium's tests)."""
    import pygal

    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, pygal.PluginImportFixer)]
    module: ModuleType = pygal
    return module


def _svg(chart: Any) -> str:
    """pygal's SVG without its scripts (tooltips need pygal.js from the web) and comments (links to pygal.org)."""
    svg = chart.render(is_unicode=True)
    return _COMMENT.sub("", _SCRIPT.sub("", svg))


def _config() -> dict[str, object]:
    style = _pygal().style.Style(background="white", plot_background="white", font_family="system-ui, sans-serif")
    return {"js": [], "style": style, "disable_xml_declaration": True, "width": 900, "height": 420}


def _requests_chart(services: Sequence[ServiceUse]) -> str:
    chart = _pygal().HorizontalBar(title="Requests per service", show_legend=False, **_config())
    top = list(reversed(services[:TOP_SERVICES]))  # the busiest on top
    chart.x_labels = [s.service.name for s in top]
    chart.add("requests", [s.requests for s in top])
    return _svg(chart)


def _trend_chart(services: Sequence[ServiceUse]) -> str:
    weeks = sorted({week for s in services for week in s.weekly})
    chart = _pygal().Line(title="Requests per ISO week", x_label_rotation=30, **_config())
    chart.x_labels = weeks
    for s in services[:TREND_SERVICES]:
        chart.add(s.service.name, [s.weekly.get(week, 0) for week in weeks])
    return _svg(chart)


def _risk_chart(services: Sequence[ServiceUse]) -> str:
    chart = _pygal().XY(title="Risk against use", x_title="risk (0-100)", y_title="requests", stroke=False, **_config())
    chart.range = (0, max(s.requests for s in services) * 1.1)
    chart.xrange = (0, 100)
    for sanctioned, name in ((False, "not sanctioned"), (True, "sanctioned")):
        chosen = [s for s in services if s.service.sanctioned is sanctioned]
        chart.add(name, [{"value": (s.service.risk, s.requests), "label": s.service.name} for s in chosen])
    return _svg(chart)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """An HTML table; cells are HTML already (each built with `_cell`, `_number` or `_flag`)."""
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> str:
    return f"<td>{escape('' if value is None else value)}</td>"


def _number(value: int | None) -> str:
    return '<td class="n">unknown</td>' if value is None else f'<td class="n">{value:,}</td>'


def _flag(value: bool, yes: str = "yes", no: str = "no") -> str:
    return f'<td class="yes">{yes}</td>' if value else f'<td class="no">{no}</td>'


def _services_table(services: Sequence[ServiceUse]) -> str:
    head = ["service", "vendor", "category", "risk", "sanctioned", "requests", "bytes up", "bytes down", "users",
            "departments", "first seen", "last seen", "active days", "new"]  # fmt: skip
    rows = [
        [
            _cell(f"{s.service.name} ({s.service.id})"),
            _cell(s.service.vendor),
            _cell(s.service.category),
            _number(s.service.risk),
            _flag(s.service.sanctioned),
            _number(s.requests),
            _number(s.bytes_up),
            _number(s.bytes_down),
            _number(s.users),
            _cell(", ".join(s.departments)),
            _cell(iso_time(s.first_seen)),
            _cell(iso_time(s.last_seen)),
            _number(s.active_days),
            '<td class="new">new</td>' if s.new else "<td></td>",
        ]
        for s in services
    ]
    return _table(head, rows)


def _findings_table(report: Report) -> str:
    head = ["user", "department", "service", "domain", "requests", "bytes up", "bytes down", "first seen",
            "last seen", "active days", "risk", "sanctioned"]  # fmt: skip
    rows = [
        [
            _cell(f.user),
            _cell(f.department),
            _cell(f.service),
            _cell(f.domain),
            _number(f.requests),
            _number(f.bytes_up),
            _number(f.bytes_down),
            _cell(iso_time(f.first_seen)),
            _cell(iso_time(f.last_seen)),
            _number(f.active_days),
            _number(f.risk),
            _flag(f.sanctioned),
        ]
        for f in report.findings[:MAX_FINDINGS_SHOWN]
    ]
    more = len(report.findings) - MAX_FINDINGS_SHOWN
    note = f"<p>{more:,} more in the JSON and CSV outputs.</p>" if more > 0 else ""
    return _table(head, rows) + note


def _files_table(report: Report) -> str:
    rows = [
        [_cell(f.path), _cell(f.format), _number(f.lines), _number(f.skipped),
         _flag(f.already_ingested, "already ingested: not counted again", "read now"), _cell(f.sha256)]
        for f in report.files
    ]  # fmt: skip
    parts = [_table(["file", "format", "lines", "skipped", "", "sha256"], rows)]
    if report.bad_lines:
        parts.append("<p>The first lines that could not be used:</p><ul>")
        parts += [
            f"<li>{escape(b.path)}:{b.line}: {escape(b.reason)} <code>{escape(b.text)}</code></li>"
            for b in report.bad_lines
        ]
        parts.append("</ul>")
    return "\n".join(parts)
