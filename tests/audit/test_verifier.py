"""The independent verifier: a valid export verifies, and every way of tampering with one is caught.

Each hypothesis example writes a fresh export with the tests' own writer (`_exports.py`), breaks one thing, and
fixes up what a careful forger would (the manifest's counts, and often the seq numbers), so that only the Merkle
tree and the signatures can catch it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from podium.audit.verifier import Report, TreeHead, verify_export
from tests.audit._exports import (
    canonical,
    entry,
    public_pem,
    read_lines,
    sign_head,
    write_export,
    write_heads,
    write_lines,
)

TAMPERING = settings(max_examples=40, deadline=None, derandomize=True)

texts = st.text(max_size=10)
digests = st.text("0123456789abcdef", min_size=64, max_size=64)
random_entries = st.fixed_dictionaries(
    {
        "at": st.floats(0, 2e9, allow_nan=False),
        "actor": texts,
        "action": texts,
        "resource": texts,
        "decision": st.sampled_from(["allow", "deny", "review"]),
        "policies": st.lists(texts, max_size=3),
        "run_id": st.none() | texts,
        "step_id": st.none() | st.integers(0, 1000),
        "call_key": texts,
        "input_digest": digests,
        "output_digest": digests,
        "cost_nano_usd": st.integers(0, 10**12),
        "detail": texts,
    }
)
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    st.lists(texts, max_size=3),
)


@st.composite
def logs(draw: st.DrawFn, min_size: int = 1) -> tuple[list[dict[str, Any]], list[int]]:
    """Entries and the sizes at which heads were signed; the last head covers every entry."""
    log = draw(st.lists(random_entries, min_size=min_size, max_size=12))
    checkpoints = draw(st.sets(st.integers(1, len(log)), max_size=4)) | {len(log)}
    return log, sorted(checkpoints)


@contextmanager
def export_of(log: list[dict[str, Any]], checkpoints: list[int]) -> Iterator[tuple[Path, list[TreeHead]]]:
    """A valid export in a temporary directory (hypothesis examples cannot share pytest's tmp_path)."""
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name) / "export"
        heads = write_export(directory, log, checkpoints)
        assert verify_export(directory).ok
        yield directory, heads


def renumbered(lines: list[bytes]) -> list[bytes]:
    """What a forger does after moving lines: give each its position as seq again."""
    return [canonical({**json.loads(line), "seq": seq}) for seq, line in enumerate(lines, start=1)]


def assert_caught(report: Report) -> None:
    assert not report.ok
    assert report.problem
    assert report.last_head is None


# A valid export


@TAMPERING
@given(logs())
def test_a_valid_export_verifies(log: tuple[list[dict[str, Any]], list[int]]) -> None:
    with export_of(*log) as (directory, heads):
        report = verify_export(directory)
        assert report == Report(True, len(log[0]), len(heads), None, trusted_key=False, last_head=heads[-1])
        (directory.parent / "trusted.pem").write_bytes((directory / "public-key.pem").read_bytes())
        trusted = verify_export(directory, public_key=directory.parent / "trusted.pem", trusted_head=heads[0])
        assert trusted.ok
        assert trusted.trusted_key


