"""Exception rules: when an agent's action waits for a person, declared per workflow in one place.

    SUPPORT = podium.ExceptionRules(
        confidence_below=0.5,
        compliance_flags={"intent:lost_or_stolen_card"},
        data_classes={"card_number"},
        escalation=podium.Escalation(("team:support", "lead@example.com", podium.OWNER), deadline=timedelta(hours=4)),
    )

    @podium.workflow(name="support_triage", exceptions=SUPPORT)
    def triage(ticket): ...
        podium.assess(judgement=podium.Judgement(INTENT_MODEL, ticket.text, p.label, p.confidence))

The governor checks the rules at every tool call of the workflow's agents, against what the run has assessed so
far and the call's arguments. Anything no rule catches proceeds without a person: humans *on* the loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Literal

from podium.errors import UsageError

OWNER = "owner"
"""In an escalation chain: the accountable owner of the agent whose action waits."""

OnExpiry = Literal["reject", "hold"]

TOO_LARGE = "too_large"
"""A flag and reason code: the work is too large for the model meant to do it (`RequestTooLarge`). A run that
raises it (`podium.assess(flags={TOO_LARGE})`) asks a person before its next guarded action, in every workflow."""


@dataclass(frozen=True)
class Escalation:
    """Who decides an exception, how long each level has, and what happens when nobody decides.

    `chain` names the deciders level by level: a person (`ana@example.com`), everyone in a team (`team:support`,
    see `podium people add`), or `OWNER`. When a level's `deadline` passes, the request moves to the next level;
    after the last, `on_expiry` applies: "reject" ends the wait with the action not performed, "hold" keeps it
    waiting for anyone in the chain, with no further deadline.
    """

    chain: tuple[str, ...] = (OWNER,)
    deadline: timedelta = timedelta(days=1)
    on_expiry: OnExpiry = "reject"

    def __post_init__(self) -> None:
        if not self.chain or not all(isinstance(d, str) and d.strip() for d in self.chain):
            raise UsageError(f"an escalation chain needs at least one decider, got {self.chain!r}.")
        if self.deadline.total_seconds() <= 0:
            raise UsageError(f"an escalation deadline must be positive, got {self.deadline}.")
        if self.on_expiry not in ("reject", "hold"):
            raise UsageError(f"on_expiry={self.on_expiry!r}: use 'reject' or 'hold'.")


@dataclass(frozen=True)
class Judgement:
    """A model's answer a person may correct: what went in, the label that came out, and how sure it was.

    A reviewer's decision on it becomes a labelled example the model is retrained on."""

    model: str
    input: str
    label: str
    confidence: float


