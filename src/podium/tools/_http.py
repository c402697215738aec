"""Governed HTTP tools: an agent fetches or posts to the URLs a Cedar `egress` policy permits it, nothing else.

    app = podium.App(agents=[researcher], tools=[podium.tools.http_get])
    # policies/egress.cedar:
    #   permit (principal == Agent::"researcher", action == Action::"egress", resource)
    #   when { resource.scheme == "https" && resource.host like "*.python.org" };

Both are consequential (a GET carries data out in its URL), with `url` a target sink and a POST's `body` its content,
so the information-flow stage makes a URL or a body copied from untrusted data wait for a person. The egress stage
refuses a URL no policy permits before the call runs; the tool itself checks the URL again and every redirect before
following it (a refused hop is audited as `egress`, denied), and follows no 307 or 308 after a POST: that would send
the body on to a place its data's recipients were never checked against, so the answer comes back with its
`location` for the agent to call anew. It requests exactly the URL that was checked, sends no
user:password, cookies or proxy settings from the environment, and reads at most `max_bytes` of a reply within
`timeout_s`. What it returns is untrusted (every tool result is).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from podium import _current
from podium.errors import UsageError
from podium.governance import current_call
from podium.policy import Entity
from podium.security import Egress
from podium.tools._declare import tool

TIMEOUT_S = 10.0  # the most one call may take, every redirect included
MAX_BYTES = 1_000_000  # the most of a reply's body that is read; the rest is cut (`truncated`)
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
HttpTool = Callable[..., dict[str, Any]]


def http_tools(
    *, timeout_s: float = TIMEOUT_S, max_bytes: int = MAX_BYTES, max_redirects: int = MAX_REDIRECTS
) -> tuple[HttpTool, HttpTool]:
    """`http_get` and `http_post` with limits of your own (register them in place of podium.tools' defaults)."""
    if not 0 < timeout_s <= 600 or not 0 < max_bytes <= 100_000_000 or not 0 <= max_redirects <= 20:
        raise UsageError(
            f"http_tools(timeout_s={timeout_s}, max_bytes={max_bytes}, max_redirects={max_redirects}): give a "
            "timeout of at most 600 s, a body of 1 byte to 100 MB, and 0-20 redirects."
        )

    @tool(consequential=True, sinks={"url": "target"})
    def http_get(url: str) -> dict[str, Any]:
        """Fetch `url` (HTTP GET). Returns the final url, the status, the content_type and the body as text (cut to
        a bounded size: truncated says so). Only URLs the agent may reach are fetched, redirects included."""
        return _request("GET", url, None, "", timeout_s, max_bytes, max_redirects)

    @tool(consequential=True, sinks={"url": "target", "body": "content"})
    def http_post(url: str, body: str, content_type: str = "application/json") -> dict[str, Any]:
        """Send `body` to `url` (HTTP POST, as `content_type`). Returns what http_get returns."""
        return _request("POST", url, body, content_type, timeout_s, max_bytes, max_redirects)

    return http_get, http_post


def _egress() -> Egress:
    for stage in _current.get().governor.stages:
        if isinstance(stage, Egress):
            return stage
    raise UsageError("this governor has no egress stage, so podium's HTTP tools reach nothing; launch podium.")


def _request(
    method: str,
    url: str,
    body: str | None,
    content_type: str,
    timeout_s: float,
    max_bytes: int,
    max_redirects: int,
) -> dict[str, Any]:
    import httpx2

    call = current_call().call
    assert call is not None, "the governor names the call it executes"
    egress = _egress()
    # The stage checked this URL before the call ran; this check is of the very URL requested.
    where = _web(egress.permit(call.agent, url, tool=call.resource, hop=0))
    deadline = time.monotonic() + timeout_s
    headers = {"user-agent": "podium-http-tool"} | ({"content-type": content_type} if body is not None else {})
    with httpx2.Client(follow_redirects=False, trust_env=False, headers=headers) as client:
        for hop in range(max_redirects + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{method} {url} took more than {timeout_s:g} s (with its redirects): stopped.")
            request = client.build_request(method, where.id, content=body, timeout=left)
            try:
                response = client.send(request, stream=True)
                try:
                    location = response.headers.get("location")
                    resends = body is not None and response.status_code in (307, 308)  # the body, to a new place
                    if response.status_code in _REDIRECTS and location and not resends:
                        if hop == max_redirects:
                            raise RuntimeError(f"{method} {url} redirected more than {max_redirects} times: stopped.")
                        target = str(response.url.join(location))
                        hop_to = egress.permit(call.agent, target, tool=call.resource, hop=hop + 1, came_from=where.id)
                        where = _web(hop_to)
                        if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                            method, body = "GET", None  # as browsers do; 307 and 308 keep the method and body
                        continue
                    text, truncated = _read(response, max_bytes, deadline)
                    return {  # a 307 or 308 after a POST comes back as it is: its location is a new call, traced
                        "url": where.id,
                        "status": response.status_code,
                        "location": str(response.url.join(location)) if location else "",
                        "content_type": response.headers.get("content-type", ""),
                        "text": text,
                        "truncated": truncated,
                    }
                finally:
                    response.close()
            except httpx2.TimeoutException as exc:
                raise TimeoutError(f"{method} {where.id} took more than {timeout_s:g} s: {exc}") from exc
            except httpx2.TransportError as exc:
                raise ConnectionError(f"{method} {where.id} failed: {type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _web(where: Entity) -> Entity:
    if where.attrs["scheme"] not in ("http", "https"):
        raise ValueError(f"the HTTP tools reach http and https URLs only, not {where.id}")
    return where


def _read(response: Any, max_bytes: int, deadline: float) -> tuple[str, bool]:
    """At most `max_bytes` of the body, decoded (undecodable bytes replaced); whether more was left unread."""
    data = bytearray()
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) > max_bytes:
            return _decode(bytes(data[:max_bytes]), response), True
        if time.monotonic() > deadline:
            raise TimeoutError(f"reading {response.url} took past its deadline: stopped.")
    return _decode(bytes(data), response), False


def _decode(data: bytes, response: Any) -> str:
    try:
        return data.decode(response.encoding or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", "replace")


http_get, http_post = http_tools()
