"""Egress: an agent reaches only the URLs a Cedar policy permits it (default deny), checked before the call runs.

A consequential tool call's target that is a URL (`podium.tools.http_get`'s `url`, an MCP tool's argument) is where
the call lands on the network: the `Egress` stage asks Cedar's `egress` action for each one, with the URL as a `Url`
entity (scheme, host, port, path), and refuses the call before a person is asked or a budget held. The HTTP tools ask
again for every redirect (`Egress.permit`), so a permitted host cannot hand the agent on to one that is not.

The allow-list is a policy, per agent or team, by host pattern (docs/tools.md):

    permit (principal == Agent::"researcher", action == Action::"egress", resource)
    when { resource.scheme == "https" && resource.host like "*.python.org" };

A URL is parsed once, as the HTTP client parses it (httpx2), and the tool requests the URL that was checked, so a
parser disagreement (`http://evil.test\\@good.example/`) cannot check one host and reach another. Names are checked,
not addresses: a permitted name that resolves to an internal address is reached (see docs/tools.md, limits).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar

import sqlalchemy as sa

from podium.audit import record
from podium.errors import ActionDenied, NotFoundError
from podium.governance import CallContext, Refusal, Stage
from podium.policy import Decision, Entity, PolicySet, url_entity
from podium.security._flows import texts_of

# What the stage treats as a URL in a target: a scheme and "//" (so "mailto:" and "urn:" are not destinations), or
# a web scheme however it goes on ("http:/x", "http:\\x" and "h<tab>ttp://x" reach x in browsers and urllib).
_URL = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://")
_WEB = re.compile(r"^(?:https?|wss?|ftp):", re.IGNORECASE)
_UNPLAIN = re.compile(r"[\x00-\x20\x7f\\]")  # read differently by different clients: controls, spaces, "\\"


def is_url(text: str) -> bool:
    """Whether a target's text names a place on the network, and so is checked as egress."""
    return _URL.match(text) is not None or _WEB.match(_UNPLAIN.sub("", text)) is not None


def plain_url(text: str) -> str | None:
    """Why a URL target cannot be checked as the tool will read it (None: it can). A tool other than podium's HTTP
    tools (an MCP server's, your own) gets the text as the agent wrote it, and its HTTP client may read a backslash,
    a control character or a missing "//" otherwise than podium's parser does."""
    written = text.strip()
    start = written.find("://") + 3
    ends = [at for at in (written.find(c, start) for c in "/?#") if at != -1]
    where = written[: min(ends, default=len(written))]  # the scheme and the host: what clients must agree on
    if not _URL.match(written) or _UNPLAIN.search(where) or "\\" in written:
        return (
            f"{written[:200]!r} is not written plainly (a backslash, a space or control character before the path, "
            "or no '//' after the scheme), and HTTP clients disagree on where such a URL goes; write it as "
            "scheme://host/path, percent-encoded"
        )
    return None


