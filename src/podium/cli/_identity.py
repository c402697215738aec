"""`podium init` and `podium keys …`: who may act, proved by a key rather than claimed by a name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from podium._time import format_time
from podium.cli._common import connected, console, settings

if TYPE_CHECKING:
    from podium.people import IssuedPersonKey, PersonKey

keys_app = typer.Typer(
    help="People's keys: issue (shown once), list and revoke them. Every action is taken as a key's person.",
    no_args_is_help=True,
)

Json = Annotated[bool, typer.Option("--json", help="Print JSON (docs/cli-json.md) instead of a table.")]


def init(
    admin: Annotated[str, typer.Option("--admin", help="The first admin, as they sign (e.g. ana@example.com).")],
    as_json: Annotated[bool, typer.Option("--json", help='Print {"key": "..."} instead of a sentence.')] = False,
) -> None:
    """Create a home and its first admin, print the admin's key once, and store it (owner-only) for this
    command line. The only way to make the first admin: there is no first-come admin."""
    from podium._runtime import Podium

    config = settings()
    with Podium.connect(config) as pod:
        issued = pod.keys.bootstrap(admin, store_in=config.key_file)
    if as_json:
        typer.echo(json.dumps({"key": issued.key, "person": issued.person, "id": issued.id}))
        return
    console.print(Text.assemble("Initialised ", (str(config.home), "bold"), "; first admin ", (issued.person, "bold")))
    console.print(Text.assemble("Key (shown once, podium keeps only its digest): ", (issued.key, "bold")))
    console.print(Text(f"Stored for this command line in {config.key_file} (readable by you only)."))


@keys_app.command("issue")
def keys_issue(
    person: Annotated[str, typer.Option(help="Who the key is for (in the directory: `podium people add`).")],
    expires: Annotated[
        float | None, typer.Option(help="Days until it stops working (1-3650). Default: until revoked.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Issue a key for a person and print it once (admins only; audited)."""
    with connected() as pod:
        issued = pod.keys.issue(person, by=pod.operator(), expires_days=expires)
    if as_json:
        typer.echo(json.dumps(_issued_json(issued)))
        return
    until = f"until {format_time(issued.expires_at)}" if issued.expires_at else "until revoked"
    console.print(Text(f"Key {issued.id} for {issued.person}, {until} (shown once, podium keeps only its digest):"))
    console.print(Text(issued.key, style="bold"))


@keys_app.command("list")
def keys_list(
    person: Annotated[str | None, typer.Option(help="Only this person's keys.")] = None,
    as_json: Json = False,
) -> None:
    """Every key: whose, when made and by whom, and whether it is live, expired or revoked (never the secret)."""
    with connected(read=True) as pod:
        found = pod.keys.list(person)
    if as_json:
        typer.echo(json.dumps([_key_json(k) for k in found]))
        return
    table = Table("id", "person", "state", "created", "created by", "expires", "revoked by")
    for k in found:
        table.add_row(
            *(
                Text(v)
                for v in (
                    k.id,
                    k.person,
                    k.state(),
                    format_time(k.created_at),
                    k.created_by,
                    format_time(k.expires_at) if k.expires_at else "-",
                    k.revoked_by or "-",
                )
            )
        )
    console.print(table if found else "No keys yet: `podium init --admin EMAIL` makes the first.")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (`podium keys list`).")]) -> None:
    """Revoke a key at once (admins, or the key's own person; audited)."""
    with connected() as pod:
        key = pod.keys.revoke(key_id, by=pod.operator())
    console.print(Text(f"{key.id} ({key.person}): revoked by {key.revoked_by}"))


def _issued_json(issued: IssuedPersonKey) -> dict[str, object]:
    return {"key": issued.key, "id": issued.id, "person": issued.person, "expires_at": _iso(issued.expires_at)}


def _key_json(key: PersonKey) -> dict[str, object]:
    return {
        "id": key.id,
        "person": key.person,
        "state": key.state(),
        "created_at": _iso(key.created_at),
        "created_by": key.created_by,
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
        "revoked_by": key.revoked_by,
    }


def _iso(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z") if at is not None else None
