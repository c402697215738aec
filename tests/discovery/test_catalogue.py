"""The AI-service catalogue: the shipped data is complete and sourced, matching is exact about label boundaries and
never fooled by look-alikes or hostile names, the risk formula is the one the docs publish, and podium.toml's
[discovery] section is checked with messages that say what to fix."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium import Settings
from podium.discovery import (
    CATEGORIES,
    GATEWAY_ID,
    WEIGHTS,
    Catalogue,
    RiskFactors,
    Service,
    Training,
    normalise_host,
    registered_domain,
    risk_parts,
    risk_score,
)
from podium.errors import ConfigurationError, NotFoundError
from podium.models import DiscoverySetting, ModelConfig

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs/shadow-ai.md"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


def shipped(catalogue: Catalogue) -> list[Service]:
    return [s for s in catalogue.services.values() if s.id != GATEWAY_ID]


def with_setting(**discovery: Any) -> Catalogue:
    return Catalogue.load(DiscoverySetting.model_validate(discovery))


# The shipped data ------------------------------------------------------------------------------------------------


def test_the_data_file_ships_inside_the_package() -> None:
    folder = importlib.resources.files("podium.discovery")
    assert folder.joinpath("catalogue.toml").is_file()
    assert "MIT License" in folder.joinpath("catalogue-v2fly-LICENSE.txt").read_text()
    assert "v2fly" in folder.joinpath("catalogue.toml").read_text().split("[services.", 1)[0]


def test_at_least_200_services_each_with_sourced_factors(catalogue: Catalogue) -> None:
    services = shipped(catalogue)
    assert len(services) >= 200
    for service in services:
        assert service.name and service.vendor, service.id
        assert service.category in CATEGORIES, service.id
        assert service.domains or service.hosts, service.id
        assert service.factors.source is not None and service.factors.source.startswith("https://"), service.id
        assert service.factors.checked is not None and service.factors.checked <= dt.date.today(), service.id
        assert service.risk == risk_score(service.factors), service.id
        assert service.equivalent in (None, "chat", "code", "embeddings"), service.id
    wanted = {"chat-assistant", "coding-assistant", "image", "voice-audio", "video", "model-api", "agent-platform"}
    wanted |= {"mcp-platform", "saas-ai-feature", "search", "writing", "meeting-notes"}
    assert wanted <= {s.category for s in services}


def test_every_rule_is_a_normalised_name_that_matches_its_own_service(catalogue: Catalogue) -> None:
    rules = catalogue.rules()
    assert len(rules) > 400
    for rule in rules:
        assert normalise_host(rule.value) == rule.value
        matched = catalogue.match(rule.value)
        assert matched is not None and matched.id == rule.service, rule


def test_no_catalogue_domain_is_shared_with_unrelated_sites(catalogue: Catalogue) -> None:
    """Domains anyone publishes under are exact hosts only; the big shared platforms are never whole domains."""
    domains = {rule.value for rule in catalogue.rules() if not rule.exact}
    shared = {"google.com", "microsoft.com", "github.com", "githubusercontent.com", "amazonaws.com", "azure.com"}
    shared |= {"googleapis.com", "cloudflare.net", "livekit.cloud", "datadoghq.com", "envato.com", "liveperson.net"}
    assert not domains & shared
    for domain in domains:
        assert registered_domain(domain) != "" and not domain.endswith((".vercel.app", ".hf.space", ".github.io"))


# Matching --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("chat.openai.com", "openai-chatgpt"),
        ("CHATGPT.com.", "openai-chatgpt"),
        ("api.openai.com", "openai-api"),
        ("eu.api.openai.com", "openai-api"),
        ("claude.ai", "anthropic-claude"),
        ("api.anthropic.com", "anthropic-api"),
        ("gemini.google.com", "google-gemini"),
        ("generativelanguage.googleapis.com", "google-gemini-api"),
        ("copilot-proxy.githubusercontent.com", "github-copilot"),
        ("api.individual.githubcopilot.com", "github-copilot"),
        ("my-resource.openai.azure.com", "azure-openai"),
        ("bedrock-runtime.eu-central-1.amazonaws.com", "amazon-bedrock"),
        ("sora.chatgpt.com", "openai-sora"),
        ("hf.space", "huggingface"),
    ],
)
def test_known_hosts_match_their_service(catalogue: Catalogue, host: str, service: str) -> None:
    matched = catalogue.match(host)
    assert matched is not None and matched.id == service


@pytest.mark.parametrize(
    "host",
    [
        "openai.com.evil.net",
        "notopenai.com",
        "openai-com.net",
        "chatgpt.com.attacker.io",
        "xn--penai-0ve.com",  # "оpenai.com" with a Cyrillic о
        "оpenai.com",  # the same, as Unicode
        "xn--openai-.com",  # not valid punycode
        "xn--.openai.com",
        "chat..openai.com",
        ".openai.com",
        "openai.com..",
        "a" * 300 + ".openai.com",
        "x" * 64 + ".openai.com",
        ("a." * 130) + "openai.com",  # 270 characters, every label valid
        "openai.com:443",
        "open ai.com",
        "openai\x00.com",
        "-chat.openai.com",
        "x.gemini.google.com",  # gemini.google.com is an exact host
        "google.com",
        "githubusercontent.com",
        "user-site.hf.space",
        "openai.vercel.app",
        "",
        ".",
        "com",
    ],
)
def test_look_alikes_and_broken_names_never_match(catalogue: Catalogue, host: str) -> None:
    assert catalogue.match(host) is None


def test_no_look_alike_of_any_catalogue_domain_matches(catalogue: Catalogue) -> None:
    """A look-alike matches nothing, unless it really lies under a domain the service's owner registered
    (`notapi.openai.com` is OpenAI's own name)."""
    owners: dict[str, set[str]] = {}
    for rule in catalogue.rules():
        owners.setdefault(rule.service, set()).add(registered_domain(rule.value))
    for rule in catalogue.rules():
        dashed = rule.value.replace(".", "-")
        for fake in (f"{rule.value}.evil.net", f"not{rule.value}", f"{dashed}.net", f"{rule.value}-login.com"):
            matched = catalogue.match(fake)
            assert matched is None or registered_domain(fake) in owners[matched.id], fake


def test_subdomains_match_domains_and_exact_hosts_match_only_exactly(catalogue: Catalogue) -> None:
    for rule in catalogue.rules():
        below = catalogue.match(f"deep.sub.{rule.value}")
        if rule.exact:
            assert below is None, rule
        else:
            assert below is not None and below.id == rule.service, rule


def test_an_exact_host_and_the_longest_domain_win() -> None:
    catalogue = Catalogue(
        [
            Service("broad", "Broad", "v", "other", domains=("example.com",)),
            Service("narrow", "Narrow", "v", "other", domains=("deep.example.com",)),
            Service("exact", "Exact", "v", "other", domains=(), hosts=("x.deep.example.com",)),
        ]
    )
    found = {h: getattr(catalogue.match(h), "id", None) for h in ("a.example.com", "a.deep.example.com")}
    assert found == {"a.example.com": "broad", "a.deep.example.com": "narrow"}
    assert getattr(catalogue.match("x.deep.example.com"), "id", None) == "exact"
    assert getattr(catalogue.match("y.x.deep.example.com"), "id", None) == "narrow"


def test_internationalised_names_are_matched_as_punycode() -> None:
    catalogue = with_setting(services={"books": {"domains": ["xn--bcher-kva.example"]}})
    assert normalise_host("BÜCHER.example.") == "xn--bcher-kva.example"
    for host in ("bücher.example", "ai.BÜCHER.example", "ai.xn--bcher-kva.example"):
        matched = catalogue.match(host)
        assert matched is not None and matched.id == "books", host


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=300) | st.from_regex(r"[a-zA-Z0-9.\-_]{0,300}", fullmatch=True))
def test_normalising_any_text_never_crashes_and_yields_a_bounded_host_name(raw: str) -> None:
    host = normalise_host(raw)
    if host is not None:
        assert host.isascii() and len(host) <= 253 and host == host.lower() and not host.endswith(".")
        assert all(0 < len(label) <= 63 for label in host.split("."))
        assert normalise_host(host) == host
        assert normalise_host(host.upper() + ".") == host
    Catalogue.registered_domain(raw)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["chat", "openai", "com", "xn--", "-", "", "a" * 63, "ő", "."]), max_size=8))
