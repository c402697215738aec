"""A worker process runs what the CLI queues by name, with JSON arguments validated against the signature."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from podium import Podium, Settings
from podium.testing import key_for
from tests.conftest import IntentModelFile

pytestmark = pytest.mark.slow

PODIUM = str(Path(sys.executable).parent / "podium")
TICKET = {"id": "cli-1", "customer": "customer-1", "text": "I am still waiting on my card?", "category": "card_arrival"}


def podium_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PODIUM, "--database-url", settings.resolved_database_url, "--home", str(settings.home), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_worker_runs_a_run_started_from_the_cli(settings: Settings, intent_model_file: IntentModelFile) -> None:
    with Podium.connect(settings) as pod:
        pod.trained.adopt("intent-classifier", intent_model_file.path, intent_model_file.sha256)
        key = ["--key", key_for(pod, "ops@example.com")]  # starting a run is on someone's name
    worker = subprocess.Popen(
        [
            PODIUM,
            "--database-url",
            settings.resolved_database_url,
            "--home",
            str(settings.home),
            "worker",
            "podium_examples.support_triage.workflow:app",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        ready = worker.stdout.readline()
        assert "runs support_triage" in ready, ready

        started = podium_cli(settings, *key, "runs", "start", "support_triage", json.dumps(TICKET), "--run-id", "cli-1")
        assert started.returncode == 0, started.stderr
        again = podium_cli(settings, *key, "runs", "start", "support_triage", json.dumps(TICKET), "--run-id", "cli-1")
        assert again.returncode == 0, again.stderr

        deadline = time.monotonic() + 120
        with Podium.connect(settings) as pod:
            while pod.runs.get("cli-1").status != "SUCCESS" and time.monotonic() < deadline:
                time.sleep(0.2)
            run = pod.runs.get("cli-1")
            assert run.status == "SUCCESS", run.error
            assert (run.output.ticket_id, run.output.intent, run.output.outcome) == ("cli-1", "card_arrival", "sent")
            assert [m.recipient for m in pod.outbox.messages()] == ["customer-1"]

        unknown = podium_cli(settings, *key, "runs", "start", "no_such_flow", "{}")
        assert unknown.returncode == 2
        assert "no workflow named 'no_such_flow' has been launched" in unknown.stderr
        assert "support_triage" in unknown.stderr
        not_json = podium_cli(settings, *key, "runs", "start", "support_triage", "{id: 1}")
        assert not_json.returncode == 2
        assert "argument 1 is not a JSON value" in not_json.stderr
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    log = worker.stdout.read()  # the worker's log: one line as the run started, one as it finished
    assert "run cli-1 (support_triage) started" in log, log
    assert "run cli-1 (support_triage) finished in" in log, log
