"""Zeek's conn, dns, ssl and http logs, in TSV (with the `#fields` header) and in JSON lines.

Only the columns reconciliation needs are read: the connection uid ties a conn record's bytes (orig_bytes is what
the client sent, resp_bytes what it received) to the host its ssl record (SNI) or http record (Host) names;
dns.log's answers name the host of a connection that has neither.
"""

from __future__ import annotations

from podium.discovery._formats import Detected
from podium.discovery._records import Parse, epoch, sql_text

_COLUMNS = {
    "zeek-conn": {"dest": "id.resp_h", "uid": "uid", "up": "orig_bytes", "down": "resp_bytes"},
    "zeek-ssl": {"dest": "id.resp_h", "uid": "uid", "host": "server_name"},
    "zeek-http": {"dest": "id.resp_h", "uid": "uid", "host": "host"},
    "zeek-dns": {"host": "query", "answers": "answers"},
}
_ROLES = {"zeek-conn": "conn", "zeek-ssl": "named", "zeek-http": "named", "zeek-dns": "lookup"}
_COMMON = {"ts": "ts", "source": "id.orig_h"}


def zeek_parse(detected: Detected) -> Parse:
    """The Parse for one Zeek log, TSV or JSON."""
    wanted = _COMMON | _COLUMNS[detected.format]
    role = _ROLES[detected.format]
    if detected.layout == "zeek-tsv":
        return _tsv(detected, wanted, role)
    return _json(wanted, role)


def _tsv(detected: Detected, wanted: dict[str, str], role: str) -> Parse:
    position = {name: index + 1 for index, name in enumerate(detected.fields)}

    def column(name: str) -> str:
        return f"f[{position[name]}]" if name in position else "NULL"

    fields = {key: column(name) for key, name in wanted.items() if key != "answers"}
    fields["ts"] = epoch(column("ts"))
    if "answers" in wanted:
        answers = column("answers")
        items = f"string_split({answers}, {sql_text(detected.set_separator)})"
        fields["answers"] = f"CASE WHEN {answers} IN ('-', '(empty)') THEN [] ELSE {items} END"
    expected = len(detected.fields)
    return Parse(
        role=role,
        prelude=f"string_split(line, {sql_text(detected.separator)}) AS f",
        fields=fields,
        checks=[(f"len(f) <> {expected}", f"not the {expected} fields the #fields header names")],
        where="line IS NOT NULL AND trim(line) <> '' AND NOT starts_with(line, '#')",
    )


def _json(wanted: dict[str, str], role: str) -> Parse:
    names = [name for key, name in wanted.items() if key != "answers"]
    paths = "[" + ", ".join(sql_text(f'$."{name}"') for name in names) + "]"
    fields = {key: f"v[{names.index(name) + 1}]" for key, name in wanted.items() if key != "answers"}
    fields["ts"] = epoch(fields["ts"])
    if "answers" in wanted:
        fields["answers"] = (
            """CASE WHEN is_object THEN coalesce(TRY_CAST(json_extract(line, '$.answers') AS VARCHAR[]), []) END"""
        )
    return Parse(
        role=role,
        prelude=(
            "json_valid(line) AND starts_with(ltrim(line), '{') AS is_object, "
            f"CASE WHEN is_object THEN json_extract_string(line, {paths}) END AS v"
        ),
        fields=fields,
        checks=[("NOT is_object", "not a JSON object")],
    )
