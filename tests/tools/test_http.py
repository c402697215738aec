"""The governed HTTP tools reach only what a Cedar `egress` policy permits the agent, redirects included, with bounded
replies and time. Against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import podium
from podium import Podium, Settings
from podium.errors import ActionDenied, UsageError
from podium.policy import url_entity
from podium.security import trust
from podium.store import tables
from podium.testing import sign_in
from podium.tools import http_get, http_post, http_tools

OWNER = "web-owner@example.com"
# Only 127.0.0.1 is permitted: "localhost" names the same server, and is another host to egress.
POLICY = """
@id("fetcher-reaches-the-test-server")
permit (principal == Agent::"fetcher", action == Action::"egress", resource)
when { resource.scheme == "http" && resource.host == "127.0.0.1" };

@id("the-fetchers-helper-would-reach-more")
permit (principal == Agent::"fetcher-helper", action == Action::"egress", resource)
when { resource.scheme == "http" && (resource.host == "127.0.0.1" || resource.host == "localhost") };
"""
quick_get, _ = http_tools(timeout_s=0.5, max_bytes=64, max_redirects=2)
quick_get.__name__ = "quick_get"


class _Site(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str]]  # (method, path, authorization) of every request, in order

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {"Content-Type": "text/plain; charset=utf-8"}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(("GET", self.path, self.headers.get("Authorization", "")))
        port = self.server.server_address[1]
        if self.path == "/ok":
            self._reply(200, "héllo".encode())
        elif self.path == "/big":
            self._reply(200, b"x" * 5_000)
        elif self.path == "/hop":
            self._reply(302, headers={"Location": "/ok"})
        elif self.path == "/away":
            self._reply(302, headers={"Location": f"http://localhost:{port}/ok"})
        elif self.path == "/loop":
            self._reply(302, headers={"Location": "/loop"})
        elif self.path == "/slow":
            time.sleep(2)
            self._reply(200, b"late")
        else:
            self._reply(404, b"no such page")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"] or 0))
        self.seen.append(("POST", self.path, body.decode()))
        if self.path == "/moved":
            self._reply(307, headers={"Location": "/echo"})
        else:
            self._reply(200, body, {"Content-Type": self.headers.get("Content-Type", "")})


@pytest.fixture
def site() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    seen: list[tuple[str, str, str]] = []
    handler = type("Site", (_Site,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def pod(sqlite_settings: Settings, tmp_path: Path) -> Iterator[Podium]:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "egress.cedar").write_text(POLICY)
    settings = sqlite_settings.model_copy(update={"policies": policies})
    tools = [http_get, http_post, quick_get]
    agents = [podium.Agent(name, owner=OWNER, models=[], tools=tools) for name in ("fetcher", "stranger")]
    with podium.launch(settings, podium.App(agents=agents, tools=tools)) as launched:
        yield launched


def agent(name: str = "fetcher") -> podium.Agent:
    return podium.Agent(name, owner=OWNER, models=[], tools=[http_get, http_post, quick_get])


def audit(pod: Podium, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    log = tables.audit_log
    query = sa.select(log.c.resource, log.c.decision, log.c.detail).where(log.c.action == action).order_by(log.c.seq)
    with pod.engine.connect() as conn:
        return [(r.resource, r.decision, json.loads(r.detail or "{}")) for r in conn.execute(query)]


def test_a_permitted_url_is_fetched(pod: Podium, site: tuple[str, list[Any]]) -> None:
    base, _ = site
    got = agent().call_tool("http_get", url=f"{base}/ok")
    assert got == {
        "url": f"{base}/ok",
        "status": 200,
        "location": "",
        "content_type": "text/plain; charset=utf-8",
        "text": "héllo",
        "truncated": False,
    }
    ((resource, decision, detail),) = audit(pod, "tool.call")
    assert (resource, decision, detail["egress"]) == ("http_get", "allowed", "127.0.0.1")


def test_an_agent_no_policy_permits_reaches_nothing(pod: Podium, site: tuple[str, list[Any]]) -> None:
    base, seen = site
    with pytest.raises(
        ActionDenied,
        match=r"'stranger' may not reach http://127\.0\.0\.1:\d+/ok .*default deny.*"
        r'permit \(principal == Agent::"stranger"',
    ):
        agent("stranger").call_tool("http_get", url=f"{base}/ok")
    assert seen == []  # refused before the call ran
    ((_, decision, detail),) = audit(pod, "tool.call")
    assert (decision, detail["stage"]) == ("denied", "egress")


def test_another_host_is_refused_even_as_the_same_server(pod: Podium, site: tuple[str, list[Any]]) -> None:
    base, seen = site
    with pytest.raises(ActionDenied, match="may not reach http://localhost"):
        agent().call_tool("http_get", url=base.replace("127.0.0.1", "localhost") + "/ok")
    assert seen == []


def test_a_delegate_reaches_only_what_every_agent_it_acts_for_may(pod: Podium, site: tuple[str, list[Any]]) -> None:
    """A policy lets the fetcher's delegate reach "localhost"; the fetcher may not, so neither may its delegate,
    by a request or by a redirect (a delegation never widens)."""
    base, seen = site
    port = base.rsplit(":", 1)[1]
    pod.agents.delegate("fetcher", "fetcher-helper", tools=["http_get"], by=sign_in(pod, "agent:fetcher"))
    helper = agent("fetcher-helper")
    with podium.request_scope("r-helper-ok"):
        assert helper.call_tool("http_get", url=f"{base}/ok")["status"] == 200
    with podium.request_scope("r-helper-localhost"), pytest.raises(ActionDenied, match=r"acts for 'fetcher', wh"):
        helper.call_tool("http_get", url=f"http://localhost:{port}/ok")
    with podium.request_scope("r-helper-away"), pytest.raises(ActionDenied, match=r"acts for 'fetcher', which"):
        helper.call_tool("http_get", url=f"{base}/away")
    assert [path for _, path, _ in seen] == ["/ok", "/away"]  # localhost was never requested


def test_a_redirect_to_a_permitted_url_is_followed(pod: Podium, site: tuple[str, list[Any]]) -> None:
    base, seen = site
    got = agent().call_tool("http_get", url=f"{base}/hop")
    assert (got["url"], got["text"]) == (f"{base}/ok", "héllo")
    assert [path for _, path, _ in seen] == ["/hop", "/ok"]


def test_a_redirect_elsewhere_is_refused_and_audited(pod: Podium, site: tuple[str, list[Any]]) -> None:
    base, seen = site
    with pytest.raises(ActionDenied, match=r"may not reach http://localhost:\d+/ok .*through tool 'http_get'"):
        agent().call_tool("http_get", url=f"{base}/away")
    assert [path for _, path, _ in seen] == ["/away"]  # the refused hop was never requested
    ((resource, decision, detail),) = audit(pod, "egress")
    assert (resource.startswith("http://localhost:"), decision) == (True, "denied")
    assert (detail["hop"], detail["redirected_from"]) == ("1", f"{base}/away")


def test_redirects_are_bounded(pod: Podium, site: tuple[str, list[Any]]) -> None:
    base, seen = site
    with pytest.raises(RuntimeError, match="redirected more than 2 times"):
        agent().call_tool("quick_get", url=f"{base}/loop")
    assert len(seen) == 3
    assert [d for _, d, _ in audit(pod, "tool.call")] == ["failed"]


def test_replies_are_bounded_in_size_and_time(pod: Podium, site: tuple[str, list[Any]]) -> None:
    base, _ = site
    with podium.request_scope("big"):  # each its own request: what one read does not label the other's URL
        got = agent().call_tool("quick_get", url=f"{base}/big")
    assert (len(got["text"]), got["truncated"]) == (64, True)
    started = time.monotonic()
    with podium.request_scope("slow"), pytest.raises(TimeoutError, match=r"took more than 0\.5 s"):
        agent().call_tool("quick_get", url=f"{base}/slow")
    assert time.monotonic() - started < 1.5


def test_a_post_is_not_resent_on_a_307_but_told_where_to_go(pod: Podium, site: tuple[str, list[Any]]) -> None:
    """Following would send the body on to a place its data's recipients were never checked against."""
    base, seen = site
    got = agent().call_tool("http_post", url=f"{base}/moved", body='{"a": 1}')
    assert (got["url"], got["status"], got["location"]) == (f"{base}/moved", 307, f"{base}/echo")
    assert seen == [("POST", "/moved", '{"a": 1}')]
    with pytest.raises(ActionDenied, match="untrusted-data-drives-no-action"):  # a new call, traced in full
        agent().call_tool("http_post", url=got["location"], body='{"a": 1}')


