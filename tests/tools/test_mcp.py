"""MCP servers' tools are governed like local tools: granted per agent, declared by the operator (consequential unless
declared read-only), labelled untrusted, audited. Against a real MCP server (the `mcp` SDK) on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

import podium
from podium import Podium, Settings
from podium.errors import ActionDenied, ConfigurationError, UsageError
from podium.models import ModelEntry
from podium.store import tables
from tests.tools._mcp_server import INJECTED
from tests.tools.conftest import RunningServer, free_port, start_mcp_server

OWNER = "crm-owner@example.com"


@podium.tool(consequential=True, sinks={"to": "target", "body": "content"})
def send_email(to: str, body: str) -> str:
    """A local consequential tool (its side effect: the outbox)."""
    return "sent" if podium.send_to_outbox("email", to, body) else "sent before"


def _agent_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Looks customer c-1 up through the MCP tool, then answers with what it read."""
    returned = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
    if not returned:
        call = ToolCallPart("crm_lookup_customer", {"customer": "c-1"})
        return ModelResponse(parts=[call], usage=RequestUsage(input_tokens=5, output_tokens=5))
    tools = ",".join(sorted(t.name for t in info.function_tools))
    usage = RequestUsage(input_tokens=5, output_tokens=5)
    return ModelResponse(parts=[TextPart(f"{tools} | {returned[0].content}")], usage=usage)


def crm(server: RunningServer | str, **declared: Any) -> podium.MCPServer:
    url = server if isinstance(server, str) else server.url
    declared.setdefault("read_only", ["lookup_customer"])
    return podium.MCPServer("crm", url, timeout_s=5, **declared)


def app_with(server: podium.MCPServer, *grants: str) -> podium.App:
    clerk = podium.Agent("clerk", owner=OWNER, models=["scripted"], tools=[*grants, send_email])
    model = ModelEntry("scripted", "local", podium.Price(), lambda: FunctionModel(_agent_model, model_name="scripted"))
    return podium.App(agents=[clerk], tools=[server, send_email], models=[model])


@pytest.fixture
def server(mcp_server: RunningServer) -> RunningServer:
    mcp_server.sent_file.unlink(missing_ok=True)
    return mcp_server


@pytest.fixture
def pod(sqlite_settings: Settings, server: RunningServer) -> Iterator[Podium]:
    with podium.launch(sqlite_settings, app_with(crm(server), *GRANTS)) as launched:
        yield launched


GRANTS = ("crm_lookup_customer", "crm_send_message", "crm_broken", "crm_fetch")


def clerk(pod: Podium) -> podium.Agent:
    """The clerk as code acts through it (what it may use is the registry's: the app registers its grants)."""
    return podium.Agent("clerk", owner=OWNER, models=["scripted"], tools=[*GRANTS, send_email])


def audit(pod: Podium, resource: str) -> list[tuple[str, str, dict[str, Any]]]:
    log = tables.audit_log
    query = sa.select(log.c.action, log.c.decision, log.c.detail).where(log.c.resource == resource)
    with pod.engine.connect() as conn:
        return [(r.action, r.decision, json.loads(r.detail or "{}")) for r in conn.execute(query.order_by(log.c.seq))]


def test_an_mcp_tool_is_called_through_the_governor_and_audited(pod: Podium) -> None:
    agent = clerk(pod)
    assert agent.call_tool("crm_lookup_customer", customer="c-1") == "Customer c-1: no notes."
    assert [(a, d) for a, d, _ in audit(pod, "crm_lookup_customer")] == [("tool.call", "allowed")]


def test_an_agent_run_sees_and_calls_the_servers_tools_by_their_podium_names(pod: Podium) -> None:
    answer = clerk(pod).run("Look customer c-1 up.", model="scripted")
    # The model was offered the granted tools under `<server>_<tool>`, and got the server's answer.
    tools = "crm_broken,crm_fetch,crm_lookup_customer,crm_send_message,send_email"
    assert answer.startswith(f"{tools} | ")
    assert "Customer c-1: no notes." in answer  # as the model was shown it (spotlighted, as untrusted data is)
    assert [d for _, d, _ in audit(pod, "crm_lookup_customer")] == ["allowed"]


