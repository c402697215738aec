"""Shadow-AI discovery: find the AI services people use outside podium in network logs (Zeek, Squid, DNS servers,
proxy and firewall exports), score them with an open catalogue, attribute them to people, and move that use onto
the governed gateway (`podium discover sanction`), measuring how much moved. See docs/shadow-ai.md."""

from podium.discovery._blocklist import BLOCKLIST_FORMATS, Blocked, Blocklist, render_blocklist, unsanctioned
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
from podium.discovery._kpi import Share, migration
from podium.discovery._sanction import Keyed, Sanctioned, SeenUser, seen_users
from podium.discovery._sanction import sanction as sanction_service

__all__ = [
    "BLOCKLIST_FORMATS",
    "CATEGORIES",
    "FORMATS",
    "GATEWAY_ID",
    "WEIGHTS",
    "BadLine",
    "Blocked",
    "Blocklist",
    "Catalogue",
    "Keyed",
    "LogFile",
    "Reading",
    "RiskFactors",
    "Rule",
    "Sanctioned",
    "SeenUser",
    "Service",
    "Share",
    "Sighting",
    "Training",
    "migration",
    "normalise_host",
    "registered_domain",
    "render_blocklist",
    "risk_parts",
    "risk_score",
    "sanction_service",
    "seen_users",
    "unsanctioned",
]
