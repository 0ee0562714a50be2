"""Evidence that cannot be self-made: with a trust anchor, every key of a bundle must chain to it."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from bus import KeyDirectory, Wire, default_catalog
from bus._authority import Authority, AuthorityKey, TrustAnchor, fingerprint
from bus._directory import approval_event, approval_for, authority_event, registration_event
from bus.ledger import MerkleTree
from bus.ledger._evidence import EvidenceEvent, build_bundle, verify_bundle
from bus.ledger._merkle import LedgerError
from bus.ledger._verify import PartitionScan

from .audit_factories import LEDGER, PRODUCER, T0, ledger_over, sealed, stored

SINCE = T0 - dt.timedelta(days=30)


def _directory_records(ra) -> list:
    catalog = default_catalog()

    def seal(event, signer, offset):
        record = Wire(catalog, KeyDirectory(), signer).seal(event)
        return dataclasses.replace(record, topic="it.dcant.reference.administrations", partition=0, offset=offset,
                                   timestamp_ms=int(SINCE.timestamp() * 1000))

    out = [seal(authority_event(AuthorityKey(ra.key_id, ra.public.public_der, SINCE), SINCE), ra, 0)]
    for key in (PRODUCER, LEDGER):
        out.append(seal(registration_event(key), key, len(out)))
        approval = approval_for(key.public, purposes=(), valid_from=None, valid_until=None, legal_category="7210",
                                at=SINCE)
        out.append(seal(approval_event(approval), ra, len(out)))
    return out


def _bundle(directory_records=()) -> bytes:
    records = stored(sealed(4), "it.dcant.invoices")
    checkpoints = ledger_over(records, every=2)
    scan = PartitionScan("it.dcant.invoices", 0)
    for r in records:
        scan.add(r)
    tree = MerkleTree(scan.leaves)
    anchor, latest = checkpoints[0], checkpoints[-1]
    events = [EvidenceEvent(records[1], 1, anchor, tree.inclusion_proof(1, anchor.size), latest,
                            tree.consistency_proof(anchor.size, latest.size))]
    catalog = default_catalog()
    schemas = [catalog.latest(n) for n in ("fr.dcant.reference.Company", "fr.dcant.reference.AdministrationKey",
                                           "fr.dcant.reference.KeyApproval", "fr.dcant.reference.AuthorityKey")]
    return build_bundle("company:42082007800012", events, [PRODUCER.public, LEDGER.public], schemas, created=T0,
                        catalog=catalog, directory_records=directory_records)


@pytest.fixture(scope="module")
def ra(tmp_path_factory):
    return Authority(tmp_path_factory.mktemp("ra")).create(SINCE)


def test_a_self_made_bundle_is_consistent_but_does_not_chain_to_the_anchor(ra):
    bundle = _bundle()
    assert verify_bundle(bundle).keys == 2  # consistent: the old check passes
    with pytest.raises(LedgerError, match="does not chain to the trust anchor"):
        verify_bundle(bundle, anchor=TrustAnchor(fingerprint(ra.public.public_der)))


def test_a_bundle_whose_keys_the_authority_approved_verifies_with_its_anchor(ra, tmp_path):
    bundle = _bundle(_directory_records(ra))
    report = verify_bundle(bundle, anchor=TrustAnchor(fingerprint(ra.public.public_der)))
    assert [e.offset for e in report.events] == [1] and report.checkpoints == 2
    other = Authority(tmp_path).create(SINCE)
    with pytest.raises(LedgerError, match="trust anchor"):
        verify_bundle(bundle, anchor=TrustAnchor(fingerprint(other.public.public_der)))
