"""The verifier's pure core: each kind of tampering is named with its offset; a faithful copy is clean."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus.ledger import MerkleLog, MerkleTree, sign, verify_consistency
from bus.ledger._processor import PartitionLog, checkpoint_meta, consistency_from_frontier
from bus.ledger._verify import PartitionScan, check_partition, load_checkpoints

from .audit_factories import LEDGER, entries, ledger_over, renumber, sealed, stored, directory

ORIGINAL = "it.dcant.invoices"


@pytest.fixture(scope="module")
def original():
    return stored(sealed(12), ORIGINAL)


@pytest.fixture(scope="module")
def checkpoints(original):
    return entries(ledger_over(original, every=4))


def scan_of(records, log_topic=ORIGINAL) -> PartitionScan:
    scan = PartitionScan(records[0].topic if records else "copy", 0, log_topic)
    for r in records:
        scan.add(r)
    return scan


def kinds(findings):
    return {(f.kind, f.offset) for f in findings if f.severity == "error"}


def test_the_original_and_a_faithful_copy_verify_clean(original, checkpoints):
    assert kinds(check_partition(scan_of(original), checkpoints)) == set()
    assert kinds(check_partition(scan_of(renumber(original, "copy")), checkpoints)) == set()


def test_a_copy_verified_as_itself_does_not_match(original, checkpoints):
    findings = check_partition(scan_of(renumber(original, "copy"), log_topic="copy"), checkpoints)
    assert {f.kind for f in findings} == {"no-checkpoint"}


def test_an_altered_record_is_named(original, checkpoints):
    copy = renumber(original, "copy")
    value = bytearray(copy[6].value)
    value[-1] ^= 1
    copy[6] = dataclasses.replace(copy[6], value=bytes(value))
    assert kinds(check_partition(scan_of(copy), checkpoints)) == {("root-mismatch", 4), ("altered", 6)}


def test_a_deleted_record_is_named_at_the_offset_now_in_its_place(original, checkpoints):
    copy = renumber(original[:5] + original[6:], "copy")
    found = kinds(check_partition(scan_of(copy), checkpoints))
    assert ("deleted", 5) in found and ("root-mismatch", 4) in found
    assert {k for k, _ in found} == {"deleted", "root-mismatch"}


def test_an_inserted_record_is_named(original, checkpoints):
    intruder = sealed(20)[15]
    copy = renumber(original[:9] + [dataclasses.replace(intruder, timestamp_ms=1)] + original[9:], "copy")
    found = kinds(check_partition(scan_of(copy), checkpoints))
    assert ("inserted", 9) in found and {k for k, _ in found} == {"inserted", "root-mismatch"}


def test_reordered_records_are_named(original, checkpoints):
    copy = renumber(original[:2] + [original[3], original[2]] + original[4:], "copy")
    found = kinds(check_partition(scan_of(copy), checkpoints))
    assert {k for k, _ in found} == {"reordered", "root-mismatch"}
    assert {o for k, o in found if k == "reordered"} <= {2, 3}


def test_a_truncated_tail_is_named(original, checkpoints):
    copy = renumber(original[:9], "copy")
    found = check_partition(scan_of(copy), checkpoints)
    assert kinds(found) == {("truncated", 9)}
    assert "3 signed record(s) missing" in next(f.detail for f in found if f.kind == "truncated")


def test_two_checkpoints_for_one_size_are_a_split_view(original, checkpoints):
    honest = checkpoints[1].checkpoint
    forged = sign(dataclasses.replace(honest.unsigned(), root=bytes(32), extensions=honest.extensions[:1]),
                  LEDGER.key_id, LEDGER.sign)
    both = checkpoints + entries([forged])
    findings = check_partition(scan_of(original), both)
    assert kinds(findings) == {("split-view", 7), ("inconsistent-checkpoints", 7)}
    split = next(f for f in findings if f.kind == "split-view")
    assert "2 different roots signed for size 8" in split.detail and "= records" in split.detail
    # The forged one is the checkpoint no later checkpoint extends.
    assert "root 0000000000000000" in next(f for f in findings if f.kind == "inconsistent-checkpoints").detail


def test_unanchored_records_are_information_only(original, checkpoints):
    more = original + stored(sealed(14), ORIGINAL)[12:]
    more = [dataclasses.replace(r, offset=i) for i, r in enumerate(more)]
    findings = check_partition(scan_of(more), checkpoints)
    assert kinds(findings) == set()
    assert [f.kind for f in findings] == ["unanchored"]


def test_a_checkpoint_signed_by_an_events_key_is_refused(original):
    from .audit_factories import PRODUCER

    part = PartitionLog(ORIGINAL, 0)
    part.append(original[0])
    cp = sign(part.checkpoint(1, PRODUCER.key_id), PRODUCER.key_id, PRODUCER.sign)
    from bus._wire import Record

    by_log, bad = load_checkpoints([Record(b"k", cp.to_bytes(), (), "cp", 0, 7)], directory())
    assert not by_log and [f.kind for f in bad] == ["bad-checkpoint"] and bad[0].offset == 7
    assert "not a LEDGER key" in bad[0].detail


def test_checkpoints_resume_the_log_where_it_stood(original):
    part = PartitionLog(ORIGINAL, 0)
    for r in original[:7]:
        part.append(r)
    cp = sign(part.checkpoint(5, LEDGER.key_id), LEDGER.key_id, LEDGER.sign)
    resumed = PartitionLog.resume(cp)
    assert resumed.next_offset == 7 and resumed.log == part.log
    for r in original:  # a re-read from the start is ignored up to next-offset
        resumed.append(r)
    assert resumed.log.root() == MerkleTree([scan_of(original).leaves[i] for i in range(12)]).root()
    assert checkpoint_meta(cp).digests_from == 0 and len(checkpoint_meta(cp).digests) == 7


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 70), st.integers(0, 70))
def test_consistency_from_the_frontier_equals_the_rfc_proof(m, extra):
    leaves = [bytes([i % 256]) * 32 for i in range(m + extra)]
    old = MerkleLog()
    old.extend(leaves[:m])
    proof = consistency_from_frontier(old, leaves[m:])
    tree = MerkleTree(leaves)
    assert proof == tree.consistency_proof(m, m + extra)
    if m:
        verify_consistency(m, m + extra, tree.root(m), tree.root(m + extra), proof)