class Egress(Stage):
    """Refuses a consequential call whose URL targets no `egress` policy permits for its agent, and for every agent
    it acts for (a delegate reaches no further than its delegators)."""

    name: ClassVar[str] = "egress"

    def __init__(self, engine: sa.Engine, policies: PolicySet, principal: Callable[[str], Entity]) -> None:
        """`principal`: an agent as Cedar sees it, by name (the registry's entry), for the checks a tool makes while
        it runs (redirects); the stage itself uses what admission read."""
        self._engine = engine
        self._policies = policies
        self._principal = principal

    def check(self, ctx: CallContext) -> None:
        call = ctx.call
        if call.kind != "tool" or ctx.standing is None:
            return
        arguments = call.arguments or {}
        sinks = call.declaration.sink_kinds(arguments)
        urls = [
            text
            for name, kind in sinks.items()
            if kind == "target"
            for text in texts_of(arguments.get(name))
            if is_url(text)
        ]
        reached = []
        for url in urls:
            try:
                if (unclear := plain_url(url)) is not None:
                    raise ValueError(unclear)
                where = url_entity(url)
            except ValueError as exc:
                message = f"agent {call.agent!r} may not call tool {call.resource!r}: {exc}."
                raise Refusal(ActionDenied(message, agent=call.agent, resource=call.resource), "denied") from exc
            try:
                decision, link = self._decide_chain(ctx.standing.principal, where, call.resource, 0)
            except ActionDenied as gone:
                raise Refusal(gone, "denied", why="egress") from None
            if not decision.allowed:
                error = ActionDenied(
                    _refused(call.agent, where, call.resource, decision, link),
                    agent=call.agent,
                    resource=call.resource,
                    url=where.id,
                    policies=decision.policies,
                )
                raise Refusal(error, "denied", why="egress", policies=decision.policies)
            reached.append(where.attrs["host"])
        if reached:
            ctx.detail["egress"] = ", ".join(sorted(set(reached)))

    def decide(self, principal: Entity, where: Entity, tool: str, hop: int) -> Decision:
        return self._policies.decide(principal, "egress", where, {"tool": tool, "hop": hop})

    def _decide_chain(self, principal: Entity, where: Entity, tool: str, hop: int) -> tuple[Decision, str]:
        """Cedar's `egress` decision for the agent and for every agent it acts for, nearest first: a delegate
        reaches a URL only if each of them may (a delegation never widens). The first refusal, and whose it is."""
        decision = self.decide(principal, where, tool, hop)
        link, seen = principal, {principal.id}
        while decision.allowed and (up := str(link.attrs.get("delegated_by", ""))) and up not in seen:
            seen.add(up)
            try:
                link = self._principal(up)
            except NotFoundError:
                raise ActionDenied(
                    f"agent {principal.id!r} acts for {up!r}, which is no longer registered: it reaches nothing.",
                    agent=principal.id,
                ) from None
            decision = self.decide(link, where, tool, hop)
        return decision, link.id

    def permit(self, agent: str, url: str, *, tool: str, hop: int, came_from: str = "") -> Entity:
        """Check one URL a running tool is about to reach (a redirect, `hop` >= 1) and return it as checked: the
        tool requests `result.id`. A refusal is audited (action `egress`, denied, with the deciding policies) and
        raised as `ActionDenied`; nothing is requested."""
        try:
            where = url_entity(url)
        except ValueError as exc:
            self._audit(agent, url[:200], tool, hop, came_from, (), str(exc))
            raise ActionDenied(f"tool {tool!r} of agent {agent!r} was sent to {exc}: not followed.") from exc
        decision, link = self._decide_chain(self._principal(agent), where, tool, hop)
        if decision.allowed:
            return where
        message = _refused(agent, where, tool, decision, link)
        self._audit(agent, where.id, tool, hop, came_from, decision.policies, decision.reason)
        raise ActionDenied(message, agent=agent, resource=tool, url=where.id, policies=decision.policies)

    def _audit(
        self, agent: str, url: str, tool: str, hop: int, came_from: str, policies: tuple[str, ...], reason: str
    ) -> None:
        detail = {"tool": tool, "hop": str(hop), "reason": reason}
        if came_from:
            detail["redirected_from"] = came_from
        detail["policy_set"] = self._policies.short_digest
        with self._engine.begin() as conn:
            record(conn, f"agent:{agent}", "egress", url, decision="denied", policies=policies, detail=detail)


def _refused(agent: str, where: Entity, tool: str, decision: Decision, link: str) -> str:
    """Why `agent` may not reach `where`; `link`: the agent whose refusal it is (itself, or one it acts for)."""
    host = where.attrs["host"]
    who = f"agent {agent!r}" if link == agent else f"agent {agent!r} acts for {link!r}, which"
    refused = f"{who} may not reach {where.id} (host {host}) through tool {tool!r}: {decision.reason}"
    if decision.policies:  # a forbid decided: say which, not what to permit
        return refused + "."
    return (
        f'{refused}. If it should, permit it in a policy: permit (principal == Agent::"{link}", action == '
        f'Action::"egress", resource) when {{ resource.host == "{host}" }}; (docs/tools.md)'
    )
