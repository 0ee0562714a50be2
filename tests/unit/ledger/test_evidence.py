"""Evidence bundles verify offline, and any flipped byte makes verification fail with a reason."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus import default_catalog
from bus._errors import BusError
from bus.ledger import MerkleTree
from bus.ledger._evidence import EvidenceEvent, build_bundle, verify_bundle
from bus.ledger._verify import PartitionScan

from .audit_factories import LEDGER, PRODUCER, T0, ledger_over, sealed, stored


@pytest.fixture(scope="module")
def bundle() -> bytes:
    records = stored(sealed(5), "it.dcant.invoices")
    checkpoints = ledger_over(records, every=2)  # sizes 2, 4, 5
    scan = PartitionScan("it.dcant.invoices", 0)
    for r in records:
        scan.add(r)
    tree = MerkleTree(scan.leaves)
    events = []
    for position in (1, 3):
        anchor = next(c for c in checkpoints if c.size > position)
        latest = checkpoints[-1]
        events.append(EvidenceEvent(records[position], position, anchor, tree.inclusion_proof(position, anchor.size),
                                    latest, tree.consistency_proof(anchor.size, latest.size)))
    catalog = default_catalog()
    schema = catalog.latest("fr.dcant.reference.Company")
    return build_bundle("company:42082007800012", events, [PRODUCER.public, LEDGER.public], [schema],
                        created=T0, catalog=catalog)


def test_a_bundle_verifies_offline(bundle):
    report = verify_bundle(bundle)
    assert report.dossier == "company:42082007800012"
    assert [e.offset for e in report.events] == [1, 3] and all(e.ok for e in report.events)
    assert report.checkpoints == 3 and report.keys == 2
    names = zipfile.ZipFile(io.BytesIO(bundle)).namelist()
    assert names[0] == "manifest.json" and "timeline.html" in names


def test_the_timeline_escapes_everything(bundle):
    page = zipfile.ZipFile(io.BytesIO(bundle)).read("timeline.html").decode()
    assert "&quot;ACME 1&quot;" in page and '"ACME 1"' not in page


@pytest.mark.parametrize("stride", [17])
def test_every_sampled_flipped_byte_fails_with_a_reason(bundle, stride):
    positions = sorted(set(range(0, len(bundle), stride)) | set(range(len(bundle) - 200, len(bundle))))
    for pos in positions:
        flipped = bytearray(bundle)
        flipped[pos] ^= 0x01
        with pytest.raises(BusError) as caught:
            verify_bundle(bytes(flipped))
        assert caught.value.message, pos


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_flipped_byte_fails(bundle, data):
    pos = data.draw(st.integers(0, len(bundle) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(bundle)
    flipped[pos] ^= 1 << bit
    with pytest.raises(BusError):
        verify_bundle(bytes(flipped))


def test_path_traversal_and_unknown_members_are_refused(bundle):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../etc/passwd", b"x")
    with pytest.raises(BusError, match="possible path traversal"):
        verify_bundle(buf.getvalue())


def test_a_truncated_bundle_is_refused(bundle):
    with pytest.raises(BusError, match="not a readable zip"):
        verify_bundle(bundle[: len(bundle) // 2])
