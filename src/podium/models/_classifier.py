"""A specialised local model: a text classifier podium trains on the organisation's own labelled examples.

It answers like any other model (JSON text `{"label": ..., "confidence": ..., "peaks": {...}, "familiar": ...}`:
the whole text's label, each label's highest probability in any part of the text, and how familiar the text is;
see `Prediction`), so it goes through the same governor, ledger and audit as an LLM, at a fraction of the cost.

Its file is data, never code: a zip of NumPy arrays (read with `allow_pickle=False`) holding a JSON header (the
classes and each feature block's analyzer, n-gram range and vocabulary) and float64 arrays (idf weights,
coefficients, intercepts). Loading one checks its sha256, then every name, type and shape in it, and runs nothing
from it: a crafted file is refused like a damaged one.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import re
import zipfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_ai.usage import RequestUsage

from podium.errors import InputDataError, ModelFileError
from podium.models._files import read_verified
from podium.models._local import ChatTurn, LocalModel
from podium.models._parts import MAX_WORDS, WINDOW_WORDS, parts, words

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from scipy.sparse import csr_matrix

    Floats = npt.NDArray[np.float64]

FILE_FORMAT: Final = "podium-text-classifier/1"  # recorded beside each file's sha256; a pickle from before is "pickle"
FILE_SUFFIX = ".npz"
_WORD_TOKENS = r"(?u)\b\w\w+\b"  # scikit-learn's default, pinned: the file format must not move with its defaults


@dataclass(frozen=True)
class Prediction:
    """A classifier's answer for a whole text (`label`, `confidence`), and how it read each part (`peaks`: each
    label's highest probability in any part, see `podium.models.parts`; `familiar`: the share of the text's word
    pairs the model saw in training). Rules that must hold read `read_as` and `familiar`, not the top label alone."""

    label: str
    confidence: float
    peaks: tuple[tuple[str, float], ...] = ()
    familiar: float = 1.0

    @classmethod
    def from_text(cls, text: str) -> Prediction:
        data = json.loads(text)
        peaks = tuple((str(label), float(p)) for label, p in (data.get("peaks") or {}).items())
        return cls(str(data["label"]), float(data["confidence"]), peaks, float(data.get("familiar", 1.0)))

    def read_as(self, labels: Collection[str], at_least: float) -> frozenset[str]:
        """The labels among `labels` that the text or some part of it reads as with probability `at_least` or
        more. Text added around a part can raise what it reads as, never hide it (`podium.models.parts`)."""
        return frozenset(label for label, p in self.peaks if label in labels and p >= at_least)


class _Block(BaseModel):
    """One TF-IDF feature block as the file's header describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    analyzer: Literal["word", "char_wb"]
    ngram_range: tuple[Annotated[int, Field(ge=1, le=8)], Annotated[int, Field(ge=1, le=8)]]
    vocabulary: Annotated[list[str], Field(min_length=1)]


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["podium-text-classifier/1"]
    classes: Annotated[list[str], Field(min_length=2)]
    features: Annotated[list[_Block], Field(min_length=1, max_length=4)]


class _Features:
    """A block's transform, as scikit-learn's TfidfVectorizer does it: n-gram counts over a fixed vocabulary,
    1 + log(count), times idf, L2-normalised."""

    def __init__(self, block: _Block, idf: Floats) -> None:
        import numpy as np
        from sklearn.feature_extraction.text import CountVectorizer

        vocabulary = {term: i for i, term in enumerate(block.vocabulary)}
        if len(vocabulary) != len(block.vocabulary):
            raise ValueError(f"the {block.analyzer} vocabulary repeats a term")
        self.block, self.idf = block, idf
        self.counter = CountVectorizer(
            analyzer=block.analyzer,
            ngram_range=block.ngram_range,
            token_pattern=_WORD_TOKENS if block.analyzer == "word" else None,
            lowercase=True,
            vocabulary=vocabulary,
            dtype=np.float64,
        )

        self.analyze = self.counter.build_analyzer()
        self.index = vocabulary

    def weights(self, text: str) -> tuple[npt.NDArray[np.intp], Floats]:
        """One text's non-zero features (columns and values) as `transform` gives them, without building a sparse
        matrix (about twice as fast for a single text)."""
        import numpy as np

        look_up = self.index.get
        found = np.fromiter((look_up(term, -1) for term in self.analyze(text)), dtype=np.intp)
        columns, counts = np.unique(found[found >= 0], return_counts=True)
        values = np.log(counts.astype(np.float64)) + 1.0
        values *= self.idf[columns]
        norm = float(np.sqrt(values @ values))
        return columns, values / norm if norm > 0 else values

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        import numpy as np
        from sklearn.preprocessing import normalize

        x = self.counter.transform(texts)
        np.log(x.data, out=x.data)
        x.data += 1.0
        x.data *= self.idf[x.indices]
        return normalize(x, copy=False)


