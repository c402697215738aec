"""Who and what a synthetic discovery corpus is made of: people at addresses (some addresses change hands mid-way, as
DHCP leases do), AI hosts taken from the catalogue, and the non-AI hosts that must never be attributed to a service:
generated and real popular sites, CDN hosts, near misses beside catalogue rules, and look-alikes of AI domains.

Every host here is checked against the catalogue: an AI host is labelled with the service `Catalogue.match` gives
it; a non-AI host the catalogue would match is dropped (and counted), so the labels say what the catalogue means.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import tldextract

from podium.discovery import Catalogue

HOST_SHAPE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")

FIRST = (
    "amelia", "ben", "chloe", "daniel", "elena", "farid", "grace", "hiro", "isla", "jonas", "kemi", "liam",
    "maya", "noah", "olga", "priya", "quinn", "rosa", "sami", "tomas", "uma", "victor", "wen", "xavier", "yara",
    "zoe", "aidan", "bea", "carlos", "dina", "emil", "fatima", "gus", "hana", "ivan", "jade", "kofi", "lena",
    "marco", "nadia", "omar"
)  # fmt: skip
LAST = (
    "adams", "berg", "costa", "diaz", "evans", "fischer", "garcia", "horvat", "ito", "jensen", "khan", "lopez",
    "moreau", "nakamura", "okafor", "petrov", "quist", "rossi", "silva", "tanaka", "ueda", "vogel", "wright",
    "xu", "yilmaz", "zhang", "abbott", "baker", "clarke", "dubois", "ek", "fontaine", "gray", "hughes"
)  # fmt: skip
DEPARTMENTS = (
    "engineering",
    "finance",
    "legal",
    "marketing",
    "sales",
    "support",
    "research",
    "people",
    "operations",
    "design",
)
SYLLABLES = (
    "al", "an", "ar", "bel", "bri", "ca", "cor", "da", "del", "en", "fa", "fen", "gal", "hal", "in", "jo", "ka",
    "kel", "lin", "lo", "ma", "mer", "mon", "na", "nor", "or", "pa", "pel", "qui", "ra", "ren", "sa", "sol",
    "ta", "tor", "ul", "va", "ver", "wen", "xo", "yo", "zan", "zel"
)  # fmt: skip
TLDS = ("com", "com", "com", "net", "org", "io", "co.uk", "de", "fr", "nl", "info", "biz", "app", "dev", "shop",
        "com.au", "es", "it", "ca", "ai", "co", "tech", "online", "eu")  # fmt: skip
PREFIXES = ("", "", "", "www.", "www.", "cdn.", "static.", "api.", "mail.", "shop.", "img.", "login.")
POPULAR = (
    "wikipedia.org", "wikimedia.org", "bbc.co.uk", "bbc.com", "cnn.com", "nytimes.com", "theguardian.com",
    "reuters.com", "apnews.com", "washingtonpost.com", "ft.com", "economist.com", "bloomberg.com", "wsj.com",
    "forbes.com", "espn.com", "weather.com", "accuweather.com", "imdb.com", "netflix.com", "nflxvideo.net",
    "spotify.com", "scdn.co", "soundcloud.com", "twitch.tv", "ebay.com", "etsy.com", "walmart.com",
    "target.com", "ikea.com", "booking.com", "airbnb.com", "tripadvisor.com", "expedia.com", "craigslist.org",
    "zillow.com", "paypal.com", "wise.com", "dropbox.com", "box.com", "zoom.us", "webex.com",
    "stackoverflow.com", "python.org", "pypi.org", "npmjs.com", "rust-lang.org", "debian.org", "ubuntu.com",
    "mozilla.org", "wordpress.com", "medium.com", "tumblr.com", "pinterest.com", "yahoo.com", "duckduckgo.com",
    "ecosia.org", "archive.org", "gutenberg.org", "khanacademy.org", "coursera.org", "udemy.com", "nasa.gov",
    "usa.gov", "gov.uk", "europa.eu", "who.int", "un.org", "nature.com", "sciencedirect.com", "arxiv.org",
    "jstor.org", "ieee.org", "acm.org", "springer.com", "nih.gov", "cdc.gov", "mayoclinic.org", "webmd.com",
    "fedex.com", "ups.com", "usps.com", "dhl.com", "maersk.com", "digitalocean.com", "docker.com", "gitlab.com",
    "bitbucket.org", "sourceforge.net", "apache.org", "kernel.org", "gnu.org", "w3.org", "ietf.org", "iana.org",
    "letsencrypt.org", "digicert.com", "yelp.com", "quora.com", "nba.com", "fifa.com", "olympics.com",
    "lego.com", "nike.com", "adidas.com", "zara.com", "uniqlo.com", "bestbuy.com", "homedepot.com",
    "costco.com", "tesco.com", "spiegel.de", "zeit.de", "lemonde.fr", "elpais.com", "corriere.it", "nos.nl",
    "yle.fi", "nrk.no", "svt.se", "dr.dk", "abc.net.au", "cbc.ca", "nhk.or.jp", "rakuten.co.jp",
    "mercadolibre.com", "globo.com", "openstreetmap.org"
)  # fmt: skip
CDN_SHAPES = (
    "d{hex}.cloudfront.net",
    "e{num}.a.akamaiedge.net",
    "e{num}.dscb.akamaiedge.net",
    "{word}.global.ssl.fastly.net",
    "{word}.map.fastly.net",
    "{word}.azureedge.net",
    "{word}-{hex}.z01.azurefd.net",
    "{word}.b-cdn.net",
    "{word}.cdn.cloudflare.net",
    "{word}.s3.amazonaws.com",
    "{word}.blob.core.windows.net",
    "{word}.akamaized.net",
)
LOOKALIKE_SHAPES = ("{d}.evil.net", "not{d}", "{dashed}.net", "{d}.co", "{d}.example.org", "{label}-login.com",
                    "{label}{tld}.com", "secure-{dashed}.info", "{d}-verify.com")  # fmt: skip
BRIEF_LOOKALIKES = ("openai.com.evil.net", "notopenai.com", "openai-com.net", "chatgpt.com.co", "claude.ai.example.org")
HOMOGLYPHS = {"o": "\u043e", "a": "\u0430", "e": "\u0435", "i": "\u0456", "c": "\u0441", "p": "\u0440"}


@dataclass(frozen=True)
class Host:
    name: str
    kind: str  # ai | benign | cdn | near | lookalike
    service: str | None  # the catalogue id, for kind "ai" only


@dataclass(frozen=True)
class Seat:
    """An address and who held it: `person_a` before `switch_day` (days from the start), `person_b` after."""

    address: str
    person_a: str
    department_a: str
    person_b: str
    department_b: str
    switch_day: int  # == days when the address never changes hands


@dataclass(frozen=True)
class Population:
    seats: list[Seat]
    hosts: list[Host]  # grouped by kind, in KINDS order
    dropped: list[str]  # non-AI candidates the catalogue matched, left out (as `host -> service`)


KINDS = ("ai", "lookalike", "near", "cdn", "benign")


def people(rng: random.Random, count: int, days: int) -> list[Seat]:
    """`count` seats; one in twenty changes hands at a day boundary; one in twenty-five is an IPv6 client."""
    base = [f"{first}.{last}" for first in FIRST for last in LAST]
    rng.shuffle(base)
    needed = count + count // 10 + 1  # a name each, and successors for the addresses that change hands
    names = [base[k % len(base)] + (str(k // len(base) + 1) if k >= len(base) else "") for k in range(needed)]
    extra = iter(names[count:])
    seats = []
    for number in range(count):
        address = (
            f"fd00:10::{number + 1:x}"
            if number % 25 == 7
            else f"10.{16 + number // 65536}.{number // 256 % 256}.{number % 256 + 1}"
        )
        department = rng.choice(DEPARTMENTS)
        changes = days > 1 and rng.random() < 0.05
        successor = next(extra, f"temp.{number}") if changes else names[number]
        seats.append(
            Seat(
                address=address,
                person_a=names[number],
                department_a=department,
                person_b=successor,
                department_b=rng.choice(DEPARTMENTS) if changes else department,
                switch_day=rng.randrange(1, days) if changes else days,
            )
        )
    return seats


def population(catalogue: Catalogue, *, seed: int, seats: int, days: int, benign_domains: int) -> Population:
    rng = random.Random(seed)
    splitter = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    hosts: list[Host] = []
    seen: set[str] = set()
    dropped: list[str] = []

    def add(name: str, kind: str) -> bool:
        if name in seen or not HOST_SHAPE.fullmatch(name) or len(name) > 200:
            return False
        match = catalogue.match(name)
        if kind == "ai" and match is None:
            return False
        if kind != "ai" and match is not None:
            seen.add(name)
            dropped.append(f"{kind} {name} -> {match.id}")
            return False
        seen.add(name)
        hosts.append(Host(name, kind, match.id if match else None))
        return True

    rules = sorted(catalogue.rules(), key=lambda rule: (rule.service, rule.value))
    for rule in rules:  # every rule, and a subdomain of each suffix rule
        add(rule.value, "ai")
        if not rule.exact:
            add(f"{rng.choice(('api', 'www', 'chat', 'app', 'cdn', 'auth', 'files', 'ws'))}.{rule.value}", "ai")
            add(f"x{rng.getrandbits(32):08x}.{rule.value}", "ai")

    def registrable(name: str) -> str:
        return splitter(name).top_domain_under_public_suffix or name

    for name in BRIEF_LOOKALIKES:
        add(name, "lookalike")
    for domain in sorted({registrable(rule.value) for rule in rules}):  # look-alikes of what a person would type
        label, _, rest = domain.partition(".")
        fields = {"d": domain, "dashed": domain.replace(".", "-"), "label": label, "tld": rest.replace(".", "")}
        for shape in rng.sample(LOOKALIKE_SHAPES, 2):
            add(shape.format(**fields), "lookalike")
        add(homoglyph(rng, label) + (f".{rest}" if rest else ""), "lookalike")

    for rule in rules:  # near misses: the registrable domain above a rule, its siblings, below an exact host
        top = registrable(rule.value)
        if top != rule.value:
            for prefix in ("", "www.", "mail.", "static.", "docs."):
                add(prefix + top, "near")
        if rule.exact:
            add(f"edge.{rule.value}", "near")

    for _ in range(max(400, benign_domains // 10)):
        shape = rng.choice(CDN_SHAPES)
        add(shape.format(hex=f"{rng.getrandbits(48):012x}", num=rng.randrange(1, 99999), word=word(rng)), "cdn")

    count = 0
    for domain in POPULAR:
        count += add(rng.choice(PREFIXES) + domain, "benign")
    while count < benign_domains:
        count += add(f"{rng.choice(PREFIXES)}{word(rng)}.{rng.choice(TLDS)}", "benign")

    hosts.sort(key=lambda host: KINDS.index(host.kind))  # stable: kinds in blocks, each in the order made
    return Population(seats=people(rng, seats, days), hosts=hosts, dropped=dropped)


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3, 3, 4))))


def homoglyph(rng: random.Random, label: str) -> str:
    """`label` with one Latin letter swapped for its Cyrillic twin, as the punycode (xn--) label a log carries."""
    spots = [index for index, char in enumerate(label) if char in HOMOGLYPHS]
    if not spots:  # no letter has a twin: a doubled last letter instead (typosquatting)
        return label + label[-1]
    index = rng.choice(spots)
    return "xn--" + (label[:index] + HOMOGLYPHS[label[index]] + label[index + 1 :]).encode("punycode").decode("ascii")
