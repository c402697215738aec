"""Shadow-AI discovery: find the AI services people use outside podium in network logs (Zeek, Squid, DNS servers,
proxy and firewall exports), score them with an open catalogue, attribute them to people, and move that use onto
the governed gateway (`podium discover sanction`), measuring how much moved. See docs/shadow-ai.md."""

from podium.discovery._catalogue import (
    CATEGORIES,
    GATEWAY_ID,
    WEIGHTS,
    Catalogue,
    RiskFactors,
    Rule,
    Service,
    Training,
    normalise_host,
    registered_domain,
    risk_parts,
    risk_score,
)
from podium.discovery._evidence import FORMATS, BadLine, LogFile, Reading, Sighting

__all__ = [
    "CATEGORIES",
    "FORMATS",
    "GATEWAY_ID",
    "WEIGHTS",
    "BadLine",
    "Catalogue",
    "LogFile",
    "Reading",
    "RiskFactors",
    "Rule",
    "Service",
    "Sighting",
    "Training",
    "normalise_host",
    "registered_domain",
    "risk_parts",
    "risk_score",
]
