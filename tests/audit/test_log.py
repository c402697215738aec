"""The audit log in the database verifies as written; editing, deleting, reordering or truncating any entry is
detected, before a signed head by the leaf hashes and the log's size, after one by the signed root as well."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podium import Podium, Settings
from podium.audit import AuditEntry, append
from podium.audit._heads import Signer
from podium.audit._log import leaf_hash_hex
from podium.errors import AuditTampered, ConfigurationError
from podium.store import tables

ENTRIES = 6
log = tables.audit_log


@pytest.fixture
def audited(settings: Settings) -> Iterator[Podium]:
    with Podium.connect(settings) as pod:
        with pod.engine.begin() as conn:
            for n in range(1, ENTRIES + 1):
                append(conn, AuditEntry(f"key-{n}", "agent:a", "tool.call", f"tool-{n}", "allowed", "run", n))
        yield pod


def test_an_untouched_log_verifies_before_and_after_a_signed_head(audited: Podium) -> None:
    result = audited.verify_audit()
    assert (result.ok, result.entries, result.tree_heads, result.problem) == (True, ENTRIES, 0, None)
    head = audited.audit.checkpoint()
    assert head is not None and head.tree_size == ENTRIES
    assert audited.audit.checkpoint() == head, "a second checkpoint with nothing new signs nothing new"
    result = audited.verify_audit()
    assert (result.ok, result.tree_heads) == (True, 1)


def test_appending_the_same_call_twice_records_it_once(audited: Podium) -> None:
    with audited.engine.begin() as conn:
        assert append(conn, AuditEntry("key-3", "agent:a", "tool.call", "tool-3", "allowed")) == 3
    assert audited.verify_audit().entries == ENTRIES


def _edit(conn: sa.Connection) -> None:
    conn.execute(log.update().where(log.c.seq == 3).values(decision="denied"))


def _edit_time(conn: sa.Connection) -> None:
    conn.execute(log.update().where(log.c.seq == 2).values(at=log.c.at + 1))


def _delete_middle(conn: sa.Connection) -> None:
    conn.execute(log.delete().where(log.c.seq == 4))


def _delete_last(conn: sa.Connection) -> None:
    conn.execute(log.delete().where(log.c.seq == ENTRIES))


def _reorder(conn: sa.Connection) -> None:
    # swap the contents of entries 2 and 5, keeping their sequence numbers and leaf hashes
    rows = {r.seq: r._asdict() for r in conn.execute(sa.select(log).where(log.c.seq.in_([2, 5])))}
    conn.execute(log.delete().where(log.c.seq.in_([2, 5])))
    for seq, other in ((2, 5), (5, 2)):
        conn.execute(log.insert().values(**{**rows[other], "seq": seq, "leaf_hash": rows[seq]["leaf_hash"]}))


def _rehash_edit(conn: sa.Connection) -> None:
    # an editor who recomputes the edited entry's own leaf hash is caught by the signed root
    row = conn.execute(sa.select(log).where(log.c.seq == 3)).mappings().one()
    edited = AuditEntry.from_row({**row, "resource": "something-else"})
    conn.execute(
        log.update().where(log.c.seq == 3).values(resource="something-else", leaf_hash=leaf_hash_hex(3, edited))
    )


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
@pytest.mark.parametrize(
    ("tamper", "problem", "problem_when_signed"),
    [
        (_edit, "entry 3 was altered", None),
        (_edit_time, "entry 2 was altered", None),
        (_delete_middle, "entry 4 is missing", None),
        (_delete_last, "the log holds 5 entries but 6 were appended", "a signed head covers 6 entries"),
        (_reorder, "entry 2 was altered", None),
        (_rehash_edit, None, "the signed head of size 6 does not match"),
    ],
)
def test_tampering_is_detected(
    audited: Podium,
    tamper: Callable[[sa.Connection], None],
    problem: str | None,
    problem_when_signed: str | None,
    signed: bool,
) -> None:
    if signed:
        audited.audit.checkpoint()
    with audited.engine.begin() as conn:
        tamper(conn)
    expected = (problem_when_signed or problem) if signed else problem
    result = audited.verify_audit()
    if expected is None:  # a consistent rewrite with no signed head over it: what signing at checkpoints is for
        assert result.ok
        return
    assert not result.ok
    assert result.problem is not None and result.problem.startswith(expected), result.problem


def test_a_process_without_the_logs_key_fails_and_makes_no_second_key(
    audited: Podium, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A process given another home (so another key path) must not sign the log with a key of its own."""
    head = audited.audit.checkpoint()
    assert head is not None
    with audited.engine.begin() as conn:
        append(conn, AuditEntry("key-7", "agent:a", "tool.call", "tool-7", "allowed"))
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "audit-signing-key.pem"
    missing = f"signed with key {head.key_id[:16]}.*no audit signing key at {elsewhere}.*PODIUM_AUDIT_KEY"
    with Podium.connect(audited.settings.model_copy(update={"audit_key": elsewhere})) as other:
        for attempt in (other.audit.checkpoint, other.audit.check_key, other.verify_audit):
            with pytest.raises(ConfigurationError, match=missing):
                attempt()
        assert not elsewhere.exists(), "no second key was made"
        assert other.audit.heads() == [head], "nothing was signed"
    audited.audit.export_key(elsewhere)  # the deliberate way: the log's own key, owner-only
    assert elsewhere.stat().st_mode & 0o777 == 0o600
    with Podium.connect(audited.settings.model_copy(update={"audit_key": elsewhere})) as other:
        other.audit.check_key()
        assert other.audit.checkpoint() is not None and other.verify_audit().ok
    assert audited.verify_audit().ok