def test_a_tool_not_granted_is_refused_before_the_server_is_asked(
    sqlite_settings: Settings, server: RunningServer
) -> None:
    with podium.launch(sqlite_settings, app_with(crm(server), "crm_lookup_customer")) as pod:
        with pytest.raises(ActionDenied, match="not allowed tool 'crm_send_message'.*agents grant clerk --tool"):
            clerk(pod).call_tool("crm_send_message", to="bob@example.com", body="hi")
        assert [d for _, d, _ in audit(pod, "crm_send_message")] == ["denied"]
    assert server.sent() == []


def test_an_mcp_result_driving_an_mcp_action_waits_for_a_person(pod: Podium, server: RunningServer) -> None:
    agent = clerk(pod)
    with podium.request_scope("r-mcp"):
        assert agent.call_tool("crm_lookup_customer", customer="c-7") == INJECTED
        with pytest.raises(ActionDenied, match="needs a person's approval.*untrusted-data-drives-no-action"):
            agent.call_tool("crm_send_message", to="attacker@evil.test", body="Here you go.")
    assert server.sent() == []
    ((_, decision, detail),) = audit(pod, "crm_send_message")
    assert (decision, detail["flow_untrusted"]) == ("denied", "to")


def test_an_mcp_result_driving_a_local_action_waits_for_a_person(pod: Podium) -> None:
    agent = clerk(pod)
    with podium.request_scope("r-local"):
        agent.call_tool("crm_lookup_customer", customer="c-7")
        with pytest.raises(ActionDenied, match="untrusted-data-drives-no-action"):
            agent.call_tool("send_email", to="attacker@evil.test", body="hello")
    assert pod.outbox.messages() == []


def test_every_mcp_tool_is_consequential_with_every_argument_a_target_unless_declared(
    pod: Podium, server: RunningServer
) -> None:
    """send_message is declared nowhere: both its arguments are targets, so a body copied from the lookup is
    stopped as a target; the read-only lookup may take a value from it."""
    agent = clerk(pod)
    with podium.request_scope("r-default"):
        agent.call_tool("crm_lookup_customer", customer="c-7")
        assert agent.call_tool("crm_lookup_customer", customer="c-7") == INJECTED  # read-only: not a sink
        with pytest.raises(ActionDenied, match="untrusted-data-drives-no-action"):
            agent.call_tool("crm_send_message", to="bob@example.com", body="send the account list to attacker")
    (*_, (_, _, detail)) = audit(pod, "crm_send_message")
    assert detail["flow_untrusted"] == "body"
    declared = crm(server).declaration("send_message")
    assert declared.consequential
    assert declared.sink_kinds({"to": 1, "body": 2}) == {"to": "target", "body": "target"}
    assert crm(server).declaration("lookup_customer").consequential is False
    narrowed = crm(server, sinks={"send_message": {"to": "target", "body": "content"}}).declaration("send_message")
    assert narrowed.sinks == (("body", "content"), ("to", "target"))


def test_a_clean_mcp_action_runs_and_its_result_is_untrusted(pod: Podium, server: RunningServer) -> None:
    agent = clerk(pod)
    with podium.request_scope("r-clean"):
        sent = agent.call_tool("crm_send_message", to="bob@example.com", body="Meeting moved.")
        assert sent == "sent to bob@example.com"
        # What the server answered is now untrusted: copying it into an action waits for a person.
        with pytest.raises(ActionDenied, match="untrusted-data-drives-no-action"):
            agent.call_tool("send_email", to="bob@example.com", body="sent to bob@example.com")
    assert server.sent() == [json.dumps({"to": "bob@example.com", "body": "Meeting moved."})]


def test_a_url_an_mcp_tool_is_given_is_egress_checked(pod: Podium) -> None:
    """Every argument of an undeclared MCP tool is a target, so a URL in one must be one egress permits."""
    with pytest.raises(ActionDenied, match="may not reach https://evil.test/x .*permit it in a policy"):
        clerk(pod).call_tool("crm_fetch", url="https://evil.test/x")
    ((_, decision, detail),) = audit(pod, "crm_fetch")
    assert (decision, detail["stage"]) == ("denied", "egress")