@dataclass(frozen=True)
class Facts:
    """What a run has assessed about the work in hand (`podium.assess`), which exception rules read."""

    value_usd: float | None = None
    confidence: float | None = None
    flags: frozenset[str] = frozenset()
    judgement: Judgement | None = None
    summary: str | None = None  # what a person needs to know to decide (shown in the review queue)

    def merged(
        self,
        *,
        value_usd: float | None = None,
        confidence: float | None = None,
        flags: Iterable[str] = (),
        judgement: Judgement | None = None,
        summary: str | None = None,
    ) -> Facts:
        """These facts with the given ones added (None leaves a fact as it was; flags accumulate)."""
        if judgement is not None and confidence is None:
            confidence = judgement.confidence
        return replace(
            self,
            value_usd=self.value_usd if value_usd is None else value_usd,
            confidence=self.confidence if confidence is None else confidence,
            flags=self.flags | frozenset(flags),
            judgement=self.judgement if judgement is None else judgement,
            summary=self.summary if summary is None else summary,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "value_usd": self.value_usd,
            "confidence": self.confidence,
            "flags": sorted(self.flags),
            "summary": self.summary,
        }


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = int(char) * (2 if position % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _iban_valid(candidate: str) -> bool:
    rearranged = candidate[4:] + candidate[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")

DATA_CLASSES: dict[str, Callable[[str], bool]] = {
    "card_number": lambda text: any(_luhn(re.sub(r"\D", "", m.group())) for m in _CARD.finditer(text)),
    "iban": lambda text: any(_iban_valid(m.group().replace(" ", "")) for m in _IBAN.finditer(text)),
}
"""Detectors of data that must not leave without a person's look, run over a proposed action's arguments."""


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield str(value)  # a card number passed as a number
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


@dataclass(frozen=True)
class ExceptionRules:
    """The boundaries inside which a workflow's agents act alone; each rule that fires names a reason code.

    - `value_above_usd`: the run assessed a value above it -> `high_value`
    - `confidence_below`: the run's confidence is below it -> `low_confidence`
    - `compliance_flags`: the run raised one of these flags -> `compliance:<flag>`
    - `data_classes`: the action's arguments hold such data (see DATA_CLASSES) -> `data_class:<name>`
    - `guardrails`: the run raised a `guardrail:<name>` flag -> that flag

    `tools` limits the rules to the actions they are about (None: every tool the workflow's agents call).
    `escalation` says who decides; `escalation_by_reason` gives some reasons a chain of their own, by reason code or
    its first part (`{"compliance": Escalation(("team:compliance", OWNER))}`): only that chain may decide them.
    Budget exhaustion (a budget set with on_exhausted="review" -> `budget_exhausted:<scope>`), policy hits (a
    Cedar forbid annotated `@exception` -> `policy:<id>`) and work too large for its model (the run raised the
    `too_large` flag -> `too_large`) are exceptions in every workflow.
    """

    value_above_usd: float | None = None
    confidence_below: float | None = None
    compliance_flags: frozenset[str] = field(default_factory=frozenset)
    data_classes: frozenset[str] = field(default_factory=frozenset)
    guardrails: bool = True
    escalation: Escalation = field(default_factory=Escalation)
    escalation_by_reason: Mapping[str, Escalation] = field(default_factory=dict)
    tools: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.tools is not None:
            object.__setattr__(self, "tools", frozenset(self.tools))
        object.__setattr__(self, "compliance_flags", frozenset(self.compliance_flags))
        object.__setattr__(self, "data_classes", frozenset(self.data_classes))
        unknown = self.data_classes - DATA_CLASSES.keys()
        if unknown:
            raise UsageError(
                f"unknown data classes {sorted(unknown)}; podium detects {sorted(DATA_CLASSES)}. "
                "Add a detector to podium.review.DATA_CLASSES first."
            )
        if self.confidence_below is not None and not 0.0 <= self.confidence_below <= 1.0:
            raise UsageError(f"confidence_below={self.confidence_below} must be a share between 0 and 1.")

    def escalation_for(self, reasons: Iterable[str]) -> Escalation:
        """The chain of the first reason that has one of its own, else the workflow's."""
        return next((c for c in map(self._own_chain, reasons) if c is not None), self.escalation)

    def next_review(self, reasons: Sequence[str]) -> list[str]:
        """The reasons one person is asked about together: those that share the chain of the first reason with a
        chain of its own (only that chain may decide them), else all of them. Once that review approves the action,
        the reasons left ask a chain of their own in turn."""
        chains = [self._own_chain(reason) for reason in reasons]
        first = next((chain for chain in chains if chain is not None), None)
        return [reason for reason, chain in zip(reasons, chains, strict=True) if chain == first]

    def _own_chain(self, reason: str) -> Escalation | None:
        for key in (reason, reason.split(":", 1)[0]):
            if key in self.escalation_by_reason:
                return self.escalation_by_reason[key]
        return None

    def guards(self, tool: str) -> bool:
        return self.tools is None or tool in self.tools

    def reasons(self, facts: Facts, arguments: Mapping[str, Any]) -> list[str]:
        """The reason codes of every rule `facts` and `arguments` break (empty: the agent may act alone)."""
        found: list[str] = [TOO_LARGE] if TOO_LARGE in facts.flags else []
        if self.value_above_usd is not None and facts.value_usd is not None and facts.value_usd > self.value_above_usd:
            found.append("high_value")
        if (
            self.confidence_below is not None
            and facts.confidence is not None
            and facts.confidence < self.confidence_below
        ):
            found.append("low_confidence")
        found += [f"compliance:{flag}" for flag in sorted(facts.flags & self.compliance_flags)]
        if self.data_classes:
            text = "\n".join(_strings(arguments))
            found += [f"data_class:{name}" for name in sorted(self.data_classes) if DATA_CLASSES[name](text)]
        if self.guardrails:
            found += sorted(flag for flag in facts.flags if flag.startswith("guardrail:"))
        return found


NO_RULES = ExceptionRules(guardrails=False)
"""For workflows that declare none: only budget and policy exceptions, decided by the agent's owner."""
