"""Block lists for what stays unsanctioned: the catalogue's domains and hosts, written exactly as a proxy or a DNS
server reads them (Squid's dstdomain ACL file, dnsmasq's `address=` lines, a Pi-hole adlist, or a CSV to review).

The catalogue is data, and data can be hostile: a "domain" such as `openai.com/0.0.0.0\naddress=/#/` would be read
by dnsmasq as a rule that blocks everything. So every name is checked as a DNS name (letters, digits and hyphens in
labels of at most 63, 253 in all, a registrable domain under a public suffix, never a suffix alone) before it is
written, and what fails is left out and counted, never written "as best we can".
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from podium.discovery._catalogue import Catalogue
from podium.errors import UsageError

if TYPE_CHECKING:
    from tldextract import TLDExtract

BLOCKLIST_FORMATS = ("squid", "dnsmasq", "pihole", "csv")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_MAX_NAME = 253
_SPREADSHEET_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Blocked:
    """One name to block: `subdomains` says whether it covers every name under it (a catalogue domain) or only
    itself (a catalogue host)."""

    service: str
    name: str
    subdomains: bool
    category: str
    risk: int


@dataclass(frozen=True)
class Blocklist:
    """What to block, and what was left out and why (a name that is no DNS name, or one that would block a
    sanctioned service too)."""

    entries: list[Blocked]
    left_out: list[tuple[str, str, str]]  # (service, the name as the catalogue gave it, why)


def dns_name(value: str) -> str | None:
    """`value` as a lower-case DNS name podium will write into a block list, or None if it is not one: ASCII
    letters, digits and hyphens only, at least a registrable domain (not `com`, not `co.uk`)."""
    name = value.lower().removesuffix(".")
    if not name or len(name) > _MAX_NAME or not name.isascii():
        return None
    labels = name.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return name if _registrable(name) else None


@cache
def _extract() -> TLDExtract:
    from tldextract import TLDExtract

    return TLDExtract(suffix_list_urls=(), cache_dir=None)  # the bundled snapshot: nothing is fetched


def _registrable(name: str) -> bool:
    parts = _extract()(name)
    return bool(parts.domain and parts.suffix)


def unsanctioned(catalogue: Catalogue, *, keep: Iterable[str] = ()) -> Blocklist:
    """The names of every service not sanctioned, most specific covering rule only; `keep` are more names never
    to block (the gateway's own hosts, a redirect's target). A domain whose block would also catch a sanctioned
    name (a vendor's shared parent domain) is left out, so a block list never breaks what was sanctioned."""
    allowed = {n for n in (dns_name(k) for k in keep) if n}
    for service in catalogue.services.values():
        if service.sanctioned:
            allowed |= {n for n in map(dns_name, (*service.domains, *service.hosts)) if n}
    entries: dict[str, Blocked] = {}
    left_out: list[tuple[str, str, str]] = []
    for service in sorted(catalogue.services.values(), key=lambda s: s.id):
        if service.sanctioned:
            continue
        rules = [(d, True) for d in service.domains] + [(h, False) for h in service.hosts]
        for raw, subdomains in rules:
            name = dns_name(raw)
            if name is None:
                left_out.append((service.id, raw[:200], "not a DNS name podium writes into a block list"))
                continue
            caught = [a for a in allowed if a == name or (subdomains and a.endswith(f".{name}"))]
            if caught:
                left_out.append((service.id, name, f"would also block {min(caught)}, which is sanctioned"))
                continue
            if name not in entries or subdomains:  # a domain rule covers more than a host rule of the same name
                entries[name] = Blocked(service.id, name, subdomains, service.category, service.risk)
    return Blocklist(_most_general(entries.values()), left_out)


def _most_general(entries: Iterable[Blocked]) -> list[Blocked]:
    """Drop what a broader domain already covers: Squid warns about (and may drop) overlapping dstdomain entries,
    and a shorter list reads better."""
    domains = {e.name for e in entries if e.subdomains}
    kept = [e for e in entries if not any(_parent(e.name, i) in domains for i in range(1, e.name.count(".")))]
    return sorted(kept, key=lambda e: (e.name.split(".")[::-1], e.name))


def _parent(name: str, drop: int) -> str:
    return name.split(".", drop)[-1]


def redirect_address(value: str) -> str:
    """The address a DNS block list answers with instead of 0.0.0.0: an IP address (dnsmasq's `address=` takes
    no host name)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise UsageError(
            f"--redirect {value[:80]!r} is not an IP address: dnsmasq answers with an address, so give the gateway "
            "host's (e.g. --redirect 10.0.0.5)."
        ) from None


def render_blocklist(blocklist: Blocklist, fmt: str, *, redirect: str | None = None) -> str:
    """The list in `fmt`, as that tool reads it. `redirect` (an IP address) answers DNS with the gateway's host
    instead of 0.0.0.0; only dnsmasq can say so in its list."""
    if fmt not in BLOCKLIST_FORMATS:
        raise UsageError(f"--format {fmt[:40]!r} is not one podium writes; use one of {', '.join(BLOCKLIST_FORMATS)}.")
    if redirect is not None and fmt != "dnsmasq":
        raise UsageError(
            f"--redirect works with --format dnsmasq only: {fmt} lists what to block, not where to send it. For a "
            "Pi-hole, put the dnsmasq list in /etc/dnsmasq.d/ (Pi-hole 5) or misc.dnsmasq_lines (Pi-hole 6)."
        )
    entries = blocklist.entries
    if fmt == "csv":
        return _csv(entries)
    if fmt == "squid":
        lines = [f".{e.name}" if e.subdomains else e.name for e in entries]
        return _with_header(lines, 'Squid dstdomain ACL: acl ai_unsanctioned dstdomain "/etc/squid/this-file"')
    if fmt == "pihole":
        lines = [f"||{e.name}^" if e.subdomains else e.name for e in entries]
        return _with_header(lines, "Pi-hole adlist: ||domain^ blocks the domain and its subdomains, a bare name itself")
    answer = redirect_address(redirect) if redirect is not None else "0.0.0.0"  # noqa: S104 - the null answer
    lines = [f"address=/{e.name}/{answer}" for e in entries]
    return _with_header(lines, "dnsmasq: address=/domain/answer covers the domain and its subdomains")


def _with_header(lines: Sequence[str], what: str) -> str:
    head = [
        f"# {what}",
        f"# {len(lines)} names of unsanctioned AI services, written by podium discover export-blocklist",
    ]
    return "\n".join([*head, *lines]) + "\n"


def _csv(entries: Sequence[Blocked]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["service", "domain", "category", "risk"])
    for e in entries:
        writer.writerow([_cell(e.service), e.name, _cell(e.category), e.risk])
    return out.getvalue()


def _cell(text: str) -> str:
    """A catalogue value as a spreadsheet shows it, never as a formula it runs."""
    text = " ".join(text.split())[:200]
    return f"'{text}" if text.startswith(_SPREADSHEET_FORMULA) else text
