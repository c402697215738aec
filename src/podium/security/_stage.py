"""The information-flow stage: labels what agents read, and tells Cedar where a consequential call's data came from.

It runs before authorisation and refuses nothing itself. On a consequential tool call it traces each sink argument
to what the front door's agents read (`FlowLog.trace`) and leaves the result on the call's context, which Cedar sees
as `context.untrusted_targets`, `context.untrusted_content` and `context.confidential_out`; a call with no sink value
to trace ("mark all read"), made after untrusted data was read, as `context.decided_after_untrusted`. podium's
baseline policy makes such a call wait for a person (an `@exception`), whose approval is the audited
declassification. When a call has run, it labels what the call returned (or a tool's error message, which a model
reads as a retry prompt): a tool's result is untrusted, with the data scope the tool `reads`; a model's output is as
untrusted as the least trusted thing in reach of its context.

Labels are kept per front door: a workflow run's in the database (they survive a restart and every step), a
request's in memory (a retried request reads again).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from podium.governance import CallContext, CallSite, DoorMemory, Flow, Outcome, Stage, current_door_key
from podium.security._flows import FlowLog, Origin, texts_of, traceable
from podium.store import insert_if_absent, reader, tables

MAX_DOORS = 4_096  # front doors whose labels one process keeps in memory (a run's are read back from the database)
MAX_FORGOTTEN = 200_000  # requests whose labels were dropped, remembered as "read untrusted data, of these scopes"
_records = tables.flow_records


class InformationFlow(Stage):
    """Traces consequential calls to their sources; labels what calls return (see the module's docstring)."""

    name: ClassVar[str] = "information_flow"

    def __init__(
        self, engine: sa.Engine, recipients: Mapping[str, Sequence[str]] | None = None, *, doors: int = MAX_DOORS
    ) -> None:
        """`recipients`: for a data scope, the targets its data may go to without a person (fnmatch patterns such
        as "*@example.com", podium.toml's [security.recipients]); data of a scope not listed goes nowhere outside
        without one. `doors`: how many front doors' labels this process keeps in memory."""
        self._engine = engine
        self._reader = reader(engine)
        self._logs: DoorMemory[FlowLog] = DoorMemory(doors, forget=self._forget)
        self._forgotten: OrderedDict[str, frozenset[str]] = OrderedDict()  # a request's dropped labels, in short
        self._forgetting = threading.Lock()
        self.recipients = {scope: tuple(patterns) for scope, patterns in (recipients or {}).items()}

    def check(self, ctx: CallContext) -> None:
        call = ctx.call
        if call.kind != "tool" or not call.declaration.consequential:
            return
        log = self.log(ctx.site)
        arguments = call.arguments or {}
        sinks = call.declaration.sink_kinds(arguments)
        given = _given(arguments, call.schema or {})
        if not any(traceable(text) for name in sinks for text in texts_of(given.get(name))):  # only the decision
            if log.tainted:
                ctx.flow = Flow(decided_after_untrusted=True)
                ctx.detail["flow_untrusted"] = "(the decision: no value to trace)"
            return
        traced = {name: _trace(log, given.get(name)) for name in sinks}  # a default is the author's own
        untrusted = {name for name, origins in traced.items() if any(not o.trusted for o in origins)}
        targets = [text for name, kind in sinks.items() if kind == "target" for text in texts_of(arguments.get(name))]
        # Confidential data leaves as content; a tool that names no sinks has every argument a target, and what it
        # is given leaves with it all the same (a declared target, a customer's own address, is where it lands).
        carried = [n for n, kind in sinks.items() if kind == "content" or not call.declaration.sinks]
        scopes = frozenset().union(*(origin.scopes for name in carried for origin in traced[name]))
        ctx.flow = Flow(
            untrusted_targets=frozenset(n for n in untrusted if sinks[n] == "target"),
            untrusted_content=frozenset(n for n in untrusted if sinks[n] == "content"),
            confidential_out=frozenset(s for s in scopes if not self._inside(s, targets)),
        )
        for label, names in (("untrusted", untrusted), ("confidential_out", ctx.flow.confidential_out)):
            if names:
                ctx.detail[f"flow_{label}"] = ", ".join(sorted(names))

    def finish(self, ctx: CallContext, outcome: Outcome | None) -> None:
        ran = outcome == "allowed" or (outcome == "failed" and ctx.call.kind == "tool")  # a tool's error text is read
        if not ran or ctx.call.kind not in ("tool", "model"):
            return
        call = ctx.call
        text = "\n".join(texts_of(ctx.output))  # first: the log is taken just before it is added to
        log = self.log(ctx.site)
        if call.kind == "tool":
            origin = Origin(False, frozenset({call.declaration.reads} - {""}), f"tool:{call.resource}")
        elif log.tainted:  # a model whose context may hold untrusted data: its output is as untrusted
            origin = Origin(False, log.scopes(), f"model:{call.resource}")
        else:
            return
        log.add(text, origin)
        if ctx.site.door == "workflow":
            self._store(ctx.site, origin, text)

    def trust(self, text: str, door_key: str | None = None) -> None:
        """Vouch for `text` in the front door in force (or `door_key`): the operator's or user's own input, whose
        values may reach any sink. A workflow run's recorded labels are kept with it."""
        key = door_key or current_door_key()
        self._logs.get(key, lambda: self._recalled(key) if key in self._forgotten else self._load(key)).add(
            text, Origin(True, source="input")
        )  # a run's labels, if restarted; a request's note, if they were dropped

    def log(self, site: CallSite) -> FlowLog:
        """The labels of `site`'s front door (a workflow run's are read from the database once per process)."""
        key = site.door_key
        return self._logs.get(key, lambda: self._load(key) if site.door == "workflow" else self._recalled(key))

    def _forget(self, door_key: str, log: FlowLog) -> None:
        """A request's labels, dropped to make room, leave a note: it read untrusted data of these scopes (a flood
        of other requests must not wipe a long one clean). A run's are read back from the database."""
        if log.tainted and log.in_memory_only:
            with self._forgetting:
                self._forgotten[door_key] = log.scopes()
                while len(self._forgotten) > MAX_FORGOTTEN:
                    self._forgotten.popitem(last=False)

    def _recalled(self, door_key: str) -> FlowLog:
        """A request's labels: new, or, if they were dropped, everything counted untrusted (of the scopes it read)."""
        with self._forgetting:
            scopes = self._forgotten.get(door_key)
        log = FlowLog(in_memory_only=True)
        if scopes is not None:
            log.add("(labels dropped to make room)", Origin(False, scopes, "forgotten"))
            log.saturated = True
        return log

    def _load(self, door_key: str) -> FlowLog:
        log = FlowLog()
        query = sa.select(_records).where(_records.c.door_key == door_key).order_by(_records.c.at)
        with self._reader.connect() as conn:
            for row in conn.execute(query):
                log.add(row.content, Origin(bool(row.trusted), frozenset(json.loads(row.scopes)), row.source))
        return log

    def _store(self, site: CallSite, origin: Origin, text: str) -> None:
        with self._engine.begin() as conn:
            insert_if_absent(
                conn,
                _records,
                call_key=site.key,
                door_key=site.door_key,
                trusted=int(origin.trusted),
                scopes=json.dumps(sorted(origin.scopes)),
                source=origin.source,
                content=text,
                at=time.time(),
            )

    def _inside(self, scope: str, targets: list[str]) -> bool:
        """Whether every target is one the scope's data may go to (a call with no target keeps the data where it
        is, e.g. a file in the user's own drive)."""
        from fnmatch import fnmatchcase

        allowed = self.recipients.get(scope, ())
        return all(any(fnmatchcase(t.casefold(), p.casefold()) for p in allowed) for t in targets)


def _given(arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments the caller gave: a value equal to its parameter's default (which pydantic-ai fills in for a
    model that left it out) is the tool author's, and says nothing of where the decision came from."""
    properties = schema.get("properties") or {}
    return {
        name: value
        for name, value in arguments.items()
        if not (isinstance(spec := properties.get(name), Mapping) and "default" in spec and spec["default"] == value)
    }


def _trace(log: FlowLog, value: Any) -> tuple[Origin, ...]:
    return tuple(origin for text in texts_of(value) for origin in log.trace(text))


def trust(text: str) -> None:
    """Vouch for `text` (the user's own request, the operator's configuration) in the front door in force: the
    values in it may reach any sink without a person. Everything a tool returns is untrusted without this."""
    from podium import _current

    for stage in _current.get().governor.stages:
        if isinstance(stage, InformationFlow):
            stage.trust(text)
            return
