"""What a tool's author declares about it: its fee and team, and how data flows through it.

    @podium.tool(fee_usd=0.002, team="finance")              # a paid lookup, finance's own
    def verify_address(street: str, city: str) -> bool: ...

    @podium.tool(consequential=True, sinks={"to": "target", "body": "content"}, reads="crm/customers")
    def send_email(to: str, subject: str, body: str) -> str: ...

A consequential tool changes the world (sends, pays, writes, deletes, grants, calls out). Its sinks are the
arguments where the action lands ("target": an address, an account, a URL, a record's id) or what it writes or
sends there ("content"); with none named, every argument counts as a target. The information-flow stage checks
where each sink's value came from before the call runs (docs/security.md).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from podium.cost import NANO
from podium.errors import UsageError
from podium.governance import SINK_KINDS, SinkKind, ToolDeclaration

F = TypeVar("F", bound=Callable[..., Any])
_DECLARATION = "__podium_tool__"


def tool(
    *,
    fee_usd: float = 0.0,
    team: str = "",
    consequential: bool = False,
    sinks: Mapping[str, str] | None = None,
    reads: str = "",
    timeout_s: float | None = None,
    retries: int | None = None,
    max_concurrent: int | None = None,
    retry_on: Sequence[type[Exception]] = (),
) -> Callable[[F], F]:
    """Declare what one call of the decorated tool costs (the ledger records it and budgets reserve it), the team it
    belongs to (only that team's agents may call it, whatever they are granted), whether it is consequential and
    which of its arguments are sinks, and the data scope its results come from (their confidentiality).

    And how its calls are contained (unset: podium.toml's [resilience]): the most one attempt may take
    (`timeout_s`), how often a transient failure is tried again (`retries`: a consequential tool's side effect must
    then be keyed by `podium.current_call().key`, as `send_to_outbox` does), what counts as transient besides
    timeouts and connection errors (`retry_on`), and how many of its calls may be under way at once
    (`max_concurrent`). See docs/governance.md, "Cascading failures"."""
    if isinstance(fee_usd, bool) or not isinstance(fee_usd, int | float) or not 0 <= fee_usd < math.inf:
        raise UsageError(f"tool fee_usd={fee_usd!r} is not a fee; give a number of USD >= 0.")
    if sinks is not None and not isinstance(sinks, Mapping):
        raise UsageError(f"tool sinks={sinks!r} is not a mapping; name each sink's kind: sinks={{'to': 'target'}}.")

    def declare(fn: F) -> F:
        declared = ToolDeclaration(
            fee_nano_usd=round(fee_usd * NANO),
            team=team.strip(),
            consequential=consequential,
            sinks=_sinks(fn, consequential, sinks or {}),
            reads=reads.strip(),
            **_containment(fn, timeout_s, retries, max_concurrent, retry_on),
        )
        setattr(fn, _DECLARATION, declared)
        return fn

    return declare


def declaration_of(fn: Callable[..., Any]) -> ToolDeclaration:
    """What `fn`'s author declared with `@podium.tool`; a plain function declares nothing (no fee, shared, and not
    consequential)."""
    declared = getattr(fn, _DECLARATION, None)
    return declared if isinstance(declared, ToolDeclaration) else ToolDeclaration()


def _sinks(fn: Callable[..., Any], consequential: bool, sinks: Mapping[str, str]) -> tuple[tuple[str, SinkKind], ...]:
    """The sinks, checked against the tool's signature: a misspelt argument or kind is an error at import, not a
    sink silently left unchecked."""
    name = getattr(fn, "__name__", repr(fn))
    if sinks and not consequential:
        raise UsageError(
            f"tool {name!r} declares sinks but not consequential=True: sinks are checked only on consequential "
            "tools. Add consequential=True, or drop sinks=."
        )
    try:
        parameters = set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # a callable without a readable signature: its schema names the arguments
        parameters = set(sinks)
    checked: list[tuple[str, SinkKind]] = []
    for argument, kind in sinks.items():
        if argument not in parameters:
            raise UsageError(
                f"tool {name!r} declares sink {argument!r}, which is not one of its arguments "
                f"({', '.join(sorted(parameters)) or 'none'}): name an argument of the function."
            )
        if kind not in SINK_KINDS:
            raise UsageError(
                f"tool {name!r} declares sink {argument!r} of kind {kind!r}; a sink is 'target' (where the action "
                "lands or the data goes) or 'content' (what is written or sent there)."
            )
        checked.append((argument, kind))
    return tuple(sorted(checked))


def _containment(
    fn: Callable[..., Any],
    timeout_s: float | None,
    retries: int | None,
    max_concurrent: int | None,
    retry_on: Sequence[type[Exception]],
) -> dict[str, Any]:
    """The declaration's containment fields, checked: a mistake is an error at import, naming the fix."""
    name = getattr(fn, "__name__", repr(fn))
    checks = (
        ("timeout_s", timeout_s, 0.001, 86_400.0, "the most one attempt may take, in seconds (e.g. timeout_s=5)"),
        ("retries", retries, 0, 10, "attempts after the first, on a transient failure (e.g. retries=2)"),
        ("max_concurrent", max_concurrent, 1, 100_000, "its calls under way at once (e.g. max_concurrent=8)"),
    )
    for setting, value, low, high, meaning in checks:
        if value is None:
            continue
        number = (int, float) if setting == "timeout_s" else int
        if isinstance(value, bool) or not isinstance(value, number) or not low <= value <= high:
            raise UsageError(
                f"tool {name!r} declares {setting}={value!r}; it is {meaning}, from {low:g} to {high:g}, "
                "or unset for podium.toml's [resilience] default."
            )
    for kind in retry_on:
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            raise UsageError(
                f"tool {name!r} declares retry_on={tuple(retry_on)!r}; it lists exception classes "
                "(e.g. retry_on=(httpx.TransportError,)) that mean a try may succeed if made again."
            )
    return {
        "timeout_s": None if timeout_s is None else float(timeout_s),
        "retries": retries,
        "max_concurrent": max_concurrent,
        "retry_on": tuple(retry_on),
        "blocking": not inspect.iscoroutinefunction(fn),
    }