class TextClassifier:
    """TF-IDF word and character n-grams under a logistic-loss linear model (SGD).

    Trains in seconds on a CPU (~8 s on BANKING77's 10,003 tickets, ~91% accuracy on its test set) and gives
    probabilities good enough to tell a confident answer from a guess.
    """

    def __init__(self, classes: Sequence[str], blocks: Sequence[_Features], coef: Floats, intercept: Floats) -> None:
        import numpy as np

        self.classes = tuple(classes)
        self._blocks = tuple(blocks)
        # Column-major, so that `features @ coef.T` reads it in place (scipy copied all of it on every call).
        self._coef, self._intercept = np.asfortranarray(coef), intercept

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str]) -> TextClassifier:
        if len(texts) != len(labels) or not texts:
            raise InputDataError(
                f"training needs one label per text and at least one text (got {len(texts)} texts, "
                f"{len(labels)} labels). Check the labelled file."
            )
        if len(set(labels)) < 2:
            raise InputDataError("training needs at least two different labels. Check the labelled file.")
        try:
            fitted = _fit_pipeline(texts, labels)
        except ValueError as exc:  # scikit-learn's word for data it cannot learn from (no words in any text, say)
            raise InputDataError(f"cannot train on these texts ({exc}). Check the labelled file.") from None
        return cls.from_pipeline(fitted)

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> TextClassifier:
        """Keep only the arrays of a fitted `_fit_pipeline` pipeline: what predicts is what is saved."""
        import numpy as np

        union, sgd = pipeline.steps[0][1], pipeline.steps[-1][1]
        blocks = []
        for _, vectorizer in union.transformer_list:
            terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
            block = _Block(analyzer=vectorizer.analyzer, ngram_range=vectorizer.ngram_range, vocabulary=terms)
            blocks.append(_Features(block, np.asarray(vectorizer.idf_, dtype=np.float64)))
        coef = np.asarray(sgd.coef_, dtype=np.float64)
        intercept = np.asarray(sgd.intercept_, dtype=np.float64)
        return cls([str(c) for c in sgd.classes_], blocks, coef, intercept)

    def probabilities(self, texts: Sequence[str]) -> Floats:
        """One row per text, one column per class (as scikit-learn's SGDClassifier.predict_proba: one-vs-rest
        logistic scores, normalised)."""
        import numpy as np
        from scipy.sparse import hstack
        from scipy.special import expit

        features = hstack([block.transform(texts) for block in self._blocks]).tocsr()
        scores: Floats = expit(features @ self._coef.T + self._intercept)
        if scores.shape[1] == 1:  # two classes: one score, for the second
            return np.hstack([1 - scores, scores])
        return scores / scores.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]

    def probabilities_of(self, text: str) -> Floats:
        """One text's row of `probabilities`, computed without sparse matrices (a few ms less per call)."""
        import numpy as np
        from scipy.special import expit

        logits = self._intercept.copy()
        offset = 0
        for block in self._blocks:
            columns, values = block.weights(text)
            logits += self._coef[:, offset + columns] @ values
            offset += len(block.idf)
        scores: Floats = expit(logits)
        if scores.shape[0] == 1:
            return np.array([1 - scores[0], scores[0]])
        return scores / scores.sum()  # type: ignore[no-any-return]

    def predict(self, text: str) -> Prediction:
        probabilities = self.probabilities_of(text)
        best = int(probabilities.argmax())
        return Prediction(self.classes[best], float(probabilities[best]))

    def read(self, text: str, *, window: int = WINDOW_WORDS, floor: float = 0.01) -> Prediction:
        """`predict`, with how each part reads: every label whose highest probability in a part (`peaks`) is at
        least `floor`, and how familiar the text is. Raises UsageError for a text too long to read in parts."""
        pieces = parts(text, window=window)
        table = self.probabilities(pieces)
        whole, highest = table[0], table.max(axis=0)  # the first part is the text itself
        best = int(whole.argmax())
        peaks = tuple(
            (self.classes[i], round(float(highest[i]), 4)) for i in highest.argsort()[::-1] if highest[i] >= floor
        )
        return Prediction(self.classes[best], float(whole[best]), peaks, round(self.familiarity(text), 4))

    def familiarity(self, text: str) -> float:
        """The share of the text's adjacent word pairs that the model saw in training (1.0 for a text of fewer than
        two words, or a model that reads no word pairs): low for word salad and for text unlike anything it learned
        from, which is text its answers say little about."""
        pairs = self._known_pairs
        tokens = re.findall(_WORD_TOKENS, text.lower())
        if pairs is None or len(tokens) < 2:
            return 1.0
        return sum(f"{a} {b}" in pairs for a, b in itertools.pairwise(tokens)) / (len(tokens) - 1)

    @functools.cached_property
    def _known_pairs(self) -> frozenset[str] | None:
        blocks = [b.block for b in self._blocks if b.block.analyzer == "word" and b.block.ngram_range[1] >= 2]
        return frozenset(t for b in blocks for t in b.vocabulary if " " in t) if blocks else None

    def count_tokens(self, text: str) -> int:
        """The words it reads (the ledger's input tokens): words, not the word pairs it also weighs."""
        return len(re.findall(_WORD_TOKENS, text))

    # -- the file ------------------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The file's bytes: the same model always gives the same bytes, so the same sha256."""
        import numpy as np

        header = _Header(format=FILE_FORMAT, classes=list(self.classes), features=[b.block for b in self._blocks])
        arrays: dict[str, Any] = {
            "header": np.frombuffer(header.model_dump_json().encode(), dtype=np.uint8),
            "coef": self._coef,
            "intercept": self._intercept,
        }
        arrays |= {f"idf_{i}": block.idf for i, block in enumerate(self._blocks)}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for name, array in arrays.items():
                with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as f:
                    np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str, fix: str) -> TextClassifier:
        """Read a classifier file as data; anything else (a pickle, a damaged or crafted file) is a ModelFileError."""
        try:
            return cls._parse(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            reason = f"its header is not valid ({'.'.join(map(str, first['loc']))}: {first['msg']})"
        except KeyError as exc:
            reason = f"it has no {exc.args[0]} array"
        except (ValueError, EOFError, OSError, MemoryError, zipfile.BadZipFile) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not data.startswith(b"PK\x03\x04"):
                reason = "it is not a zip of arrays (an older podium saved pickles, which podium never loads)"
        raise ModelFileError(
            f"model file {source} is not a classifier podium can read: {reason[:300]}. {fix}", path=source
        )

    @classmethod
    def _parse(cls, data: bytes) -> TextClassifier:
        import numpy as np

        arrays = _read_arrays(data)
        header = _Header.model_validate_json(_array(arrays, "header", np.uint8, 1).tobytes())
        if set(arrays) != {"header", "coef", "intercept", *(f"idf_{i}" for i in range(len(header.features)))}:
            raise ValueError(f"it holds other arrays than its header declares: {', '.join(sorted(arrays))}")
        if len(set(header.classes)) != len(header.classes):
            raise ValueError("its classes repeat")
        blocks = []
        for i, block in enumerate(header.features):
            idf = _array(arrays, f"idf_{i}", np.float64, 1)
            if idf.shape != (len(block.vocabulary),):
                raise ValueError(f"idf_{i} has {idf.shape[0]} weights for {len(block.vocabulary)} terms")
            blocks.append(_Features(block, idf))
        rows = 1 if len(header.classes) == 2 else len(header.classes)
        width = sum(len(block.vocabulary) for block in header.features)
        coef, intercept = _array(arrays, "coef", np.float64, 2), _array(arrays, "intercept", np.float64, 1)
        if coef.shape != (rows, width) or intercept.shape != (rows,):
            raise ValueError(f"coef {coef.shape} and intercept {intercept.shape} do not fit {rows} x {width}")
        return cls(header.classes, blocks, coef, intercept)

    def save(self, path: Path) -> str:
        """Write the model to `path` and return its sha256, which must be recorded to load it again."""
        import hashlib

        data = self.to_bytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def load(cls, path: Path, sha256: str, *, fix: str = "Retrain it: podium models learn.") -> TextClassifier:
        """Read `path` as data once its bytes hash to `sha256` (the same bytes are hashed and parsed)."""
        return cls.from_bytes(read_verified(path, sha256, fix=fix), source=str(path), fix=fix)


def _read_arrays(data: bytes) -> dict[str, Any]:
    """The zip's arrays, each checked before it is read: stored (not compressed), plain numbers, and exactly as
    many bytes as its header declares (so a crafted header cannot make podium allocate more than the file holds)."""
    import numpy as np

    arrays: dict[str, Any] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{info.filename} is compressed (podium stores arrays as they are)")
            if not info.filename.endswith(".npy") or not name.isidentifier() or name in arrays:
                raise ValueError(f"{info.filename!r} is not an array podium writes")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version != (1, 0):
                    raise ValueError(f"{info.filename} has .npy version {version}, podium writes 1.0")
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                if dtype.kind not in "uif" or dtype.hasobject:
                    raise ValueError(f"{info.filename} holds {dtype}, not numbers")
                if int(np.prod(shape)) * dtype.itemsize != info.file_size - member.tell():
                    raise ValueError(f"{info.filename} declares more or fewer values than it holds")
            with archive.open(info) as member:
                arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def _array(arrays: dict[str, Any], name: str, dtype: Any, ndim: int) -> Floats:
    import numpy as np

    array = arrays[name]
    if array.dtype != dtype or array.ndim != ndim:
        raise ValueError(f"{name} is {array.dtype} with {array.ndim} dimensions, not {np.dtype(dtype)} with {ndim}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return array  # type: ignore[no-any-return]


def _fit_pipeline(texts: Sequence[str], labels: Sequence[str]) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import FeatureUnion, make_pipeline

    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, token_pattern=_WORD_TOKENS)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        ]
    )
    classifier = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=50, tol=1e-4, random_state=0)
    pipeline = make_pipeline(features, classifier)
    pipeline.fit(list(texts), list(labels))
    return pipeline


