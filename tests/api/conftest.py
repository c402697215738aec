"""An app of `podium serve` over a connected Podium (no workflows launched), on SQLite and PostgreSQL, and a
client of it that holds a person's key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from podium import Podium, Settings
from podium.api import Gatekeeper, create_app
from podium.testing import key_for

READER = "rita@example.com"  # a person with a key, in no review's chain


@dataclass(frozen=True)
class Api:
    pod: Podium
    client: TestClient
    auth: dict[str, str]  # READER's `Authorization` header


@pytest.fixture
def pod(settings: Settings) -> Iterator[Podium]:
    with Podium.connect(settings) as connected:
        yield connected


@pytest.fixture
def api(pod: Podium) -> Iterator[Api]:
    with served(pod) as served_api:
        yield served_api


@pytest.fixture
def sqlite_api(sqlite_settings: Settings) -> Iterator[Api]:
    """For what does not depend on the database: the documents the API serves."""
    with Podium.connect(sqlite_settings) as connected, served(connected) as served_api:
        yield served_api


@contextmanager
def served(pod: Podium) -> Iterator[Api]:
    """Answers as `podium serve` does, to the TestClient's host; a bug is a 500 response, as under uvicorn."""
    app = create_app(pod, allowed_hosts=["testserver"], gatekeeper=Gatekeeper(pod, max_refusals=3))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(pod, client, {"Authorization": f"Bearer {key_for(pod, READER)}"})