def test_hostile_names_built_from_catalogue_pieces_match_only_as_a_resolver_would(parts: list[str]) -> None:
    catalogue = Catalogue([Service("openai", "OpenAI", "OpenAI", "chat-assistant", domains=("openai.com",))])
    host = ".".join(parts)
    matched = catalogue.match(host)
    name = normalise_host(host)
    assert (matched is not None) == (name is not None and (name == "openai.com" or name.endswith(".openai.com")))


def test_registered_domain_uses_the_public_suffix_list() -> None:
    assert Catalogue.registered_domain("chat.openai.com") == "openai.com"
    assert registered_domain("a.b.example.co.uk") == "example.co.uk"
    assert registered_domain("my-app.vercel.app") == "my-app.vercel.app"
    assert registered_domain("10.1.2.3") == "10.1.2.3"
    assert registered_domain("x" * 1000) == "x" * 253


def test_the_public_suffix_list_is_read_offline(tmp_path: Path) -> None:
    """A process whose sockets all fail loads the catalogue and splits domains, and writes no cache anywhere."""
    script = """
import socket
def refuse(*args, **kwargs):
    raise AssertionError("network access")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from podium.discovery import Catalogue, registered_domain
assert len(Catalogue.load().services) > 200
assert registered_domain("chat.openai.com") == "openai.com"
print("offline")
"""
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("TLDEXTRACT_CACHE", None)
    run = [sys.executable, "-c", script]
    done = subprocess.run(run, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "offline"
    assert list(tmp_path.iterdir()) == []


# The risk formula ------------------------------------------------------------------------------------------------

YES_NO = st.sampled_from(["yes", "no", "unknown"])
REGIONS = st.lists(st.sampled_from(["US", "EU", "UK", "JP", "CN"]), max_size=4, unique=True).map(tuple)
CERTS = st.lists(st.sampled_from(["SOC 2 Type 2", "ISO/IEC 27001", "ISO/IEC 42001", "CSA STAR"]), max_size=3)
FACTORS = st.builds(
    RiskFactors,
    trains_on_customer_data=st.builds(Training, consumer=YES_NO, business=YES_NO),
    enterprise_tier=st.sampled_from([True, False, "unknown"]),
    data_residency=REGIONS | st.just("unknown"),
    retention=st.integers(0, 4000) | st.sampled_from(["until-deleted", "unknown"]),
    certifications=CERTS.map(tuple) | st.just("unknown"),
)


def worse(factors: RiskFactors, which: int, data: st.DataObject) -> RiskFactors:
    """`factors` with one factor made riskier (or left as risky as it was)."""
    training = factors.trains_on_customer_data
    if which == 0:
        tier = data.draw(st.sampled_from(["consumer", "business"]))
        value = data.draw(st.sampled_from(["yes", "unknown"]))
        return factors.model_copy(update={"trains_on_customer_data": training.model_copy(update={tier: value})})
    if which == 1:
        return factors.model_copy(update={"enterprise_tier": data.draw(st.sampled_from([False, "unknown"]))})
    if which == 2:
        kept = factors.retention
        if not isinstance(kept, int):  # already the worst
            return factors
        longer = data.draw(st.sampled_from(["until-deleted", "unknown"]) | st.integers(kept, kept + 4000))
        return factors.model_copy(update={"retention": longer})
    if which == 3:
        regions = factors.data_residency
        fewer = "unknown" if isinstance(regions, str) else regions[: data.draw(st.integers(0, len(regions)))]
        return factors.model_copy(update={"data_residency": data.draw(st.just(fewer) | st.just("unknown"))})
    certs = factors.certifications
    fewer_certs = "unknown" if isinstance(certs, str) else certs[: data.draw(st.integers(0, len(certs)))]
    return factors.model_copy(update={"certifications": data.draw(st.just(fewer_certs) | st.just("unknown"))})


@settings(max_examples=1000, deadline=None)
@given(FACTORS, st.integers(0, 4), st.data())
def test_more_risk_never_lowers_the_score(factors: RiskFactors, which: int, data: st.DataObject) -> None:
    riskier = worse(factors, which, data)
    assert 0 <= risk_score(factors) <= risk_score(riskier) <= 100


def test_the_score_runs_from_all_known_and_safe_to_all_unknown() -> None:
    safe = RiskFactors(
        trains_on_customer_data=Training(consumer="no", business="no"),
        enterprise_tier=True,
        data_residency=("US", "EU"),
        retention=0,
        certifications=("SOC 2 Type 2",),
    )
    assert risk_score(safe) == 0
    assert risk_score(RiskFactors()) == 100 == sum(WEIGHTS.values())
    assert list(risk_parts(RiskFactors())) == list(WEIGHTS)


def test_the_docs_publish_the_weights_the_code_uses() -> None:
    section = DOCS.read_text().split("### The formula", 1)[1].split("###", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ") and "`" in line]
    published = {cells[2].strip().strip("`"): int(cells[3]) for cells in rows}
    assert published == dict(WEIGHTS)


def test_the_docs_worked_example_is_the_catalogues_row_and_adds_up(catalogue: Catalogue) -> None:
    section = DOCS.read_text().split("**Worked example**", 1)[1]
    block = tomllib.loads(section.split("```toml\n", 1)[1].split("```", 1)[0])
    example = RiskFactors.model_validate(block["discovery"]["services"]["openai-chatgpt"]["factors"])
    sum_line = next(line for line in section.splitlines() if "= **" in line)
    terms, total = sum_line.split("=")
    assert [int(t) for t in terms.split("+")] == list(risk_parts(example).values())
    assert int(total.strip(" *")) == risk_score(example)
    mentioned = {"source", "checked"}
    row = catalogue.get("openai-chatgpt").factors
    assert example.model_dump(exclude=mentioned) == row.model_dump(exclude=mentioned)


def test_the_docs_podium_toml_example_loads() -> None:
    section = DOCS.read_text().split("### Your organisation's decisions", 1)[1]
    data = tomllib.loads(section.split("```toml\n", 1)[1].split("```", 1)[0])
    catalogue = Catalogue.load(ModelConfig.model_validate(data).discovery)
    assert catalogue.get("openai-api").sanctioned and catalogue.get("deepseek").blocked
    assert getattr(catalogue.match("rag.example.com"), "id", None) == "our-rag"
    assert catalogue.get("openai-chatgpt").factors.retention == 30


# podium.toml's [discovery] ---------------------------------------------------------------------------------------


def test_sanctioned_blocked_and_the_gateway(catalogue: Catalogue) -> None:
    configured = with_setting(sanctioned=["openai-api"], blocked=["deepseek"], gateway_hosts=["Podium.Example.com."])
    assert configured.get("openai-api").sanctioned and not configured.get("openai-api").blocked
    assert configured.get("deepseek").blocked and not configured.get("deepseek").sanctioned
    gateway = configured.match("podium.example.com")
    assert gateway is not None and gateway.id == GATEWAY_ID and gateway.sanctioned and gateway.risk == 0
    assert configured.match("x.podium.example.com") is None
    assert catalogue.get(GATEWAY_ID).sanctioned and not catalogue.get("openai-chatgpt").sanctioned


@pytest.mark.parametrize(
    ("discovery", "message"),
    [
        ({"sanctioned": ["openai-chatgtp"]}, "did you mean 'openai-chatgpt'"),
        ({"blocked": ["deepsek"]}, "[discovery] blocked names 'deepsek'"),
        ({"sanctioned": ["cursor"], "blocked": ["cursor"]}, "blocks cursor, which is sanctioned"),
        ({"blocked": [GATEWAY_ID]}, f"blocks {GATEWAY_ID}"),
        ({"gateway_hosts": ["podium..example.com"]}, "gateway_hosts: 'podium..example.com' is not a host name"),
        ({"services": {"ours": {"name": "Ours"}}}, "[discovery.services.ours] the row: Value error, a service needs"),
        ({"services": {"ours": {"domains": ["a.example"], "category": "chat"}}}, "[discovery.services.ours] category"),
        ({"services": {"ours": {"hosts": ["a.example"], "factors": {"retention": -1}}}}, "ours] factors.retention"),
        ({"services": {"ours": {"hosts": ["a.example"], "colour": "red"}}}, "ours] colour: Extra inputs"),
        ({"services": {"ours": {"domains": ["bücher.example"]}}}, "punycode"),
        ({"services": {"Our Tool": {"hosts": ["a.example"]}}}, "a service id is a slug"),
        ({"services": {GATEWAY_ID: {"hosts": ["a.example"]}}}, "set [discovery] gateway_hosts instead"),
        ({"services": {"ours": {"domains": ["vercel.app"]}}}, "'vercel.app' is a public suffix"),
        ({"services": {"ours": {"domains": ["ours.vercel.app"]}}}, "under 'vercel.app', where anyone can publish"),
        ({"services": {"ours": {"domains": ["co.uk"]}}}, "'co.uk' is a public suffix"),
    ],
)
def test_a_wrong_setting_is_refused_with_the_fix(discovery: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        with_setting(**discovery)
    assert message in str(refused.value)


def test_a_shared_hosting_name_can_be_an_exact_host() -> None:
    catalogue = with_setting(services={"ours": {"hosts": ["ours.vercel.app"]}}, sanctioned=["ours"])
    assert getattr(catalogue.match("ours.vercel.app"), "id", None) == "ours"
    assert catalogue.match("other.vercel.app") is None and catalogue.match("x.ours.vercel.app") is None


def test_the_organisations_entries_correct_and_extend_the_catalogue() -> None:
    corrected = with_setting(
        services={
            "openai-chatgpt": {"factors": {"retention": 0, "certifications": ["ISO/IEC 27001"]}},
            "our-proxy": {"name": "Our proxy", "domains": ["ai.corp.example"], "equivalent": "chat"},
            "claude-via-us": {"hosts": ["claude.ai"]},  # takes a host the catalogue has as a domain
        }
    )
    chatgpt = corrected.get("openai-chatgpt")
    assert chatgpt.factors.retention == 0 and chatgpt.factors.trains_on_customer_data.consumer == "yes"
    assert chatgpt.risk == 35  # only the consumer tier's training is left
    ours = corrected.get("our-proxy")
    assert (ours.vendor, ours.category, ours.risk) == ("unknown", "other", 100)
    assert getattr(corrected.match("claude.ai"), "id", None) == "claude-via-us"
    assert getattr(corrected.match("www.claude.ai"), "id", None) == "anthropic-claude"


def test_get_names_the_closest_ids(catalogue: Catalogue) -> None:
    assert catalogue.get("cursor").name == "Cursor"
    with pytest.raises(NotFoundError, match="did you mean 'cursor'"):
        catalogue.get("cursr")


def broken(row: str) -> str:
    good = '[services.good]\nname = "Good"\nvendor = "V"\ncategory = "image"\ndomains = ["good.example"]\n'
    return good + 'factors = { source = "https://good.example/", checked = 2026-01-01 }\n' + row


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('[services.bad]\nname = "Bad"\nvendor = "V"\ncategory = "image"\ndomains = ["b.example"]\n', "bad] factors"),
        (
            '[services.bad]\nname = "B"\nvendor = "V"\ncategory = "image"\ndomains = ["b.example"]\n'
            'factors = { source = "http://b.example/", checked = 2026-01-01 }\n',
            "[services.bad] factors.source",
        ),
        (
            '[services.bad]\nname = "B"\nvendor = "V"\ncategory = "image"\ndomains = ["github.io"]\n'
            'factors = { source = "https://b.example/", checked = 2026-01-01 }\n',
            "[services.bad] domains: 'github.io' is a public suffix",
        ),
        (
            '[services.bad]\nname = "B"\nvendor = "V"\ncategory = "image"\nhosts = ["a.good.example"]\n'
            'domains = ["good.example"]\nfactors = { source = "https://b.example/", checked = 2026-01-01 }\n',
            "lists 'good.example' for both good and bad",
        ),
        ("[services.bad\n", "not valid TOML"),
    ],
)
def test_a_broken_catalogue_row_is_refused_naming_service_and_field(row: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Catalogue.from_toml(broken(row))
    assert message in str(refused.value)


def test_the_catalogue_is_built_from_podium_toml(tmp_path: Path) -> None:
    config = tmp_path / "podium.toml"
    config.write_text('[discovery]\nsanctioned = ["github-copilot"]\ngateway_hosts = ["ai.corp.example"]\n')
    catalogue = Catalogue.from_settings(Settings(home=tmp_path / "podium", config=config))
    assert catalogue.get("github-copilot").sanctioned
    assert getattr(catalogue.match("ai.corp.example"), "id", None) == GATEWAY_ID
    config.write_text('[discovery]\nsanctioned = ["github-copilot"]\nallowed = []\n')
    with pytest.raises(ConfigurationError, match="discovery.allowed: Extra inputs are not permitted"):
        Catalogue.from_settings(Settings(home=tmp_path / "podium", config=config))