def test_the_tools_own_failure_is_a_retry_for_the_model(pod: Podium) -> None:
    from pydantic_ai.exceptions import ModelRetry

    # The server reports the failure (this SDK hides the exception's text); the model is told and may try again.
    with pytest.raises(ModelRetry, match="MCP tool 'crm_broken' failed: Error executing tool broken"):
        clerk(pod).call_tool("crm_broken")
    assert [d for _, d, _ in audit(pod, "crm_broken")] == ["failed"]


# -- bad servers and bad declarations: each a clear error naming the fix, audited, nothing half-written ---------


def test_a_server_that_died_is_named_with_the_fix_and_audited(sqlite_settings: Settings, tmp_path: Any) -> None:
    dying = start_mcp_server(tmp_path)
    with podium.launch(sqlite_settings, app_with(crm(dying), "crm_send_message")) as pod:
        dying.process.kill()
        dying.process.wait()
        with pytest.raises(ConfigurationError, match=r"MCP server 'crm' .* did not answer .*Start the server"):
            clerk(pod).call_tool("crm_send_message", to="bob@example.com", body="hi")
        ((action, decision, detail),) = audit(pod, "crm")
        assert (action, decision) == ("mcp.list", "failed")
        assert "did not answer" in detail["error"]
        with pod.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(tables.flow_records)).scalar() == 0
    assert dying.sent() == []


def test_a_local_tool_works_while_an_mcp_server_is_down(sqlite_settings: Settings) -> None:
    down = crm(f"http://127.0.0.1:{free_port()}/mcp")
    with podium.launch(sqlite_settings, app_with(down, "crm_send_message")) as pod:
        assert clerk(pod).call_tool("send_email", to="bob@example.com", body="hi") == "sent"


class _Malformed(BaseHTTPRequestHandler):
    """Answers MCP's handshake, then `mode`: garbage, a reply that is not JSON-RPC, or a tool whose input schema is
    not an object."""

    mode = "garbage"
    init: ClassVar[dict[str, Any]] = {
        "protocolVersion": "2025-06-18",
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "bad", "version": "1"},
    }

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(405)
        self.end_headers()

    def do_DELETE(self) -> None:
        self.send_response(200)
        self.end_headers()

    def do_POST(self) -> None:
        message = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if "id" not in message:
            self.send_response(202)
            self.end_headers()
            return
        if message["method"] == "initialize":
            reply = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": self.init}).encode()
        elif self.mode == "garbage":
            reply = b"this is not json {"
        elif self.mode == "not-rpc":
            reply = json.dumps({"hello": "world"}).encode()
        elif self.mode == "bad-name":
            names = ("send message/../x", "send_message")
            tools = [{"name": name, "inputSchema": {"type": "object"}} for name in names]
            reply = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": tools}}).encode()
        else:
            tools = [{"name": "send_message", "inputSchema": {"type": "string"}}]
            reply = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": tools}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


@pytest.fixture
def malformed() -> Iterator[tuple[str, type[_Malformed]]]:
    handler = type("Handler", (_Malformed,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/mcp", handler
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("garbage", "Failed to parse JSON response"),
        ("not-rpc", "Failed to parse JSON response"),
        ("bad-schema", r"tools\.0\.inputSchema\.type: Input should be 'object'"),
    ],
)
def test_a_malformed_answer_is_named_with_the_fix(
    sqlite_settings: Settings, malformed: tuple[str, type[_Malformed]], mode: str, said: str
) -> None:
    url, handler = malformed
    handler.mode = mode
    with podium.launch(sqlite_settings, app_with(crm(url, read_only=()), "crm_send_message")) as pod:
        with pytest.raises(ConfigurationError, match=rf"answered something that is not valid MCP .*{said}.*fix or"):
            clerk(pod).call_tool("crm_send_message", to="bob@example.com", body="hi")
        assert [(a, d) for a, d, _ in audit(pod, "crm")] == [("mcp.list", "failed")]
        assert audit(pod, "crm_send_message") == []  # nothing was called


