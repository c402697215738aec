"""Who is asking, over HTTP: a Bearer key on every route, checked before anything else is read.

Refusals are the one thing an outsider can produce at will, so they are rate-limited per client address (an IPv6
address by its /64) and counted in the audit log in aggregate (one `auth.refused` entry per window, with counts by
reason and client) rather than one entry each: a flood of bad keys costs the server a dictionary update, not a
signed log entry. The key is checked first and only refusals are limited, so a valid key is never refused for
others' failures (a local server sees one address for every local user and every web page its operator opens).
Past the limit a refusal answers 429 instead of 401; a missing or malformed key costs no database lookup, a
well-formed one costs one indexed lookup, limited or not. A window whose audit write fails (the database locked or
down) is kept and written with the next; a crash or SIGKILL loses the counts not yet written (at most the current
window's, unless writes were failing). The last window is written at shutdown.

The `Host` header is checked against the names the server answers to, so a web page on another site cannot
reach a server on loopback through DNS rebinding.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from podium._runtime import Podium
from podium.api._errors import error_response
from podium.audit import record
from podium.errors import Unauthenticated
from podium.gateway import Problem, Refused
from podium.policy import Identity

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
MAX_TRACKED_CLIENTS = 10_000  # addresses whose recent refusals are remembered for rate limiting
_log = logging.getLogger(__name__)


class AuthError(Exception):
    """A request refused before it reached a route: 401 (who are you?), 403 (not you) or 429 (slow down)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Gatekeeper:
    """Authenticates each request's Bearer key, limits and counts refusals, and audits them per window."""

    def __init__(self, pod: Podium, *, window_s: float = 60.0, max_refusals: int = 20) -> None:
        self._pod = pod
        self._window_s = window_s
        self._max_refusals = max_refusals  # per client address per window; after that, 429 instead of 401
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()  # least recently refused first
        self._reasons: Counter[str] = Counter()
        self._clients: Counter[str] = Counter()
        self._since: float | None = None

    def person(self, request: Request) -> Identity:
        """The person the request's key proves; agents' keys do not operate podium."""
        identity = self.identity(request)
        if identity.kind != "person":
            raise AuthError(403, f"{identity.actor} holds an agent's key; operator routes take a person's key.")
        return identity

    def identity(self, request: Request) -> Identity:
        """Who the request's key proves: sent as `Authorization: Bearer <key>` (OpenAI's clients and podium's) or
        as `x-api-key: <key>` (Anthropic's)."""
        client = _client(request)
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            key = request.headers.get("x-api-key", "")
        if not key.strip():
            message = "no key: send `Authorization: Bearer <key>` (`podium keys issue --person EMAIL`)."
            raise self._refusal(client, "no key", message)
        try:
            return self._pod.authenticate(key.strip(), audit=False)  # a malformed key is refused without a lookup
        except Unauthenticated as refused:
            raise self._refusal(client, str(refused.fields.get("reason", "refused")), refused.message) from None

    def gateway_identity(self, request: Request) -> Identity:
        """`identity` for the gateway's routes, whose refusals are answered in the client's API's shape."""
        try:
            return self.identity(request)
        except AuthError as refused:
            retry = refused.headers.get("Retry-After")
            problem = (
                Problem(429, "rate_limit", refused.message, int(retry) if retry else None)
                if refused.status == 429
                else Problem(refused.status, "authentication", refused.message)
            )
            raise Refused(problem) from None

    def flush(self) -> int:
        """Write the refusals counted since the last flush as one audit entry; return how many it counts. If the
        write fails, the counts are kept for the next flush and the error raised."""
        with self._lock:
            reasons, clients, since = self._reasons, self._clients, self._since
            self._reasons, self._clients, self._since = Counter(), Counter(), None
        total = sum(reasons.values())
        if not total:
            return 0
        detail = {
            "count": str(total),
            "reasons": json.dumps(dict(reasons.most_common(20))),
            "clients": json.dumps(dict(clients.most_common(20))),
            "clients_total": str(len(clients)),
            "since": str(since),
        }
        try:
            with self._pod.engine.begin() as conn:
                record(conn, "anonymous", "auth.refused", "http", decision="denied", detail=detail)
        except BaseException:
            with self._lock:
                self._reasons.update(reasons)
                self._clients.update(clients)
                self._since = since if self._since is None or since is None else min(since, self._since)
            raise
        return total

    async def flush_every_window(self) -> None:
        """Run in the server's lifespan: flush once a window, so counts reach the log while the server runs; a
        failed write is logged and its counts go out with the next window's."""
        import asyncio

        while True:
            await asyncio.sleep(self._window_s)
            try:
                await asyncio.to_thread(self.flush)
            except Exception as exc:  # noqa: BLE001 (the loop must outlive a database that is down for a while)
                _log.warning("refused-request counts not written to the audit log, kept for the next window: %r", exc)

    def _refusal(self, client: str, reason: str, message: str) -> AuthError:
        """Count a refusal from `client`: a 401 with `message`, or past the limit a 429 saying when to retry."""
        now = time.monotonic()
        with self._lock:
            while self._recent:  # forget the least recently refused while they have been quiet for a window
                oldest = next(iter(self._recent.values()))
                if oldest and oldest[-1] > now - self._window_s:
                    break
                self._recent.popitem(last=False)
            recent = self._recent.setdefault(client, deque())
            self._recent.move_to_end(client)
            while recent and recent[0] <= now - self._window_s:
                recent.popleft()
            if len(recent) >= self._max_refusals:
                self._count(client, "rate limited")
                retry = max(1, round((recent[0] if recent else now) + self._window_s - now))
                text = f"too many refused requests from {client}; retry later."
                return AuthError(429, text, {"Retry-After": str(retry)})
            recent.append(now)
            self._count(client, reason)
            if len(self._recent) > MAX_TRACKED_CLIENTS:
                self._recent.popitem(last=False)
        return AuthError(401, message)

    def _count(self, client: str, reason: str) -> None:
        self._reasons[reason] += 1
        self._clients[client] += 1
        if self._since is None:
            self._since = time.time()


def _client(request: Request) -> str:
    """The address a request's refusals are counted against: its IP, or for IPv6 its /64 (one host's share)."""
    host = request.client.host if request.client else "?"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.ip_network((address, 64), strict=False))
    return host


class HostCheck:
    """Refuse requests whose `Host` header names a host this server does not answer to (DNS rebinding)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self._app = app
        self._allowed = {_hostname(h) for h in allowed}  # as the Host header is read: `example.com:8000` matches

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            name = _hostname(host)
            if name not in self._allowed:
                allowed = ", ".join(sorted(self._allowed))
                message = (
                    f"this server does not answer to host {host!r} (it answers to {allowed}); start it with "
                    "`podium serve --allow-host NAME` to add a name."
                )
                await error_response(421, message)(scope, receive, send)
                return
        await self._app(scope, receive, send)


def _hostname(host: str) -> str:
    """`Example.com.:8000` -> `example.com`; `[::1]:8000` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


async def auth_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="podium"'
    return error_response(exc.status, exc.message, headers)
