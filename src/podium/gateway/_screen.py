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
        rest = (
            await asyncio.to_thread(self._screen_the_rest, who, body)
            if len(canonical_json(body)) > SCAN_IN_THREAD_CHARS
            else self._screen_the_rest(who, body)
        )
        leaving = verdict.leaving(self.policy.actions) | rest
        return body, leaving, detail

    def _screen_the_rest(self, who: str, body: dict[str, Any]) -> frozenset[str]:
        """What goes out besides the messages' text is scanned too, and nothing is redacted there (a schema must
        stay as it is). In the tools' descriptions and schemas, a response format and stop sequences, a finding the
        policy does not allow refuses the request. In the messages' other fields (a name, a refusal, an image or
        audio part, a tool call's name, a field podium does not know), what the policy blocks refuses it too; what
        it would redact goes as it is (an image's address may hold a number), as it always has."""
        rest = {key: value for key, value in body.items() if key != "messages"}
        parts = [unscanned(message) for message in body.get("messages") or []]
        leaving: set[str] = set()
        for what, value, refusing in (
            ("the request's tools, format or stop sequences", rest, ("redact", "review", "block")),
            ("the messages' other fields (a name, an image, a tool call's name)", parts, ("review", "block")),
        ):
            verdict = self.policy.apply([{"role": "user", "content": canonical_json(value)}])
            held = sorted(kind for kind in verdict.found if self.policy.actions[kind] in refusing)  # type: ignore[index]
            if held:
                raise PromptRefused(
                    f"{what} carry {', '.join(held)}, which podium does not redact there; take them out and send "
                    "the request again.",
                    agent=who,
                    resource="prompt",
                    guardrail=canonical_json(verdict.audit()),
                )
            leaving |= verdict.leaving(self.policy.actions)
        return frozenset(leaving)

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
