"""Scale-out as the README says: many processes start at once on one database, and many homes sign one audit log
with one key."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from podium import Podium, Settings
from podium.agents import AgentIdentity
from podium.audit import AuditEntry, append
from podium.errors import ConfigurationError
from podium.store import tables
from tests import _apps
from tests.conftest import POSTGRES_URL
from tests.docs._pages import blocks, commands
from tests.docs.test_commands_run import _clone, _run

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


def test_processes_connecting_at_once_to_a_new_database_all_connect(settings: Settings) -> None:
    """Each migrates the database on connecting: podium's migrations and DBOS's, at the same moment."""
    together = threading.Barrier(4)
    failures: list[BaseException] = []

    def connect() -> None:
        together.wait()
        try:
            Podium.connect(settings).close()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=connect) for _ in range(together.parties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == [], failures
    with Podium.connect(settings) as pod, pod.engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version FROM podium_schema_version")).scalars().all()
    assert sorted(versions) == list(range(1, len(versions) + 1))


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
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])},
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


def test_a_worker_of_another_home_without_the_logs_key_refuses_to_start(settings: Settings, tmp_path: Path) -> None:
    """Another home on the same database has another default key path: its worker must not sign with a new key."""
    with Podium.connect(settings) as pod:
        with pod.engine.begin() as conn:
            append(conn, AuditEntry("first", "agent:a", "tool.call", "tool", "allowed"))
        head = pod.audit.checkpoint()
    assert head is not None
    other = settings.model_copy(update={"home": tmp_path / "other", "database_url": settings.resolved_database_url})
    fix = f"signed with key {head.key_id[:16]}.*no audit signing key at {other.audit_key_file}.*PODIUM_AUDIT_KEY="
    with pytest.raises(ConfigurationError, match=fix):
        _apps.launch(other)
    assert not other.audit_key_file.exists()
    with _apps.launch(other.model_copy(update={"audit_key": settings.audit_key_file})) as worker:
        signed = worker.audit.checkpoint()  # its launch registered its agents: audited, so signed now
        assert signed is not None and signed.key_id == head.key_id and signed.tree_size > head.tree_size


def test_homes_with_witness_folders_of_their_own_each_verify_the_one_log(settings: Settings, tmp_path: Path) -> None:
    """Two homes on one database with one key, each with its default witness `<home>-witness`: each witness holds
    the heads its home signed, verify passes from both, and a head dropped from the database is caught from the
    home that witnessed it."""
    with Podium.connect(settings) as first:
        with first.engine.begin() as conn:
            append(conn, AuditEntry("a", "agent:a", "tool.call", "tool", "allowed"))
        first.audit.checkpoint()
        first.audit.export_key(tmp_path / "shared.pem")  # the second home is given the log's key
    other = settings.model_copy(
        update={
            "home": tmp_path / "other",
            "database_url": settings.resolved_database_url,
            "audit_key": tmp_path / "shared.pem",
        }
    )
    with Podium.connect(settings) as first, Podium.connect(other) as second:
        for pod, seq in ((second, "b"), (first, "c"), (second, "d")):
            with pod.engine.begin() as conn:
                append(conn, AuditEntry(seq, "agent:a", "tool.call", "tool", "allowed"))
            pod.audit.checkpoint()
        assert [h.tree_size for h in first.audit.heads()] == [1, 2, 3, 4]
        assert first.verify_audit().ok and second.verify_audit().ok
        with first.engine.begin() as conn:  # a head only the second home's witness holds
            conn.execute(tables.tree_heads.delete().where(tables.tree_heads.c.tree_size == 2))
        assert first.verify_audit().ok, "its witness never held that head; every entry still verifies"
        result = second.verify_audit()
    assert not result.ok and result.problem is not None and "(size 2, root" in result.problem


# -- the README's scale-out section, as written ------------------------------------------------------------------


@pytest.fixture
def database_name() -> Iterator[str]:
    """A name for the database the README's `createdb` makes, dropped afterwards."""
    name = f"podium_scale_out_{uuid.uuid4().hex[:12]}"
    yield name
    admin = sa.create_engine(
        sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _scale_out_script(name: str) -> str:
    """The README's scale-out block as one bash session, its database renamed `name` on the test server.

    Like a person, it waits for each worker's "worker <id> runs …" line before the next command, and for the run to
    end before looking at it; it stops if a command fails, and ends when the workers it stopped have exited."""
    (block,) = [b for b in blocks("README.md") if b.not_run and "tests/test_scale_out.py" in b.not_run]
    server = sa.make_url(POSTGRES_URL)
    where = f"-h {server.host or '127.0.0.1'} -p {server.port or 5432} -U {server.username or 'postgres'}"
    replace = {
        "createdb -h 127.0.0.1 -U postgres podium": f"createdb {where} {name}",
        "postgresql://postgres@127.0.0.1:5432/podium": server.set(database=name).render_as_string(hide_password=False),
    }
    assert all(old in block.text for old in replace), "the README's scale-out block changed: update `replace`"
    lines = ['check() { if [ "$1" -ne 0 ]; then echo "@@ exited $1"; exit 99; fi; }']
    workers = 0
    for command in commands(block):
        text = command.text
        for old, new in replace.items():
            text = re.sub(rf"{re.escape(old)}(?![\w-])", new, text)
        lines.append(f"echo @@ $SECONDS s: {shlex.quote(text)}")
        if command.background:
            workers += 1
            log = f".worker-{workers}.log"
            lines += [
                re.sub(r"&\s*(#.*)?$", f"> {log} 2>&1 &", text),
                f"until grep -q '^worker ' {log}; do kill -0 $! || {{ cat {log}; exit 98; }}; sleep 0.1; done",
            ]
            continue
        lines += ["{", text, "}", "check $?"]
        if " runs start " in text:  # each worker logs the runs it ends
            lines.append("until grep -qE '\\(support_triage\\) (finished|failed)' .worker-*.log; do sleep 0.1; done")
    return "\n".join([*lines, "wait", "cat .worker-*.log"]) + "\n"


@pytest.mark.postgres
def test_the_readmes_scale_out_section_runs_as_written_with_two_homes(tmp_path: Path, database_name: str) -> None:
    """Two homes (two machines) on one PostgreSQL database: both workers start, one runs the ticket, both homes
    sign with the one shared key and verify the log, and SIGTERM stops both workers."""
    folder = _clone(tmp_path / "clone")  # as the docs runner runs pages: a clone's files, no PODIUM_* settings
    done = _run(_scale_out_script(database_name), folder)
    assert done.returncode == 0, done.stdout[-4000:]
    assert done.stdout.count("audit log verified") == 2, done.stdout[-4000:]
    assert re.search(r"\(support_triage\) finished", done.stdout), done.stdout[-4000:]
    executors = set(re.findall(r"^worker (\S+) runs support_triage", done.stdout, re.MULTILINE))
    assert len(executors) == 2, done.stdout[-4000:]
    shared = folder / "shared"
    key = shared / "audit-signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert not [*folder.glob(".podium*/audit-signing-key.pem")], "no home made a key of its own"
    url = sa.make_url(POSTGRES_URL).set(database=database_name).render_as_string(hide_password=False)
    with Podium.connect(Settings(home=folder / ".podium", database_url=url, audit_key=key)) as pod:
        heads = pod.audit.heads()
        assert heads and {head.key_id for head in heads} == {pod.audit.signer.key_id}
    witnessed = {int(path.stem) for path in (shared / "witness").glob("*.json")}
    assert witnessed and witnessed <= {head.tree_size for head in heads}