def test_a_space_after_the_host_is_sent_percent_encoded(pod: Podium, site: tuple[str, list[Any]]) -> None:
    base, seen = site
    assert agent().call_tool("http_get", url=f"{base}/ok?q=podium docs")["status"] == 404  # reached: no such page
    assert seen == [("GET", "/ok?q=podium%20docs", "")]


def test_credentials_in_a_url_are_not_sent(pod: Podium, site: tuple[str, list[Any]]) -> None:
    base, seen = site
    got = agent().call_tool("http_get", url=base.replace("http://", "http://admin:secret@") + "/ok")
    assert got["url"] == f"{base}/ok"
    assert seen == [("GET", "/ok", "")]


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("file:///etc/passwd", "not an absolute URL with a host"),
        ("http://exa%6dple.com/", "has a host podium cannot check"),
        ("http://localhost:9\\@127.0.0.1/ok", "not written plainly"),  # requests and Node reach localhost
        ("http:/127.0.0.1/ok", "not written plainly"),
        ("http:\\\\127.0.0.1/ok", "not written plainly"),
        ("\x01http://127.0.0.1/ok", "not written plainly"),
    ],
)
def test_what_is_not_a_checkable_url_is_refused(pod: Podium, url: str, said: str) -> None:
    with pytest.raises(ActionDenied, match=said):
        agent().call_tool("http_get", url=url)


