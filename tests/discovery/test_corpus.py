"""The labelled corpus generator (benchmarks/_discovery_corpus.py) says the truth about what it writes: parsing
its files here, independently of podium's readers, gives back its (person, service) pairs, bytes and non-AI hosts;
its formats agree with each other; the same seed gives the same bytes."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from benchmarks._discovery_corpus import Corpus, Spec, Usage, corpus

from podium.discovery import Catalogue, Service

SPEC = Spec(seed=3, zeek_lines=6_000, squid_lines=3_000, dns_queries=3_000, days=3, seats=40, benign_domains=1_500)
CATALOGUE = Catalogue(
    [
        Service("chat", "Chat", "Vendor A", "chat", ("openai.com", "chatgpt.com"), ("cdn.oaistatic.example",)),
        Service("claude", "Claude", "Vendor B", "chat", ("claude.ai", "anthropic.com")),
        Service("claude-api", "Claude API", "Vendor B", "model-api", ("api.anthropic.com",)),
        Service("gemini", "Gemini", "Vendor C", "chat", ("gemini.google.com",), ("cloudcode-pa.googleapis.com",)),
        Service("copilot", "Copilot", "Vendor D", "coding", ("githubcopilot.com",),
                ("copilot-proxy.githubusercontent.com",)),
    ]
)  # fmt: skip
BIND = re.compile(r"^(\S+ \S+) queries: info: client @0x[0-9a-f]+ (\S+)#\d+ \((\S+)\): query: (\S+) IN (A|AAAA) ")
DNSMASQ = re.compile(r"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) dnsmasq\[\d+\]: query\[(A|AAAA)\] (\S+) from (\S+)$")
Pairs = dict[tuple[str, str], Usage]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return corpus(CATALOGUE, SPEC, cache=tmp_path_factory.mktemp("corpus"))


def zeek_tsv(path: Path) -> Iterator[dict[str, str]]:
    fields: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields\t"):
            fields = line.split("\t")[1:]
        elif not line.startswith("#"):
            yield dict(zip(fields, line.split("\t"), strict=True))


def tally(records: Iterator[tuple[str | None, str, int | None, int | None]]) -> Pairs:
    """(person, service, up, down) records as the truth counts them: flows if a pair has any, else lookups."""
    flows: dict[tuple[str, str], list[int]] = {}
    lookups: dict[tuple[str, str], int] = {}
    for person, service, up, down in records:
        if up is None or down is None:
            lookups[person, service] = lookups.get((person, service), 0) + 1
        else:
            counts = flows.setdefault((person, service), [0, 0, 0])
            counts[0], counts[1], counts[2] = counts[0] + 1, counts[1] + up, counts[2] + down
    return {pair: Usage(count, up, down) for pair, (count, up, down) in flows.items()} | {
        pair: Usage(count, None, None) for pair, count in lookups.items() if pair not in flows
    }


def test_zeek_truth_is_what_the_logs_say(made: Corpus) -> None:
    folder = made.folder / "zeek-tsv"
    names = {row["uid"]: row["server_name"] for row in zeek_tsv(folder / "ssl.log")}
    names |= {row["uid"]: row["host"] for row in zeek_tsv(folder / "http.log")}
    lookups = list(zeek_tsv(folder / "dns.log"))
    answered = {(row["id.orig_h"], row["answers"].split(",")[-1]): row["query"] for row in lookups}
    records = []
    for row in zeek_tsv(folder / "conn.log"):
        if row["service"] == "dns":
            continue
        host = names.get(row["uid"]) or answered[row["id.orig_h"], row["id.resp_h"]]
        if host in made.ai_hosts:
            person = made.person_at(row["id.orig_h"], float(row["ts"]))
            records.append((person, made.ai_hosts[host], int(row["orig_bytes"]), int(row["resp_bytes"])))
    for row in lookups:
        if row["query"] in made.ai_hosts:
            records.append(
                (made.person_at(row["id.orig_h"], float(row["ts"])), made.ai_hosts[row["query"]], None, None)
            )

    assert None not in {person for person, *_ in records}
    assert tally(iter(records)) == made.truth["zeek"]
    named = {*names.values(), *(row["query"] for row in lookups)}
    assert named - made.ai_hosts.keys() == made.non_ai_hosts["zeek"]
    assert made.ai_hosts.keys() <= named  # every catalogue host appears


def as_tsv(value: object, kind: str) -> str:
    """A Zeek JSON value as Zeek writes it in TSV."""
    if isinstance(value, list):
        return ",".join(as_tsv(item, kind.split("[")[1].rstrip("]")) for item in value)
    if isinstance(value, bool):
        return "T" if value else "F"
    if kind in ("time", "interval"):
        return f"{value:.6f}"
    return str(value)


@pytest.mark.parametrize("log", ["conn", "dns", "ssl", "http"])
def test_zeek_formats_say_the_same(made: Corpus, log: str) -> None:
    tsv = made.folder / "zeek-tsv" / f"{log}.log"
    header = dict(line.split("\t", 1) for line in tsv.read_text().splitlines() if line.startswith("#") and "\t" in line)
    kinds = dict(zip(header["#fields"].split("\t"), header["#types"].split("\t"), strict=True))
    from_json = [
        {name: as_tsv(record[name], kinds[name]) if name in record else "-" for name in kinds}
        for record in map(json.loads, (made.folder / "zeek-json" / f"{log}.log").read_text().splitlines())
    ]
    rows = list(zeek_tsv(tsv))
    assert from_json == rows
    assert len(rows) == made.lines[f"zeek-tsv/{log}.log"] > 0
    stamps = [float(row["ts"]) for row in rows]
    assert stamps == sorted(stamps)
    for fmt in ("tsv", "json"):
        plain = (made.folder / f"zeek-{fmt}" / f"{log}.log").read_bytes()
        assert gzip.decompress((made.folder / f"zeek-{fmt}-gz" / f"{log}.log.gz").read_bytes()) == plain


def test_squid_truth_is_what_the_log_says(made: Corpus) -> None:
    records = []
    hosts, users = set(), set()
    for line in (made.folder / "squid/access.log").read_text().splitlines():
        ts, _, client, code, size, method, url, user, _, _ = line.split()
        users.add(user)
        host = url.split(":")[0] if method == "CONNECT" else urlsplit(url).hostname
        assert host is not None
        hosts.add(host)
        if host in made.ai_hosts:
            assert code.endswith("/200")
            person = user if user != "-" else made.person_at(client, float(ts))
            records.append((person, made.ai_hosts[host], int(size)))
    found: dict[tuple[str, str], list[int]] = {}
    for person, service, size in records:
        counts = found.setdefault((person, service), [0, 0])
        counts[0], counts[1] = counts[0] + 1, counts[1] + size
    assert {pair: Usage(n, None, size) for pair, (n, size) in found.items()} == made.truth["squid"]
    assert hosts - made.ai_hosts.keys() == made.non_ai_hosts["squid"]
    assert "-" in users and len(users) > 10  # some requests name their user, some do not


def test_dns_server_logs_hold_the_same_queries_and_truth(made: Corpus) -> None:
    bind = []
    for line in (made.folder / "dns/query.log").read_text().splitlines():
        match = BIND.match(line)
        assert match, line
        stamp, client, _, host, _ = match.groups()
        moment = dt.datetime.strptime(stamp, "%d-%b-%Y %H:%M:%S.%f").replace(tzinfo=dt.UTC).timestamp()
        bind.append((int(moment), client, host))
    dnsmasq = []
    for line in (made.folder / "dns/dnsmasq.log").read_text().splitlines():
        if match := DNSMASQ.match(line):
            stamp, _, host, client = match.groups()
            moment = dt.datetime.strptime(f"2026 {stamp}", "%Y %b %d %H:%M:%S").replace(tzinfo=dt.UTC).timestamp()
            dnsmasq.append((int(moment), client, host))
    assert bind == dnsmasq
    assert len(bind) == SPEC.dns_queries == made.lines["dns/query.log"]
    records = [(made.person_at(client, moment), made.ai_hosts[host], None, None)
               for moment, client, host in bind if host in made.ai_hosts]  # fmt: skip
    assert tally(iter(records)) == made.truth["dns"]
    assert {host for *_, host in bind} - made.ai_hosts.keys() == made.non_ai_hosts["dns"]


def test_labels_follow_the_catalogue_and_people_change_addresses(made: Corpus) -> None:
    assert {host: getattr(CATALOGUE.match(host), "id", None) for host in made.ai_hosts} == made.ai_hosts
    every_non_ai = set().union(*made.non_ai_hosts.values())
    assert not [host for host in every_non_ai if CATALOGUE.match(host)]
    assert len(every_non_ai) >= SPEC.benign_domains
    assert {"openai.com.evil.net", "notopenai.com", "openai-com.net", "chatgpt.com.co"} <= every_non_ai
    assert "www.google.com" in every_non_ai or "google.com" in every_non_ai  # beside gemini.google.com
    with made.users_csv.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(made.leases) > SPEC.seats  # some addresses change hands mid-way
    by_address: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        by_address.setdefault(row["address"], []).append((row["valid_from"], row["valid_to"]))
    for spans in by_address.values():
        assert all(before[1] <= after[0] for before, after in itertools.pairwise(spans))


def digest(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}  # fmt: skip


def test_same_seed_same_bytes_and_another_seed_other_bytes(made: Corpus, tmp_path: Path) -> None:
    again = corpus(CATALOGUE, SPEC, cache=tmp_path / "again")
    assert digest(again.folder) == digest(made.folder)
    assert corpus(CATALOGUE, SPEC, cache=tmp_path / "again").folder == again.folder  # read from the cache
    other = corpus(CATALOGUE, Spec(**{**SPEC.__dict__, "seed": 4}), cache=tmp_path / "other")
    assert digest(other.folder)["zeek-tsv/conn.log"] != digest(made.folder)["zeek-tsv/conn.log"]
