"""The live log's trust anchor sits outside the database: signed heads are published to witnesses (a folder, or an
HTTP endpoint), verify checks the log against what they witnessed, a checkpoint refuses a key they do not know,
and verify checks the size counter against the entries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from podium import Podium, Settings
from podium.audit import AuditEntry, append
from podium.audit._log import leaf_hash_hex
from podium.cli import app
from podium.errors import AuditTampered, ConfigurationError
from podium.store import tables
from tests.audit._witness_server import LoopbackWitness
from tests.audit.test_log import _rehash_edit

ENTRIES = 6
log = tables.audit_log


def _append(pod: Podium, first: int, count: int = 1) -> None:
    with pod.engine.begin() as conn:
        for n in range(first, first + count):
            append(conn, AuditEntry(f"key-{n}", "agent:a", "tool.call", f"tool-{n}", "allowed", "run", n))


@pytest.fixture
def audited(settings: Settings) -> Iterator[Podium]:
    with Podium.connect(settings) as pod:
        _append(pod, 1, ENTRIES)
        yield pod


@pytest.fixture
def witness() -> Iterator[LoopbackWitness]:
    with LoopbackWitness().running() as running:
        yield running


def _rewrite_and_drop_the_heads(pod: Podium) -> None:
    """What whoever can write the database does: edit a signed entry, recompute its leaf hash, delete every signed
    head and the "last head" file beside the database, so that nothing in reach remembers the old root."""
    with pod.engine.begin() as conn:
        _rehash_edit(conn)
        conn.execute(tables.tree_heads.delete())
    for remembered in pod.settings.home.glob("*last-head*"):
        remembered.unlink()


def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["--database-url", settings.resolved_database_url, "--home", str(settings.home), *args],
        env={"COLUMNS": "250"},
    )
    return result.exit_code, result.output


def test_a_rewrite_that_drops_the_heads_and_the_last_head_file_is_caught_by_the_witness(audited: Podium) -> None:
    assert audited.audit.checkpoint() is not None
    _rewrite_and_drop_the_heads(audited)
    result = audited.verify_audit()
    assert not result.ok, "the rewritten log must not verify"
    assert result.problem is not None and "(size 6, root" in result.problem and "missing" in result.problem
    with pytest.raises(AuditTampered, match="size 6.*missing"):
        audited.audit.checkpoint()
    assert audited.audit.heads() == [], "nothing was signed on top of the rewrite"
    code, output = _cli(audited.settings, "audit", "verify")
    assert code == 1 and "audit log BROKEN" in output, output


def test_the_default_witness_is_a_folder_beside_the_home_not_in_it(audited: Podium) -> None:
    head = audited.audit.checkpoint()
    assert head is not None
    folder = audited.settings.home.parent / f"{audited.settings.home.name}-witness"
    assert [path.name for path in folder.iterdir()] == [f"{6:020d}.json"]
    assert not any(path.is_relative_to(audited.settings.home) for path in folder.iterdir())


def test_every_witnessed_head_must_still_be_in_the_database(audited: Podium) -> None:
    audited.audit.checkpoint()
    _append(audited, ENTRIES + 1)
    audited.audit.checkpoint()
    with audited.engine.begin() as conn:  # an older head only: the latest one still pins every entry
        conn.execute(tables.tree_heads.delete().where(tables.tree_heads.c.tree_size == ENTRIES))
    result = audited.verify_audit()
    assert not result.ok
    assert result.problem is not None and result.problem.startswith("a head podium signed (size 6, root")


@pytest.mark.parametrize("how", ["replaced", "deleted"])
def test_a_checkpoint_refuses_a_key_that_is_not_the_witnessed_one(audited: Podium, how: str) -> None:
    first = audited.audit.checkpoint()
    assert first is not None
    _append(audited, ENTRIES + 1)
    key_file = audited.settings.audit_key_file
    if how == "replaced":
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        key_file.write_bytes(pem)
    else:
        key_file.unlink()  # a signed log never gets a fresh key: the checkpoint says which one to give it
    refused = (AuditTampered, "not the key") if how == "replaced" else (ConfigurationError, "no audit signing key")
    with Podium.connect(audited.settings) as restarted:
        with pytest.raises(refused[0], match=f"{first.key_id[:16]}.*{refused[1]}|{refused[1]}.*{first.key_id[:16]}"):
            restarted.audit.checkpoint()
        assert restarted.audit.heads() == [first], "nothing was signed with another key"
    assert key_file.exists() == (how == "replaced")


def _lower_the_size(conn: sa.Connection) -> None:
    conn.execute(tables.audit_size.update().values(size=tables.audit_size.c.size - 1))


def _insert_past_the_size(conn: sa.Connection) -> None:
    entry = AuditEntry("forged", "agent:a", "tool.call", "tool-x", "allowed")
    conn.execute(log.insert().values(**entry.columns(), seq=ENTRIES + 1, leaf_hash=leaf_hash_hex(ENTRIES + 1, entry)))


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize("tamper", [_lower_the_size, _insert_past_the_size])
def test_verify_checks_the_size_counter_against_the_entries(audited: Podium, tamper: object, signed: bool) -> None:
    """A counter behind the entries makes every later append collide (IntegrityError): verify must say so."""
    if signed:
        audited.audit.checkpoint()
    assert callable(tamper)
    with audited.engine.begin() as conn:
        tamper(conn)
    with pytest.raises(sa.exc.IntegrityError), audited.engine.begin() as conn:
        append(conn, AuditEntry("next", "agent:a", "tool.call", "tool-n", "allowed"))
    result = audited.verify_audit()
    assert not result.ok
    assert result.problem is not None and "size counter" in result.problem, result.problem


def test_heads_are_published_to_an_http_witness_and_the_log_is_checked_against_it(
    audited: Podium, witness: LoopbackWitness
) -> None:
    settings = audited.settings.model_copy(update={"audit_witnesses": (witness.url,)})
    with Podium.connect(settings) as pod:
        head = pod.audit.checkpoint()
        assert head is not None and witness.heads[ENTRIES]["root_hash"] == head.root_hash
        assert pod.verify_audit().ok
        _rewrite_and_drop_the_heads(pod)
        result = pod.verify_audit()
        assert not result.ok and result.problem is not None and witness.url in result.problem
        with pytest.raises(AuditTampered, match="size 6.*missing"):
            pod.audit.checkpoint()


def test_a_witness_that_does_not_answer_stops_the_checkpoint_loudly_and_catches_up_later(
    audited: Podium, witness: LoopbackWitness
) -> None:
    settings = audited.settings.model_copy(update={"audit_witnesses": (witness.url,)})
    with Podium.connect(settings) as pod:
        witness.available = False
        with pytest.raises(ConfigurationError, match=f"{witness.url}.*503.*PODIUM_AUDIT_WITNESSES"):
            pod.audit.checkpoint()
        with pytest.raises(ConfigurationError, match=f"{witness.url}.*503"):
            pod.verify_audit()
        podium = Path(sys.executable).parent / "podium"
        where = ["--database-url", settings.resolved_database_url, "--home", str(settings.home)]
        done = subprocess.run(
            [str(podium), *where, "audit", "checkpoint"],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PODIUM_AUDIT_WITNESSES": witness.url, "COLUMNS": "400"},
        )
        assert done.returncode == 2 and done.stderr.startswith(f"error: the audit witness {witness.url}"), done.stderr
        witness.available = True
        head = pod.audit.checkpoint()
        assert head is not None and sorted(witness.heads) == [ENTRIES]


def test_witnesses_are_set_as_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PODIUM_AUDIT_WITNESSES", f"http://127.0.0.1:9/w, {tmp_path / 'w'}")
    assert Settings().audit_witnesses == ("http://127.0.0.1:9/w", str(tmp_path / "w"))
    with pytest.raises(ConfigurationError, match="ftp://x.*http"):
        Podium.connect(Settings(home=tmp_path / "podium", audit_witnesses=("ftp://x",)))


def test_a_database_started_anew_is_told_to_take_a_witness_of_its_own(sqlite_settings: Settings) -> None:
    """Deleting the home (podium.db and the key) looks to the witness like the attack it is there for: the refusal
    says what to do when it was on purpose."""
    with Podium.connect(sqlite_settings) as pod:
        _append(pod, 1, ENTRIES)
        pod.audit.checkpoint()
    shutil.rmtree(sqlite_settings.home)
    witness = sqlite_settings.home.parent / f"{sqlite_settings.home.name}-witness"
    with Podium.connect(sqlite_settings) as pod:
        _append(pod, 1)
        with pytest.raises(AuditTampered, match=f"started anew on purpose .* move {witness} aside"):
            pod.audit.checkpoint()
        witness.rename(witness.with_name("old-witness"))
        head = pod.audit.checkpoint()
        assert head is not None and head.tree_size == 1 and pod.verify_audit().ok


def test_a_witness_folder_that_cannot_be_written_or_holds_garbage_is_reported(audited: Podium, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    unwritable = audited.settings.model_copy(update={"audit_witnesses": (str(tmp_path / "a-file" / "witness"),)})
    cannot_write = "cannot write the audit witness folder .*PODIUM_AUDIT_WITNESSES"
    with Podium.connect(unwritable) as pod, pytest.raises(ConfigurationError, match=cannot_write):
        pod.audit.checkpoint()
    folder = tmp_path / "witness"
    folder.mkdir()
    (folder / f"{3:020d}.json").write_text('{"tree_size": 3}')
    garbled = audited.settings.model_copy(update={"audit_witnesses": (str(folder),)})
    with Podium.connect(garbled) as pod, pytest.raises(AuditTampered, match="is not a signed tree head"):
        pod.audit.checkpoint()
