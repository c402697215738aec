"""The gateway's guardrails: what a prompt may carry out to a provider, and what a reply may carry back.

Outbound, `ScanPolicy.apply` scans a chat request's messages (`podium.security.Scanner`) and decides per kind
of finding: block the request, redact the spans, hold it for a person's review, or allow it. The verdict records
kinds and counts, never the text.

Inbound, `OutputGuard` sits on the stream of text a model produces, in one of three modes:

- "off": each delta passes at once; nothing is buffered or checked.
- "hold": nothing is released until the whole reply has been checked, so a blocked reply has released zero bytes.
- "window": text is released `window_tokens` behind the model. A token is counted as `CHARS_PER_TOKEN` characters
  (OpenAI's rule of thumb for English; no tokenizer, so every provider's stream is treated alike; code and digits
  run fewer characters a token, so there the lag in real tokens is longer). Before anything is released, the
  detector runs over the held text and the last `lookback_chars` already released, so a forbidden span split
  across chunks, or across the line between released and held text, is seen whole. A span the detector
  recognises within its first R characters therefore leaks max(0, R - lag) characters before the block: nothing
  when R fits in the window (an AWS key is recognised at 20 characters, a card number at 13-19, a GitHub token
  at 40, a private key at its header), at most the window when R is up to twice the window.

`ChunkGuard` applies one guard per choice to OpenAI `chat.completion.chunk` bodies. A block raises `OutputBlocked`;
the gateway turns it into its stream's error event and the audit entry.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from podium.errors import GovernanceError, UsageError
from podium.security import (
    KINDS,
    PII_KINDS,
    SECRET_KINDS,
    Finding,
    Kind,
    Scanner,
    count_kinds,
    redact,
    scan_output,
)

Action = Literal["allow", "redact", "review", "block"]
GuardMode = Literal["off", "hold", "window"]
Detector = Callable[[str], list[Finding]]

CHARS_PER_TOKEN = 4
_SEVERITY: dict[Action, int] = {"allow": 0, "redact": 1, "review": 2, "block": 3}


def _default_actions() -> dict[Kind, Action]:
    return {kind: ("block" if kind in SECRET_KINDS else "redact") for kind in KINDS}


class ScanPolicy(BaseModel):
    """What to do with each kind of finding in a prompt. Kinds not named keep their default: secrets ("private_key",
    "aws_key", "api_key", "jwt", "password") block, personal data ("credit_card", "iban", "email", "ip", "phone")
    is redacted. An "allow"ed kind is still looked for: it leaves with the request, and Cedar sees it
    (`context.data`), so a policy can decide which provider it may go to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actions: dict[Kind, Action] = Field(default_factory=_default_actions)
    phone_regions: tuple[str, ...] = ("US", "GB")

    @field_validator("actions", mode="before")
    @classmethod
    def _keep_defaults(cls, value: object) -> object:
        return {**_default_actions(), **value} if isinstance(value, Mapping) else value

    def scanner(self) -> Scanner:
        return Scanner(kinds=frozenset(self.actions), phone_regions=self.phone_regions)

    def apply(self, messages: Sequence[Mapping[str, Any]]) -> PromptVerdict:
        """Scan OpenAI chat messages (string content, text parts, tool-call arguments) and decide: the strongest
        action any finding calls for, and the messages with the redacted kinds' spans replaced (the same list
        when nothing was redacted). The messages are not changed in place."""
        scanner = self.scanner()
        found: Counter[Kind] = Counter()
        redacted_any = False

        def visit(text: str) -> str:
            nonlocal redacted_any
            findings = scanner.scan(text)
            if not findings:
                return text
            found.update(finding.kind for finding in findings)
            to_redact = [f for f in findings if self.actions[f.kind] == "redact"]
            if not to_redact:
                return text
            redacted_any = True
            return redact(text, to_redact)

        checked = [_visit_message(message, visit) for message in messages]
        action: Action = max((self.actions[kind] for kind in found), key=_SEVERITY.__getitem__, default="allow")
        return PromptVerdict(
            action=action, found=dict(sorted(found.items())), messages=checked if redacted_any else list(messages)
        )


