"""The models a podium process may use, by name: tier, price, and how to load each (lazily, once).

The catalog holds the built-in local model, the remote ones podium.toml declares (and turns `tier:<tier>` into
those of that tier), and the classifiers podium trained itself, which `ServedClassifiers` keeps current.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa
from pydantic_ai.models import Model

from podium._tiers import LOCAL, TIER_PREFIX, TIERS, Tier
from podium.audit import record
from podium.cost import Price
from podium.errors import ConfigurationError, ModelFileError, NotFoundError
from podium.models._classifier import FILE_FORMAT, FILE_SUFFIX, ClassifierModel, TextClassifier
from podium.models._config import ModelConfig
from podium.models._files import SMOLLM2_135M, PackagedModelFile, read_verified, verify_model_file
from podium.models._llama import LlamaCppModel
from podium.models._remote import check_endpoint, openai_compatible
from podium.store import tables

if TYPE_CHECKING:
    from podium.policy import Authorizer, Identity


@dataclass(frozen=True)
class ModelEntry:
    name: str
    tier: Tier
    price: Price
    load: Callable[[], Model]
    packaged: PackagedModelFile | None = None  # the local file it loads, checked by `podium models list`


@dataclass(frozen=True)
class TrainedClassifier:
    """Declares a model that podium trained itself (see `TrainedModels`), served in the `local` tier."""

    name: str


_TIER_WIDE = tuple(f"{TIER_PREFIX}{tier}" for tier in TIERS if tier != LOCAL)  # an agent may name these unchecked


class ModelCatalog:
    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config or ModelConfig()
        self._entries: dict[str, ModelEntry] = {}
        self._loaded: dict[str, Model] = {}
        self._lock = threading.Lock()

    @classmethod
    def configured(cls, config: ModelConfig, *, local_price: Price) -> ModelCatalog:
        """The built-in local model and every model `config` declares; each tier routing.tiers names must have one."""
        catalog = cls(config)
        catalog.add(
            "smollm2-135m",
            LOCAL,
            lambda: LlamaCppModel.from_package("smollm2-135m", SMOLLM2_135M),
            local_price,
            packaged=SMOLLM2_135M,
        )
        for name, setting in config.models.items():
            price = setting.resolved_price(name)
            catalog.add(name, setting.tier, functools.partial(openai_compatible, name, setting), price)
        config.check_tiers({catalog.entry(name).tier for name in catalog.names()})
        return catalog

    def add(
        self,
        name: str,
        tier: Tier,
        load: Callable[[], Model],
        price: Price,
        *,
        packaged: PackagedModelFile | None = None,
    ) -> None:
        with self._lock:
            self._entries[name] = ModelEntry(name, tier, price, load, packaged)
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

    def known_as(self, names: Iterable[str]) -> dict[str, str]:
        """Each model under the name its provider knows it by (podium.toml's `model`), which is what the router's
        prior of public outcomes knows models by."""
        return {name: self.config.models[name].model if name in self.config.models else name for name in names}

    def loaded(self, name: str) -> Model | None:
        """The model if it is loaded already, without loading it."""
        with self._lock:
            return self._loaded.get(name)

    def expand_tiers(self, candidates: Sequence[str]) -> list[str]:
        """Model names for `candidates`, where `tier:intermediate` or `tier:frontier` stands for every model
        podium.toml declares in that tier (cheapest first; possibly none)."""
        names: list[str] = []
        for candidate in candidates:
            if candidate.startswith(TIER_PREFIX):
                tier = candidate.removeprefix(TIER_PREFIX)
                declared = [n for n, setting in self.config.models.items() if setting.tier == tier]
                names += sorted(declared, key=lambda n: self.entry(n).price.cost_nano_usd(500, 500, 0))
            else:
                names.append(candidate)
        if not names:
            raise ConfigurationError(
                f"none of {', '.join(candidates)} names a model: declare one in podium.toml for those tiers."
            )
        return names

    def check(self, agent_models: Iterable[tuple[str, Sequence[str]]]) -> None:
        """Before anything runs: every model an agent names (agent, its models) exists, and every remote endpoint
        answers."""
        for agent, models in agent_models:
            for model in models:
                if model in _TIER_WIDE:
                    continue  # any model declared for that tier (possibly none)
                if model not in self.names():
                    raise ConfigurationError(
                        f"agent {agent!r} lists model {model!r}, which is not configured (known: "
                        f"{', '.join(self.names())}, or {' / '.join(_TIER_WIDE)} for any model of "
                        f"that tier). Add [models.{model}] to podium.toml, or fix the name."
                    )
        for name, setting in self.config.models.items():
            check_endpoint(name, setting)


class TrainedModels:
    """Model files podium trains itself, stored by content: `<sha256>.npz` in the models folder
    (PODIUM_MODELS_DIR, else `home`/models). The database records each model's digest, never a path, so every
    process whose models folder holds that file (a shared folder, or a copy) finds the same one.

    A trained classifier routes every request it serves, so a person who trains or retrains one (`by`) takes an
    operator action: Cedar decides `models.train` before the work starts, and again with its audit entry, in the
    transaction that records the file. Without `by` it is podium's own (a worker retraining on reviews' labels)."""

    def __init__(self, engine: sa.Engine, folder: Path, authorizer: Authorizer) -> None:
        self._engine = engine
        self.folder = folder
        self._authorizer = authorizer

    def file(self, sha256: str) -> Path:
        return self.folder / f"{sha256}{FILE_SUFFIX}"

    def train_classifier(
        self, name: str, texts: Sequence[str], labels: Sequence[str], *, by: Identity | None = None
    ) -> Path:
        """Train a classifier on labelled texts, store it, and record its sha256 under `name`; return its file.

        The examples are kept (as `training` labels), so that people's corrections can later be added to them and
        the model retrained (`learn`)."""
        self._may_train(by, name)
        classifier = TextClassifier.train(texts, labels)
        sha256 = self._store(classifier.to_bytes())
        now = time.time()
        detail = {"examples": str(len(texts)), "sha256": sha256}
        with self._recording(by, name, detail, system_action=None) as conn:
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
            _record_file(conn, name, sha256, now)
        return self.file(sha256)

    def learn(self, name: str, *, min_new: int, by: Identity | None = None) -> Path | None:
        """Retrain `name` on its training examples plus every label people gave in reviews, if at least `min_new`
        such labels arrived since its file was written (or its record is an older podium's pickle, which is never
        loaded); return the new file (None: not due, or no training set)."""
        self._may_train(by, name)
        labels, files = tables.labels, tables.model_files
        read_at = time.time()  # labels that arrive while it trains count towards the next retraining
        with self._engine.connect() as conn:
            recorded = conn.execute(sa.select(files.c.recorded_at, files.c.format).where(files.c.name == name)).first()
            fresh = conn.execute(
                sa.select(sa.func.count()).where(
                    labels.c.model == name,
                    labels.c.source != "training",
                    labels.c.at > (recorded.recorded_at if recorded else 0.0),
                )
            ).scalar_one()
            legacy = recorded is not None and recorded.format != FILE_FORMAT
            if fresh < max(min_new, 1) and not legacy:
                return None
            examples = conn.execute(
                sa.select(labels.c.text, labels.c.label).where(labels.c.model == name, labels.c.at <= read_at)
            ).all()
        if len({label for _, label in examples}) < 2:
            return None  # no training set recorded (a model adopted from elsewhere): nothing to add corrections to
        classifier = TextClassifier.train([t for t, _ in examples], [label for _, label in examples])
        sha256 = self._store(classifier.to_bytes())
        detail = {"examples": str(len(examples)), "from_reviews": str(fresh), "sha256": sha256}
        with self._recording(by, name, detail, system_action="model.retrain") as conn:
            _record_file(conn, name, sha256, read_at)
        return self.file(sha256)

    def _may_train(self, by: Identity | None, name: str) -> None:
        """Refuse a person who may not train `name` before the work starts (audited by the refusal)."""
        if by is not None:
            from podium.policy import scope_entity

            self._authorizer.check(by, "models.train", scope_entity(f"model:{name}"))

    @contextlib.contextmanager
    def _recording(
        self, by: Identity | None, name: str, detail: dict[str, str], *, system_action: str | None
    ) -> Iterator[sa.Connection]:
        """The transaction that records a new file for `name`, with its audit entry: a person's `models.train`,
        or podium's own `system_action` (None: not logged)."""
        if by is not None:
            with self._authorizer.act(by, "models.train", f"model:{name}", detail=detail) as act:
                yield act.conn
            return
        with self._engine.begin() as conn:
            yield conn
            if system_action is not None:
                record(conn, "system", system_action, f"model:{name}", decision="allowed", detail=detail)

    def _store(self, data: bytes) -> str:
        """Write a model file under its digest (atomically: a reader never sees half of it); return the digest."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.file(sha256)
        with contextlib.suppress(ModelFileError):
            verify_model_file(path, sha256, fix="")
            return sha256  # the same bytes are there already (content-addressed)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{sha256}.{os.getpid()}.{threading.get_ident()}.tmp"
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as exc:
            raise ModelFileError(
                f"cannot write model file {path} ({exc.strerror}). Make the models folder writable, or set "
                "PODIUM_MODELS_DIR to one that is.",
                path=str(path),
            ) from None
        return sha256

    def names(self) -> list[str]:
        with self._engine.connect() as conn:
            return sorted(conn.execute(sa.select(tables.model_files.c.name)).scalars())

    def recorded_sha256(self, name: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(
                sa.select(tables.model_files.c.sha256).where(tables.model_files.c.name == name)
            ).scalar()

    def adopt(self, name: str, path: Path, sha256: str) -> None:
        """Record a classifier file trained elsewhere (or for another database) under `name`.

        The file must hash to `sha256` and read as a classifier (as data: nothing in it runs); it is copied into
        the models folder, where every load finds it by that digest.
        """
        fix = "Pass the sha256 printed when the model was trained, of a file podium wrote."
        data = read_verified(path, sha256, fix=fix)
        TextClassifier.from_bytes(data, source=str(path), fix=fix)
        self._store(data)
        with self._engine.begin() as conn:
            _record_file(conn, name, sha256, time.time())

    def has(self, name: str) -> bool:
        """Whether `name` is recorded in the current file format (an older podium's pickle record does not count:
        it must be retrained)."""
        with self._engine.connect() as conn:
            found = conn.execute(sa.select(tables.model_files.c.format).where(tables.model_files.c.name == name))
            return found.scalar() == FILE_FORMAT

    def load_classifier(self, name: str) -> ClassifierModel:
        """The classifier recorded as `name`, read from `<sha256>.npz` in the models folder."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(tables.model_files).where(tables.model_files.c.name == name)).first()
        if row is None:
            raise ModelFileError(
                f"podium has not trained a model named {name!r} yet. Train it: podium models train-intents."
            )
        if row.format != FILE_FORMAT:
            raise ModelFileError(
                f"model {name!r} was saved by an older podium as a pickle, which podium no longer loads (a pickle "
                "can run code). Retrain it: podium models learn (podium demo retrains its own).",
                sha256=row.sha256,
            )
        path = self.file(row.sha256)
        if not path.is_file():
            raise ModelFileError(
                f"model {name!r} (sha256 {row.sha256}) is not in the models folder {self.folder.absolute()}. Copy "
                f"{path.name} there from the home that trained it, or point PODIUM_MODELS_DIR at a folder every "
                "worker shares; or retrain it: podium models learn.",
                sha256=row.sha256,
                path=str(path),
            )
        fix = "Copy the file again from the home that trained it, or retrain it: podium models learn."
        return ClassifierModel(name, TextClassifier.load(path, row.sha256, fix=fix), row.sha256)


