"""Trained model files are data, never code, and are found by their digest in the configured models folder."""

from __future__ import annotations

import csv
import io
import json
import pickle
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import podium
from podium import ModelFileError, Podium, Settings
from podium.cli import app
from podium.models import TextClassifier
from podium.store import MIGRATIONS, create_engine, migrate, tables
from podium.store._migrations import _VERSION_TABLE, _apply
from podium.testing import TEST_ADMIN, key_for
from podium_examples.support_triage import workflow as wf
from podium_examples.support_triage.tickets import TEST_CSV, load_tickets
from tests.conftest import IntentModelFile

TEXTS = [
    "my card has not arrived yet",
    "where is my new card",
    "the card delivery is late",
    "please refund my payment",
    "I want my money back, refund it",
    "the refund has not come through",
    "I forgot my password",
    "cannot log in to the app",
    "reset my login password please",
]
LABELS = ["card"] * 3 + ["refund"] * 3 + ["login"] * 3
ASKED = ["has my card been sent", "refund the money", "my password does not work", "hello"]


class _Payload:
    """A pickle that, if anything ever unpickles it, writes a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _crafted(tmp_path: Path) -> tuple[Path, str, Path]:
    """A crafted pickle file, its sha256 and the marker it would write."""
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.npz"
    crafted.write_bytes(pickle.dumps(_Payload(marker)))
    return crafted, podium.models.sha256_of(crafted), marker


def _record(pod: Podium, name: str, sha256: str, file_format: str = "podium-text-classifier/1") -> None:
    """What whoever can write the database directly can do: record any digest as a model's file."""
    with pod.engine.begin() as conn:
        conn.execute(tables.model_files.delete().where(tables.model_files.c.name == name))
        conn.execute(tables.model_files.insert().values(name=name, sha256=sha256, format=file_format, recorded_at=0.0))


def test_a_crafted_pickle_with_its_sha256_is_refused_and_never_run(settings: Settings, tmp_path: Path) -> None:
    crafted, sha256, marker = _crafted(tmp_path)
    with Podium.connect(settings) as pod:

        def adopt_and_load() -> None:  # before: adopted, then unpickled (the marker written) at the first load
            pod.trained.adopt("intent-classifier", crafted, sha256)
            pod.trained.load_classifier("intent-classifier")

        with pytest.raises(ModelFileError, match="not a classifier podium can read: it is not a zip of arrays"):
            adopt_and_load()
        assert pod.trained.names() == []
        # Placed where the model is expected, with its digest recorded, it is still only data.
        pod.trained.file(sha256).parent.mkdir(parents=True)
        pod.trained.file(sha256).write_bytes(crafted.read_bytes())
        _record(pod, "intent-classifier", sha256)
        with pytest.raises(ModelFileError, match="not a classifier podium can read"):
            pod.trained.load_classifier("intent-classifier")
    with pytest.raises(ModelFileError, match="not a classifier podium can read"):
        podium.launch(settings, wf.app)  # a worker serving it refuses to start, naming the file
    assert not marker.exists()


