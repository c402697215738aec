"""The hashing rules of the audit log: the Merkle tree of RFC 6962 (Certificate Transparency), on bytes only.

    leaf_hash, node_hash     RFC 6962 §2.1: leaves and interior nodes are hashed with different prefixes, so
                             no leaf can pass for a node (second-preimage resistance)
    root, Frontier           MTH, the Merkle Tree Hash of §2.1, over all leaves or appended one at a time
    inclusion_proof          PATH of §2.1.1, checked by verify_inclusion (RFC 9162 §2.1.3.2)
    consistency_proof        PROOF of §2.1.2, checked by verify_consistency (RFC 9162 §2.1.4.2)

Everything here takes leaf hashes (32-byte SHA-256 digests), never entries, and does no I/O: the writer and the
independent verifier share this module and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}): the root of the empty tree."""

HASH_SIZE = 32


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, level by level.

    Pairing neighbours and carrying an unpaired last node up unchanged gives the same tree as §2.1's split at
    the largest power of two below n (the tests prove it against the recursive definition), without recursion.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class Frontier:
    """The right edge of a tree: the roots of its perfect subtrees, largest first, and its size.

    That is all a writer needs to append leaves and know the root of every size, without reading old leaves
    again; stored beside a signed head, it lets the next checkpoint start where this one ended.
    """

    def __init__(self) -> None:
        self._nodes: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        # The subtrees mirror the bits of the size: adding one merges a subtree per trailing 1 bit of the old size.
        node = leaf_hash
        carry = self._size
        while carry & 1:
            node = node_hash(self._nodes.pop(), node)
            carry >>= 1
        self._nodes.append(node)
        self._size += 1

    def root(self) -> bytes:
        """MTH of the leaves so far: the subtrees folded from the smallest (§2.1 splits off the largest first)."""
        if not self._nodes:
            return EMPTY_ROOT
        result = self._nodes[-1]
        for node in reversed(self._nodes[:-1]):
            result = node_hash(node, result)
        return result

    def to_json(self) -> dict[str, Any]:
        return {"size": self._size, "nodes": [node.hex() for node in self._nodes]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Frontier:
        """The frontier `to_json` wrote; ValueError if it cannot be the right edge of a tree of that size."""
        size, nodes = data.get("size"), data.get("nodes")
        if not isinstance(size, int) or size < 0 or not isinstance(nodes, list):
            raise ValueError(f"a frontier needs a size >= 0 and a list of nodes, not {dict(data)!r}")
        if len(nodes) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} perfect subtrees, not {len(nodes)}")
        frontier = cls()
        frontier._size = size
        frontier._nodes = [_hash_from_hex(node) for node in nodes]
        return frontier


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 §2.1.1: the sibling hashes from leaf `index` up to the root, lowest first."""
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of {size} leaves (valid: 0..{size - 1})")
    siblings: list[bytes] = []
    low, high = 0, size
    while high - low > 1:
        split = low + _largest_power_of_two_below(high - low)
        if index < split:
            siblings.append(root(leaf_hashes[split:high]))
            high = split
        else:
            siblings.append(root(leaf_hashes[low:split]))
            low = split
    return siblings[::-1]


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `proof` shows leaf `index` of the tree of `tree_size` leaves with this root is `leaf_hash`.

    RFC 9162 §2.1.3.2; a malformed proof (wrong length, wrong element size) is simply not a proof.
    """
    if not 0 <= index < tree_size or not _are_hashes(proof):
        return False
    fn, sn = index, tree_size - 1
    result = leaf_hash
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and result == root


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) of RFC 6962 §2.1.2: the hashes that show the first `old_size` leaves are a prefix."""
    new_size = len(leaf_hashes)
    if not 0 < old_size <= new_size:
        raise ValueError(f"a consistency proof needs 0 < old size <= new size; got old {old_size}, new {new_size}")
    nodes: list[bytes] = []
    low, high, old = 0, new_size, old_size
    whole_old_tree = True  # SUBPROOF's flag b: the old tree is a subtree here, and the verifier knows its root
    while old < high - low:
        split = _largest_power_of_two_below(high - low)
        if old <= split:
            nodes.append(root(leaf_hashes[low + split : high]))
            high = low + split
        else:
            nodes.append(root(leaf_hashes[low : low + split]))
            low, old, whole_old_tree = low + split, old - split, False
    if not whole_old_tree:
        nodes.append(root(leaf_hashes[low:high]))
    return nodes[::-1]


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows the tree of `old_size` leaves with `old_root` is a prefix of the one with `new_root`.

    RFC 9162 §2.1.4.2; equal sizes need an empty proof and equal roots. Malformed proofs are not proofs.
    """
    if not 0 < old_size <= new_size or not _are_hashes(proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a perfect subtree: its root is the proof's implied first element
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_result = new_result = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old_result = node_hash(node, old_result)
            new_result = node_hash(node, new_result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_result = node_hash(new_result, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and old_result == old_root and new_result == new_root


def _largest_power_of_two_below(n: int) -> int:
    """k of §2.1: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _are_hashes(proof: Sequence[bytes]) -> bool:
    return all(isinstance(node, bytes) and len(node) == HASH_SIZE for node in proof)


def _hash_from_hex(text: object) -> bytes:
    if not isinstance(text, str) or len(text) != 2 * HASH_SIZE:
        raise ValueError(f"{text!r} is not a hex SHA-256 hash")
    return bytes.fromhex(text)
