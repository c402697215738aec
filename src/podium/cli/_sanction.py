"""`podium discover sanction`, `export-blocklist` and `kpi`: move what discovery found onto the gateway, block what
stays unsanctioned, and measure how much use moved (docs/shadow-ai.md)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from podium.cli._common import connected, console, err, settings, write_output
from podium.cli._display import literal, print_json, row, styled, table


class BlockFormat(StrEnum):
    squid = "squid"
    dnsmasq = "dnsmasq"
    pihole = "pihole"
    csv = "csv"


class KpiBy(StrEnum):
    person = "person"
    team = "team"


def sanction(
    service: Annotated[str, typer.Argument(help="The service's catalogue id, as `podium discover` lists it.")],
    alias: Annotated[
        str | None, typer.Option(help="The model name people ask the gateway for. Default: the service's id.")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="A model the alias names, first choice first (repeat it). Default: every model of the strongest "
            "tier podium serves, for a service whose catalogue equivalent is chat, code or embeddings."
        ),
    ] = None,
    instructions: Annotated[
        Path, typer.Option(help="The folder for each person's instructions: base URL and key, one file each.")
    ] = Path("sanctioned"),
    gateway_url: Annotated[
        str, typer.Option(help="Where people reach `podium serve` (the base URL their tools are given).")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Offer the governed alternative to a service people use directly (admins only; audited): a gateway alias in
    podium.toml, a Cedar policy letting the people seen using it call the alias's models, and a key for each of
    them with their instructions (owner-only files; keys are never printed). Running it again issues no second
    key to anyone holding a live one from a sanction. Restart `podium serve` afterwards, so it reads both."""
    from podium.discovery import Catalogue, sanction_service, seen_users

    with connected() as pod:
        found = Catalogue.from_settings(pod.settings).get(service)
        done = sanction_service(
            pod,
            found,
            seen_users(pod.engine, found.id),
            by=pod.operator(),
            alias=alias,
            models=model or (),
            instructions=instructions,
            gateway_url=gateway_url,
        )
    kept = " (there already; kept)" if done.alias_existed else ""
    console.print(
        styled("{} is sanctioned: the gateway alias {} -> {}{}", done.service, done.alias, ", ".join(done.models), kept)
    )
    console.print(styled("  written: {}", done.config))
    if done.policy is not None:
        console.print(styled("  written: {} (who may call those models)", done.policy))
    if done.people:
        shown = table("person", "added to the directory", "key id", "key", "instructions", ids=["key id"])
        for p in done.people:
            where = str(p.instructions) if p.instructions else "kept (written before)"
            shown.add_row(*row(p.person, "yes" if p.added else "no", p.key_id, "new" if p.new_key else "kept", where))
        console.print(shown)
        if kept_keys := sum(not p.new_key for p in done.people):
            said = f"{kept_keys} already held a live key from a sanction: kept, no second key issued."
            console.print(literal(said), soft_wrap=True)
    else:
        console.print(literal(f"Nobody seen using {done.service} can be given a key yet: no policy was written."))
    for user, why in done.not_people:
        err.print(styled("  no key for {}: {}", user, why), soft_wrap=True)
    console.print(literal("Restart `podium serve` so it offers the alias under the new policy."))


def export_blocklist(
    fmt: Annotated[BlockFormat, typer.Option("--format", help="The tool that reads the list.")],
    redirect: Annotated[
        str | None,
        typer.Option(help="Answer with this IP address (the gateway's host) instead of 0.0.0.0 (dnsmasq only)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the list here instead of to standard output.")] = None,
) -> None:
    """Block (or, in DNS, redirect) every catalogued AI service not sanctioned: the gateway and sanctioned services
    are never in it, and a catalogue name that is not a plain DNS name is left out (and said), never written."""
    from podium.discovery import Catalogue, render_blocklist, unsanctioned

    catalogue = Catalogue.from_settings(settings())
    keep = [redirect] if redirect else []
    blocklist = unsanctioned(catalogue, keep=keep)
    text = render_blocklist(blocklist, fmt.value, redirect=redirect)
    if out is None:
        sys.stdout.write(text)
    else:
        write_output(out, text, "the block list")
        err.print(styled("{} names written to {}", len(blocklist.entries), out))
    for service, name, why in blocklist.left_out:
        err.print(styled("left out {} ({}): {}", name, service, why), soft_wrap=True)


def kpi(
    by: Annotated[
        KpiBy, typer.Option(help="Count per person, or per team (the logs' department, else the directory's).")
    ] = KpiBy.person,
    weeks: Annotated[int, typer.Option(min=1, max=520, help="The last N weeks in which anything happened.")] = 12,
    json_file: Annotated[
        str | None, typer.Option("--json", help="Also write the rows as JSON to this file; `-` prints them instead.")
    ] = None,
) -> None:
    """The migration KPI: per sanctioned service and week, each person's (or team's) requests through the gateway
    (the ledger) and straight to the service (the logs), and the gateway's share (admins only: it is per person)."""
    from podium.discovery import migration

    with connected(read=True) as pod:
        shares = migration(pod, by=pod.operator(), per=by.value, weeks=weeks)
    if json_file is not None:
        document = {"by": by.value, "weeks": sorted({s.week for s in shares}), "rows": [s.as_json() for s in shares]}
        if json_file == "-":
            print_json(document)
            return
        write_output(Path(json_file), json.dumps(document, indent=2) + "\n", "the KPI")
    if not shares:
        console.print(
            literal("Nothing sanctioned has been seen or used yet: `podium discover sanction SERVICE` first.")
        )
        return
    shown = table("service", "week", by.value, "gateway", "direct", "gateway share", ids=["service", "week"])
    for s in shares:
        shown.add_row(*row(s.service, s.week, s.who or "-", f"{s.gateway:,}", f"{s.direct:,}", f"{s.share:.0%}"))
    console.print(shown)


def add_commands(group: typer.Typer) -> None:
    """Put these commands in `podium discover`."""
    group.command("sanction")(sanction)
    group.command("export-blocklist")(export_blocklist)
    group.command("kpi")(kpi)
