"""Where a governed call comes from: its front door, and the call site that makes it idempotent and attributable.

A front door is whatever hands the governor work: a workflow step, an HTTP request (the gateway), an MCP tool
session, or plain code. It installs itself for the code it runs (`enter_door`) and names each governed call made
there (`next_site`): the call key (the same each time the work is retried, so the ledger, the audit log, budgets
and idempotent tools recognise what they have already recorded) and who answers for it (run, workflow, API key,
person). The governor asks the door in force; it needs no workflow to govern a call.

    door          call key                     idempotent across
    workflow      <run>:<step>:<n>             a step re-run after a crash     (podium.workflows installs it)
    request       request:<asker>:<id>:<n>     a client retrying one request   (`request_scope`; the asker is the
                                               API key, else the person, else "anonymous")
    (none)        adhoc:<uuid>                 nothing: a one-off call from plain code
"""

from __future__ import annotations

import dataclasses
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar

from podium.errors import UsageError

if TYPE_CHECKING:
    from podium.governance._call import Call

T = TypeVar("T")
ADHOC = "adhoc"  # the door key of plain code outside any front door
DoorKind = Literal["workflow", "request", "adhoc"]  # an MCP tool session is a request door (issue 16 opens one)


@dataclass(frozen=True)
class CallSite:
    """The identity of one governed call and who answers for it (budgets and costs are per workflow, key, team)."""

    key: str
    run_id: str | None
    step_id: int | None
    workflow: str | None = None
    door: DoorKind = "adhoc"
    api_key: str | None = None  # the id of the API key that made the request, if a key did: budgets `key:<id>`
    person: str | None = None  # the person a request acts for, if any
    can_wait: bool = False  # whether the call may stop for a person (only a step's first call can: it re-runs)
    step: str | None = None  # the name of the step it is made in, if a step makes it
    call: Call | None = None  # what is being executed, once the governor admitted it
    execution: str | None = None  # this execution's own id, where the same call can run twice at once
    door_key: str = ADHOC  # the front door's own key (the run, or the request): what its calls share
    depth: int = 0  # governed calls it is made inside: a call from a tool's (or a sub-agent's) execution is 1 …

    @property
    def hold_key(self) -> str:
        """What the call's budget reservation is held under: its call key where a re-run of the call must find and
        reuse it (a step re-run after a crash); a key of this execution's own where the same call can run twice at
        once (a client sending a request again before the first has ended): sharing one hold, the two would spend
        past the budget."""
        return f"{self.key}:{self.execution}" if self.execution else self.key

    def budget_scopes(self, call: Call, teams: Sequence[str]) -> tuple[str, ...]:
        """Every budget scope the call counts against: who makes it (`agent:` or `person:`), the workflow, their
        teams, the API key, and the model."""
        scopes = [call.actor]
        scopes += [f"workflow:{self.workflow}"] if self.workflow else []
        scopes += [f"team:{team}" for team in teams]
        scopes += [f"key:{self.api_key}"] if self.api_key else []
        scopes += [f"model:{call.resource}"] if call.kind == "model" else []
        return tuple(scopes)


class FrontDoor(Protocol):
    """Names the governed calls made through it."""

    @property
    def key(self) -> str:
        """What the calls made through it share: the run's id, the request's key (what the data an agent read
        there is labelled under: `podium.security`)."""
        ...

    def next_site(self, what: str) -> CallSite:
        """The site of the next governed call (`what` describes it, for error messages)."""
        ...


class _NoDoor:
    """Plain code outside any front door: each call is its own, recorded once, retried as a new call."""

    key = ADHOC

    def next_site(self, what: str) -> CallSite:
        return CallSite(f"adhoc:{uuid.uuid4()}", None, None)


@dataclass
class RequestDoor:
    """One request from outside (an HTTP request, an MCP tool session's call): every governed call it makes is
    keyed by the request id, so a client that retries the request is recorded and charged once."""

    request_id: str
    api_key: str | None = None
    person: str | None = None
    calls: int = field(default=0)

    @property
    def key(self) -> str:
        # Keyed by who asks as well as by their id: two clients' request "1" are two requests.
        asker = f"key.{self.api_key}" if self.api_key else f"person.{self.person}" if self.person else "anonymous"
        return f"request:{asker}:{self.request_id}"

    def next_site(self, what: str) -> CallSite:
        self.calls += 1
        return CallSite(
            f"{self.key}:{self.calls}",
            None,
            None,
            door="request",
            api_key=self.api_key,
            person=self.person,
            execution=f"x.{uuid.uuid4().hex[:12]}",  # the client may send the same request again meanwhile
            door_key=self.key,
        )