def test_a_record_from_before_names_a_pickle_that_is_never_loaded_and_learn_retrains_it(
    settings: Settings, tmp_path: Path
) -> None:
    crafted, sha256, marker = _crafted(tmp_path)
    engine = create_engine(settings.resolved_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(_VERSION_TABLE))
        for migration in MIGRATIONS[:11]:  # a database an older podium wrote
            _apply(engine, migration)
        with engine.begin() as conn:  # as podium 0.x recorded a trained model: a path to a pickle
            conn.execute(
                sa.text("INSERT INTO podium_model_files (name, path, sha256, recorded_at) VALUES (:n, :p, :s, 0)"),
                {"n": "intent-classifier", "p": str(crafted), "s": sha256},
            )
        assert migrate(engine) == [m.version for m in MIGRATIONS if m.version >= 12]
    finally:
        engine.dispose()
    with Podium.connect(settings) as pod:
        pod.trained.file(sha256).parent.mkdir(parents=True)
        pod.trained.file(sha256).write_bytes(crafted.read_bytes())  # even with the pickle where a file would be
        with pytest.raises(ModelFileError, match=r"saved by an older podium as a pickle.*podium models learn"):
            pod.trained.load_classifier("intent-classifier")
        assert not pod.trained.has("intent-classifier")  # so the demo trains it again
        with pod.engine.begin() as conn:
            conn.execute(
                tables.labels.insert(),
                [
                    {
                        "id": f"t{i}",
                        "model": "intent-classifier",
                        "text": t,
                        "label": label,
                        "source": "training",
                        "at": 1.0,
                    }
                    for i, (t, label) in enumerate(zip(TEXTS, LABELS, strict=True))
                ],
            )
        retrained = pod.trained.learn("intent-classifier", min_new=50)  # due at once, whatever min_new says
        assert retrained is not None
        assert pod.trained.load_classifier("intent-classifier").classifier.predict(ASKED[0]).label == "card"
    assert not marker.exists()


def test_the_home_works_from_another_folder(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    with Podium.connect(Settings(home=Path("team/home"), database_url=settings.database_url)) as pod:
        trained = TextClassifier.load(
            pod.trained.train_classifier("triage", TEXTS, LABELS), pod.trained.recorded_sha256("triage") or ""
        )
    monkeypatch.chdir(tmp_path / "elsewhere")
    with Podium.connect(Settings(home=Path("../team/home"), database_url=settings.database_url)) as pod:
        loaded = pod.trained.load_classifier("triage").classifier
    assert np.array_equal(loaded.probabilities(ASKED), trained.probabilities(ASKED))


def test_a_worker_finds_the_file_by_digest_in_its_models_dir(settings: Settings, tmp_path: Path) -> None:
    url = settings.resolved_database_url  # one database, two homes (two machines)
    with Podium.connect(Settings(home=tmp_path / "a", database_url=url)) as pod:
        pod.trained.train_classifier("triage", TEXTS, LABELS)
        sha256 = pod.trained.recorded_sha256("triage")
    with (
        Podium.connect(Settings(home=tmp_path / "b", database_url=url)) as pod,
        pytest.raises(ModelFileError) as missing,
    ):
        pod.trained.load_classifier("triage")
    message = str(missing.value)
    assert f"sha256 {sha256}" in message and str((tmp_path / "b" / "models").absolute()) in message
    assert "PODIUM_MODELS_DIR" in message and "\n" not in message
    with Podium.connect(Settings(home=tmp_path / "b", database_url=url, models_dir=tmp_path / "a" / "models")) as pod:
        assert pod.trained.load_classifier("triage").classifier.predict(ASKED[1]).label == "refund"


def test_models_dir_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_MODELS_DIR", str(tmp_path / "shared"))
    assert Settings(home=tmp_path / "home").resolved_models_dir == tmp_path / "shared"
    monkeypatch.delenv("PODIUM_MODELS_DIR")
    assert Settings(home=tmp_path / "home").resolved_models_dir == tmp_path / "home" / "models"


def test_a_saved_classifier_loads_with_the_same_predictions(intent_model_file: IntentModelFile) -> None:
    texts = [t.text for t in load_tickets(TEST_CSV)[:300]]
    loaded = TextClassifier.load(intent_model_file.path, intent_model_file.sha256)
    assert np.array_equal(loaded.probabilities(texts), intent_model_file.classifier.probabilities(texts))
    assert loaded.to_bytes() == intent_model_file.path.read_bytes()  # the same model, the same bytes


@pytest.mark.parametrize("labels", [LABELS, ["card"] * 3 + ["other"] * 6], ids=["three classes", "two classes"])
def test_the_arrays_predict_exactly_as_the_fitted_pipeline(labels: list[str]) -> None:
    from podium.models._classifier import _fit_pipeline

    pipeline = _fit_pipeline(TEXTS, labels)
    classifier = TextClassifier.from_bytes(TextClassifier.from_pipeline(pipeline).to_bytes(), source="test", fix="-")
    assert np.array_equal(classifier.probabilities(ASKED), pipeline.predict_proba(ASKED))
    assert list(classifier.classes) == list(pipeline.classes_)


def _rewrite(data: bytes, change: Callable[[dict[str, np.ndarray]], None], **zip_options: int) -> bytes:
    with np.load(io.BytesIO(data)) as arrays:
        contents = {name: arrays[name] for name in arrays.files}
    change(contents)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", **zip_options) as archive:  # type: ignore[arg-type]
        for name, array in contents.items():
            with archive.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, array, allow_pickle=True)
    return buffer.getvalue()


