"""Fixtures: a fresh SQLite file or a fresh PostgreSQL database per test, and a trained intent model per session.

No test can reach a remote model provider: pydantic-ai's guard is off for the whole session.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydantic_ai.models
import pytest

from podium import Settings
from podium.models import TextClassifier, sha256_of
from podium.testing import temporary_postgres_database

pydantic_ai.models.ALLOW_MODEL_REQUESTS = False
# pytest-xdist gives its workers COLUMNS=80, which Rich reads once, when the CLI's consoles are made: tables would
# be cut to 80 columns there and not in a serial run. Tests that want a width pass it to the command they run.
os.environ.pop("COLUMNS", None)

POSTGRES_URL = os.environ.get("PODIUM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database on the real server, dropped afterwards."""
    with temporary_postgres_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for an empty database of each kind."""
    if request.param == "sqlite":
        return Settings(home=tmp_path / "podium")
    return Settings(home=tmp_path / "podium", database_url=request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "podium")


@dataclass(frozen=True)
class IntentModelFile:
    path: Path
    sha256: str
    classifier: TextClassifier


@pytest.fixture(scope="session")
def intent_model_file(tmp_path_factory: pytest.TempPathFactory) -> IntentModelFile:
    """The triage example's intent classifier, trained once per session on BANKING77's training set."""
    from podium_examples.support_triage.tickets import TRAIN_CSV, load_tickets

    examples = load_tickets(TRAIN_CSV)
    classifier = TextClassifier.train([t.text for t in examples], [t.category for t in examples])
    path = tmp_path_factory.mktemp("models") / "intent-classifier.npz"
    classifier.save(path)
    return IntentModelFile(path, sha256_of(path), classifier)


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status  # noqa: PLW0603 - kept for pytest_unconfigure, which is not given it
    _exit_status = exitstatus


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A run left waiting for a person (by a test that failed before deciding it) holds a DBOS thread in a
    durable wait until its deadline, which may be a day away: once everything is reported, end the process
    instead of waiting for it, with pytest's exit status. Its state is in the database, as after any exit."""
    if any(t.name.startswith("dbos-executor") and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)
