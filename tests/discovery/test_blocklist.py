"""`podium discover export-blocklist`'s lists: each format line by line as its tool reads it, sanctioned services
and the gateway never in them, and hostile catalogue data never turned into a line that means something else."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.discovery import Catalogue, Service
from podium.discovery._blocklist import dns_name, render_blocklist, unsanctioned
from podium.errors import UsageError


def service(sid: str, *domains: str, hosts: tuple[str, ...] = (), sanctioned: bool = False, risk: int = 50) -> Service:
    return Service(sid, sid.title(), "Vendor", "chat", tuple(domains), hosts, risk, sanctioned=sanctioned)


CATALOGUE = Catalogue(
    [
        service("chatgpt", "chatgpt.com", "openai.com", risk=62),
        service("openai-api", "api.openai.com"),  # under chatgpt's openai.com: covered by it
        service("copilot", hosts=("copilot-proxy.githubusercontent.com",), sanctioned=True),
        service("claude", "claude.ai", hosts=("api.anthropic.com",)),
        service("podium-gateway", "podium.example.com", sanctioned=True),
    ]
)

# What each tool reads a data line as (comments start with '#'): the strict shape of a rule, nothing more.
LINE = {
    "squid": re.compile(r"\.?[a-z0-9.-]+"),
    "dnsmasq": re.compile(r"address=/[a-z0-9.-]+/(0\.0\.0\.0|[0-9a-f:.]+)"),
    "pihole": re.compile(r"(\|\|[a-z0-9.-]+\^|[a-z0-9.-]+)"),
}


def data_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_each_format_lists_what_stays_unsanctioned_as_its_tool_reads_it() -> None:
    blocklist = unsanctioned(CATALOGUE)
    assert data_lines(render_blocklist(blocklist, "squid")) == [
        ".claude.ai",
        "api.anthropic.com",
        ".chatgpt.com",
        ".openai.com",
    ]
    assert data_lines(render_blocklist(blocklist, "dnsmasq")) == [
        "address=/claude.ai/0.0.0.0",
        "address=/api.anthropic.com/0.0.0.0",
        "address=/chatgpt.com/0.0.0.0",
        "address=/openai.com/0.0.0.0",
    ]
    assert data_lines(render_blocklist(blocklist, "pihole")) == [
        "||claude.ai^",
        "api.anthropic.com",
        "||chatgpt.com^",
        "||openai.com^",
    ]
    rows = list(csv.reader(io.StringIO(render_blocklist(blocklist, "csv"))))
    assert rows[0] == ["service", "domain", "category", "risk"]
    assert ["chatgpt", "openai.com", "chat", "62"] in rows
    assert {r[0] for r in rows[1:]} == {"chatgpt", "claude"}  # openai-api is covered by chatgpt's openai.com


def test_a_redirect_answers_with_the_gateways_address_and_only_dnsmasq_can_say_so() -> None:
    blocklist = unsanctioned(CATALOGUE, keep=["podium.example.com"])
    assert "address=/claude.ai/10.0.0.5" in data_lines(render_blocklist(blocklist, "dnsmasq", redirect="10.0.0.5"))
    assert "address=/claude.ai/fd00::5" in data_lines(render_blocklist(blocklist, "dnsmasq", redirect="fd00:0::5"))
    with pytest.raises(UsageError, match="not an IP address"):
        render_blocklist(blocklist, "dnsmasq", redirect="gateway.example.com")
    with pytest.raises(UsageError, match="dnsmasq only"):
        render_blocklist(blocklist, "squid", redirect="10.0.0.5")
    with pytest.raises(UsageError, match="squid, dnsmasq, pihole, csv"):
        render_blocklist(blocklist, "hosts")


def test_a_domain_whose_block_would_catch_a_sanctioned_host_is_left_out_and_said() -> None:
    catalogue = Catalogue(
        [
            service("github-ai", "githubusercontent.com"),
            service("copilot", hosts=("copilot-proxy.githubusercontent.com",), sanctioned=True),
        ]
    )
    blocklist = unsanctioned(catalogue, keep=["gateway.githubusercontent.com"])
    assert blocklist.entries == []
    assert blocklist.left_out[0][0] == "github-ai" and "sanctioned" in blocklist.left_out[0][2]


@pytest.mark.parametrize(
    "hostile",
    [
        "openai.com/0.0.0.0\naddress=/#/",
        "openai.com\n.",
        "open ai.com",
        "*.openai.com",
        "openai.com/",
        "-openai.com",
        "openai-.com",
        "com",
        "co.uk",
        "xn--nxasmq6b",  # a bare internationalised TLD
        "ｏｐｅｎａｉ.com",  # full-width letters
        "a" * 64 + ".com",
        ("a" * 60 + ".") * 5 + "com",
        "",
    ],
)
def test_hostile_catalogue_names_are_never_written(hostile: str) -> None:
    catalogue = Catalogue([service("evil", hostile, hosts=(hostile,)), service("ok", "example-ai.com")])
    blocklist = unsanctioned(catalogue)
    assert [e.name for e in blocklist.entries] == ["example-ai.com"]
    assert {why for _, _, why in blocklist.left_out} == {"not a DNS name podium writes into a block list"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=80), min_size=1, max_size=5))
def test_no_catalogue_data_makes_a_line_its_tool_reads_as_anything_but_one_rule(names: list[str]) -> None:
    blocklist = unsanctioned(Catalogue([service("fuzz", *names, hosts=tuple(names))]))
    for fmt, shape in LINE.items():
        for line in data_lines(render_blocklist(blocklist, fmt)):
            assert shape.fullmatch(line), (fmt, line)
    rows = list(csv.reader(io.StringIO(render_blocklist(blocklist, "csv"))))
    assert all(len(row) == 4 for row in rows)


def test_a_spreadsheet_never_runs_a_catalogue_value_as_a_formula() -> None:
    catalogue = Catalogue([Service("x", "X", "V", '=HYPERLINK("http://evil")', ("example-ai.com",), risk=1)])
    rows = list(csv.reader(io.StringIO(render_blocklist(unsanctioned(catalogue), "csv"))))
    assert rows[1][2].startswith("'=")


def test_a_dns_name_is_lower_case_without_its_root_dot() -> None:
    assert dns_name("Chat.OpenAI.com.") == "chat.openai.com"
    assert dns_name("xn--80ak6aa92e.com") == "xn--80ak6aa92e.com"
    assert dns_name("github.io") == "github.io"  # under a public suffix; private suffixes count as domains
