"""The models a podium process may use, by name: tier, price, and how to load each (lazily, once)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from pydantic_ai.models import Model

from podium._tiers import Tier
from podium.audit import record
from podium.cost import Price
from podium.errors import ModelFileError, NotFoundError
from podium.models._classifier import ClassifierModel, TextClassifier
from podium.models._files import verify_model_file
from podium.store import tables


@dataclass(frozen=True)
class ModelEntry:
    name: str
    tier: Tier
    price: Price
    load: Callable[[], Model]


@dataclass(frozen=True)
class TrainedClassifier:
    """Declares a model that podium trained itself (see `TrainedModels`), served in the `local` tier."""

    name: str


class ModelCatalog:
    def __init__(self) -> None:
        self._entries: dict[str, ModelEntry] = {}
        self._loaded: dict[str, Model] = {}
        self._lock = threading.Lock()

    def add(self, name: str, tier: Tier, load: Callable[[], Model], price: Price) -> None:
        with self._lock:
            self._entries[name] = ModelEntry(name, tier, price, load)
            self._loaded.pop(name, None)

    def entry(self, name: str) -> ModelEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise NotFoundError(
                f"no model named {name!r} (known: {', '.join(sorted(self._entries)) or 'none'})."
            ) from None

    def get(self, name: str) -> Model:
        """The loaded model; loading happens on first use and may raise ModelFileError."""
        entry = self.entry(name)
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = entry.load()
            return self._loaded[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def loaded(self, name: str) -> Model | None:
        """The model if it is loaded already, without loading it."""
        with self._lock:
            return self._loaded.get(name)


class TrainedModels:
    """Model files podium trains itself, with the sha256 recorded in the database when each was written."""

    def __init__(self, engine: sa.Engine, folder: Path) -> None:
        self._engine = engine
        self._folder = folder

    def train_classifier(self, name: str, texts: Sequence[str], labels: Sequence[str]) -> Path:
        """Train a classifier on labelled texts, write it, and record its sha256 under `name`.

        The examples are kept (as `training` labels), so that people's corrections can later be added to them and
        the model retrained (`learn`)."""
        classifier = TextClassifier.train(texts, labels)
        now = time.time()
        with self._engine.begin() as conn:
            conn.execute(
                tables.labels.delete().where(tables.labels.c.model == name, tables.labels.c.source == "training")
            )
            rows = [
                {
                    "id": f"training:{name}:{i}",
                    "model": name,
                    "text": text,
                    "label": label,
                    "source": "training",
                    "at": now,
                }
                for i, (text, label) in enumerate(zip(texts, labels, strict=True))
            ]
            conn.execute(tables.labels.insert(), rows)
        return self._write(name, classifier)

    def learn(self, name: str, *, min_new: int) -> Path | None:
        """Retrain `name` on its training examples plus every label people gave in reviews, if at least `min_new`
        such labels arrived since its file was written; return the new file (None: not due, or no training set)."""
        labels, files = tables.labels, tables.model_files
        read_at = time.time()  # labels that arrive while it trains count towards the next retraining
        with self._engine.connect() as conn:
            since = conn.execute(sa.select(files.c.recorded_at).where(files.c.name == name)).scalar()
            fresh = conn.execute(
                sa.select(sa.func.count()).where(
                    labels.c.model == name, labels.c.source != "training", labels.c.at > (since or 0.0)
                )
            ).scalar_one()
            if fresh < max(min_new, 1):
                return None
            examples = conn.execute(
                sa.select(labels.c.text, labels.c.label).where(labels.c.model == name, labels.c.at <= read_at)
            ).all()
        if len({label for _, label in examples}) < 2:
            return None  # no training set recorded (a model adopted from elsewhere): nothing to add corrections to
        classifier = TextClassifier.train([t for t, _ in examples], [label for _, label in examples])
        path = self._path(name)
        sha256 = classifier.save(path)
        with self._engine.begin() as conn:  # the file and its audit entry, together
            _record_file(conn, name, path, sha256, read_at)
            record(
                conn,
                "system",
                "model.retrain",
                f"model:{name}",
                decision="allowed",
                detail={"examples": str(len(examples)), "from_reviews": str(fresh), "file": path.name},
            )
        return path

    def _path(self, name: str) -> Path:
        return self._folder / f"{name}-{time.time_ns()}.pkl"

    def _write(self, name: str, classifier: TextClassifier) -> Path:
        path = self._path(name)
        self.adopt(name, path, classifier.save(path))
        return path

    def names(self) -> list[str]:
        with self._engine.connect() as conn:
            return sorted(conn.execute(sa.select(tables.model_files.c.name)).scalars())

    def recorded_sha256(self, name: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(
                sa.select(tables.model_files.c.sha256).where(tables.model_files.c.name == name)
            ).scalar()

    def adopt(self, name: str, path: Path, sha256: str) -> None:
        """Record an existing model file (trained elsewhere, or by another database) under `name`.

        The file is checked against `sha256` now and at every load.
        """
        verify_model_file(path, sha256, fix="Pass the sha256 printed when the model was trained.")
        with self._engine.begin() as conn:
            _record_file(conn, name, path, sha256, time.time())

    def has(self, name: str) -> bool:
        with self._engine.connect() as conn:
            return (
                conn.execute(sa.select(tables.model_files.c.name).where(tables.model_files.c.name == name)).first()
                is not None
            )

    def load_classifier(self, name: str) -> ClassifierModel:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(tables.model_files).where(tables.model_files.c.name == name)).first()
        if row is None:
            raise ModelFileError(
                f"podium has not trained a model named {name!r} yet. Train it: podium models train-intents."
            )
        return ClassifierModel(name, TextClassifier.load(Path(row.path), row.sha256), row.sha256)


def _record_file(conn: sa.Connection, name: str, path: Path, sha256: str, recorded_at: float) -> None:
    """Make `path` the file served as `name`; `recorded_at` is how recent the labels it learnt from are."""
    values = {"path": str(path), "sha256": sha256, "recorded_at": recorded_at}
    if not conn.execute(tables.model_files.update().where(tables.model_files.c.name == name).values(**values)).rowcount:
        conn.execute(tables.model_files.insert().values(name=name, **values))