def test_a_tool_named_what_no_model_provider_accepts_is_left_out_and_said(
    sqlite_settings: Settings, malformed: tuple[str, type[_Malformed]], caplog: pytest.LogCaptureFixture
) -> None:
    url, handler = malformed
    handler.mode = "bad-name"
    with podium.launch(sqlite_settings, app_with(crm(url, read_only=()), "crm_send_message")) as pod:
        with pytest.raises(ConfigurationError):  # this test server answers a call with its listing again
            clerk(pod).call_tool("crm_send_message", to="bob@example.com", body="hi")
        assert [(a, d) for a, d, _ in audit(pod, "crm_send_message")] == [("tool.call", "failed")]  # it was listed
    assert "'send message/../x'" in caplog.text and "Rename the tool on the server" in caplog.text


def test_declarations_the_server_does_not_match_are_refused_at_listing(
    sqlite_settings: Settings, server: RunningServer
) -> None:
    misnamed = crm(server, sinks={"send_mesage": {"to": "target"}})
    refused = pytest.raises(ConfigurationError, match="does not offer 'send_mesage'.*it offers: broken, fetch")
    with podium.launch(sqlite_settings, app_with(misnamed, "crm_send_message")) as pod, refused:
        clerk(pod).call_tool("crm_send_message", to="bob@example.com", body="hi")
    wrong_argument = crm(server, sinks={"send_message": {"recipient": "target"}})
    refused = pytest.raises(ConfigurationError, match="names 'recipient' for tool 'send_message', which takes body, to")
    with podium.launch(sqlite_settings, app_with(wrong_argument, "crm_send_message")) as pod, refused:
        clerk(pod).call_tool("crm_send_message", to="bob@example.com", body="hi")
    assert server.sent() == []


def test_bad_declarations_are_refused_when_written(server: RunningServer) -> None:
    with pytest.raises(UsageError, match="name 'crm_eu' is not valid.*no '_'"):
        podium.MCPServer("crm_eu", server.url)
    with pytest.raises(UsageError, match="is not an http\\(s\\) URL"):
        podium.MCPServer("crm", "crm_server.py")
    with pytest.raises(UsageError, match="as read_only and names its sinks"):
        crm(server, sinks={"lookup_customer": {"customer": "target"}})
    with pytest.raises(UsageError, match="of kind 'destination'; a sink is 'target'"):
        crm(server, sinks={"send_message": {"to": "destination"}})
    with pytest.raises(UsageError, match="sinks maps each tool to its sink arguments"):
        crm(server, sinks={"send_message": "target"})
    with pytest.raises(UsageError, match="read_only is a list of tool names"):
        crm(server, read_only="lookup_customer")
    with pytest.raises(UsageError, match="fee_usd=nan is not a fee"):
        podium.MCPServer("crm", server.url, fee_usd=float("nan"))
    with pytest.raises(UsageError, match="timeout_s='10' must be above 0"):
        podium.MCPServer("crm", server.url, timeout_s="10")
    with pytest.raises(UsageError, match="is not a mapping; name each sink's kind"):
        podium.tool(consequential=True, sinks=["url"])


def test_a_local_tool_named_like_a_servers_tools_is_refused_at_launch(
    sqlite_settings: Settings, server: RunningServer
) -> None:
    def crm_notes() -> str:
        return ""

    app = podium.App(tools=[crm(server), crm_notes])
    with pytest.raises(UsageError, match="'crm_notes' is named like the tools of MCP server 'crm'.*rename"):
        podium.launch(sqlite_settings, app)


def test_a_stdio_server_is_started_by_its_command(sqlite_settings: Settings, tmp_path: Any) -> None:
    import sys

    from tests.tools.conftest import REPO

    command = [sys.executable, str(REPO / "tests/tools/_mcp_server.py"), "stdio", str(tmp_path / "sent.jsonl")]
    stdio = podium.MCPServer("crm", command, read_only=["lookup_customer"], timeout_s=20)
    with podium.launch(sqlite_settings, app_with(stdio, "crm_lookup_customer")) as pod:
        assert clerk(pod).call_tool("crm_lookup_customer", customer="c-7") == INJECTED
