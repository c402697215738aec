"""The open AI-service catalogue: which hosts belong to which AI service, and how risky each service is.

The data ships with podium (`catalogue.toml` beside this module); an organisation marks services sanctioned or
blocked in podium.toml's [discovery] section. Matching is by domain suffix on label boundaries, so
`chat.openai.com` is OpenAI while `openai.com.evil.net` and `notopenai.com` are not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Service:
    """One AI service. `domains` match themselves and every subdomain; `hosts` match only exactly."""

    id: str
    name: str
    vendor: str
    category: str
    domains: tuple[str, ...]
    hosts: tuple[str, ...] = ()
    risk: int = 0  # 0-100, from the published formula (docs/shadow-ai.md)
    sanctioned: bool = False
    blocked: bool = False
    factors: dict[str, object] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Rule:
    """One matching rule, as the log readers join on it: `value` is a domain (suffix match) or an exact host."""

    value: str
    service: str
    exact: bool


class Catalogue:
    """Services by id, and the rules that map a host to one of them."""

    def __init__(self, services: Iterable[Service]) -> None:
        self.services: dict[str, Service] = {s.id: s for s in services}
        self._suffixes = {d: s.id for s in self.services.values() for d in s.domains}
        self._exact = {h: s.id for s in self.services.values() for h in s.hosts}

    def rules(self) -> Sequence[Rule]:
        """Every domain and host rule, for a reader that matches in its own engine (a join on suffixes)."""
        return [Rule(d, s, False) for d, s in self._suffixes.items()] + [
            Rule(h, s, True) for h, s in self._exact.items()
        ]

    def match(self, host: str) -> Service | None:
        """The service `host` belongs to (the longest matching domain wins), or None."""
        host = host.strip().rstrip(".").lower()
        if (sid := self._exact.get(host)) is not None:
            return self.services[sid]
        labels = host.split(".")
        for start in range(len(labels) - 1):
            if (sid := self._suffixes.get(".".join(labels[start:]))) is not None:
                return self.services[sid]
        return None
