"""Scale-out as the README says: many processes start at once on one database, and many homes sign one audit log
with one key."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from podium import Podium, Settings
from podium.agents import AgentIdentity
from podium.store import tables

REPO = Path(__file__).resolve().parents[1]


def test_processes_declaring_a_new_agent_at_once_register_it_once(settings: Settings) -> None:
    """Every worker of an app declares its agents as it starts; on a new database they all find none and insert."""
    identity = AgentIdentity("triage", "ops-lead@example.com", ("smollm2-135m",), ())
    together = threading.Barrier(4)
    failures: list[BaseException] = []

    def declare(pod: Podium) -> None:
        together.wait()
        try:
            pod.agents.register(identity)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    with Podium.connect(settings) as pod:
        threads = [threading.Thread(target=declare, args=(pod,)) for _ in range(together.parties)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        with pod.engine.connect() as conn:
            names = conn.execute(sa.select(tables.agents.c.name)).scalars().all()
    assert failures == [] and names == ["triage"], failures


_START = """
import sys, time
from pathlib import Path
import podium
from tests import _apps

for home in sys.argv[1:]:
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    while time.time() < start:
        pass
    with podium.launch(podium.Settings(home=Path(home)), _apps.APP):
        pass
print("ready", flush=True)
"""


def test_three_processes_starting_at_once_on_a_fresh_sqlite_home_all_start(tmp_path: Path) -> None:
    """Three processes, each with podium imported, launch on the same fresh home at the same instant: the
    migrations, the executor ids, the agents and workflows they declare. Several homes, one after another."""
    homes = [str(tmp_path / f"home-{trial}") for trial in range(5)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _START, *homes],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for _ in range(3)
    ]
    try:
        for _home in homes:
            for process in processes:
                assert process.stdout is not None and process.stdout.readline() == "ready\n"
            start = f"{time.time() + 0.2}\n"
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(start)
                process.stdin.flush()
        outputs = [process.communicate(timeout=60)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [process.returncode for process in processes] == [0, 0, 0], "\n".join(outputs)
