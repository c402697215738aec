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
from podium.discovery._evidence import FORMATS, BadLine, Fingerprint, LogFile, Reading, Sighting
from podium.discovery._html import render_html
from podium.discovery._kpi import Share, migration
from podium.discovery._read import read_logs
from podium.discovery._report import FINDING_FIELDS, FileOutcome, Finding, Report, ServiceUse
from podium.discovery._sanction import Keyed, Sanctioned, SeenUser, seen_users
from podium.discovery._sanction import sanction as sanction_service
from podium.discovery._scan import LogReader, discover, ingest, stored_report
from podium.discovery._store import ServiceUser, WeeklyRequests, direct_requests_by_week, users_of
from podium.discovery._who import AddressBook, Attribution, Pseudonyms

__all__ = [
    "BLOCKLIST_FORMATS",
    "CATEGORIES",
    "FINDING_FIELDS",
    "FORMATS",
    "GATEWAY_ID",
    "WEIGHTS",
    "AddressBook",
    "Attribution",
    "BadLine",
    "Blocked",
    "Blocklist",
    "Catalogue",
    "FileOutcome",
    "Finding",
    "Fingerprint",
    "Keyed",
    "LogFile",
    "LogReader",
    "Pseudonyms",
    "Reading",
    "Report",
    "RiskFactors",
    "Rule",
    "Sanctioned",
    "SeenUser",
    "Service",
    "ServiceUse",
    "ServiceUser",
    "Share",
    "Sighting",
    "Training",
    "WeeklyRequests",
    "direct_requests_by_week",
    "discover",
    "ingest",
    "migration",
    "normalise_host",
    "read_logs",
    "registered_domain",
    "render_blocklist",
    "render_html",
    "risk_parts",
    "risk_score",
    "sanction_service",
    "seen_users",
    "stored_report",
    "unsanctioned",
    "users_of",
]