def _header(change: Callable[[dict[str, object]], None]) -> Callable[[dict[str, np.ndarray]], None]:
    def apply(arrays: dict[str, np.ndarray]) -> None:
        header = json.loads(arrays["header"].tobytes())
        change(header)
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

    return apply


_VALID = TextClassifier.train(TEXTS, LABELS).to_bytes()
CORRUPTIONS: dict[str, tuple[bytes, str]] = {
    "truncated": (_VALID[: len(_VALID) // 2], "not a classifier podium can read"),
    "garbage": (b"\x00" * 64, "it is not a zip of arrays"),
    "NaN weights": (_rewrite(_VALID, lambda a: a.update(coef=a["coef"] * np.nan)), "coef holds NaN"),
    "wrong shape": (_rewrite(_VALID, lambda a: a.update(intercept=a["intercept"][:1])), "do not fit"),
    "object array": (
        _rewrite(_VALID, lambda a: a.update(coef=np.array([print], dtype=object))),
        "coef.npy holds object, not numbers",
    ),
    "extra array": (_rewrite(_VALID, lambda a: a.update(extra=np.zeros(1))), "other arrays than its header declares"),
    "missing array": (_rewrite(_VALID, lambda a: a.pop("intercept")), "other arrays than its header declares"),
    "compressed": (_rewrite(_VALID, lambda a: None, compression=zipfile.ZIP_DEFLATED), "compressed"),
    "unknown analyzer": (
        _rewrite(_VALID, _header(lambda h: h["features"][0].update(analyzer="callable"))),  # type: ignore[index]
        "header is not valid (features.0.analyzer",
    ),
    "repeated term": (
        _rewrite(
            _VALID, _header(lambda h: h["features"][0]["vocabulary"].__setitem__(1, h["features"][0]["vocabulary"][0]))
        ),  # type: ignore[index]
        "vocabulary repeats a term",
    ),
    "not JSON": (
        _rewrite(_VALID, lambda a: a.update(header=np.frombuffer(b"{oops", dtype=np.uint8))),
        "header is not valid",
    ),
}


@pytest.mark.parametrize(("content", "problem"), CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupted_file_with_its_digest_recorded_is_one_clear_error(
    sqlite_settings: Settings, content: bytes, problem: str
) -> None:
    import hashlib

    sha256 = hashlib.sha256(content).hexdigest()
    with Podium.connect(sqlite_settings) as pod:
        pod.trained.folder.mkdir(parents=True)
        pod.trained.file(sha256).write_bytes(content)
        _record(pod, "intent-classifier", sha256)
        with pytest.raises(ModelFileError) as refused:
            pod.trained.load_classifier("intent-classifier")
    message = str(refused.value)
    assert problem in message and "retrain it: podium models learn" in message and "\n" not in message


def test_models_list_shows_the_trained_classifier_and_a_remote_model_as_remote(
    sqlite_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "podium.toml"
    config.write_text(
        '[models.far]\ntier = "frontier"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
        "price = { input_per_mtok = 1, output_per_mtok = 1 }\n"
    )
    monkeypatch.setenv("PODIUM_CONFIG", str(config))
    with Podium.connect(sqlite_settings) as pod:
        pod.trained.train_classifier("triage", TEXTS, LABELS)
        pod.trained.train_classifier("broken", TEXTS, LABELS[::-1])
        sha256 = pod.trained.recorded_sha256("triage")
        pod.trained.file(pod.trained.recorded_sha256("broken") or "").unlink()

    result = CliRunner().invoke(app, ["--home", str(sqlite_settings.home), "models", "list"])
    assert result.exit_code == 0, result.output
    listed = result.output
    assert f"triage  (local, trained)\n  sha256  {sha256}\n  state   sha256 ok\n" in listed
    assert "broken  (local, trained)\n" in listed and "state   model 'broken' (sha256" in listed
    assert "far  (frontier, remote)\n  sha256  -\n  state   remote: no local file to check\n" in listed
    assert (
        f"smollm2-135m  (local, packaged)\n  sha256  {podium.models.SMOLLM2_135M.sha256}\n  state   sha256 ok" in listed
    )


def test_a_classification_is_billed_for_the_words_it_reads(intent_model_file: IntentModelFile) -> None:
    """Its input tokens are the words, not the words plus the word pairs its features also count (11 here)."""
    assert intent_model_file.classifier.count_tokens("My card was stolen, what now?") == 6


def test_retraining_a_deployed_classifier_is_an_admins_audited_action(settings: Settings, tmp_path: Path) -> None:
    """`models learn` and `models train-intents` change what routes every ticket: without a key, or with the key
    of someone who is not an admin, nothing is trained; an admin's retraining is audited as theirs."""
    labelled = tmp_path / "labelled.csv"
    with labelled.open("w", newline="") as out:
        csv.writer(out).writerows([("text", "category"), *zip(TEXTS, LABELS, strict=True)])
    with Podium.connect(settings) as pod:
        pod.trained.train_classifier("triage", TEXTS, LABELS)
        with pod.engine.begin() as conn:  # a correction from a review: retraining is due
            row = {"id": "r1", "model": "triage", "text": ASKED[0], "label": LABELS[0], "source": "review"}
            conn.execute(tables.labels.insert().values(**row, at=time.time()))
        keys = {"admin": key_for(pod, TEST_ADMIN), "bob": key_for(pod, "bob@example.com", teams=["support"])}
        before = pod.trained.recorded_sha256("triage"), pod.trained.recorded_sha256(wf.INTENT_MODEL)
    home = ["--database-url", settings.resolved_database_url, "--home", str(settings.home)]
    for command in (["models", "learn"], ["models", "train-intents", str(labelled)]):
        refused = CliRunner().invoke(app, [*home, *command], env={"PODIUM_KEY": ""})
        assert refused.exit_code == 1 and "no key" in refused.output, refused.output
        refused = CliRunner().invoke(app, [*home, "--key", keys["bob"], *command])
        assert refused.exit_code == 1 and "may not models.train" in refused.output, refused.output
        with Podium.connect(settings) as pod:
            assert (pod.trained.recorded_sha256("triage"), pod.trained.recorded_sha256(wf.INTENT_MODEL)) == before
    for command in (["models", "learn"], ["models", "train-intents", str(labelled)]):
        done = CliRunner().invoke(app, [*home, "--key", keys["admin"], *command])
        assert done.exit_code == 0, done.output
    with Podium.connect(settings) as pod, pod.engine.connect() as conn:
        log = tables.audit_log
        rows = conn.execute(
            sa.select(log.c.actor, log.c.resource, log.c.decision).where(log.c.action == "models.train")
        ).all()
        assert pod.trained.recorded_sha256("triage") != before[0] and pod.trained.has(wf.INTENT_MODEL)
    assert [tuple(r) for r in rows] == [
        ("person:bob@example.com", "model:triage", "denied"),
        ("person:bob@example.com", f"model:{wf.INTENT_MODEL}", "denied"),
        (f"person:{TEST_ADMIN}", "model:triage", "allowed"),
        (f"person:{TEST_ADMIN}", f"model:{wf.INTENT_MODEL}", "allowed"),
    ]