def test_a_url_read_from_a_tool_result_needs_a_person(pod: Podium, site: tuple[str, list[Any]]) -> None:
    """The reply is untrusted: a URL taken from it is a target driven by untrusted data."""
    base, seen = site
    with podium.request_scope("r-http"):
        trust(f"Fetch {base}/hop")
        first = agent().call_tool("http_get", url=f"{base}/hop")
        with pytest.raises(ActionDenied, match="untrusted-data-drives-no-action"):
            agent().call_tool("http_get", url=first["url"] + "?q=" + first["text"])
    assert [path for _, path, _ in seen] == ["/hop", "/ok"]


def test_the_url_checked_is_the_url_reached() -> None:
    """Parsed once, as the client parses it: a backslash trick cannot check one host and reach another."""
    where = url_entity("HTTP://Admin:pw@EXAMPLE.com.:8080/a/../b?q=1#frag")
    assert (where.id, dict(where.attrs)) == (
        "http://example.com.:8080/b?q=1",
        {"scheme": "http", "host": "example.com", "port": 8080, "path": "/b"},
    )
    assert url_entity("http://evil.test\\@good.example/").attrs["host"] == "good.example"
    assert url_entity("https://bücher.example/").attrs["host"] == "xn--bcher-kva.example"
    # An address however it is spelt is the address a policy names (the resolver reads these forms so).
    for spelt in ("2130706433", "0x7f000001", "127.1", "127.0.1", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"):
        assert url_entity(f"http://{spelt}/").attrs["host"] == "127.0.0.1", spelt
    for spelt in ("2852039166", "0xa9fea9fe", "169.254.43518"):
        assert url_entity(f"http://{spelt}/").attrs["host"] == "169.254.169.254", spelt
    assert url_entity("http://[0:0::1]/").attrs["host"] == "::1"
    assert url_entity("http://1e100.net/").attrs["host"] == "1e100.net"  # a name that starts with a digit
    with pytest.raises(ValueError, match="not an absolute URL"):
        url_entity("/relative")


def test_limits_out_of_range_are_refused() -> None:
    with pytest.raises(UsageError, match="timeout of at most 600 s"):
        http_tools(timeout_s=0)