def test_a_later_export_of_the_same_log_verifies_against_the_last_head(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    first = write_export(tmp_path / "first", [entry(n) for n in range(5)], [5], key)
    write_export(tmp_path / "later", [entry(n) for n in range(9)], [3, 9], key)
    assert verify_export(tmp_path / "later", trusted_head=first[-1]).ok


# Tampering with entries


@TAMPERING
@given(logs(), st.data())
def test_editing_one_entry_is_caught(log: tuple[list[dict[str, Any]], list[int]], data: st.DataObject) -> None:
    with export_of(*log) as (directory, _heads):
        lines = read_lines(directory)
        index = data.draw(st.integers(0, len(lines) - 1), label="line")
        fields = json.loads(lines[index])
        key = data.draw(st.sampled_from([*sorted(fields), "extra"]), label="field")
        if data.draw(st.booleans(), label="remove the field") and key in fields:
            del fields[key]
        else:
            fields[key] = data.draw(json_values, label="new value")
        edited = canonical(fields)
        assume(edited != lines[index])
        lines[index] = edited
        write_lines(directory, lines)
        assert_caught(verify_export(directory))


@TAMPERING
@given(logs(), st.data())
def test_deleting_a_line_is_caught(log: tuple[list[dict[str, Any]], list[int]], data: st.DataObject) -> None:
    with export_of(*log) as (directory, _heads):
        lines = read_lines(directory)
        del lines[data.draw(st.integers(0, len(lines) - 1), label="line")]
        write_lines(directory, renumbered(lines) if data.draw(st.booleans(), label="renumber") else lines)
        assert_caught(verify_export(directory))


@TAMPERING
@given(logs(), st.data())
def test_inserting_a_line_is_caught(log: tuple[list[dict[str, Any]], list[int]], data: st.DataObject) -> None:
    with export_of(*log) as (directory, _heads):
        lines = read_lines(directory)
        position = data.draw(st.integers(0, len(lines)), label="position")
        if data.draw(st.booleans(), label="copy a line"):
            inserted = data.draw(st.sampled_from(lines), label="copied line")
        else:
            inserted = canonical({**data.draw(random_entries, label="fabricated entry"), "seq": position + 1})
        lines.insert(position, inserted)
        write_lines(directory, renumbered(lines) if data.draw(st.booleans(), label="renumber") else lines)
        assert_caught(verify_export(directory))


@TAMPERING
@given(logs(min_size=2), st.data())
def test_swapping_two_lines_is_caught(log: tuple[list[dict[str, Any]], list[int]], data: st.DataObject) -> None:
    with export_of(*log) as (directory, _heads):
        original = read_lines(directory)
        first, second = data.draw(st.lists(st.integers(0, len(original) - 1), min_size=2, max_size=2, unique=True))
        lines = list(original)
        lines[first], lines[second] = lines[second], lines[first]
        if data.draw(st.booleans(), label="renumber"):
            lines = renumbered(lines)
        assume(lines != original)  # two identical entries swapped and renumbered change nothing
        write_lines(directory, lines)
        assert_caught(verify_export(directory))


@TAMPERING
@given(logs(), st.data())
def test_cutting_lines_off_the_end_is_caught(log: tuple[list[dict[str, Any]], list[int]], data: st.DataObject) -> None:
    with export_of(*log) as (directory, _heads):
        lines = read_lines(directory)
        kept = len(lines) - data.draw(st.integers(1, len(lines)), label="lines cut")
        write_lines(directory, lines[:kept])
        assert_caught(verify_export(directory))


@TAMPERING
@given(logs(min_size=2), st.data())
def test_cutting_the_log_back_to_an_earlier_head_is_caught_by_the_head_you_trust(
    log: tuple[list[dict[str, Any]], list[int]], data: st.DataObject
) -> None:
    entries, checkpoints = log
    assume(len(checkpoints) > 1)
    with export_of(entries, checkpoints) as (directory, heads):
        earlier = data.draw(st.sampled_from(heads[:-1]), label="earlier head")
        write_lines(directory, read_lines(directory)[: earlier.tree_size])
        write_heads(directory, [h for h in heads if h.tree_size <= earlier.tree_size])
        assert verify_export(directory).ok, "a consistent prefix is a valid export on its own"
        report = verify_export(directory, trusted_head=heads[-1])
        assert_caught(report)
        assert report.problem == (
            f"the head you trust covers {heads[-1].tree_size} entries but the export holds {earlier.tree_size}: "
            "entries were removed since you verified it"
        )


def test_entries_after_the_last_signed_head_are_reported(tmp_path: Path) -> None:
    write_export(tmp_path, [entry(n) for n in range(5)], [3])
    report = verify_export(tmp_path)
    assert report.problem == "entries 4..5 are not covered by a signed tree head"
    write_heads(tmp_path, [])
    assert verify_export(tmp_path).problem == "entries 1..5 are not covered by a signed tree head"


# Tampering with tree heads and keys


@TAMPERING
@given(logs(), st.data())
def test_an_altered_tree_head_is_caught(log: tuple[list[dict[str, Any]], list[int]], data: st.DataObject) -> None:
    with export_of(*log) as (directory, heads):
        index = data.draw(st.integers(0, len(heads) - 1), label="head")
        head = heads[index]
        forged_root = data.draw(digests.filter(lambda root: root != head.root_hash), label="forged root")
        forged = data.draw(
            st.sampled_from(
                [
                    replace(head, signature=_flip_hex(head.signature)),
                    replace(head, root_hash=forged_root),
                    replace(head, timestamp=head.timestamp + 1),
                    replace(head, tree_size=head.tree_size + 1),
                ]
            ),
            label="forged head",
        )
        write_heads(directory, [*heads[:index], forged, *heads[index + 1 :]])
        assert_caught(verify_export(directory))


def test_a_root_re_signed_with_the_key_is_still_caught_by_the_entries(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    heads = write_export(tmp_path, [entry(n) for n in range(6)], [2, 6], key)
    write_heads(tmp_path, [heads[0], sign_head(key, 6, "ab" * 32)])
    report = verify_export(tmp_path)
    assert report.problem == (
        "the signed head of size 6 does not match entries 1..6: at least one of them was altered, removed, "
        "inserted or moved"
    )
    assert report.entries == 6


def test_an_export_signed_by_another_key_fails_against_the_key_you_trust(tmp_path: Path) -> None:
    ours, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    (tmp_path / "ours.pem").write_bytes(public_pem(ours))
    write_export(tmp_path / "export", [entry(n) for n in range(4)], [4], theirs)
    assert verify_export(tmp_path / "export").ok, "without a trusted key the export's own key is all there is"
    report = verify_export(tmp_path / "export", public_key=tmp_path / "ours.pem")
    assert not report.ok
    assert report.trusted_key
    assert report.problem is not None
    assert report.problem.startswith("the export is signed by key ")
    assert ", not by the key you trust (" in report.problem


def test_a_head_naming_another_key_is_caught(tmp_path: Path) -> None:
    heads = write_export(tmp_path, [entry(n) for n in range(3)], [3])
    other = sign_head(Ed25519PrivateKey.generate(), 3, heads[0].root_hash)
    write_heads(tmp_path, [other])
    problem = verify_export(tmp_path).problem
    assert problem is not None
    assert problem.startswith(f"tree head 1 (line 1 of tree-heads.jsonl) names key {other.key_id!r}, but the export")


def test_a_trusted_head_that_is_not_in_the_export_fails(tmp_path: Path) -> None:
    heads = write_export(tmp_path, [entry(n) for n in range(5)], [2, 5])
    rewritten = replace(heads[0], root_hash="cd" * 32)
    assert verify_export(tmp_path, trusted_head=rewritten).problem == (
        "entries 1..2 do not match the head you trust: the log was rewritten since you verified it, not only "
        "appended to"
    )
    assert_caught(verify_export(tmp_path, trusted_head=replace(heads[-1], tree_size=6)))
    other_size = replace(heads[-1], tree_size=4)  # no head of size 4, and the root of 4 entries is another
    assert_caught(verify_export(tmp_path, trusted_head=other_size))
    assert_caught(verify_export(tmp_path, trusted_head=replace(heads[0], tree_size=0)))


def _flip_hex(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


# Damaged exports: a clear problem, never an exception


def _break_entries(directory: Path, content: bytes) -> None:
    (directory / "entries.jsonl").write_bytes(content)


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda d: (d / "manifest.json").unlink(), "cannot read manifest.json of the export: No such file"),
        (lambda d: (d / "manifest.json").write_text("{"), "manifest.json is not valid JSON"),
        (
            lambda d: (d / "manifest.json").write_text('{"format": "other/2"}'),
            "manifest.json says format 'other/2'; this verifier reads 'podium-audit-export/1'",
        ),
        (
            lambda d: (d / "manifest.json").write_text('{"format": "podium-audit-export/1", "entries": 3}'),
            "manifest.json has no 'tree_heads'",
        ),
        (
            lambda d: (d / "manifest.json").write_text(
                '{"format": "podium-audit-export/1", "entries": 4, "tree_heads": 2}'
            ),
            "manifest.json lists 4 entries but entries.jsonl holds 3",
        ),
        (lambda d: (d / "public-key.pem").unlink(), "cannot read the export's public-key.pem: No such file"),
        (
            lambda d: (d / "public-key.pem").write_text("nonsense"),
            "the export's public-key.pem is not a PEM public key",
        ),
        (lambda d: (d / "entries.jsonl").unlink(), "cannot read entries.jsonl of the export"),
        (lambda d: _break_entries(d, b"{\n"), "line 1 of entries.jsonl is not valid JSON"),
        (lambda d: (d / "tree-heads.jsonl").write_text("[]\n"), "tree head 1 (line 1 of tree-heads.jsonl) is not a"),
        (
            lambda d: _break_entries(d, (d / "entries.jsonl").read_bytes().rstrip(b"\n")),
            "line 3 of entries.jsonl does not end with a newline: the file was cut short",
        ),
        (
            lambda d: _break_entries(d, (d / "entries.jsonl").read_bytes().replace(b"\n", b"\n\xff\n", 1)),
            "line 2 of entries.jsonl is not UTF-8 text",
        ),
        (
            lambda d: _break_entries(d, (d / "entries.jsonl").read_bytes().replace(b'","', b'", "', 1)),
            "line 1 of entries.jsonl is not in canonical JSON form (sorted keys, no spaces): it was edited",
        ),
        (
            lambda d: _break_entries(d, b"".join(canonical({"seq": n}) + b"\n" for n in (1, 2, 3))),
            "line 1 of entries.jsonl has no 'at'",
        ),
        (
            lambda d: _break_entries(d, canonical({**entry(0), "seq": True}) + b"\n"),
            "line 1 of entries.jsonl: 'seq' must be int, not True",
        ),
        (
            lambda d: _break_entries(d, canonical({**entry(0), "policies": [1], "seq": 1}) + b"\n"),
            "line 1 of entries.jsonl: policies must be a list of strings",
        ),
        (
            lambda d: _break_entries(d, canonical({**entry(0), "seq": 2}) + b"\n"),
            "line 1 of entries.jsonl holds entry seq 2, not 1: entries were removed, inserted or moved",
        ),
    ],
)
def test_a_damaged_export_reports_what_is_wrong(tmp_path: Path, damage: Any, problem: str) -> None:
    write_export(tmp_path, [entry(n) for n in range(3)], [1, 3])
    damage(tmp_path)
    report = verify_export(tmp_path)
    assert not report.ok
    assert report.problem is not None
    assert report.problem.startswith(problem), report.problem


def test_a_missing_export_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="there is no audit export at .*nowhere"):
        verify_export(tmp_path / "nowhere")


def test_a_trusted_key_that_cannot_be_read_is_reported(tmp_path: Path) -> None:
    write_export(tmp_path / "export", [entry(0)], [1])
    report = verify_export(tmp_path / "export", public_key=tmp_path / "missing.pem")
    assert report.problem is not None
    assert report.problem.startswith(f"cannot read the key you trust, {tmp_path / 'missing.pem'},")
