"""Merkle log hashing and proofs (RFC 6962 / RFC 9162, SHA-256) over Kafka records.

This module is the arithmetic of the audit ledger: how a Kafka record becomes a leaf
(:func:`record_leaf_bytes`, :func:`leaf_hash`), how leaves fold into a root
(:func:`node_hash`, :func:`root`), how a processor appends leaves one by one in O(log n)
memory and resumes after a restart (:class:`MerkleLog`, the "compact range" of perfect
subtrees), and how inclusion and consistency proofs are generated (:class:`MerkleTree`,
:func:`inclusion_proof`, :func:`consistency_proof`) and verified
(:func:`verify_inclusion`, :func:`verify_consistency`) exactly as RFC 9162 §2.1.3 and
§2.1.4 specify. It does no I/O and reads no clock. "Leaves" are always 32-byte leaf
*hashes*, never record bytes.

    SecurityError
    └── LedgerError ........... the audit ledger cannot vouch for a log
        └── ProofError ........ an inclusion or consistency proof does not verify
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from hashlib import sha256 as _sha256
from typing import Protocol

from bus._errors import SecurityError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LeafHashes",
    "LedgerError",
    "MerkleLog",
    "MerkleTree",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "record_leaf_bytes",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = _sha256(b"").digest()

_RECORD_V1 = b"\x01"
_LOG_STATE_V1 = 0x01
_U32 = struct.Struct(">I")
_RECORD_HEAD = struct.Struct(">IQq")  # partition, offset, timestamp_ms
_LOG_HEAD = struct.Struct(">BQ")  # state version, size
_ABSENT = b"\x00"
_PRESENT = b"\x01"


class LedgerError(SecurityError):
    """The audit ledger cannot vouch for a log (bad state, bad checkpoint, refused witness)."""

    default_hint = "the log cannot be trusted as presented; compare it with the signed checkpoints"


class ProofError(LedgerError):
    """An inclusion or consistency proof does not verify against the given root(s)."""

    default_hint = "the record or the log was altered, reordered or truncated, or the proof is for another tree"


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || data)``."""
    h = _sha256(b"\x00")
    h.update(data)
    return h.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _optional(value: bytes | None) -> bytes:
    if value is None:
        return _ABSENT
    return _PRESENT + _U32.pack(len(value)) + value


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _U32.pack(len(raw)) + raw


def record_leaf_bytes(
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]],
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
) -> bytes:
    """The canonical bytes of one Kafka record, the input of :func:`leaf_hash`.

    Every variable-length field is length-prefixed, so no two different records share an
    encoding. Integers are big-endian; ``u32``/``u64`` unsigned, ``i64`` two's complement.
    Layout, version 1::

        u8   0x01                      leaf format: Kafka record, version 1
        u32  len(topic)  topic         UTF-8
        u32  partition
        u64  offset
        i64  timestamp_ms              the record's Kafka timestamp (may be -1)
        opt  key                       opt = 0x00 (null) | 0x01 u32 len bytes
        opt  value                     so null and b"" differ
        u32  header count
             then per header, in record order: u32 len(name) name (UTF-8), opt value

    A later layout takes another first byte; 0x02 is the table entry of
    :class:`bus.ledger.TableSnapshot`.

    ``headers`` are (name, value) pairs exactly as the record carries them, duplicates and
    order kept. Raises ``ValueError`` when a number is out of Kafka's range.
    """
    if not 0 <= partition <= 0x7FFFFFFF:
        raise ValueError(f"partition {partition} is not a Kafka partition number")
    if not 0 <= offset <= 0x7FFFFFFFFFFFFFFF:
        raise ValueError(f"offset {offset} is not a Kafka offset")
    if not -(1 << 63) <= timestamp_ms < (1 << 63):
        raise ValueError(f"timestamp {timestamp_ms} does not fit a Kafka timestamp")
    parts = [
        _RECORD_V1,
        _text(topic),
        _RECORD_HEAD.pack(partition, offset, timestamp_ms),
        _optional(key),
        _optional(value),
        _U32.pack(len(headers)),
    ]
    for name, header_value in headers:
        parts.append(_text(name))
        parts.append(_optional(header_value))
    return b"".join(parts)