@dataclass(frozen=True)
class PromptVerdict:
    """What the scan of a prompt decided: `action` ("allow" when nothing was found), the kinds found with their
    counts, and the messages to send (redacted where the policy redacts)."""

    action: Action
    found: dict[str, int]
    messages: list[Any]

    def audit(self) -> dict[str, Any]:
        """The audit entry's form: the action and the counts, nothing of the text."""
        return {"action": self.action, "found": self.found}

    def leaving(self, actions: Mapping[Kind, Action]) -> frozenset[str]:
        """The kinds found that leave with the request as they are (allowed, not redacted)."""
        return frozenset(kind for kind, action in actions.items() if kind in self.found and action == "allow")


def _visit_message(message: Mapping[str, Any], visit: Callable[[str], str]) -> Any:
    if not isinstance(message, Mapping):
        return message
    changed: dict[str, Any] = {}
    content = message.get("content")
    if isinstance(content, str):
        changed["content"] = visit(content)
    elif isinstance(content, list):
        changed["content"] = [
            {**part, "text": visit(part["text"])}
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        changed["tool_calls"] = [_visit_tool_call(call, visit) for call in tool_calls]
    changed = {key: value for key, value in changed.items() if value != message.get(key)}
    return {**message, **changed} if changed else message


def unscanned(message: Any) -> Any:
    """What of `message` `ScanPolicy.apply` does not read (names, refusals, image and audio parts, fields podium does
    not know, a tool call's name and id): the gateway scans it as a whole, without redacting, so that nothing in a
    message leaves unread."""
    if not isinstance(message, Mapping):
        return message
    rest = {key: value for key, value in message.items() if key not in ("content", "tool_calls")}
    content = message.get("content")
    if isinstance(content, list):
        rest["content"] = [
            {key: value for key, value in part.items() if key != "text"}
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    elif not isinstance(content, str):
        rest["content"] = content
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        rest["tool_calls"] = [_without_arguments(call) for call in tool_calls]
    elif tool_calls is not None:
        rest["tool_calls"] = tool_calls
    return rest


def _without_arguments(call: Any) -> Any:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {key: value for key, value in function.items() if key != "arguments"}}


def _visit_tool_call(call: Any, visit: Callable[[str], str]) -> Any:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": _visit_json_strings(function["arguments"], visit)}}


def _visit_json_strings(arguments: str, visit: Callable[[str], str]) -> str:
    """Tool-call arguments are JSON: scan each string in them, so a redaction never breaks the JSON. Arguments
    that are not JSON are scanned as text."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return visit(arguments)
    except RecursionError:
        raise UsageError("tool-call arguments nest too deeply to check; flatten them.") from None

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return visit(node)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        return node

    walked = walk(value)
    return arguments if walked == value else json.dumps(walked, ensure_ascii=False)


# --- Output guardrails ------------------------------------------------------------------------------------------


class OutputBlocked(GovernanceError):
    """A model's reply carried what the output guard forbids; the stream stops here. `kinds` counts the findings
    by kind; `leaked_chars` is how many characters of them had already been released (0 in "hold" mode)."""

    def __init__(self, message: str = "", *, kinds: dict[str, int], leaked_chars: int = 0) -> None:
        message = message or (
            f"the reply was stopped: it carried {', '.join(sorted(kinds))}, which the gateway's output guard forbids"
        )
        super().__init__(message, kinds=kinds, leaked_chars=leaked_chars)
        self.kinds = kinds
        self.leaked_chars = leaked_chars


_HOLD_CHECK_CHARS = 1024  # "hold" checks the reply so far every this many characters, to stop a bad reply early


class OutputGuard:
    """Checks a streamed reply with `detector` (by default `scan_output`: credentials and card numbers) before the
    client sees it. Call `feed(delta)` per chunk of text and send what it returns; call `close()` at the end and
    send what it returns. Either raises `OutputBlocked` when the detector finds something; after that, or after
    `close()`, the guard takes no more text.

    Each call is synchronous and costs microseconds per chunk (the detector runs over at most the window and
    `lookback_chars` at a time, and in "window" mode only once per `window_tokens / 2` of text), so it is called
    inline in an async stream without blocking the event loop."""

    def __init__(
        self,
        mode: GuardMode = "hold",
        *,
        window_tokens: int = 16,
        detector: Detector = scan_output,
        lookback_chars: int = 512,
    ) -> None:
        if mode not in ("off", "hold", "window"):
            raise UsageError(f"guard mode {mode!r} is not one of 'off', 'hold', 'window'.")
        if mode == "window" and not 1 <= window_tokens <= 100_000:
            raise UsageError(f"window_tokens={window_tokens!r}: give a whole number from 1 to 100,000.")
        self.mode = mode
        self.window_chars = window_tokens * CHARS_PER_TOKEN
        self._detector = detector
        self._lookback = lookback_chars
        self._released = 0  # characters released so far
        self._context = ""  # the last `lookback_chars` released, for spans that straddle the release line
        self._held: list[str] = []
        self._held_chars = 0
        self._checked = 0  # "hold": characters checked so far by the early checks
        self._done = False

    @property
    def released_chars(self) -> int:
        return self._released

    @property
    def finished(self) -> bool:
        """Closed or blocked: it takes no more text."""
        return self._done

    def feed(self, delta: str) -> str:
        """Take the next piece of the reply; return what may be sent to the client now."""
        self._require_open()
        if self.mode == "off":
            self._released += len(delta)
            return delta
        self._held.append(delta)
        self._held_chars += len(delta)
        if self.mode == "hold":
            if self._held_chars - self._checked >= _HOLD_CHECK_CHARS:
                self._check_hold_tail()
            return ""
        # "window": release in batches of half a window, so the detector runs once per batch, not per chunk.
        if self._held_chars < self.window_chars + max(1, self.window_chars // 2):
            return ""
        held = "".join(self._held)
        self._check(self._context + held, offset=self._released - len(self._context))
        cut = len(held) - self.window_chars
        self._held, self._held_chars = [held[cut:]], len(held) - cut
        return self._release(held[:cut])

    def close(self) -> str:
        """The reply is complete: check what is held and return it, or raise OutputBlocked."""
        self._require_open()
        self._done = True
        if self.mode == "off":
            return ""
        held = "".join(self._held)
        self._held, self._held_chars = [], 0
        if self.mode == "hold":
            self._check(held, offset=0)  # the whole reply, in one piece: nothing is released unchecked
        else:
            self._check(self._context + held, offset=self._released - len(self._context))
        return self._release(held)

    def _release(self, text: str) -> str:
        self._released += len(text)
        self._context = (self._context + text)[-self._lookback :] if self._lookback else ""
        return text

    def _check_hold_tail(self) -> None:
        held = "".join(self._held)
        self._held = [held]
        start = max(0, self._checked - self._lookback)
        self._check(held[start:], offset=start)
        self._checked = len(held)

    def _check(self, text: str, *, offset: int) -> None:
        """Run the detector over `text`, which starts at `offset` in the whole reply; block on any finding."""
        findings = self._detector(text)
        if not findings:
            return
        self._done = True
        self._held, self._held_chars = [], 0
        leaked = sum(max(0, min(f.end + offset, self._released) - (f.start + offset)) for f in findings)
        raise OutputBlocked(kinds=count_kinds(findings), leaked_chars=leaked)

    def _require_open(self) -> None:
        if self._done:
            raise UsageError("this output guard has finished (closed or blocked): make a new one for a new reply.")


class ChunkGuard:
    """One `OutputGuard` per choice of a streamed OpenAI chat completion. `filter(chunk)` returns the chunk to send
    (each choice's text replaced by what its guard releases; the text still held goes out with the choice's
    `finish_reason`), or None when there is nothing to send yet. `finish()` returns, for a stream that ended
    without a choice's `finish_reason`, one last chunk with what its guard still held, checked."""

    def __init__(self, make_guard: Callable[[], OutputGuard]) -> None:
        self._make_guard = make_guard
        self._guards: dict[int, OutputGuard] = {}
        self._extras: dict[int, list[dict[str, Any]]] = {}  # what each choice wrote besides its text, held
        self._last: Mapping[str, Any] | None = None

    def filter(self, chunk: Mapping[str, Any]) -> dict[str, Any] | None:
        self._last = chunk
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return dict(chunk)
        kept = [choice for choice in (self._filter_choice(c) for c in choices) if choice is not None]
        if not kept and choices and "usage" not in chunk:
            return None
        return {**chunk, "choices": kept}

    def finish(self) -> dict[str, Any] | None:
        rest = [(index, guard.close()) for index, guard in self._guards.items() if not guard.finished]
        rest = [(index, text) for index, text in rest if text]
        if not rest or self._last is None:
            return None
        base = {key: self._last[key] for key in ("id", "object", "created", "model") if key in self._last}
        choices = [{"index": index, "delta": {"content": text}, "finish_reason": None} for index, text in rest]
        return {**base, "choices": choices}

    def _filter_choice(self, choice: Any) -> Any:
        if not isinstance(choice, Mapping):
            return choice
        index = choice.get("index", 0)
        guard = self._guards.get(index) if isinstance(index, int) else None
        if guard is None and isinstance(index, int):
            guard = self._guards[index] = self._make_guard()
        if guard is None:
            return choice
        delta = choice.get("delta")
        delta = delta if isinstance(delta, Mapping) else {}
        content = delta.get("content")
        released = guard.feed(content) if isinstance(content, str) and content else ""
        # Everything else a model writes (tool calls' arguments, a refusal, reasoning) is held whole until the
        # choice finishes, then checked in one piece: none of it reaches the client unchecked.
        extra = {key: value for key, value in delta.items() if key not in ("content", "role")}
        if extra:
            self._extras.setdefault(index, []).append(extra)
        finished = choice.get("finish_reason") is not None
        new_delta = {"role": delta["role"]} if "role" in delta else {}
        if finished:
            released += guard.close()
            new_delta |= _checked(self._extras.pop(index, []))
        if released:
            new_delta["content"] = released
        if not new_delta and not finished:
            return None
        # Log probabilities spell out the tokens: they would show what the guard holds back, so they are dropped.
        return {key: value for key, value in choice.items() if key != "logprobs"} | {"delta": new_delta}


def _checked(extras: list[dict[str, Any]]) -> dict[str, Any]:
    """A choice's held non-text deltas, merged (each tool call whole: its name once, its arguments joined) and
    checked whole; OutputBlocked if anything in them is forbidden."""
    merged: dict[str, Any] = {}
    calls: dict[int, dict[str, Any]] = {}
    for extra in extras:
        for key, value in extra.items():
            if key == "tool_calls" and isinstance(value, list):
                for part in value:
                    if isinstance(part, Mapping):
                        _merge_call(calls.setdefault(int(part.get("index") or 0), {}), part)
            elif isinstance(value, str):
                merged[key] = merged.get(key, "") + value
            else:
                merged[key] = value
    if calls:
        merged["tool_calls"] = [calls[index] for index in sorted(calls)]
    if merged:
        guard = OutputGuard("hold")
        guard.feed(json.dumps(merged))
        guard.close()  # raises OutputBlocked on a finding
    return merged


def _merge_call(whole: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        if key == "function" and isinstance(value, Mapping):
            function = whole.setdefault("function", {})
            for name, piece in value.items():
                joined = name == "arguments" and isinstance(piece, str)
                function[name] = function.get(name, "") + piece if joined else piece
        elif key not in whole:
            whole[key] = value


__all__ = [
    "CHARS_PER_TOKEN",
    "PII_KINDS",
    "SECRET_KINDS",
    "Action",
    "ChunkGuard",
    "Detector",
    "GuardMode",
    "OutputBlocked",
    "OutputGuard",
    "PromptVerdict",
    "ScanPolicy",
]
