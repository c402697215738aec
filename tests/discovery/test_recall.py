"""Acceptance: on a labelled synthetic corpus read with podium's own catalogue, read_logs finds >= 99% of the
(person, service) pairs, attributes <= 0.1% of the non-AI hosts (benign sites, CDN hosts, near misses beside
catalogue rules, look-alikes such as openai.com.evil.net and punycode twins) to any service, and reports exactly the
bytes each way that the conn and proxy records carry, in every format the corpus is written in."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks._discovery_corpus import FAMILY, Corpus, Spec, corpus
from benchmarks._discovery_score import score

from podium.discovery import Catalogue, read_logs

SPEC = Spec(seed=11, zeek_lines=40_000, squid_lines=20_000, dns_queries=20_000, days=3, seats=300)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


@pytest.fixture(scope="module")
def labelled(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return corpus(catalogue, SPEC, cache=tmp_path_factory.mktemp("corpus"))


def test_the_corpus_is_the_one_the_acceptance_asks_for(labelled: Corpus) -> None:
    for family, hosts in labelled.non_ai_hosts.items():
        assert len(hosts) >= 10_000, family
        assert {"openai.com.evil.net", "notopenai.com", "openai-com.net", "chatgpt.com.co"} <= hosts
        assert any(host.endswith(".cloudfront.net") for host in hosts)
        assert any(host.startswith("xn--") for host in hosts)
    assert len({service for pairs in labelled.truth.values() for _, service in pairs}) >= 100


@pytest.mark.parametrize("files", sorted(FAMILY))
def test_recall_false_positives_and_exact_bytes(labelled: Corpus, catalogue: Catalogue, files: str) -> None:
    family = FAMILY[files]
    paths: list[Path] = labelled.files[files]
    reading = read_logs(paths, catalogue)

    result = score(labelled, family, reading)

    assert [f.lines for f in reading.files] == [labelled.lines[str(p.relative_to(labelled.folder))] for p in paths]
    assert result.recall >= 0.99, sorted(result.missed_pairs)[:10]
    assert result.false_positive_rate <= 0.001, sorted(result.false_positives)[:10]
    assert not result.wrong_service, sorted(result.wrong_service)[:10]
    assert len(result.extra_pairs) <= 0.01 * result.expected_pairs, sorted(result.extra_pairs)[:10]
    assert not result.wrong_bytes, list(result.wrong_bytes.items())[:5]
    carried = [use for use in labelled.truth[family].values() if use.bytes_down is not None]
    if family == "dns":
        assert not carried  # lookups are visits: never bytes
    else:
        assert len(carried) > 0.5 * len(labelled.truth[family])  # so the bytes check above checked something
