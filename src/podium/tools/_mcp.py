"""Tools from MCP servers, governed like local ones: granted per agent by name, declared by the operator, audited.

    crm = podium.MCPServer(
        "crm", "http://127.0.0.1:8931/mcp",              # streamable HTTP; or a command: ["python", "crm_server.py"]
        read_only=["lookup_customer"],                     # changes nothing: not consequential
        sinks={"send_message": {"to": "target", "body": "content"}},
        reads="crm/customers",                             # the data scope of what its tools return
    )
    clerk = podium.Agent("clerk", owner="ops@example.com", models=[...], tools=[crm.tool("lookup_customer")])
    app = podium.App(agents=[clerk], tools=[crm])

Names: a server's tools are named `<server>_<tool>` ("crm_lookup_customer"), the form model providers accept (no dots),
and granted like any tool: `tools=[...]`, `podium agents grant clerk --tool crm_lookup_customer`. A server's name has no
"_", so the name says which server a tool is from; a local tool whose name starts with `<server>_` is refused at launch.

Declarations: the operator declares, the server does not. Every tool is consequential, with every argument a target,
unless the operator lists it as `read_only` or names its `sinks`: an MCP server is code podium did not review, and a
tool's `readOnlyHint` is written by that server, so it cannot lift a check. A declaration naming a tool the server does
not offer, or an argument its schema lacks, is refused when the server's tools are first listed.

Each call passes the governor (`GovernedToolset`): Cedar's grant, information flow (what an MCP tool returns is
untrusted, like every tool result), egress (a URL target), exceptions, budgets, the ledger and the audit log.

Sessions: an agent's run holds one session per server for its whole run, opened when it first needs the server;
a call from workflow code (`Agent.call_tool`) opens one for that call. A server that does not answer, answers
something that is not MCP, or lists a tool whose input is not a JSON object is a `ConfigurationError` naming the
server and the fix; a listing that fails is audited (`mcp.list`, failed), a call that fails is audited as the call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from pydantic_ai import RunContext
from pydantic_ai.exceptions import ModelRetry
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool

from podium import _current
from podium.audit import record
from podium.cost import NANO
from podium.errors import ConfigurationError, PodiumError, UsageError
from podium.governance import DECLARATION_METADATA, SINK_KINDS, SinkKind, ToolDeclaration

if TYPE_CHECKING:
    from pydantic_ai.mcp import MCPToolset

TIMEOUT_S = 10.0
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI's and Anthropic's APIs take as a tool's name
_MALFORMED_CODES = frozenset({-32700, -32600, -32602})  # JSON-RPC: parse error, invalid request, invalid params
_log = logging.getLogger("podium.tools")


@dataclass
class _Loop:
    """The server's session on one event loop: open while an agent run (or more) on that loop holds the server."""

    depth: int = 0
    session: MCPToolset[Any] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class MCPServer(AbstractToolset[Any]):
    """An MCP server whose tools podium's agents may be granted one by one (see the module's docstring)."""

    def __init__(
        self,
        name: str,
        server: str | Sequence[str],
        *,
        read_only: Iterable[str] = (),
        sinks: Mapping[str, Mapping[str, str]] | None = None,
        reads: str = "",
        team: str = "",
        fee_usd: float = 0.0,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        """`server`: the URL of a streamable-HTTP (or SSE, ".../sse") MCP server, or the command that starts a stdio
        one. `read_only`: tools that change nothing. `sinks`: for a consequential tool, which arguments are targets
        and which content (unnamed: all targets). `reads`, `team`, `fee_usd`: as `@podium.tool` declares them, for
        every tool of the server. `timeout_s`: the most connecting, or one request, may take."""
        if not _NAME.match(name):
            raise UsageError(
                f"MCP server name {name!r} is not valid: use 1-32 lower-case letters, digits and '-', starting with a "
                "letter (no '_': its tools are named '<server>_<tool>')."
            )
        if isinstance(server, str) and not server.startswith(("http://", "https://")):
            raise UsageError(
                f"MCP server {name!r}: {server!r} is not an http(s) URL. Give the server's URL, or the command that "
                "starts it as a list (['python', 'server.py'])."
            )
        if not isinstance(server, str) and (not server or not all(isinstance(part, str) for part in server)):
            raise UsageError(f"MCP server {name!r}: give its URL, or its command as a non-empty list of strings.")
        if isinstance(read_only, str) or not all(isinstance(tool, str) for tool in read_only):
            raise UsageError(f"MCP server {name!r}: read_only is a list of tool names, such as ['lookup_customer'].")
        if sinks is not None and not (
            isinstance(sinks, Mapping) and all(isinstance(kinds, Mapping) for kinds in sinks.values())
        ):
            raise UsageError(
                f"MCP server {name!r}: sinks maps each tool to its sink arguments, such as "
                "{'send_message': {'to': 'target', 'text': 'content'}}."
            )
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not 0 < timeout_s <= 600:
            raise UsageError(f"MCP server {name!r}: timeout_s={timeout_s!r} must be above 0 and at most 600 seconds.")
        if isinstance(fee_usd, bool) or not isinstance(fee_usd, int | float) or not 0 <= fee_usd < math.inf:
            raise UsageError(f"MCP server {name!r}: fee_usd={fee_usd!r} is not a fee; give a number of USD >= 0.")
        try:
            import pydantic_ai.mcp  # noqa: F401 - the client, checked now rather than at the first call
        except ImportError as exc:
            raise UsageError(
                f"podium.MCPServer({name!r}) needs the MCP client, which is an extra: pip install 'podium[mcp]'."
            ) from exc
        self.name = name
        self.server: str | tuple[str, ...] = server if isinstance(server, str) else tuple(server)
        self.read_only = frozenset(read_only)
        self.sinks = _checked_sinks(name, self.read_only, sinks or {})
        self.reads = reads.strip()
        self.team = team.strip()
        self.fee_nano_usd = round(fee_usd * NANO)
        self.timeout_s = float(timeout_s)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Loop] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    # -- what the operator and the governor read ----------------------------------------------------------------

    def tool(self, name: str) -> str:
        """The name agents are granted the server's tool `name` by: `<server>_<name>`."""
        return f"{self.name}_{name}"

    def declaration(self, tool: str) -> ToolDeclaration:
        """What the operator declared about the server's tool `tool` (the secure default: consequential, every
        argument a target)."""
        return ToolDeclaration(
            fee_nano_usd=self.fee_nano_usd,
            team=self.team,
            consequential=tool not in self.read_only,
            sinks=tuple(sorted(self.sinks.get(tool, {}).items())),
            reads=self.reads,
        )

    @property
    def where(self) -> str:
        return self.server if isinstance(self.server, str) else " ".join(self.server)

    @property
    def id(self) -> str | None:
        return self.name

    @property
    def label(self) -> str:
        return f"MCP server {self.name!r} ({self.where})"

    @property
    def tool_name_conflict_hint(self) -> str:
        return f"Rename the MCP server (podium.MCPServer('<another name>', ...)) or the tool named {self.name}_…"

    # -- the toolset -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> MCPServer:
        self._here().depth += 1  # the session opens when the run first needs the server
        return self

    async def __aexit__(self, *args: Any) -> bool | None:
        state = self._here()
        state.depth -= 1
        if state.depth == 0 and state.session is not None:
            session, state.session = state.session, None
            await self._close(session)
        return None

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        try:
            async with self._session() as session:
                try:
                    listed = await session.get_tools(ctx)
                except Exception as exc:
                    raise self._failure(exc, "list its tools") from exc
            return self._declared(listed)
        except ConfigurationError as error:
            self._audit_listing(error)
            raise

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        from fastmcp.exceptions import ToolError

        original = name.removeprefix(f"{self.name}_")
        async with self._session() as session:
            inner = replace(tool, toolset=session, tool_def=replace(tool.tool_def, name=original))
            try:
                return await session.call_tool(original, tool_args, ctx, inner)
            except ToolError as exc:  # the tool's own failure, as it reported it: the model may try again
                raise ModelRetry(f"MCP tool {name!r} failed: {exc}") from exc
            except (PodiumError, ModelRetry):
                raise
            except Exception as exc:
                raise self._failure(exc, f"call its tool {original!r}") from exc

    # -- internals ---------------------------------------------------------------------------------------------

    def _here(self) -> _Loop:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._loops.get(loop)
            if state is None:
                state = self._loops[loop] = _Loop()
            return state

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[MCPToolset[Any]]:
        """The session of the run holding the server on this loop, opened on first need; else one for this use."""
        state = self._here()
        if state.depth > 0:
            async with state.lock:
                if state.session is None:
                    state.session = await self._open()
            yield state.session
            return
        session = await self._open()
        try:
            yield session
        finally:
            await self._close(session)

    def _client(self) -> MCPToolset[Any]:
        from pydantic_ai.mcp import MCPToolset

        source: Any = self.server
        if isinstance(self.server, tuple):
            from fastmcp.client.transports import StdioTransport

            command, *args = self.server
            source = StdioTransport(command=command, args=args, keep_alive=False)
        # Tool errors are raised as they are (ToolError, McpError), so that podium tells the two apart.
        return MCPToolset(
            source, id=self.name, init_timeout=self.timeout_s, read_timeout=self.timeout_s, tool_error_behavior="error"
        )

    async def _open(self) -> MCPToolset[Any]:
        session = self._client()
        try:
            await session.__aenter__()
        except Exception as exc:
            raise self._failure(exc, "connect") from exc
        return session

    async def _close(self, session: MCPToolset[Any]) -> None:
        try:
            await session.__aexit__(None, None, None)
        except Exception as exc:  # noqa: BLE001 - a server that died has nothing left to close; its failure was raised
            _log.warning("closing the session with %s failed: %s", self.label, _summary(exc))

    def _declared(self, listed: Mapping[str, ToolsetTool[Any]]) -> dict[str, ToolsetTool[Any]]:
        """The server's tools under podium's names, each carrying its declaration, checked against what it offers."""
        unknown = sorted((self.read_only | set(self.sinks)) - set(listed))
        if unknown:
            raise ConfigurationError(
                f"{self.label} does not offer {', '.join(map(repr, unknown))}, which podium.MCPServer(read_only=, "
                f"sinks=) declares (it offers: {', '.join(sorted(listed)) or 'no tools'}). Correct the names.",
                server=self.name,
            )
        tools: dict[str, ToolsetTool[Any]] = {}
        for original, tool in listed.items():
            schema = tool.tool_def.parameters_json_schema
            if not isinstance(schema, Mapping) or schema.get("type") != "object":
                shown = schema.get("type") if isinstance(schema, Mapping) else type(schema).__name__
                raise ConfigurationError(
                    f"{self.label} lists tool {original!r} with an input schema of type {shown!r}; MCP requires a "
                    "JSON object schema ({'type': 'object', 'properties': {...}}). Fix the tool on the server: "
                    "podium calls none of its tools until it lists them cleanly.",
                    server=self.name,
                )
            properties = schema.get("properties") or {}
            missing = sorted(set(self.sinks.get(original, {})) - set(properties))
            if missing:
                raise ConfigurationError(
                    f"{self.label}: sinks= names {', '.join(map(repr, missing))} for tool {original!r}, which takes "
                    f"{', '.join(sorted(properties)) or 'no arguments'}. Name arguments of the tool.",
                    server=self.name,
                )
            name = self.tool(original)
            if not _TOOL_NAME.match(name):  # left out, and said: the server's other tools still serve
                _log.warning(
                    "%s lists a tool named %r, which as %r is not a name model providers accept (1-64 letters, digits, "
                    "'_' and '-'); podium leaves it out. Rename the tool on the server.",
                    self.label,
                    original[:80],
                    name[:100],
                )
                continue
            metadata = {**(tool.tool_def.metadata or {}), DECLARATION_METADATA: self.declaration(original)}
            tools[name] = replace(tool, toolset=self, tool_def=replace(tool.tool_def, name=name, metadata=metadata))
        return tools

    def _failure(self, exc: BaseException, doing: str) -> ConfigurationError:
        """What went wrong talking to the server, as an error that names the fix."""
        from mcp.shared.exceptions import MCPError
        from pydantic import ValidationError

        leaf = _leaf(exc)
        detail = _summary(leaf)
        code = getattr(getattr(leaf, "error", None), "code", None)
        if isinstance(leaf, ValidationError) or (isinstance(leaf, MCPError) and code in _MALFORMED_CODES):
            message = (
                f"{self.label} answered something that is not valid MCP when podium tried to {doing} ({detail}). "
                "The server is broken or speaks another protocol: fix or upgrade it. Nothing it sent was used."
            )
        else:
            message = (
                f"{self.label} did not answer when podium tried to {doing} ({detail}). Start the server, or correct "
                f"podium.MCPServer({self.name!r}, ...)'s URL or command; if it is only slow, raise timeout_s "
                f"(now {self.timeout_s:g} s)."
            )
        return ConfigurationError(message, server=self.name)

    def _audit_listing(self, error: ConfigurationError) -> None:
        pod = _current.get_or_none()
        if pod is None:
            return
        with pod.engine.begin() as conn:
            detail = {"error": error.message[:2_000], "server": self.where}
            record(conn, f"mcp:{self.name}", "mcp.list", self.name, decision="failed", detail=detail)


def _checked_sinks(
    server: str, read_only: frozenset[str], sinks: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, SinkKind]]:
    both = sorted(read_only & set(sinks))
    if both:
        raise UsageError(
            f"MCP server {server!r} lists {', '.join(map(repr, both))} as read_only and names its sinks; sinks are "
            "checked only on consequential tools. Drop one of the two."
        )
    checked: dict[str, dict[str, SinkKind]] = {}
    for tool, kinds in sinks.items():
        for argument, kind in kinds.items():
            if kind not in SINK_KINDS:
                raise UsageError(
                    f"MCP server {server!r} declares sink {argument!r} of tool {tool!r} of kind {kind!r}; a sink is "
                    "'target' (where the action lands or the data goes) or 'content' (what is written or sent there)."
                )
        checked[tool] = {argument: cast(SinkKind, kind) for argument, kind in kinds.items()}
    return checked


def _leaf(exc: BaseException) -> BaseException:
    """The first exception an exception group holds (the client runs its session in a task group), and the cause a
    client's wrapper hides ("Client failed to connect: …" from the connection error)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _summary(exc: BaseException) -> str:
    """One line on what went wrong: a validation error's first problem and where it is, else the first line."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{exc.title}: {where}: {first['msg']}"[:300]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
