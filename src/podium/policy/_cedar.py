"""Least privilege in Cedar: every governed action is a Cedar decision, default deny.

podium's baseline (`policies/base.cedar`) is always loaded, then a project's `*.cedar` files (PODIUM_POLICIES,
default `./policies`), all validated against `policies/podium.cedarschema` so a misspelt attribute fails loudly.
Every policy carries an `@id`, which the audit log records beside the decision it made, so `podium policy
explain` can show which policy allowed or denied an action.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cedarpy

from podium._tiers import TIER_PREFIX, TIER_RANKS
from podium.errors import ConfigurationError

NO_CEILING = max(TIER_RANKS.values())
CALL_ACTIONS = frozenset({"model.call", "tool.call", "memory.read", "memory.write"})  # the schema's group "call"
_ENTITY_CACHE = 4096


@dataclass(frozen=True)
class Entity:
    """A Cedar entity: `Agent::"support-triage"` with its attributes."""

    type: str
    id: str
    attrs: Mapping[str, Any] = field(default_factory=dict)
    parents: tuple[tuple[str, str], ...] = ()

    @property
    def uid(self) -> dict[str, str]:
        """As Cedar's JSON form, not `Type::"id"` text: cedarpy refuses text ids with an apostrophe or an accent
        (it wants Cedar's own escaping), and the JSON form needs none."""
        return {"type": self.type, "id": self.id}

    def as_json(self) -> dict[str, Any]:
        return {
            "uid": {"type": self.type, "id": self.id},
            "attrs": {k: sorted(v) if isinstance(v, (set, frozenset, tuple)) else v for k, v in self.attrs.items()},
            "parents": [{"type": t, "id": i} for t, i in self.parents],
        }


def agent_entity(
    name: str,
    *,
    owner: str,
    team: str,
    status: str,
    models: Iterable[str],
    tools: Iterable[str],
    data_scopes: Iterable[str] = (),
    tier_ceiling: str = "",
    delegated_by: str = "",
) -> Entity:
    return Entity(
        "Agent",
        name,
        {
            "name": name,
            "owner": owner,
            "team": team,
            "status": status,
            "models": frozenset(models),
            "tools": frozenset(tools),
            "data_scopes": frozenset(data_scopes),
            "ceiling": TIER_RANKS.get(tier_ceiling, NO_CEILING),
            "delegated_by": delegated_by,
        },
        (("Team", team),) if team else (),
    )


def model_entity(name: str, tier: str, *, alias: str = "", provider: str = "local") -> Entity:
    """A model; granting its name, its tier (`tier:<tier>`) or the gateway alias it was asked for by grants it.
    `provider` is where a call's input goes: "local" (this process), else the endpoint's host."""
    grants = frozenset({name, f"{TIER_PREFIX}{tier}"} | ({alias} if alias else set()))
    attrs = {"name": name, "tier": tier, "rank": TIER_RANKS.get(tier, NO_CEILING), "grants": grants}
    return Entity("Model", name, attrs | {"provider": provider})


def tool_entity(name: str, team: str = "", *, consequential: bool = False) -> Entity:
    return Entity("Tool", name, {"name": name, "team": team, "consequential": consequential})


def data_entity(name: str, classification: str = "internal") -> Entity:
    """A data scope `<team>/<name>` belongs to its team; one without a team part is shared."""
    team = name.split("/", 1)[0] if "/" in name else ""
    return Entity("DataScope", name, {"name": name, "team": team, "classification": classification})


def person_entity(name: str, teams: Iterable[str] = ()) -> Entity:
    """A person, with the teams the directory lists them in (as `team:<name>`)."""
    return Entity("Person", name, {"name": name, "teams": frozenset(f"team:{t.removeprefix('team:')}" for t in teams)})


def review_entity(
    review_id: str,
    *,
    workflow: str = "",
    team: str = "",
    reason: str = "",
    deciders: Iterable[str] = (),
    chain: Iterable[str] = (),
    claimed_by: str = "",
) -> Entity:
    attrs = {
        "workflow": workflow,
        "team": team,
        "reason": reason,
        "deciders": frozenset(deciders),
        "chain": frozenset(chain),
        "claimed_by": claimed_by,
    }
    return Entity("Review", review_id, attrs)


def scope_entity(scope: str) -> Entity:
    return Entity("Scope", scope)


def run_entity(run_id: str) -> Entity:
    return Entity("Run", run_id)


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_HOST = re.compile(r"^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*|[0-9a-f:.]+)$")


def url_entity(url: str) -> Entity:
    """`url` as Cedar's `Url` entity (egress), parsed as podium's HTTP client parses it, so the host checked is the
    host reached. Raises ValueError, naming why, for
    text that is not an absolute URL with a host."""
    import httpx2

    try:
        parsed = httpx2.URL(url.strip())
    except (httpx2.InvalidURL, TypeError, ValueError) as exc:
        raise ValueError(f"{url[:200]!r} is not a URL ({exc})") from exc
    scheme = parsed.scheme.lower()
    host = parsed.raw_host.decode("ascii", "replace").lower().rstrip(".")
    if not scheme or not host:
        raise ValueError(f"{url[:200]!r} is not an absolute URL with a host (give scheme://host/…)")
    if not _HOST.match(host):
        raise ValueError(f"{url[:200]!r} has a host podium cannot check ({host[:80]!r})")
    host = _address(host)
    port = parsed.port or _DEFAULT_PORTS.get(scheme, 0)
    checked = parsed.copy_with(userinfo=b"", fragment=None)
    attrs = {"scheme": scheme, "host": host, "port": port, "path": parsed.path}
    return Entity("Url", str(checked), attrs)


def _address(host: str) -> str:
    """An address however it is spelt, as a policy names it: the resolver reads `2130706433`, `0x7f000001`, `127.1`
    and `0177.0.0.1` as 127.0.0.1, and `::ffff:7f00:1` reaches it too; a name is left as it is."""
    import ipaddress
    import socket

    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            return host
        return str(address.ipv4_mapped or address)
    if not re.fullmatch(r"[0-9a-fx.]+", host) or not re.match(r"[0-9]", host):
        return host  # a name (it starts with a letter, or holds one beyond hexadecimal)
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return host


@dataclass(frozen=True)
class Policy:
    """One policy as written: its id, effect, where it lives, and its text."""

    id: str
    effect: str
    source: str
    line: int
    text: str
    exception: bool = False  # a forbid annotated @exception: what it catches waits for a person instead


@dataclass(frozen=True)
class Decision:
    """Cedar's answer: allowed or not, and the ids of the policies that decided (none: nothing permitted it)."""

    allowed: bool
    policies: tuple[str, ...]

    @property
    def reason(self) -> str:
        if self.policies:
            return ("allowed by " if self.allowed else "denied by ") + ", ".join(self.policies)
        return "denied: no policy permits it (default deny)"


class PolicySet:
    """The loaded policies, parsed once; `decide` is a few tens of microseconds."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        self.policies = {p.id: p for p in policies}
        text = "\n".join(p.text for p in policies)
        self.digest = hashlib.sha256(text.encode()).hexdigest()
        self.short_digest = self.digest[:16]  # what audit entries record of the policy set that decided them
        self._ids = [p.id for p in policies]  # Cedar names them policy0, policy1, … in this order
        self._cedar = cedarpy.PolicySet.from_str(text)
        self._entities = functools.lru_cache(maxsize=_ENTITY_CACHE)(_parse_entities)
        self.context_keys = _context_keys(text)
        self.exception_policies = frozenset(p.id for p in policies if p.exception and p.effect == "forbid")
        kept = [p for p in policies if p.id not in self.exception_policies]
        self._waived = (
            (cedarpy.PolicySet.from_str("\n".join(p.text for p in kept)), [p.id for p in kept])
            if self.exception_policies
            else (self._cedar, self._ids)
        )

    @classmethod
    def load(cls, directory: Path | None = None) -> PolicySet:
        """podium's baseline, then every `*.cedar` file in `directory` (sorted by name)."""
        base = resources.files("podium.policy") / "policies"
        schema = cedarpy.Schema.from_str((base / "podium.cedarschema").read_text(encoding="utf-8"))
        sources = [("podium:base.cedar", (base / "base.cedar").read_text(encoding="utf-8"))]
        if directory is not None:
            if not directory.is_dir():
                raise ConfigurationError(
                    f"PODIUM_POLICIES names {directory}, which is not a folder. Point it at the folder of your .cedar "
                    "files, or unset it to use ./policies (if it exists) and podium's baseline."
                )
            sources += [(str(path), path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.cedar"))]
        policies: list[Policy] = []
        for source, text in sources:
            policies += _split(source, text, schema)
        seen: dict[str, Policy] = {}
        for policy in policies:
            if policy.id in seen:
                first = seen[policy.id]
                raise ConfigurationError(
                    f'policy id "{policy.id}" is used twice: {first.source}:{first.line} and {policy.source}:'
                    f"{policy.line}. Give each policy its own @id."
                )
            seen[policy.id] = policy
        return cls(policies)

    def decide(
        self, principal: Entity, action: str, resource: Entity, context: Mapping[str, Any], *, waive: bool = False
    ) -> Decision:
        """Cedar's decision; `waive` leaves out the `@exception` forbids (what a person's approval can lift)."""
        cedar, ids = self._waived if waive else (self._cedar, self._ids)
        entities = self._entities(_entities_json(principal, resource, action))
        request = {
            "principal": principal.uid,
            "action": {"type": "Action", "id": action},
            "resource": resource.uid,
            "context": dict(context),
        }
        result = cedarpy.is_authorized(request, cedar, entities)
        if result.diagnostics.errors:
            # An evaluation error skips the policy; for a forbid that would quietly allow. Refuse instead.
            return Decision(False, tuple(f"error: {e}" for e in result.diagnostics.errors))
        decided = tuple(ids[int(p.removeprefix("policy"))] for p in result.diagnostics.reasons)
        return Decision(result.allowed, decided)


_CONTEXT_USE = re.compile(r'\bcontext\b(?:\s*\.\s*([A-Za-z_]\w*)|\s+has\s+([A-Za-z_]\w*)|\s*\[\s*"([^"]+)"\s*\])?')


_STRING_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*')


def _drop_comment(match: re.Match[str]) -> str:
    return match.group(0) if match.group(0).startswith('"') else ""


def _context_keys(text: str) -> tuple[str, ...] | None:
    """The context attributes the policies read (None: the whole context is used as a value). A decision depends
    on nothing else of the context, which is what lets the governor reuse decisions across runs."""
    keys: set[str] = set()
    # Comments are dropped; a "context" inside a string only makes this conservative (None).
    for match in _CONTEXT_USE.finditer(_STRING_OR_COMMENT.sub(_drop_comment, text)):
        name = next((group for group in match.groups() if group), None)
        if name is None:
            return None
        keys.add(name)
    return tuple(sorted(keys))


def _entities_json(principal: Entity, resource: Entity, action: str) -> str:
    # The action is an entity too: its parent group ("call") is what `action in Action::"call"` tests.
    group = [{"type": "Action", "id": "call"}] if action in CALL_ACTIONS else []
    action_entity = {"uid": {"type": "Action", "id": action}, "attrs": {}, "parents": group}
    # Acting on oneself (a person changing their own directory entry): one entity, as the principal is now.
    others = [resource.as_json()] if resource.uid != principal.uid else []
    return json.dumps([principal.as_json(), *others, action_entity], sort_keys=True)


def _parse_entities(entities_json: str) -> cedarpy.Entities:
    return cedarpy.Entities.from_json_str(entities_json)


def _split(source: str, text: str, schema: cedarpy.Schema) -> list[Policy]:
    """The file's policies one by one (each ends at a `;` outside strings and comments), each checked alone."""
    policies: list[Policy] = []
    start, i, in_string, in_comment = 0, 0, False, False
    while i < len(text):
        char = text[i]
        if in_comment:
            in_comment = char != "\n"
        elif in_string:
            if char == "\\":
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif text.startswith("//", i):
            in_comment = True
        elif char == ";":
            policies.append(_policy(source, text, start, i + 1, schema))
            start = i + 1
        i += 1
    if any(_is_code(line) for line in text[start:].splitlines()):
        raise ConfigurationError(f"{source}:{text.count(chr(10), 0, start) + 1}: a policy does not end with ';'.")
    return policies


def _is_code(line: str) -> bool:
    return bool(line.strip()) and not line.strip().startswith("//")


def _policy(source: str, text: str, start: int, end: int, schema: cedarpy.Schema) -> Policy:
    lines = text[start:end].split("\n")
    first = next(n for n, line in enumerate(lines) if _is_code(line))
    where = f"{source}:{text.count(chr(10), 0, start) + 1 + first}"
    body = "\n".join(lines[first:]).strip()
    try:
        parsed = cedarpy.PolicySet.from_str(body).to_pst()
    except ValueError as exc:
        raise ConfigurationError(f"{where}: this policy does not parse: {exc}") from exc
    (policy,) = parsed.static_policies.values()
    policy_id = policy.annotations.get("id")
    if not policy_id:
        raise ConfigurationError(f'{where}: every policy needs an @id("…") so the audit log can name it.')
    validation = cedarpy.validate_policies(body, schema)
    if not validation.validation_passed:
        problems = "; ".join(_with_fix(e.error) for e in validation.errors)
        raise ConfigurationError(f'{where}: policy "{policy_id}" does not fit podium\'s schema: {problems}')
    line = int(where.rsplit(":", 1)[1])
    return Policy(str(policy_id), str(policy.effect), source, line, body, "exception" in policy.annotations)


_UNKNOWN_CONTEXT = re.compile(r'attribute `([^`]+)` in context for Action::"([^"]+)" not found')
_SCHEMA_TYPE = re.compile(r"type\s+(\w+)\s*=\s*\{([^}]*)\}")
_SCHEMA_ACTION = re.compile(r'action\s+"([^"]+)"[^;]*?context:\s*(\w+|\{[^}]*\})')
_SCHEMA_ATTRIBUTE = re.compile(r"(\w+)\s*:")


def _with_fix(problem: str) -> str:
    """Cedar's validation error, with the fix where podium knows it: for a context attribute the action does not
    have, the ones it has (and the nearest, if one is near)."""
    unknown = _UNKNOWN_CONTEXT.search(problem)
    if unknown is None:
        return problem
    name, action = unknown.groups()
    known = _context_attributes().get(action, ())
    near = difflib.get_close_matches(name, known, n=1)
    guess = f"did you mean `{near[0]}`? " if near else ""
    return f"{problem} ({guess}the context of {action} has: {', '.join(known) or 'nothing'})"


@functools.cache
def _context_attributes() -> dict[str, tuple[str, ...]]:
    """Each action's context attributes, as podium's schema declares them."""
    schema = (resources.files("podium.policy") / "policies" / "podium.cedarschema").read_text(encoding="utf-8")
    schema = re.sub(r"//[^\n]*", "", schema)
    types = dict(_SCHEMA_TYPE.findall(schema))
    return {
        action: tuple(sorted(_SCHEMA_ATTRIBUTE.findall(types.get(context, context))))
        for action, context in _SCHEMA_ACTION.findall(schema)
    }
