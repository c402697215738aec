"""The hashing rules against RFC 6962 §2.1 written out recursively, as the RFC states them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.audit._merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

PROPERTIES = settings(max_examples=40, deadline=None, derandomize=True)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def split(n: int) -> int:
    """k of §2.1: the largest power of two smaller than n."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1, over leaf hashes, exactly as the RFC recurses."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of §2.1.1."""
    if len(leaves) == 1:
        return []
    k = split(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of §2.1.2."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = split(n)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def leaves_of(size: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(b"entry %d/%d" % (salt, i)) for i in range(size)]


trees = st.builds(leaves_of, st.integers(0, 300), st.integers(0, 2**32))
nonempty_trees = st.builds(leaves_of, st.integers(1, 300), st.integers(0, 2**32))


def flip(digest: bytes) -> bytes:
    return bytes([digest[0] ^ 1]) + digest[1:]


# Known answers


def test_the_empty_tree_hashes_the_empty_string() -> None:
    assert root([]) == EMPTY_ROOT == bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert Frontier().root() == EMPTY_ROOT


def test_a_leaf_and_a_node_are_hashed_with_different_prefixes() -> None:
    assert leaf_hash(b"") == bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert node_hash(b"a", b"b") == sha256(b"\x01ab")
    assert root([leaf_hash(b"a")]) == sha256(b"\x00a")


def test_three_leaves_pair_the_first_two_and_lift_the_third() -> None:
    a, b, c = sha256(b"\x00a"), sha256(b"\x00b"), sha256(b"\x00c")
    assert root([a, b, c]) == sha256(b"\x01" + sha256(b"\x01" + a + b) + c)
    assert inclusion_proof([a, b, c], 2) == [sha256(b"\x01" + a + b)]
    assert inclusion_proof([a, b, c], 0) == [b, c]
    assert consistency_proof([a, b, c], 2) == [c]
    assert consistency_proof([a, b, c], 1) == [b, c]


def test_a_million_leaves_hash_in_one_pass() -> None:
    leaves = [sha256(i.to_bytes(4, "big")) for i in range(1 << 20)]
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert root(leaves) == frontier.root()


# Roots and the frontier


@PROPERTIES
@given(trees)
def test_root_is_the_recursive_merkle_tree_hash(leaves: list[bytes]) -> None:
    assert root(leaves) == mth(leaves)


@PROPERTIES
@given(trees)
def test_the_frontier_has_the_root_of_every_size(leaves: list[bytes]) -> None:
    frontier = Frontier()
    for size, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.size == size
        assert frontier.root() == mth(leaves[:size])
        if size % 37 == 0:
            frontier = Frontier.from_json(frontier.to_json())
    assert Frontier.from_json(frontier.to_json()).root() == root(leaves)


@pytest.mark.parametrize(
    "data",
    [{"size": 3, "nodes": ["00" * 32]}, {"size": -1, "nodes": []}, {"size": 1, "nodes": ["abc"]}, {"nodes": []}],
)
def test_a_frontier_that_cannot_be_a_tree_edge_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"frontier|subtrees|hash"):
        Frontier.from_json(data)


# Inclusion


@PROPERTIES
@given(nonempty_trees)
def test_every_leaf_has_the_path_of_the_rfc_and_it_verifies(leaves: list[bytes]) -> None:
    top = root(leaves)
    for index, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, index)
        assert proof == path(index, leaves)
        assert verify_inclusion(leaf, index, len(leaves), proof, top)


@PROPERTIES
@given(nonempty_trees, st.data())
def test_an_inclusion_proof_fails_for_anything_altered(leaves: list[bytes], data: st.DataObject) -> None:
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof, leaf, top = inclusion_proof(leaves, index), leaves[index], root(leaves)
    assert not verify_inclusion(flip(leaf), index, size, proof, top)
    assert not verify_inclusion(leaf, index, size, proof, flip(top))
    for other in {index - 1, index + 1, index ^ 1, size, -1} - {index}:
        assert not verify_inclusion(leaf, other, size, proof, top)
    for position in range(len(proof)):
        altered = [*proof[:position], flip(proof[position]), *proof[position + 1 :]]
        assert not verify_inclusion(leaf, index, size, altered, top)
    if proof:
        assert not verify_inclusion(leaf, index, size, proof[:-1], top)
        assert not verify_inclusion(leaf, index, size, [*proof[:-1], proof[-1][:31]], top)
    assert not verify_inclusion(leaf, index, size, [*proof, proof[0] if proof else leaf], top)


def test_inclusion_of_a_leaf_outside_the_tree_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="leaf index 3 is not in a tree of 3 leaves"):
        inclusion_proof(leaves_of(3), 3)
    with pytest.raises(ValueError, match="not in a tree of 0 leaves"):
        inclusion_proof([], 0)
    assert not verify_inclusion(leaves_of(1)[0], 0, 0, [], EMPTY_ROOT)


# Consistency


@PROPERTIES
@given(nonempty_trees)
def test_every_prefix_has_the_proof_of_the_rfc_and_it_verifies(leaves: list[bytes]) -> None:
    new_root = root(leaves)
    for old_size in range(1, len(leaves) + 1):
        proof = consistency_proof(leaves, old_size)
        assert proof == subproof(old_size, leaves, True)
        assert verify_consistency(old_size, len(leaves), root(leaves[:old_size]), new_root, proof)


@PROPERTIES
@given(nonempty_trees, st.data())
def test_a_consistency_proof_fails_for_anything_altered(leaves: list[bytes], data: st.DataObject) -> None:
    new_size = len(leaves)
    old_size = data.draw(st.integers(1, new_size))
    proof = consistency_proof(leaves, old_size)
    old_root, new_root = root(leaves[:old_size]), root(leaves)
    assert not verify_consistency(old_size, new_size, flip(old_root), new_root, proof)
    assert not verify_consistency(old_size, new_size, old_root, flip(new_root), proof)
    for position in range(len(proof)):
        altered = [*proof[:position], flip(proof[position]), *proof[position + 1 :]]
        assert not verify_consistency(old_size, new_size, old_root, new_root, altered)
    if proof:
        assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
        assert not verify_consistency(old_size, new_size, old_root, new_root, [proof[0][:16], *proof[1:]])
    assert not verify_consistency(old_size, new_size, old_root, new_root, [*proof, new_root])
    assert not verify_consistency(0, new_size, EMPTY_ROOT, new_root, proof)
    assert not verify_consistency(new_size + 1, new_size, old_root, new_root, proof)


def test_a_shrunken_or_rewritten_log_has_no_consistency_proof() -> None:
    old = leaves_of(6)
    new = [*old[:3], leaf_hash(b"forged"), *leaves_of(10, salt=1)[4:]]
    assert not verify_consistency(6, 10, root(old), root(new), consistency_proof(new, 6))


def test_consistency_needs_a_nonempty_old_tree_no_larger_than_the_new() -> None:
    with pytest.raises(ValueError, match="0 < old size <= new size; got old 0, new 4"):
        consistency_proof(leaves_of(4), 0)
    with pytest.raises(ValueError, match="got old 5, new 4"):
        consistency_proof(leaves_of(4), 5)
