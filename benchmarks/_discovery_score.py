"""How well one `read_logs` reading of a labelled corpus matches its ground truth: recall of (person, service)
pairs, false positives among the non-AI hosts, and exact bytes per pair. Shared by tests/discovery/test_recall.py
and benchmarks/discovery.py, so both judge a reading the same way."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks._discovery_corpus import Corpus
from podium.discovery import Reading


@dataclass
class Score:
    family: str  # "zeek" | "squid" | "dns"
    expected_pairs: int
    found_pairs: int
    non_ai_hosts: int
    false_positives: set[str] = field(default_factory=set)  # non-AI (or unknown) hosts attributed to a service
    wrong_service: set[str] = field(default_factory=set)  # AI hosts attributed to another service than theirs
    extra_pairs: set[tuple[str, str]] = field(default_factory=set)  # reported, not in the truth
    missed_pairs: set[tuple[str, str]] = field(default_factory=set)
    wrong_bytes: dict[tuple[str, str], tuple[object, object]] = field(default_factory=dict)  # pair: (truth, found)

    @property
    def recall(self) -> float:
        return self.found_pairs / self.expected_pairs if self.expected_pairs else 1.0

    @property
    def false_positive_rate(self) -> float:
        return len(self.false_positives) / self.non_ai_hosts if self.non_ai_hosts else 0.0


def score(corpus: Corpus, family: str, reading: Reading) -> Score:
    """Judge `reading` (of one family's files) against `corpus`'s truth for that family.

    A sighting's person is the user the log names, else who held its address when it was first seen (the corpus's
    --users leases). Bytes are compared per pair as sums; a pair the truth has no bytes for must have none."""
    truth = corpus.truth[family]
    found: dict[tuple[str, str], list[int | None]] = {}
    result = Score(family, len(truth), 0, len(corpus.non_ai_hosts[family]))
    for sighting in reading.sightings:
        labelled = corpus.ai_hosts.get(sighting.host)
        if labelled is None:
            result.false_positives.add(sighting.host)
            continue
        if labelled != sighting.service:
            result.wrong_service.add(sighting.host)
        person = sighting.user or corpus.person_at(sighting.source, sighting.first_seen) or sighting.source
        sums = found.setdefault((person, sighting.service), [None, None])
        for index, count in enumerate((sighting.bytes_up, sighting.bytes_down)):
            if count is not None:
                sums[index] = (sums[index] or 0) + count
    result.found_pairs = len(found.keys() & truth.keys())
    result.extra_pairs = found.keys() - truth.keys()
    result.missed_pairs = truth.keys() - found.keys()
    for pair in found.keys() & truth.keys():
        expected = (truth[pair].bytes_up, truth[pair].bytes_down)
        if tuple(found[pair]) != expected:
            result.wrong_bytes[pair] = (expected, tuple(found[pair]))
    return result
