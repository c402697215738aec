"""Sentence embeddings: the real all-MiniLM-L6-v2 (int8 ONNX) on the CPU, its files checked before use."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from podium import ModelFileError
from podium.models import MINILM_INT8, MiniLM, embedder, sha256_of
from podium.models import _embeddings as embeddings_module

pytest.importorskip("onnxruntime", reason="the embeddings extra is not installed: pip install 'podium[embeddings]'")


def test_vectors_are_unit_length_in_order_and_384_wide() -> None:
    texts = ["The invoice is overdue.", "", "x" * 5000, "Wie spät ist es?"]
    vectors = embedder().embed(texts)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # each row is what its text gives alone, whatever else is in the call
    for text, row in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(MiniLM(cache_size=0).embed([text])[0], row, atol=1e-5)


def test_meaning_not_words_decides_what_lies_close() -> None:
    model = embedder()
    query, paraphrase, same_words = model.embed(
        [
            "How do I reset my password?",
            "I forgot my login credentials and cannot sign in.",
            "Password reset policies were discussed at the board meeting on budgets.",
        ]
    )
    unrelated = model.embed(["Translate this poem about the sea into French."])[0]
    assert float(query @ paraphrase) > float(query @ same_words) > float(query @ unrelated)
    assert float(query @ paraphrase) > 0.5
    assert float(query @ unrelated) < 0.2


def test_long_texts_are_cut_at_the_models_window_not_rejected() -> None:
    model = MiniLM()
    head = "Quarterly revenue grew in every region. " * 40  # well past 256 tokens
    a, b = model.embed([head, head + " Unrelated tail about penguins and ice." * 30])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_text_seen_again_is_answered_from_the_cache_with_the_same_vector() -> None:
    model = MiniLM(cache_size=2)
    first = model.embed(["one", "two"])
    assert list(model._cache) == ["one", "two"]
    again = model.embed(["two", "three"])
    np.testing.assert_array_equal(again[0], first[1])
    assert list(model._cache) == ["two", "three"]  # the oldest, "one", was dropped


def test_a_changed_tokenizer_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changed = tmp_path / "minilm_tokenizer.json"
    shutil.copy(embeddings_module.TOKENIZER, changed)
    changed.write_bytes(changed.read_bytes().replace(b'"[UNK]":100', b'"[UNK]":101', 1))
    monkeypatch.setattr(embeddings_module, "TOKENIZER", changed)
    with pytest.raises(ModelFileError, match=r"changed or replaced.*podium\[embeddings\]"):
        MiniLM()


def test_a_missing_runtime_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what `import onnxruntime` meets when it is absent
    with pytest.raises(ModelFileError, match=r"need onnxruntime.*pip install 'podium\[embeddings\]'"):
        MiniLM()


def test_the_model_file_is_the_one_podium_recorded() -> None:
    path = MINILM_INT8.locate()
    assert path.name == "model.onnx"
    assert sha256_of(path) == MINILM_INT8.sha256