class ServedClassifiers:
    """The classifiers podium trained that this process serves (in the local tier): retrained from people's
    corrections, and swapped for the latest file of each, whichever process trained it."""

    def __init__(self, catalog: ModelCatalog, trained: TrainedModels, *, price: Price, retrain_after: int) -> None:
        self._catalog = catalog
        self._trained = trained
        self._price = price
        self._retrain_after = retrain_after
        self._names: set[str] = set()

    def serve(self, name: str) -> None:
        """Serve `name`; if it is trained already, load it now: a file this machine lacks (or cannot read) stops
        the launch with the fix, instead of failing every run that asks it."""
        self._catalog.add(name, LOCAL, lambda: self._trained.load_classifier(name), self._price)
        self._names.add(name)
        if self._trained.recorded_sha256(name) is not None:
            self._catalog.get(name)

    def learn(self, *, min_new: int | None = None) -> dict[str, Path]:
        """Retrain each served classifier once `min_new` labels from reviews arrived (default: retrain_after),
        and serve the latest file of each. Returns the files retrained now, by model."""
        retrained: dict[str, Path] = {}
        for name in sorted(self._names):
            path = self._trained.learn(name, min_new=self._retrain_after if min_new is None else min_new)
            if path is not None:
                retrained[name] = path
            loaded = self._catalog.loaded(name)
            if isinstance(loaded, ClassifierModel) and self._trained.recorded_sha256(name) != loaded.sha256:
                latest = self._trained.load_classifier(name)
                loaded.replace(latest.classifier, latest.sha256)
        return retrained