class MerkleLog:
    """Append-only Merkle log kept as its compact range: one hash per perfect subtree.

    ``append`` costs amortised one hash (at most log2 n), memory is ``popcount(size)``
    hashes, and the state survives a restart through :meth:`to_bytes` / :meth:`from_bytes`.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self) -> None:
        self._size = 0
        # Roots of the perfect subtrees that make up [0, size), largest (leftmost) first.
        self._frontier: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """The perfect-subtree hashes, leftmost (largest) first."""
        return tuple(self._frontier)

    def append(self, leaf: bytes) -> int:
        """Append one 32-byte leaf hash; return its index in the log."""
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf)}")
        index = self._size
        frontier = self._frontier
        n = index
        # Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
        while n & 1:
            leaf = _sha256(b"\x01" + frontier.pop() + leaf).digest()
            n >>= 1
        frontier.append(leaf)
        self._size = index + 1
        return index

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append every leaf hash of ``leaves`` in order."""
        append = self.append
        for leaf in leaves:
            append(leaf)

    def root(self) -> bytes:
        """The RFC 6962 Merkle tree hash of the log as it is now."""
        frontier = self._frontier
        if not frontier:
            return EMPTY_ROOT
        acc = frontier[-1]
        for i in range(len(frontier) - 2, -1, -1):
            acc = _sha256(b"\x01" + frontier[i] + acc).digest()
        return acc

    def copy(self) -> MerkleLog:
        """An independent log with the same state."""
        other = MerkleLog()
        other._size = self._size
        other._frontier = list(self._frontier)
        return other

    def to_bytes(self) -> bytes:
        """State as bytes: ``u8 version (1) || u64 size || frontier hashes``."""
        return _LOG_HEAD.pack(_LOG_STATE_V1, self._size) + b"".join(self._frontier)

    @classmethod
    def from_bytes(cls, data: bytes) -> MerkleLog:
        """Resume a log from :meth:`to_bytes`; raise :class:`LedgerError` on malformed state."""
        if len(data) < _LOG_HEAD.size:
            raise LedgerError("Merkle log state is truncated", length=len(data))
        version, size = _LOG_HEAD.unpack_from(data)
        if version != _LOG_STATE_V1:
            raise LedgerError("unknown Merkle log state version", version=version)
        count = size.bit_count()
        if len(data) != _LOG_HEAD.size + HASH_SIZE * count:
            raise LedgerError("Merkle log state length does not match its size", size=size, length=len(data))
        log = cls()
        log._size = size
        log._frontier = [
            bytes(data[_LOG_HEAD.size + HASH_SIZE * i : _LOG_HEAD.size + HASH_SIZE * (i + 1)]) for i in range(count)
        ]
        return log

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MerkleLog):
            return NotImplemented
        return self._size == other._size and self._frontier == other._frontier

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"MerkleLog(size={self._size}, root={self.root().hex()})"


def root(leaves: Iterable[bytes]) -> bytes:
    """The RFC 6962 Merkle tree hash of a sequence of leaf hashes."""
    log = MerkleLog()
    log.extend(leaves)
    return log.root()


