"""`podium init` and `podium keys …`: who may act, proved by a key rather than claimed by a name."""

from __future__ import annotations

from typing import Annotated

import typer

from podium._time import format_time
from podium.cli._common import connected, console, settings
from podium.cli._display import AsJson, print_json, row, styled, table
from podium.cli._fields import issued_key_fields, key_fields

keys_app = typer.Typer(
    help="People's keys: issue (shown once), list and revoke them. Every action is taken as a key's person.",
    no_args_is_help=True,
)


def init(
    admin: Annotated[str, typer.Option("--admin", help="The first admin, as they sign (e.g. ana@example.com).")],
    as_json: Annotated[bool, typer.Option("--json", help='Print {"key": "..."} instead of a sentence.')] = False,
) -> None:
    """Create a home and its first admin, print the admin's key once, and store it (owner-only) for this
    command line. A new home gets its first admin this way (or from `podium demo`, for its own home), never from
    whoever acts first."""
    from podium._runtime import Podium

    config = settings()
    with Podium.connect(config) as pod:
        issued = pod.keys.bootstrap(admin, store_in=config.key_file)
    if as_json:
        print_json(issued_key_fields(issued))
        return
    console.print(styled("Initialised [bold]{}[/]; first admin [bold]{}[/]", config.home, issued.person))
    console.print(styled("Key (shown once, podium keeps only its digest): [bold]{}[/]", issued.key))
    console.print(styled("Stored for this command line in {} (readable by you only).", config.key_file))


@keys_app.command("issue")
def keys_issue(
    person: Annotated[str, typer.Option(help="Who the key is for (in the directory: `podium people add`).")],
    expires: Annotated[
        float | None, typer.Option(help="Days until it stops working (1-3650). Default: until revoked.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Issue a key for a person and print it once (admins only; audited)."""
    with connected() as pod:
        issued = pod.keys.issue(person, by=pod.operator(), expires_days=expires)
    if as_json:
        print_json(issued_key_fields(issued))
        return
    until = f"until {format_time(issued.expires_at)}" if issued.expires_at else "until revoked"
    console.print(
        styled("Key {} for {}, {} (shown once, podium keeps only its digest):", issued.id, issued.person, until)
    )
    console.print(styled("[bold]{}[/]", issued.key))


@keys_app.command("list")
def keys_list(
    person: Annotated[str | None, typer.Option(help="Only this person's keys.")] = None,
    as_json: AsJson = False,
) -> None:
    """Every key: whose, when made and by whom, and whether it is live, expired or revoked (never the secret)."""
    with connected(read=True) as pod:
        found = pod.keys.list(person)
    if as_json:
        print_json([key_fields(k) for k in found])
        return
    shown = table("id", "person", "state", "created", "created by", "expires", "revoked by", ids=["id"])
    for k in found:
        expires = format_time(k.expires_at) if k.expires_at else "-"
        shown.add_row(
            *row(k.id, k.person, k.state(), format_time(k.created_at), k.created_by, expires, k.revoked_by or "-")
        )
    console.print(shown if found else "No keys yet: `podium init --admin EMAIL` makes the first.")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (`podium keys list`).")]) -> None:
    """Revoke a key at once (admins, or the key's own person; audited)."""
    with connected() as pod:
        key = pod.keys.revoke(key_id, by=pod.operator())
    console.print(styled("{} ({}): revoked by {}", key.id, key.person, key.revoked_by))