@dataclass(frozen=True)
class ModelState:
    """A model and the state of the file it runs on, as `podium models list` shows it."""

    name: str
    tier: Tier
    kind: Literal["packaged", "trained", "remote", "in-process"]
    sha256: str | None  # the digest podium checks the file against (None: no file)
    ok: bool
    state: str  # "sha256 ok", or what is wrong and the fix


def model_states(catalog: ModelCatalog, trained: TrainedModels) -> list[ModelState]:
    """Every model podium knows, with its file checked: the packaged and trained ones against their recorded
    sha256 (a trained one is also read, as data), while a remote one has no file to check."""
    trained_names = trained.names()
    states = [_trained_state(trained, name) for name in trained_names]
    for name in catalog.names():
        entry = catalog.entry(name)
        if name in trained_names:
            continue
        if name in catalog.config.models:
            states.append(ModelState(name, entry.tier, "remote", None, True, "remote: no local file to check"))
        elif entry.packaged is None:
            states.append(ModelState(name, entry.tier, "in-process", None, True, "registered in code: no file"))
        else:
            packaged = entry.packaged
            try:
                verify_model_file(packaged.locate(), packaged.sha256, fix=packaged.fix)
            except ModelFileError as exc:
                states.append(ModelState(name, entry.tier, "packaged", packaged.sha256, False, str(exc)))
            else:
                states.append(ModelState(name, entry.tier, "packaged", packaged.sha256, True, "sha256 ok"))
    return sorted(states, key=lambda state: state.name)


def _trained_state(trained: TrainedModels, name: str) -> ModelState:
    sha256 = trained.recorded_sha256(name)
    try:
        trained.load_classifier(name)
    except ModelFileError as exc:
        return ModelState(name, LOCAL, "trained", sha256, False, str(exc))
    return ModelState(name, LOCAL, "trained", sha256, True, "sha256 ok")


def _record_file(conn: sa.Connection, name: str, sha256: str, recorded_at: float) -> None:
    """Make the file `sha256` the one served as `name`; `recorded_at` is how recent the labels it learnt from are."""
    values = {"sha256": sha256, "format": FILE_FORMAT, "recorded_at": recorded_at}
    if not conn.execute(tables.model_files.update().where(tables.model_files.c.name == name).values(**values)).rowcount:
        conn.execute(tables.model_files.insert().values(name=name, **values))
