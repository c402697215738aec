"""Tools podium provides to governed agents, and what a tool's author declares about theirs.

The HTTP tools (`http_get`, `http_post`, `http_tools`) and MCP servers (`MCPServer`) load on first use: they bring
the HTTP and MCP clients, which reading the outbox does not need. See docs/tools.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from podium.tools._declare import declaration_of, tool
from podium.tools._outbox import Outbox, OutboxMessage, send_to_outbox

if TYPE_CHECKING:
    from podium.tools._http import http_get, http_post, http_tools
    from podium.tools._mcp import MCPServer

_ON_FIRST_USE = {
    "MCPServer": "podium.tools._mcp",
    "http_get": "podium.tools._http",
    "http_post": "podium.tools._http",
    "http_tools": "podium.tools._http",
}


def __getattr__(name: str) -> Any:
    if name not in _ON_FIRST_USE:
        raise AttributeError(f"module 'podium.tools' has no attribute {name!r}")
    return getattr(importlib.import_module(_ON_FIRST_USE[name]), name)


__all__ = [
    "MCPServer",
    "Outbox",
    "OutboxMessage",
    "declaration_of",
    "http_get",
    "http_post",
    "http_tools",
    "send_to_outbox",
    "tool",
]
