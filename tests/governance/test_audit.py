"""The audit chain verifies as written; editing, deleting, reordering or truncating any entry is detected."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from podium import Podium, Settings
from podium.governance import AuditEntry, verify
from podium.governance._audit import append
from podium.store import tables

ENTRIES = 6


@pytest.fixture
def audited(settings: Settings) -> Iterator[Podium]:
    with Podium.connect(settings) as pod:
        with pod.engine.begin() as conn:
            for n in range(1, ENTRIES + 1):
                append(conn, AuditEntry(f"key-{n}", "agent:a", "tool.call", f"tool-{n}", "allowed", "run", n))
        yield pod


def test_an_untouched_log_verifies(audited: Podium) -> None:
    result = verify(audited.engine)
    assert (result.ok, result.entries, result.problem) == (True, ENTRIES, None)


def test_appending_the_same_call_twice_records_it_once(audited: Podium) -> None:
    with audited.engine.begin() as conn:
        assert append(conn, AuditEntry("key-3", "agent:a", "tool.call", "tool-3", "allowed")) == 3
    assert verify(audited.engine).entries == ENTRIES


def _edit(conn: sa.Connection) -> None:
    conn.execute(tables.audit.update().where(tables.audit.c.seq == 3).values(decision="denied"))


def _edit_time(conn: sa.Connection) -> None:
    conn.execute(tables.audit.update().where(tables.audit.c.seq == 2).values(at=tables.audit.c.at + 1))


def _delete_middle(conn: sa.Connection) -> None:
    conn.execute(tables.audit.delete().where(tables.audit.c.seq == 4))


def _delete_last(conn: sa.Connection) -> None:
    conn.execute(tables.audit.delete().where(tables.audit.c.seq == ENTRIES))


def _reorder(conn: sa.Connection) -> None:
    # swap the contents of entries 2 and 5, keeping their sequence numbers
    rows = {r.seq: r._asdict() for r in conn.execute(sa.select(tables.audit).where(tables.audit.c.seq.in_([2, 5])))}
    conn.execute(tables.audit.delete().where(tables.audit.c.seq.in_([2, 5])))
    for seq, other in ((2, 5), (5, 2)):
        conn.execute(tables.audit.insert().values(**{**rows[other], "seq": seq, "call_key": f"swapped-{seq}"}))


def _rehash_edit(conn: sa.Connection) -> None:
    # an editor who recomputes the edited entry's own hash still breaks the link to the next entry
    from podium.governance._audit import entry_hash

    row = conn.execute(sa.select(tables.audit).where(tables.audit.c.seq == 3)).one()
    fields = {name: getattr(row, name) for name in AuditEntry.__dataclass_fields__}
    fields["resource"] = "something-else"
    new_hash = entry_hash(row.prev_hash, 3, AuditEntry(**fields))
    conn.execute(
        tables.audit.update().where(tables.audit.c.seq == 3).values(resource="something-else", entry_hash=new_hash)
    )


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_edit, "entry 3 was altered"),
        (_edit_time, "entry 2 was altered"),
        (_delete_middle, "entry 4 is missing"),
        (_delete_last, "the log ends at entry 5 but its head says 6"),
        (_reorder, "entry 2 does not follow entry 1"),
        (_rehash_edit, "entry 4 does not follow entry 3"),
    ],
)
def test_tampering_is_detected(audited: Podium, tamper: Callable[[sa.Connection], None], problem: str) -> None:
    with audited.engine.begin() as conn:
        tamper(conn)
    result = verify(audited.engine)
    assert not result.ok
    assert result.problem is not None and result.problem.startswith(problem)
