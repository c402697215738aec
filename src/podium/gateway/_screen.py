"""The gateway's guardrails as podium.toml sets them (`[gateway.guardrails]`), applied to one request.

Before a request leaves: its prompt is scanned (`ScanPolicy`); a kind set to "block" or "review" refuses it (audited,
nothing sent; a gateway request cannot wait for a person, so "review" refuses it and says who must widen the
policy), "redact" replaces the spans, and the kinds that leave as they are go to Cedar as `context.data`, so a
policy decides which provider they may reach. As the reply comes back: `OutputGuard` in the configured mode.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from podium.audit import canonical_json
from podium.errors import ActionDenied, ConfigurationError
from podium.gateway._guardrails import ChunkGuard, OutputBlocked, OutputGuard, ScanPolicy, unscanned
from podium.security import require_scanners

if TYPE_CHECKING:
    from podium.models._config import GuardrailSetting

SCAN_IN_THREAD_CHARS = 16_384  # a prompt longer than this is scanned off the event loop (~4 ms per 16 KB)


class PromptRefused(ActionDenied):
    """A prompt carrying what the guardrails do not let out (a secret, say): refused before it is sent."""


class Guardrails:
    def __init__(self, setting: GuardrailSetting) -> None:
        try:
            self.policy = ScanPolicy.model_validate({"actions": setting.prompt})
        except ValidationError as exc:
            kinds = "; ".join(str(e["msg"]) for e in exc.errors())
            raise ConfigurationError(f"gateway.guardrails.prompt: {kinds}.") from None
        require_scanners()
        self.output = setting.output
        self.window_tokens = setting.window_tokens

    async def screen(self, who: str, body: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str], dict[str, str]]:
        """The body to send (redacted where the policy says), the kinds of data leaving with it, and what joins the
        audit entry; a prompt the policy blocks or holds for review raises PromptRefused."""
        messages = body.get("messages") or []
        size = len(canonical_json(messages))
        verdict = (
            await asyncio.to_thread(self.policy.apply, messages)
            if size > SCAN_IN_THREAD_CHARS
            else self.policy.apply(messages)
        )
        detail = {"guardrail_prompt": canonical_json(verdict.audit())} if verdict.found else {}
        if verdict.action in ("block", "review"):
            found = ", ".join(f"{kind} x{count}" for kind, count in verdict.found.items())
            held = [
                kind
                for kind, action in self.policy.actions.items()
                if kind in verdict.found and action == verdict.action
            ]
            raise PromptRefused(
                f"the prompt carries {found}; gateway.guardrails.prompt says {verdict.action} for "
                f"{', '.join(held)}, so it was not sent. Take it out and send the request again"
                + (" (or ask an admin to allow it)." if verdict.action == "review" else "."),
                agent=who,
                resource="prompt",
                guardrail=canonical_json(verdict.audit()),
            )
        if verdict.messages is not messages:
            body = {**body, "messages": verdict.messages}
        leaving = verdict.leaving(self.policy.actions) | self._screen_the_rest(who, body)
        return body, leaving, detail

    def _screen_the_rest(self, who: str, body: dict[str, Any]) -> frozenset[str]:
        """What goes out besides the messages' text (tool descriptions and schemas, a response format, stop
        sequences; and in the messages, names, image and audio parts, tool calls' names, fields podium does not
        know) is scanned too. Nothing is redacted there (a schema must stay as it is): a finding the policy does
        not allow refuses the request; an allowed kind goes to Cedar with the rest."""
        rest = {key: value for key, value in body.items() if key != "messages"}
        rest["messages"] = [unscanned(message) for message in body.get("messages") or []]
        verdict = self.policy.apply([{"role": "user", "content": canonical_json(rest)}])
        held = sorted(kind for kind in verdict.found if self.policy.actions[kind] != "allow")  # type: ignore[index]
        if held:
            raise PromptRefused(
                f"the request's tools, format, stop sequences or messages' other fields (a name, an image, a tool "
                f"call's name) carry {', '.join(held)}, which podium does not redact there; take them out and send "
                "the request again.",
                agent=who,
                resource="prompt",
                guardrail=canonical_json(verdict.audit()),
            )
        return verdict.leaving(self.policy.actions)

    def chunk_guard(self) -> ChunkGuard | None:
        """A guard for one streamed reply (None: no output guardrail, so streaming adds no buffering)."""
        if self.output == "off":
            return None
        return ChunkGuard(lambda: OutputGuard(self.output, window_tokens=self.window_tokens))

    def check_reply(self, text: str) -> OutputBlocked | None:
        """A whole reply, checked before the client sees any of it: why it is withheld, or None if it may go."""
        if self.output == "off":
            return None
        guard = OutputGuard("hold")
        try:
            guard.feed(text)
            guard.close()
        except OutputBlocked as blocked:
            return blocked
        return None


def blocked_detail(blocked: OutputBlocked | None) -> dict[str, str]:
    """What joins the audit entry of a reply the output guardrail stopped (empty if it did not)."""
    if blocked is None:
        return {}
    return {
        "guardrail_output": canonical_json({"action": "block", "found": blocked.kinds, "leaked": blocked.leaked_chars})
    }
