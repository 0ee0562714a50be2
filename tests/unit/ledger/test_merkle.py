"""Merkle hashing, the compact-range log, and RFC 9162 proofs.

Known answers come from the transparency-dev/merkle (ex-Trillian / certificate-transparency)
reference suites: ``testonly/constants.go`` (roots, node hashes, compact ranges) and
``proof/verify_test.go`` (inclusion and consistency proofs). Everything else is checked
against a naive implementation of the RFC's recursive definitions written here.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus._errors import SecurityError
from bus.ledger import (
    EMPTY_ROOT,
    LedgerError,
    MerkleLog,
    MerkleTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    record_leaf_bytes,
    root,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_LEAVES = [leaf_hash(x) for x in CT_INPUTS]
# testonly/constants.go RootHashes(), indexed by tree size.
CT_ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
# testonly/constants.go NodeHashes(): [level][index].
CT_NODES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]
# testonly/constants.go CompactTrees(): (level, index) of each frontier hash per size.
CT_COMPACT = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]
# proof/verify_test.go inclusionProofs (its leaf numbers are 1-based; these are indices).
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
# proof/verify_test.go consistencyProofs.
CT_CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


# --- naive reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 as written ------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


def flip(data: bytes, byte: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[byte % len(out)] ^= 1 << bit
    return bytes(out)


# --- known answers -------------------------------------------------------------------


def test_hashing_primitives() -> None:
    assert EMPTY_ROOT == CT_ROOTS[0]
    assert leaf_hash(b"") == CT_ROOTS[1]
    assert node_hash(CT_LEAVES[0], CT_LEAVES[1]) == CT_ROOTS[2]
    assert [leaf_hash(x) for x in CT_INPUTS] == CT_NODES[0]


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    assert root(CT_LEAVES[:size]) == CT_ROOTS[size]
    assert MerkleTree(CT_LEAVES).root(size) == CT_ROOTS[size]
    assert ref_mth(CT_LEAVES[:size]) == CT_ROOTS[size]


def test_compact_range_matches_reference_frontiers() -> None:
    log = MerkleLog()
    for size in range(9):
        assert log.frontier == tuple(CT_NODES[lvl][i] for lvl, i in CT_COMPACT[size])
        assert log.root() == CT_ROOTS[size]
        if size < 8:
            assert log.append(CT_LEAVES[size]) == size
    assert log.size == 8


def test_perfect_subtrees_match_reference_node_hashes() -> None:
    tree = MerkleTree(CT_LEAVES, cache_from_level=1)
    for level, row in enumerate(CT_NODES):
        for index, expected in enumerate(row):
            span = 1 << level
            assert tree._range(index * span, (index + 1) * span) == expected


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_reference_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    expected = [h(p) for p in proof]
    assert inclusion_proof(CT_LEAVES, index, size) == expected
    verify_inclusion(CT_LEAVES[index], index, size, expected, CT_ROOTS[size])
    leaf, rt = CT_LEAVES[index], CT_ROOTS[size]
    # The corruptions of verify_test.go's corruptInclusionProof.
    probes = [
        (leaf, index - 1, size, expected, rt),
        (leaf, index + 1, size, expected, rt),
        (leaf, index ^ 2, size, expected, rt),
        (leaf, index, size * 2, expected, rt),
        (leaf, index, size // 2, expected, rt),
        (leaf_hash(b"WrongLeaf"), index, size, expected, rt),
        (leaf, index, size, expected, EMPTY_ROOT),
        (leaf, index, size, expected, SOME_HASH),
        (leaf, index, size, [*expected, rt], rt),
        (leaf, index, size, [rt, *expected], rt),
        (leaf, index, size, expected[:-1], rt),
        (leaf, index, size, [expected[0], SOME_HASH, *expected[1:]], rt),
        (leaf, index, size, [*expected, b""], rt),
    ]
    probes += [(leaf, index, size, [*expected[:i], flip(p, 0, 3), *expected[i + 1 :]], rt) for i, p in enumerate(expected)]
    for probe in probes:
        with pytest.raises(ProofError):
            verify_inclusion(*probe)


@pytest.mark.parametrize(("size1", "size2", "proof"), CT_CONSISTENCY)
def test_reference_consistency_proofs(size1: int, size2: int, proof: list[str]) -> None:
    expected = [h(p) for p in proof]
    assert consistency_proof(CT_LEAVES, size1, size2) == expected
    r1, r2 = CT_ROOTS[size1], CT_ROOTS[size2]
    verify_consistency(size1, size2, r1, r2, expected)
    # The corruptions of verify_test.go's corruptConsistencyProof.
    probes = [
        (size1 - 1, size2, r1, r2, expected),
        (size1 + 1, size2, r1, r2, expected),
        (size1 ^ 2, size2, r1, r2, expected),
        (size1, size2 * 2, r1, r2, expected),
        (size1, size2 // 2, r1, r2, expected),
        (size1, size2, SOME_HASH, r2, expected),
        (size1, size2, r1, SOME_HASH, expected),
        (size1, size2, r2, r1, expected),
        (size1, size2, r1, r2, []),
        (size1, size2, r1, r2, [*expected, r1]),
        (size1, size2, r1, r2, [*expected, r2]),
        (size1, size2, r1, r2, [r1, *expected]),
        (size1, size2, r1, r2, [r2, *expected]),
        (size1, size2, r1, r2, [expected[0], *expected]),
        (size1, size2, r1, r2, expected[:-1]),
    ]
    probes += [(size1, size2, r1, r2, [*expected[:i], flip(p, 0, 4), *expected[i + 1 :]]) for i, p in enumerate(expected)]
    for probe in probes:
        with pytest.raises(ProofError):
            verify_consistency(*probe)


def test_trivial_consistency_cases() -> None:
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, CT_ROOTS[5], [])
    verify_consistency(3, 3, CT_ROOTS[3], CT_ROOTS[3], [])
    assert consistency_proof(CT_LEAVES, 0, 8) == [] and consistency_proof(CT_LEAVES, 8, 8) == []
    bad = [
        (3, 3, CT_ROOTS[3], CT_ROOTS[4], []),  # split view
        (3, 3, CT_ROOTS[3], CT_ROOTS[3], [EMPTY_ROOT]),  # equal sizes need no proof
        (0, 1, EMPTY_ROOT, CT_ROOTS[1], [EMPTY_ROOT]),
        (0, 1, CT_ROOTS[1], CT_ROOTS[1], []),  # size 0 has the empty root
        (4, 3, CT_ROOTS[4], CT_ROOTS[3], []),  # rollback
        (-1, 3, EMPTY_ROOT, CT_ROOTS[3], []),
        (1, 2, CT_ROOTS[1], CT_ROOTS[2], []),
        (1, 2, b"short", CT_ROOTS[2], [CT_LEAVES[1]]),
    ]
    for probe in bad:
        with pytest.raises(ProofError):
            verify_consistency(*probe)


def test_trivial_inclusion_cases() -> None:
    verify_inclusion(CT_LEAVES[0], 0, 1, [], CT_ROOTS[1])
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)]:
        with pytest.raises(ProofError):
            verify_inclusion(CT_LEAVES[0], index, size, [], CT_ROOTS[1])
    with pytest.raises(ProofError):
        verify_inclusion(b"", 0, 1, [], CT_ROOTS[1])
    with pytest.raises(ProofError):
        verify_inclusion(CT_LEAVES[0], True, 2, [CT_LEAVES[1]], CT_ROOTS[2])


def test_proof_error_is_a_security_error_with_context() -> None:
    with pytest.raises(SecurityError) as info:
        verify_inclusion(CT_LEAVES[1], 1, 8, inclusion_proof(CT_LEAVES, 0, 8), CT_ROOTS[8])
    assert isinstance(info.value, ProofError) and isinstance(info.value, LedgerError)
    assert info.value.context["index"] == 1 and info.value.context["size"] == 8


def test_generation_matches_the_rfc_definitions_exhaustively() -> None:
    data = leaves(40)
    tree = MerkleTree(data, cache_from_level=2)
    for n in range(1, 41):
        assert tree.root(n) == ref_mth(data[:n])
        for m in range(n):
            assert tree.inclusion_proof(m, n) == ref_path(m, data[:n])
        for m in range(1, n):
            assert tree.consistency_proof(m, n) == ref_subproof(m, data[:n], True)


def test_bad_generation_requests() -> None:
    tree = MerkleTree(CT_LEAVES)
    for call in (
        lambda: tree.inclusion_proof(8, 8),
        lambda: tree.inclusion_proof(0, 9),
        lambda: tree.consistency_proof(5, 4),
        lambda: tree.root(9),
    ):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(ValueError):
        MerkleTree([b"not a hash", b"x" * 32]).root(2)


# --- properties ------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 200), salt=st.binary(max_size=4), data=st.data())
def test_every_proof_verifies_and_tampering_fails(n: int, salt: bytes, data: st.DataObject) -> None:
    hashes = leaves(n, salt)
    tree = MerkleTree(hashes)
    roots = [tree.root(s) for s in range(n + 1)]
    for i in range(n):
        verify_inclusion(hashes[i], i, n, tree.inclusion_proof(i, n), roots[n])
    for m in range(n + 1):
        verify_consistency(m, n, roots[m], roots[n], tree.consistency_proof(m, n))

    i = data.draw(st.integers(0, n - 1), label="index")
    proof = tree.inclusion_proof(i, n)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte, bit = data.draw(st.integers(0, 31)), data.draw(st.integers(0, 7))
        with pytest.raises(ProofError):
            verify_inclusion(hashes[i], i, n, [*proof[:k], flip(proof[k], byte, bit), *proof[k + 1 :]], roots[n])
    with pytest.raises(ProofError):
        verify_inclusion(hashes[i], i, n, proof, flip(roots[n], data.draw(st.integers(0, 31))))
    other_index = data.draw(st.integers(0, n + 2).filter(lambda j: j != i), label="other index")
    with pytest.raises(ProofError):
        verify_inclusion(hashes[i], other_index, n, proof, roots[n])
    # A size is only meaningful with its root: the tampered size is checked against its own root.
    other_size = data.draw(st.integers(1, n + 2).filter(lambda s: s != n), label="other size")
    with pytest.raises(ProofError):
        verify_inclusion(hashes[i], i, other_size, proof, roots[min(other_size, n)] if other_size <= n else SOME_HASH)

    m = data.draw(st.integers(1, n), label="size1")
    cproof = tree.consistency_proof(m, n)
    if cproof:
        k = data.draw(st.integers(0, len(cproof) - 1))
        with pytest.raises(ProofError):
            verify_consistency(m, n, roots[m], roots[n], [*cproof[:k], flip(cproof[k], data.draw(st.integers(0, 31))), *cproof[k + 1 :]])
    with pytest.raises(ProofError):
        verify_consistency(m, n, flip(roots[m], 3), roots[n], cproof)
    with pytest.raises(ProofError):
        verify_consistency(m, n, roots[m], flip(roots[n], 7), cproof)
    m2 = data.draw(st.integers(1, n).filter(lambda s: s != m), label="other size1") if n > 1 else None
    if m2 is not None:
        with pytest.raises(ProofError):
            verify_consistency(m2, n, roots[m2], roots[n], cproof)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 200), cut=st.integers(0, 200))
def test_appender_root_equals_mth_at_every_size_and_resumes(n: int, cut: int) -> None:
    hashes = leaves(n)
    log = MerkleLog()
    resumed: MerkleLog | None = None
    for size in range(n + 1):
        assert log.root() == ref_mth(hashes[:size])
        assert len(log.frontier) == size.bit_count()
        if size == min(cut, n):
            resumed = MerkleLog.from_bytes(log.to_bytes())
            assert resumed == log
        if size < n:
            log.append(hashes[size])
    assert resumed is not None
    resumed.extend(hashes[min(cut, n) :])
    assert resumed.root() == log.root() and resumed.size == n
    assert resumed.to_bytes() == log.to_bytes()


def test_log_state_is_checked_on_resume() -> None:
    log = MerkleLog()
    log.extend(CT_LEAVES[:7])
    state = log.to_bytes()
    assert len(state) == 1 + 8 + 3 * 32
    for bad in (state[:-1], state + b"\x00", b"\x02" + state[1:], state[:5]):
        with pytest.raises(LedgerError):
            MerkleLog.from_bytes(bad)
    copy = log.copy()
    copy.append(CT_LEAVES[7])
    assert log.size == 7 and copy.root() == CT_ROOTS[8]
    with pytest.raises(ValueError):
        log.append(b"too short")


def test_proofs_over_a_growing_store_of_100k_leaves() -> None:
    store = leaves(100_000)
    tree = MerkleTree(store)
    log = MerkleLog()
    log.extend(store)
    assert tree.root() == log.root()
    for i in (0, 1, 4095, 65_536, 99_999):
        verify_inclusion(store[i], i, 100_000, tree.inclusion_proof(i, 100_000), log.root())
    old_root = log.root()
    # The cache survives appends: the store only grows.
    extra = leaves(1_001, b"more")
    store.extend(extra)
    log.extend(extra)
    assert tree.root() == log.root()
    verify_consistency(100_000, 101_001, old_root, log.root(), tree.consistency_proof(100_000, 101_001))
    verify_inclusion(store[100_500], 100_500, 101_001, tree.inclusion_proof(100_500, 101_001), log.root())


# --- record leaf encoding --------------------------------------------------------------


def test_record_leaf_layout_is_pinned() -> None:
    data = record_leaf_bytes(b"k", None, [("ce_id", b"1"), ("x", None)], "t", 2, 3, -1)
    assert data == (
        b"\x01"
        + b"\x00\x00\x00\x01t"
        + b"\x00\x00\x00\x02"
        + b"\x00\x00\x00\x00\x00\x00\x00\x03"
        + b"\xff\xff\xff\xff\xff\xff\xff\xff"
        + b"\x01\x00\x00\x00\x01k"
        + b"\x00"
        + b"\x00\x00\x00\x02"
        + b"\x00\x00\x00\x05ce_id\x01\x00\x00\x00\x011"
        + b"\x00\x00\x00\x01x\x00"
    )


def test_record_leaf_distinguishes_absence_order_and_boundaries() -> None:
    base = {"key": b"k", "value": b"v", "headers": [("a", b"1"), ("b", b"2")], "topic": "t", "partition": 0, "offset": 7, "timestamp_ms": 1}
    variants = [
        {"key": None},
        {"key": b""},
        {"value": None},
        {"value": b""},
        {"key": b"kv", "value": b""},
        {"headers": [("b", b"2"), ("a", b"1")]},
        {"headers": [("a", b"1"), ("b", None)]},
        {"headers": [("a", b"1")]},
        {"headers": [("a", b"1"), ("b", b"2"), ("b", b"2")]},
        {"topic": "u"},
        {"partition": 1},
        {"offset": 8},
        {"timestamp_ms": 2},
    ]
    encodings = {record_leaf_bytes(**base)} | {record_leaf_bytes(**{**base, **v}) for v in variants}
    assert len(encodings) == len(variants) + 1
    for bad in ({"partition": -1}, {"offset": -1}, {"timestamp_ms": 1 << 63}, {"partition": 1 << 31}):
        with pytest.raises(ValueError):
            record_leaf_bytes(**{**base, **bad})


_opt = st.none() | st.binary(max_size=8)
_record = st.tuples(
    _opt,
    _opt,
    st.lists(st.tuples(st.text(max_size=4), _opt), max_size=3),
    st.text(min_size=1, max_size=5),
    st.integers(0, 3),
    st.integers(0, 3),
    st.integers(-1, 3),
)


@settings(max_examples=150, deadline=None)
@given(a=_record, b=_record)
def test_record_leaf_encoding_is_injective(a: tuple, b: tuple) -> None:
    assert (record_leaf_bytes(*a) == record_leaf_bytes(*b)) == (a == b)
