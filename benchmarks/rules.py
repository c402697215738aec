"""Exception rules that input cannot steer: `python -m benchmarks.rules`.

The support example's rule on an adversarial set (benchmarks/_rules_corpus.py: every sensitive ticket of
BANKING77's test split padded with harmless questions, mixed with other intents, stuffed with keywords, given a
long benign tail, run into one unpunctuated sentence or written with invisible characters and odd spaces; benign
controls dressed the same way), through the exact functions the workflow uses: the intent classifier's served
answer (`ClassifierModel.answer`), the flags `review_flags` raises from it and the ticket, and `RULES.reasons`.
"Before" is the rule as it was: only the top intent flagged.

Each layer of the rule is also counted on its own (what it catches, what only it catches, what it costs on
ordinary tickets): `unsure` (low confidence), `top` (the whole text's top intent), `parts` (any part reads as a
sensitive intent), `unfamiliar` (the familiarity floor), `lexicon` (SENSITIVE_TERMS). Headline keys go to
results/security.json (`rules_*`), the rest to results/rules.json and RESULTS.md.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks._report import merge_result, write_result
from benchmarks._rules_corpus import FAMILIES, SEED, Case, cases
from podium.models import ClassifierModel, Prediction, TextClassifier
from podium.review import Facts
from podium_examples.support_triage import workflow as wf
from podium_examples.support_triage.tickets import TEST_CSV, TRAIN_CSV, load_tickets

LAYERS = ("unsure", "top", "parts", "unfamiliar", "lexicon")
TRADE_OFF = ((8, 0.1), (8, 0.2), (8, 0.3), (4, 0.1), (4, 0.2))  # (window words, share) besides the example's


@dataclass(frozen=True)
class Outcome:
    case: Case
    prediction: Prediction
    before: list[str]  # reasons the rule as it was gives (empty: answered without a person)
    after: list[str]  # reasons the example's rule gives now
    layers: frozenset[str]  # the layers of the rule that fire


def judge(prediction: Prediction, text: str) -> tuple[list[str], list[str], frozenset[str]]:
    """The reasons of the rule before (top intent only) and now (`review_flags`), and which layers fire."""
    before = wf.RULES.reasons(Facts(confidence=prediction.confidence, flags={f"intent:{prediction.label}"}), {})
    after = wf.RULES.reasons(Facts(confidence=prediction.confidence, flags=wf.review_flags(prediction, text)), {})
    fired = {
        "unsure": prediction.confidence < wf.CONFIDENCE_FLOOR,
        "top": prediction.label in wf.SENSITIVE_INTENTS,
        "parts": bool(prediction.read_as(wf.SENSITIVE_INTENTS, wf.SENSITIVE_SHARE)),
        "unfamiliar": prediction.familiar < wf.FAMILIAR_FLOOR,
        "lexicon": bool(wf.SENSITIVE_TERMS.found(text)),
    }
    layers = frozenset(name for name, hit in fired.items() if hit)
    assert bool(layers) == bool(after), (text, layers, after)  # the layers are the whole rule, nothing else
    return before, after, layers


def outcomes(model: ClassifierModel, dressed: Sequence[Case]) -> tuple[list[Outcome], list[float]]:
    done, took = [], []
    for case in dressed:
        started = time.perf_counter()
        prediction = Prediction.from_text(model.answer(case.text))
        took.append((time.perf_counter() - started) * 1000)
        done.append(Outcome(case, prediction, *judge(prediction, case.text)))
    return done, took


def layer_table(sensitive: Sequence[Outcome], benign: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    """Per layer: sensitive cases it catches, those only it catches, and the share of benign ones it escalates."""
    return {
        layer: {
            "catches": sum(layer in o.layers for o in sensitive),
            "only_it_catches": sum(o.layers == {layer} for o in sensitive),
            "benign_escalated": round(sum(layer in o.layers for o in benign) / len(benign), 4) if benign else 0.0,
        }
        for layer in LAYERS
    }


def without(sensitive: Sequence[Outcome], benign: Sequence[Outcome], dropped: set[str]) -> dict[str, float]:
    """The rule with some layers taken out: sensitive cases answered alone, benign share escalated."""
    return {
        "answered_alone": sum(not (o.layers - dropped) for o in sensitive),
        "benign_escalated": round(sum(bool(o.layers - dropped) for o in benign) / len(benign), 4) if benign else 0.0,
    }


def main() -> dict[str, Any]:
    started = time.perf_counter()
    training = load_tickets(TRAIN_CSV)
    model = ClassifierModel(
        wf.INTENT_MODEL, TextClassifier.train([t.text for t in training], [t.category for t in training])
    )
    adversarial, took = outcomes(model, cases(SEED))
    plain_cases = [
        Case(t.text, t.category in wf.SENSITIVE_INTENTS, "plain", t.category, t.text) for t in load_tickets(TEST_CSV)
    ]
    plain, plain_took = outcomes(model, plain_cases)

    sensitive = [o for o in adversarial if o.case.sensitive]
    benign = [o for o in adversarial if not o.case.sensitive]
    plain_sensitive = [o for o in plain if o.case.sensitive]
    plain_benign = [o for o in plain if not o.case.sensitive]
    missed_before = [o for o in sensitive if not o.before]
    missed = [o for o in sensitive if not o.after]
    rows = []
    for family in FAMILIES:
        s = [o for o in sensitive if o.case.family == family]
        b = [o for o in benign if o.case.family == family]
        rows.append(_row(family, s, b))
    rows.append(_row("all adversarial", sensitive, benign))
    rows.append(_row("plain test split", plain_sensitive, plain_benign))

    variants = {
        "before (unsure, top)": {"parts", "unfamiliar", "lexicon"},
        "without the lexicon": {"lexicon"},
        "without parts": {"parts"},
        "without the familiarity floor": {"unfamiliar"},
        "lexicon and before, no parts or floor": {"parts", "unfamiliar"},
        "all layers": set(),
    }
    trade = {
        name: {"adversarial": without(sensitive, benign, d), "plain": without(plain_sensitive, plain_benign, d)}
        for name, d in variants.items()
    }
    term_cost = Counter(t for o in plain_benign for t in wf.SENSITIVE_TERMS.found(o.case.text))
    costly = Counter(o.case.intent for o in plain_benign if o.after and not o.before).most_common(8)
    latency = sorted(took + plain_took)
    data: dict[str, Any] = {
        "seed": SEED,
        "window_words": 8,
        "sensitive_share": wf.SENSITIVE_SHARE,
        "familiar_floor": wf.FAMILIAR_FLOOR,
        "lexicon_terms": len(wf.SENSITIVE_TERMS.terms),
        "sensitive_cases": len(sensitive),
        "benign_cases": len(benign),
        "answered_without_person_before": len(missed_before),
        "answered_without_person_after": len(missed),
        "benign_escalated_before": _share(benign, before=True),
        "benign_escalated_after": _share(benign, before=False),
        "plain_benign_escalated_before": _share(plain_benign, before=True),
        "plain_benign_escalated_after": _share(plain_benign, before=False),
        "plain_sensitive_answered_without_person_before": sum(not o.before for o in plain_sensitive),
        "plain_sensitive_answered_without_person_after": sum(not o.after for o in plain_sensitive),
        "layers_adversarial": layer_table(sensitive, benign),
        "layers_plain": layer_table(plain_sensitive, plain_benign),
        "variants": trade,
        "plain_benign_escalated_by_term": dict(term_cost.most_common()),
        "plain_benign_newly_escalated_by_intent": dict(costly),
        "misses": [
            {"family": o.case.family, "intent": o.case.intent, "text": o.case.text[:300], "read_as": o.prediction.label}
            for o in missed
        ],
        "parts_trade_off": trade_off(model.classifier, adversarial, plain),
        "per_family": {row[0]: row[1:] for row in rows},
        "answer_p50_ms": round(statistics.median(latency), 2),
        "answer_p99_ms": round(latency[min(len(latency) - 1, round(0.99 * (len(latency) - 1)))], 2),
        "seconds": round(time.perf_counter() - started, 1),
    }
    headline = {
        "rules_sensitive_cases": len(sensitive),
        "rules_answered_without_person": len(missed),
        "rules_answered_without_person_before": len(missed_before),
        "rules_answered_without_person_without_lexicon": trade["without the lexicon"]["adversarial"]["answered_alone"],
        "rules_benign_escalated_share": data["benign_escalated_after"],
        "rules_plain_benign_escalated_share": data["plain_benign_escalated_after"],
        "rules_plain_benign_escalated_share_before": data["plain_benign_escalated_before"],
    }
    write_result(
        "rules",
        title="Exception rules that input cannot steer (support example)",
        method=_method(data, trade),
        columns=[
            "family",
            "sensitive",
            "answered alone, before",
            "answered alone, after",
            "benign",
            "benign to a person, before",
            "benign to a person, after",
        ],
        rows=[[str(x) for x in row] for row in rows],
        data=data,
    )
    merge_result("security", headline)
    return data


def _method(data: dict[str, Any], trade: dict[str, dict[str, dict[str, float]]]) -> str:
    layers = data["layers_adversarial"]
    variants = "; ".join(
        f"{name}: {t['adversarial']['answered_alone']:,} answered alone, plain benign "
        f"{t['plain']['benign_escalated']:.1%} escalated"
        for name, t in trade.items()
    )
    return (
        f"{data['sensitive_cases']:,} sensitive and {data['benign_cases']:,} benign cases generated from BANKING77's "
        f"test split (benchmarks/_rules_corpus.py, seed {SEED}): each core ticket alone and dressed "
        f"{len(FAMILIES) - 1} ways, through the served classifier answer, `review_flags` and `RULES.reasons`. "
        "Before: the rule as it was (top intent, or confidence under 50%). After: also any part (sentence, clause, "
        f"run of 8 words) reading as a sensitive intent at >= {wf.SENSITIVE_SHARE:.0%}, under "
        f"{wf.FAMILIAR_FLOOR:.0%} of the word pairs familiar, or a sentence holding one of the example's "
        f"{data['lexicon_terms']} SENSITIVE_TERMS. Sensitive cases answered without a person: "
        f"{data['answered_without_person_before']:,} before, {data['answered_without_person_after']} after. Layers "
        "(sensitive cases caught / caught by it alone): "
        + ", ".join(f"{k} {v['catches']:,}/{v['only_it_catches']:,}" for k, v in layers.items())
        + f". Variants: {variants}. Cost on the plain test split: benign tickets sent to a person "
        f"{data['plain_benign_escalated_before']:.1%} -> {data['plain_benign_escalated_after']:.1%}. Answer latency "
        f"p50 {data['answer_p50_ms']} ms, p99 {data['answer_p99_ms']} ms a ticket."
    )


def _row(name: str, sensitive: Sequence[Outcome], benign: Sequence[Outcome]) -> list[Any]:
    return [
        name,
        len(sensitive),
        sum(not o.before for o in sensitive),
        sum(not o.after for o in sensitive),
        len(benign),
        f"{_share(benign, before=True):.1%}",
        f"{_share(benign, before=False):.1%}",
    ]


def _share(done: Sequence[Outcome], *, before: bool) -> float:
    return round(sum(bool(o.before if before else o.after) for o in done) / len(done), 4) if done else 0.0


def trade_off(
    classifier: TextClassifier, adversarial: Sequence[Outcome], plain: Sequence[Outcome]
) -> list[dict[str, Any]]:
    """The parts layer with other windows and shares (the lexicon and the floor as in the example): what the rule
    lets through against what it costs."""
    curve = []
    by_window: dict[int, list[Prediction]] = {}
    everything = [*adversarial, *plain]
    for window, share in TRADE_OFF:
        if window not in by_window:
            by_window[window] = [classifier.read(o.case.text, window=window) for o in everything]
        answered_alone = benign_escalated = 0
        for o, prediction in zip(everything, by_window[window], strict=True):
            flagged = bool(o.layers - {"parts"} or prediction.read_as(wf.SENSITIVE_INTENTS, share))
            if o.case.family == "plain":
                benign_escalated += flagged and not o.case.sensitive
            else:
                answered_alone += o.case.sensitive and not flagged
        plain_benign = sum(o.case.family == "plain" and not o.case.sensitive for o in everything)
        curve.append(
            {
                "window": window,
                "share": share,
                "answered_alone": answered_alone,
                "plain_benign_escalated": round(benign_escalated / plain_benign, 4),
            }
        )
    return curve


if __name__ == "__main__":
    main()
    sys.exit(0)