class DoorMemory(Generic[T]):
    """What a stage keeps per front door (a run, a request) in this process, for the `size` most recently used: the
    first call of a door this process has not met loads its state (a run's, from the database) outside the lock; if
    two threads load it at once, the first to store it wins and both use that one."""

    def __init__(self, size: int = 4_096, forget: Callable[[str, T], None] | None = None) -> None:
        """`forget`: told of each door's state as it is dropped, to keep what must outlive it."""
        self._kept: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size
        self._forget = forget

    def get(self, key: str, load: Callable[[], T]) -> T:
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept
        loaded = load()
        with self._lock:
            kept = self._kept.setdefault(key, loaded)
            self._kept.move_to_end(key)
            while len(self._kept) > self._size:
                dropped = self._kept.popitem(last=False)
                if self._forget is not None:
                    self._forget(*dropped)
            return kept


_NO_DOOR = _NoDoor()
_door: ContextVar[FrontDoor | None] = ContextVar("podium_front_door", default=None)
_call: ContextVar[CallSite | None] = ContextVar("podium_call_site", default=None)


@contextmanager
def enter_door(door: FrontDoor) -> Iterator[FrontDoor]:
    """Make `door` name the governed calls of the code inside."""
    with _set(_door, door):
        yield door


def current_door_key() -> str:
    """The key of the front door in force (`FrontDoor.key`): "adhoc" outside any."""
    return (_door.get() or _NO_DOOR).key


def next_call_site(what: str) -> CallSite:
    """The site of the next governed call, from the front door in force, one level below the call whose execution
    makes it, if any (an agent run by another agent's tool: its calls are nested in that tool's)."""
    site = (_door.get() or _NO_DOOR).next_site(what)
    parent = _call.get()
    return dataclasses.replace(site, depth=parent.depth + 1) if parent is not None else site


MAX_REQUEST_ID = 200
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_REQUEST_ID}}}")


def valid_request_id(request_id: str) -> bool:
    """Whether a client's id for its request can key it (1-200 letters, digits, '.', '_' or '-')."""
    return _REQUEST_ID.fullmatch(request_id) is not None


@contextmanager
def request_scope(request_id: str, *, api_key: str | None = None, person: str | None = None) -> Iterator[RequestDoor]:
    """Govern the calls of the code inside as one request from outside a workflow, idempotent under `request_id`.

    `api_key` (the id of the key that authenticated the request) puts its `key:<id>` budget on every call, and
    attributes the ledger rows to it; `person` is who the request acts for.
    """
    if not _REQUEST_ID.fullmatch(request_id):
        raise UsageError(
            f"request id {request_id[:40]!r} is not 1-{MAX_REQUEST_ID} letters, digits, '.', '_' or '-': use the "
            "client's idempotency key or a UUID."
        )
    if _door.get() is not None:
        raise UsageError(
            f"request_scope({request_id!r}) was opened inside another front door (a workflow step, or a request): "
            "its calls are keyed there already. Open a request scope only where a request from outside arrives."
        )
    with enter_door(RequestDoor(request_id, api_key, person)) as door:
        assert isinstance(door, RequestDoor)
        yield door


@contextmanager
def side_scope(name: str) -> Iterator[FrontDoor]:
    """Inside a request, a door for work podium does beside it (the shadow sample's call): the same asker and
    person, its calls keyed `<request key>:<name>:<n>`, apart from the request's own numbering (which a retry that
    falls back to another model continues)."""
    door = _door.get()
    if not isinstance(door, RequestDoor):
        raise UsageError(f"side_scope({name!r}) is for work beside a request: open it inside request_scope.")
    with enter_door(RequestDoor(f"{door.request_id}:{name}", door.api_key, door.person)) as side:
        yield side


@contextmanager
def call_scope(site: CallSite) -> Iterator[CallSite]:
    """Mark the code inside as executing the governed call `site` (set by the governor)."""
    with _set(_call, site):
        yield site


@contextmanager
def _set(var: ContextVar[T], value: T) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def current_call_or_none() -> CallSite | None:
    return _call.get()


def current_call() -> CallSite:
    """The governed call being executed: a tool uses its `key` to make its side effect idempotent."""
    site = _call.get()
    if site is None:
        raise UsageError(
            "current_call() was used outside a governed tool call. Tools reach it only when an agent calls "
            "them: agent.call_tool(...) or from a model's tool call."
        )
    return site