def test_a_process_with_another_key_is_refused(audited: Podium, tmp_path_factory: pytest.TempPathFactory) -> None:
    head = audited.audit.checkpoint()
    assert head is not None
    other_key = tmp_path_factory.mktemp("k") / "k.pem"
    other_key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with Podium.connect(audited.settings.model_copy(update={"audit_key": other_key})) as other:
        with pytest.raises(ConfigurationError, match=f"{other_key} .*is not the key .*{head.key_id[:16]}"):
            other.audit.check_key()
        result = other.verify_audit()
    assert not result.ok and result.problem is not None
    assert f"names key {head.key_id[:16]}" in result.problem and "PODIUM_AUDIT_KEY" in result.problem


def test_two_processes_with_different_keys_cannot_both_sign_a_new_log(
    audited: Podium, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both read a log with no signed head, so both may make a key; the one that inserts a head first decides the
    log's key, and the other signs nothing and removes the key it made."""
    folder = tmp_path_factory.mktemp("second")
    second = Podium.connect(audited.settings.model_copy(update={"audit_key": folder / "key.pem"}))
    make_key = second.audit._signer_for

    def first_signs_meanwhile(log_key: str | None) -> Signer:  # after the second read the log, before it signs
        audited.audit.checkpoint()
        return make_key(log_key)

    monkeypatch.setattr(second.audit, "_signer_for", first_signs_meanwhile)
    with second, pytest.raises(ConfigurationError, match="another process signed this log with key") as refused:
        second.audit.checkpoint()
    first_key = audited.audit.signer.key_id
    assert first_key[:16] in str(refused.value) and "PODIUM_AUDIT_KEY" in str(refused.value)
    assert list(folder.iterdir()) == [], "the second key, which signed nothing kept, is gone"
    assert {head.key_id for head in audited.audit.heads()} == {first_key}
    assert audited.verify_audit().ok


def test_proofs_from_the_database_hold(audited: Podium) -> None:
    first = audited.audit.checkpoint()
    assert first is not None
    with audited.engine.begin() as conn:
        append(conn, AuditEntry("key-7", "agent:a", "tool.call", "tool-7", "allowed"))
    second = audited.audit.checkpoint()
    assert second is not None and second.tree_size == ENTRIES + 1
    for seq in range(1, ENTRIES + 2):
        proof = audited.audit.prove_inclusion(seq)
        assert proof.holds() and proof.root_hash == second.root_hash
    proof_leaf_2 = audited.audit.prove_inclusion(2).leaf_hash
    assert audited.audit.prove_inclusion(1).signed_root_hash == second.root_hash
    with audited.engine.begin() as conn:  # a rewrite of the leaves after signing: the proof no longer holds
        conn.execute(tables.audit_log.update().where(tables.audit_log.c.seq == 2).values(leaf_hash="00" * 32))
    assert not audited.audit.prove_inclusion(1, ENTRIES + 1).holds()
    with audited.engine.begin() as conn:
        conn.execute(tables.audit_log.update().where(tables.audit_log.c.seq == 2).values(leaf_hash=proof_leaf_2))
    consistency = audited.audit.prove_consistency(ENTRIES)
    assert consistency.holds()
    assert (consistency.old_root, consistency.new_root) == (first.root_hash, second.root_hash)


def test_a_rewrite_that_also_drops_the_signed_heads_is_refused_not_re_signed(audited: Podium) -> None:
    """Whoever can write the database could delete the heads, rewrite entries and their leaf hashes, and wait for
    the next checkpoint to sign the result. The last head podium signed is kept beside the key, so it cannot."""
    audited.audit.checkpoint()
    with audited.engine.begin() as conn:
        conn.execute(tables.tree_heads.delete())
        _rehash_edit(conn)
    with pytest.raises(AuditTampered, match="the last head podium signed .size 6.* is missing"):
        audited.audit.checkpoint()
    result = audited.verify_audit()
    assert not result.ok and "the last head podium signed" in str(result.problem)
    assert audited.audit.heads() == [], "nothing was signed on top of the rewrite"
