"""Bad input gets a clear error that names the fix, and changes nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from podium import ConfigurationError, InputDataError, ModelFileError, NotFoundError, Podium, Settings, UsageError
from podium.agents import AgentIdentity
from podium.audit import digest
from podium.cli import app
from podium.errors import ActionDenied
from podium.models import SMOLLM2_135M, LlamaCppModel, TextClassifier
from podium.store import tables
from podium.testing import TEST_ADMIN, key_for, sign_in
from podium_examples.support_triage.tickets import load_tickets
from tests._people import operator
from tests.conftest import IntentModelFile

runner = CliRunner()


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    """The exit code and what the command said, less the line a read command starts with (its home)."""
    result = runner.invoke(app, ["--home", str(settings.home), *args])
    failed = result.exception and not isinstance(result.exception, SystemExit)  # exits say what they mean
    said = "".join(line for line in result.output.splitlines(keepends=True) if not WHERE.match(line))
    return result.exit_code, said + (str(result.exception) if failed else "")


WHERE = re.compile(r"^home .*, database .*$")


def test_an_unknown_run_id_is_named_with_the_command_that_lists_runs(settings: Settings) -> None:
    with Podium.connect(settings) as pod:
        ops = operator(pod, "ops")
        for action in (
            pod.runs.get,
            pod.runs.steps,
            partial(pod.runs.cancel, by=ops),
            partial(pod.runs.resume, by=ops),
        ):
            with pytest.raises(NotFoundError, match=r"no run with id 'nope'\. `podium runs list` shows run ids"):
                action("nope")


def test_an_unknown_workflow_is_refused_with_the_known_ones(sqlite_settings: Settings) -> None:
    with (
        Podium.connect(sqlite_settings) as pod,
        pytest.raises(NotFoundError, match="no workflow named 'no_such_workflow' has been launched"),
    ):
        pod.runs.list(workflow="no_such_workflow")


def test_the_cli_reports_errors_in_one_line_with_an_exit_code(sqlite_settings: Settings) -> None:
    with Podium.connect(sqlite_settings) as pod:
        alice = key_for(pod, "alice")
    podium_cli = Path(sys.executable).parent / "podium"
    done = subprocess.run(
        [str(podium_cli), "--home", str(sqlite_settings.home), "runs", "show", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    said = [line for line in done.stderr.splitlines() if not WHERE.match(line)]  # less the home it read
    assert said == ["error: no run with id 'nope'. `podium runs list` shows run ids."]
    code, output = cli(sqlite_settings, "--key", alice, "review", "approve", "nope")
    assert code != 0
    assert "no review request 'nope'" in output


def test_a_database_that_does_not_answer_is_named_without_its_password(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="postgresql://podium:secret@127.0.0.1:1/podium")
    with pytest.raises(ConfigurationError) as error:
        Podium.connect(settings)
    message = str(error.value)
    assert "127.0.0.1:1" in message and "did not answer" in message and "PODIUM_DATABASE_URL" in message
    assert "secret" not in message


def test_a_database_url_of_an_unsupported_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="supports SQLite and PostgreSQL, not 'mysql'"):
        Podium.connect(Settings(home=tmp_path, database_url="mysql://root@127.0.0.1/test"))
    with pytest.raises(ConfigurationError, match="is not a database URL"):
        Podium.connect(Settings(home=tmp_path, database_url="not a url"))


def test_a_missing_model_file_is_refused_with_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="is missing.*Reinstall"):
        LlamaCppModel("smollm2-135m", tmp_path / "absent.gguf", SMOLLM2_135M.sha256, fix="Reinstall it: make install.")


def test_a_model_file_whose_sha256_does_not_match_is_not_loaded(tmp_path: Path) -> None:
    impostor = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    impostor.write_bytes(b"GGUF but not the file podium recorded")
    with pytest.raises(ModelFileError, match=f"but podium recorded {SMOLLM2_135M.sha256}"):
        LlamaCppModel("smollm2-135m", impostor, SMOLLM2_135M.sha256)


def test_a_trained_model_file_that_was_replaced_is_not_loaded(
    sqlite_settings: Settings, intent_model_file: IntentModelFile
) -> None:
    with Podium.connect(sqlite_settings) as pod:
        pod.trained.adopt("intent-classifier", intent_model_file.path, intent_model_file.sha256)
        stored = pod.trained.file(intent_model_file.sha256)
        stored.write_bytes(stored.read_bytes() + b"tampered")
        with pytest.raises(ModelFileError, match="was changed or replaced.*retrain it"):
            pod.trained.load_classifier("intent-classifier")
        with pytest.raises(ModelFileError, match="has not trained a model named 'other'"):
            pod.trained.load_classifier("other")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("message,label\nhello,card_arrival\n", "the header is message,label"),
        ("text,category\nmy card?,\n", "line 2: a ticket needs a non-empty text and category"),
        ("text,category\nmy card, it is late,card_arrival\n", "line 2: a ticket needs"),
        ("text,category\n", "holds no tickets"),
        (b"text,category\n\xff\xfe,card\n", "is not UTF-8 text"),
    ],
)
def test_a_malformed_ticket_file_is_refused_saying_where(tmp_path: Path, content: str | bytes, problem: str) -> None:
    path = tmp_path / "tickets.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(InputDataError, match=problem):
        load_tickets(path)


def test_the_demo_refuses_a_malformed_ticket_file_before_starting_any_run(
    sqlite_settings: Settings, intent_model_file: IntentModelFile, tmp_path: Path
) -> None:
    bad = tmp_path / "tickets.csv"
    bad.write_text("text,category\nfine,card_arrival\n,\n")
    with Podium.connect(sqlite_settings) as pod:
        pod.trained.adopt("intent-classifier", intent_model_file.path, intent_model_file.sha256)
    code, output = cli(sqlite_settings, "demo", "--tickets", "2", "--ticket-file", str(bad))
    assert code != 0
    assert "line 3: a ticket needs a non-empty text and category" in output
    with Podium.connect(sqlite_settings) as pod:
        assert pod.runs.list() == []
        with pod.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(tables.ledger)).scalar() == 0


def test_training_needs_labels_for_every_text() -> None:
    with pytest.raises(InputDataError, match="one label per text"):
        TextClassifier.train(["a", "b"], ["x"])
    with pytest.raises(InputDataError, match="at least two different labels"):
        TextClassifier.train(["a", "b"], ["x", "x"])


# -- the class of faults: whatever escapes a command is one line and an exit code, never a traceback ---------


@pytest.mark.parametrize(
    ("failure", "line", "code"),
    [
        (
            RuntimeError("boom\n  second line"),
            "error: podium failed unexpectedly (RuntimeError: boom second line). This is a bug in podium: please "
            "report it with the command you ran.",
            1,
        ),
        (
            PermissionError(13, "Permission denied", "/x"),
            "error: Permission denied: /x. Check the path and its permissions.",
            1,
        ),
        (InputDataError("a [bold]mistake[/] to fix"), "error: a [bold]mistake[/] to fix", 2),
    ],
)
def test_what_a_command_raises_is_one_literal_line_and_an_exit_code(
    sqlite_settings: Settings, monkeypatch: pytest.MonkeyPatch, failure: Exception, line: str, code: int
) -> None:
    def fail(*_: object, **__: object) -> Podium:
        raise failure

    with Podium.connect(sqlite_settings):
        pass  # a home with a database in it, which a read command opens
    monkeypatch.setattr(Podium, "connect", fail)
    assert cli(sqlite_settings, "runs", "list") == (code, line + "\n")


def _emptied(db: Path) -> None:
    db.write_bytes(b"")


def _overwritten(db: Path) -> None:
    db.write_bytes(b"not a database " * 1000)


def _cut_short(db: Path) -> None:
    db.write_bytes(db.read_bytes()[:8192])


def _made_a_folder(db: Path) -> None:
    db.unlink()
    db.mkdir()


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (_emptied, "podium.db is empty (0 bytes): podium never leaves a database file like that"),
        (_overwritten, "podium.db is not a SQLite database"),
        (_cut_short, "is damaged (database disk image is malformed). Restore it from a backup"),
        (_made_a_folder, "cannot read the SQLite database"),
    ],
)
def test_a_damaged_database_file_is_refused_in_one_line_and_never_started_afresh(
    sqlite_settings: Settings, damage: Callable[[Path], None], problem: str
) -> None:
    with Podium.connect(sqlite_settings):
        pass  # a database with podium's tables in it
    db = sqlite_settings.home / "podium.db"
    damage(db)
    left = db.read_bytes() if db.is_file() else None
    code, output = cli(sqlite_settings, "runs", "list")
    assert code == 2 and problem in output and output.count("\n") == 1, output
    assert (db.read_bytes() if db.is_file() else None) == left
    assert sorted(p.name for p in db.parent.iterdir() if p.name.startswith("podium.db")) == ["podium.db"]


def test_a_new_database_file_is_never_empty(tmp_path: Path) -> None:
    with Podium.connect(Settings(home=tmp_path / "new")):
        db = tmp_path / "new" / "podium.db"
        assert db.read_bytes()[:16] == b"SQLite format 3\x00"
    assert [p.name for p in db.parent.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_a_run_started_by_name_is_checked_against_the_workflow_before_it_is_queued(settings: Settings) -> None:
    from tests.review import _app  # declares tests.refund(customer: str, amount_usd: float, ...)

    with Podium.connect(settings) as pod:
        pod.runs.declare([_app.refund_flow.name])  # as a worker's launch records it, with its parameters
        ops = sign_in(pod, "ops@example.com")
        for args, problem in [
            ([5], "argument 1 (customer): expected string, got int 5"),
            ([{"id": 1}], "argument 1 (customer): expected string, got dict"),
            ([], "missing customer, amount_usd"),
            (["c-1", 5.0, 0.9, "", [], "extra"], "6 arguments given, it takes at most 5"),
            (["c-1", "x" * 100_000], "100,000 characters long; give at most 65,536"),
            (["c-1", float("nan")], "finite number"),
        ]:
            with pytest.raises(UsageError, match=re.escape(problem)):
                pod.runs.start(_app.refund_flow.name, args, by=ops)
        assert pod.runs.list() == [], "nothing was queued"
        assert pod.runs.start(_app.refund_flow.name, ["c-1", 12.5], by=ops).status == "ENQUEUED"


def test_starting_a_run_is_a_decision_and_an_audit_entry_of_who_started_it(settings: Settings) -> None:
    """Anyone in the directory may start a run (it spends budget and has side effects, so it is on their name);
    an agent may not, and its refusal is audited with nothing queued."""
    from tests.review import _app

    with Podium.connect(settings) as pod:
        pod.runs.declare([_app.refund_flow.name])
        pod.agents.register(AgentIdentity("starter", "ops-lead@example.com", (), ()))
        agent = sign_in(pod, "agent:starter")
        with pytest.raises(ActionDenied, match="may not run.start"):
            pod.runs.start(_app.refund_flow.name, ["c-1", 12.5], by=agent, run_id="by-an-agent")
        assert pod.runs.list() == [], "nothing was queued"
        run = pod.runs.start(_app.refund_flow.name, ["c-1", 12.5], by=sign_in(pod, "ops@example.com"), run_id="r-1")
        again = pod.runs.start(_app.refund_flow.name, ["c-1", 12.5], by=sign_in(pod, "eve@example.com"), run_id="r-1")
        assert run.id == again.id == "r-1" and [r.id for r in pod.runs.list()] == ["r-1"]
        log = tables.audit_log
        with pod.engine.connect() as conn:
            rows = conn.execute(
                sa.select(log.c.actor, log.c.resource, log.c.decision, log.c.input_digest, log.c.detail).where(
                    log.c.action == "run.start"
                )
            ).all()
    assert [(r.actor, r.resource, r.decision) for r in rows] == [
        ("agent:starter", "run:by-an-agent", "denied"),
        ("person:ops@example.com", "run:r-1", "allowed"),  # started once: starting it again logs nothing
    ]
    assert rows[1].input_digest == digest(["c-1", 12.5]) and "tests.refund" in rows[1].detail


def test_a_budget_on_nothing_or_out_of_bounds_is_refused_and_nothing_is_written(settings: Settings) -> None:
    with Podium.connect(settings) as pod:
        cfo = operator(pod, "cfo@example.com")
        for scope in ("agent:nobody", "workflow:no.such.workflow", "team:nobody", "key:nope"):
            with pytest.raises(NotFoundError, match=f"no {scope.split(':')[0]} '{scope.split(':')[1]}' to budget"):
                pod.budgets.set(scope, 5.0, by=cfo)
        for limit in (float("nan"), float("inf"), 1e300, -5.0):
            with pytest.raises(UsageError, match="give a number from 0 to 1e"):
                pod.budgets.set("team:admins", limit, by=cfo)  # a team someone (the cfo) is in
        assert pod.budgets.list() == []


def test_an_agent_added_with_a_bad_budget_is_not_added(settings: Settings) -> None:
    with Podium.connect(settings) as pod:
        key = key_for(pod, TEST_ADMIN)
    for budget in ("-5", "nan", "1e300"):
        result = runner.invoke(
            app,
            ["--database-url", settings.resolved_database_url, "--home", str(settings.home), "--key", key,
             "agents", "add", "x3", "--owner", "ops@example.com", "--budget-usd", budget],
        )  # fmt: skip
        assert result.exit_code == 2 and "give a number from 0 to 1e+09" in result.output, result.output
    with Podium.connect(settings) as pod:
        assert [a.name for a in pod.agents.list()] == []  # before: x3, registered with a live key
        with pod.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(tables.agent_keys)).scalar() == 0


def test_a_ticket_is_its_file_row_and_content_so_another_file_never_reuses_its_run(tmp_path: Path) -> None:
    first, second, again = (
        tmp_path / "a" / "tickets.csv",
        tmp_path / "b" / "tickets.csv",
        tmp_path / "c" / "tickets.csv",
    )
    for path, text in ((first, "my card is late"), (second, "my card was stolen"), (again, "my card is late")):
        path.parent.mkdir()
        path.write_text(f"text,category\n{text},card_arrival\n")
    ids = [load_tickets(path)[0].id for path in (first, second, again)]
    assert ids[0] != ids[1], "before: both were tickets-1, and the second file's ticket got the first one's run"
    assert ids[0] == ids[2], "the same ticket is the same run again (no reply sent twice)"


def test_texts_a_classifier_cannot_learn_from_are_an_input_error_not_a_crash() -> None:
    with pytest.raises(InputDataError, match="cannot train on these texts .*empty vocabulary.*Check the labelled file"):
        TextClassifier.train(["a", "b", "c", "d"], ["x", "x", "y", "y"])  # before: scikit-learn's ValueError