class LeafHashes(Protocol):
    """What proof generation needs from a leaf-hash store: its length and random access."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> bytes: ...


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``): RFC 6962's k."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """Subtree hashes and proofs over an append-only store of leaf hashes.

    Perfect subtrees from level ``cache_from_level`` up (2**level leaves each) are kept in
    one ``bytearray`` per level, filled left to right on first use: 32 / 2**level bytes
    per leaf and level, so the default 4 costs about 4 bytes per leaf and makes repeated
    proofs over 1e5+ leaves O(log n) hashes. The cache assumes the store only grows:
    build a new tree if leaves already stored ever change.
    """

    __slots__ = ("_leaves", "_levels", "_min_level")

    def __init__(self, leaves: LeafHashes, *, cache_from_level: int = 4) -> None:
        if cache_from_level < 1:
            raise ValueError("cache_from_level must be at least 1")
        self._leaves = leaves
        self._min_level = cache_from_level
        self._levels: list[bytearray] = []

    def __len__(self) -> int:
        return len(self._leaves)

    def _leaf(self, index: int) -> bytes:
        leaf = self._leaves[index]
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"leaf {index} is not a {HASH_SIZE}-byte hash")
        return bytes(leaf)

    def _node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree of 2**level leaves starting at leaf index * 2**level."""
        if level == 0:
            return self._leaf(index)
        if level < self._min_level:
            return node_hash(self._node(level - 1, 2 * index), self._node(level - 1, 2 * index + 1))
        cache = self._fill(level, index + 1)
        return bytes(cache[HASH_SIZE * index : HASH_SIZE * (index + 1)])

    def _fill(self, level: int, count: int) -> bytearray:
        """Make sure the first ``count`` nodes of ``level`` are cached; return that level."""
        slot = level - self._min_level
        while len(self._levels) <= slot:
            self._levels.append(bytearray())
        cache = self._levels[slot]
        have = len(cache) // HASH_SIZE
        if have >= count:
            return cache
        if level - 1 >= self._min_level:
            below = self._fill(level - 1, 2 * count)
            for i in range(have, count):
                start = 2 * HASH_SIZE * i
                cache += _sha256(b"\x01" + below[start : start + 2 * HASH_SIZE]).digest()
        else:
            for i in range(have, count):
                cache += node_hash(self._node(level - 1, 2 * i), self._node(level - 1, 2 * i + 1))
        return cache

    def _range(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) following RFC 6962's split; perfect aligned parts come from the cache."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self._node(n.bit_length() - 1, start // n)
        k = _split(n)
        return node_hash(self._range(start, start + k), self._range(start + k, end))

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= len(self._leaves):
            raise ValueError(f"tree size {size} is outside the {len(self._leaves)} stored leaves")

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all of them by default)."""
        size = len(self._leaves) if size is None else size
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else self._range(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), innermost sibling first."""
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is not in a tree of size {size}")
        path: list[bytes] = []
        start, end, m = 0, size, index
        while end - start > 1:
            k = _split(end - start)
            if m < k:
                path.append(self._range(start + k, end))
                end = start + k
            else:
                path.append(self._range(start, start + k))
                start, m = start + k, m - k
        path.reverse()
        return path

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2]); empty when size1 is 0 or size2."""
        self._check_size(size2)
        if not 0 <= size1 <= size2:
            raise ValueError(f"cannot prove size {size1} consistent with the smaller size {size2}")
        if size1 in (0, size2):
            return []
        proof: list[bytes] = []
        start, end, m, whole = 0, size2, size1, True
        while True:
            if m == end - start:
                if not whole:
                    proof.append(self._range(start, end))
                break
            k = _split(end - start)
            if m <= k:
                proof.append(self._range(start + k, end))
                end = start + k
            else:
                proof.append(self._range(start, start + k))
                start, m, whole = start + k, m - k, False
        proof.reverse()
        return proof


def _tree(store: LeafHashes | MerkleTree) -> MerkleTree:
    return store if isinstance(store, MerkleTree) else MerkleTree(store)


def inclusion_proof(store: LeafHashes | MerkleTree, index: int, size: int) -> list[bytes]:
    """Inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves of ``store``.

    Pass a :class:`MerkleTree` to keep its cache between proofs; a bare sequence costs
    O(size) hashes per call.
    """
    return _tree(store).inclusion_proof(index, size)


def consistency_proof(store: LeafHashes | MerkleTree, size1: int, size2: int) -> list[bytes]:
    """Consistency proof between the trees of the first ``size1`` and ``size2`` leaves."""
    return _tree(store).consistency_proof(size1, size2)


def _check_hashes(what: str, *hashes: bytes) -> None:
    for h in hashes:
        if not isinstance(h, bytes | bytearray | memoryview) or len(h) != HASH_SIZE:
            raise ProofError(f"{what} holds a value that is not a {HASH_SIZE}-byte hash")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofError(f"{name} must be a non-negative integer", **{name: value})


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> None:
    """Check that ``leaf`` is leaf ``index`` of the tree of ``size`` leaves whose root is ``root_hash``.

    RFC 9162 §2.1.3.2. Raises :class:`ProofError`. The size is only bound through the
    root: take both from the same signed checkpoint.
    """
    _check_count("index", index)
    _check_count("size", size)
    if index >= size:
        raise ProofError("leaf index is beyond the tree size", index=index, size=size)
    _check_hashes("the leaf, root or proof", leaf, root_hash, *proof)
    fn, sn = index, size - 1
    r = bytes(leaf)
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep", index=index, size=size)
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep", index=index, size=size)
    if r != root_hash:
        raise ProofError(
            "leaf is not included at this index under this root", index=index, size=size, root=bytes(root_hash).hex()
        )


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``size2`` leaves (``root2``) extends the tree of ``size1`` (``root1``).

    RFC 9162 §2.1.4.2; equal sizes need equal roots and an empty proof, size 0 needs the
    empty root and an empty proof. Raises :class:`ProofError`.
    """
    _check_count("size1", size1)
    _check_count("size2", size2)
    ctx = {"size1": size1, "size2": size2}
    if size1 > size2:
        raise ProofError("the second tree is smaller than the first (rollback)", **ctx)
    _check_hashes("the roots or proof", root1, root2, *proof)
    if size1 == size2:
        if proof:
            raise ProofError("trees of equal size need an empty consistency proof", **ctx)
        if root1 != root2:
            raise ProofError("two different roots for the same tree size (split view)", **ctx)
        return
    if size1 == 0:
        if proof:
            raise ProofError("the empty tree needs an empty consistency proof", **ctx)
        if root1 != EMPTY_ROOT:
            raise ProofError("the root of an empty tree must be SHA-256 of nothing", **ctx)
        return
    if not proof:
        raise ProofError("consistency proof is empty", **ctx)
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = bytes(path[0])
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long", **ctx)
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short", **ctx)
    if fr != root1:
        raise ProofError("the proof does not rebuild the first root", **ctx)
    if sr != root2:
        raise ProofError("the proof does not rebuild the second root", **ctx)