class ClassifierModel(LocalModel):
    """Serves a TextClassifier as a model: the last user message in, a JSON prediction out, read part by part
    (`TextClassifier.read`)."""

    default_max_tokens = 1  # one prediction
    slowest_tokens_per_second = 1000.0  # a linear model over hashed features: far faster than any LLM
    context_tokens = MAX_WORDS + 1  # it reads every part of a text of up to MAX_WORDS words (`read`)

    def __init__(self, name: str, classifier: TextClassifier, sha256: str = "") -> None:
        super().__init__(name)
        self.classifier = classifier
        self.sha256 = sha256  # of the file it was loaded from: a retrained file has another

    def replace(self, classifier: TextClassifier, sha256: str) -> None:
        """Serve a retrained classifier from now on (one attribute swap: requests in flight finish on the old)."""
        self.classifier, self.sha256 = classifier, sha256

    def prompt_tokens(self, turns: list[ChatTurn]) -> int:
        """The words it reads part by part: the governor refuses a longer text (RequestTooLarge) before it runs."""
        return len(words(_last_user_text(turns)))

    def answer(self, text: str) -> str:
        """The reply it gives for `text` (`Prediction.from_text` reads it back)."""
        prediction = self.classifier.read(text)
        return json.dumps(
            {
                "label": prediction.label,
                "confidence": round(prediction.confidence, 4),
                "peaks": dict(prediction.peaks),
                "familiar": prediction.familiar,
            }
        )

    def _generate(self, turns: list[ChatTurn], max_tokens: int | None) -> tuple[str, RequestUsage]:
        text = _last_user_text(turns)
        return self.answer(text), RequestUsage(input_tokens=self.classifier.count_tokens(text), output_tokens=1)


def _last_user_text(turns: list[ChatTurn]) -> str:
    return next((t.content for t in reversed(turns) if t.role == "user"), "")
