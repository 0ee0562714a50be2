"""The claim-check store: streamed put with both digests, atomic and idempotent, bounded size."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import resource

import pytest

from bus._content import CHUNK_BYTES, ContentStore, DocumentRef, LocalContentStore, open_content_store
from bus._errors import ConfigurationError, ContentNotFoundError, DocumentTooLargeError
from bus._settings import BusSettings


class CountingReader(io.RawIOBase):
    """A stream of ``size`` pseudo-random bytes that records the largest read asked of it."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.largest_read = 0
        self.digest = hashlib.sha256()
        self.block = hashlib.sha512(b"seed").digest() * 1024  # 64 KiB pattern

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.largest_read = max(self.largest_read, n)
        n = self.remaining if n < 0 else min(n, self.remaining)
        out = (self.block * (n // len(self.block) + 1))[:n]
        self.remaining -= n
        self.digest.update(out)
        return out


@pytest.fixture
def store(tmp_path) -> LocalContentStore:
    return LocalContentStore(tmp_path / "content")


def test_put_returns_both_digests_and_a_uri_to_the_bytes(store):
    data = b"<Invoice>1250.50</Invoice>"
    ref = store.put(data, media_type="application/xml", file_name="f.xml")
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.sha512 == hashlib.sha512(data).hexdigest()
    assert (ref.size, ref.media_type, ref.file_name) == (len(data), "application/xml", "f.xml")
    assert ref.uri.startswith("file://") and ref.uri.endswith(ref.sha256)
    assert store.exists(ref.sha256)
    with store.open(ref.sha256) as handle:
        assert handle.read() == data
    assert store.digests(ref.sha256) == {"sha256": ref.sha256, "sha512": ref.sha512, "size": len(data)}
    assert isinstance(store, ContentStore)


def test_the_same_content_twice_is_stored_once(store, tmp_path):
    first = store.put(b"same bytes", media_type="text/plain", file_name="a.txt")
    second = store.put(io.BytesIO(b"same bytes"), media_type="text/plain", file_name="b.txt")
    assert first.sha256 == second.sha256 and first.uri == second.uri
    objects = [p for p in (tmp_path / "content" / "objects").rglob("*") if p.is_file() and p.suffix != ".json"]
    assert len(objects) == 1
    assert not list((tmp_path / "content" / "incoming").iterdir())


def test_a_path_source_is_streamed_from_disk(store, tmp_path):
    source = tmp_path / "act.pdf"
    source.write_bytes(b"%PDF-1.7 " * 1000)
    ref = store.put(source, media_type="application/pdf", file_name="act.pdf")
    assert ref.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()


def test_a_large_document_goes_through_in_bounded_chunks_and_memory(store):
    size = 150 * 1024 * 1024
    reader = CountingReader(size)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ref = store.put(reader, media_type="application/pdf", file_name="act.pdf")
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert ref.size == size and ref.sha256 == reader.digest.hexdigest()
    assert reader.largest_read == CHUNK_BYTES
    assert grown_kib < 64 * 1024, f"peak RSS grew by {grown_kib} KiB for a {size}-byte document"
    assert store.path(ref.sha256).stat().st_size == size


def test_a_document_over_the_bound_leaves_nothing_behind(store, tmp_path):
    with pytest.raises(DocumentTooLargeError):
        store.put(b"x" * (3 * CHUNK_BYTES), media_type="text/plain", file_name="big.txt", max_bytes=CHUNK_BYTES)
    assert not list((tmp_path / "content" / "incoming").iterdir())
    assert not (tmp_path / "content" / "objects").exists()


def test_addresses_that_are_not_sha256_are_refused(store):
    for bad in ("../../etc/passwd", "A" * 64, "abc"):
        with pytest.raises(ConfigurationError):
            store.exists(bad)


def test_missing_content_names_the_store(store):
    with pytest.raises(ContentNotFoundError, match="not in the store"):
        store.open("0" * 64)


def test_digests_are_recomputed_when_the_note_is_lost(store):
    ref = store.put(b"abc", media_type="text/plain", file_name="a.txt")
    store.path(ref.sha256).with_suffix(".json").unlink()
    assert store.digests(ref.sha256)["sha512"] == hashlib.sha512(b"abc").hexdigest()


def test_the_default_store_is_under_the_state_dir(tmp_path):
    store = open_content_store(BusSettings(state_dir=tmp_path))
    ref = store.put(b"x", media_type="text/plain", file_name="x")
    assert ref.uri.startswith((tmp_path / "content").as_uri())
    with pytest.raises(ConfigurationError):
        LocalContentStore.from_uri("s3://bucket/prefix")


def test_the_ref_fits_the_attestation_document_record(store):
    from bus._catalog import default_catalog
    from bus._codec import decode, encode

    schema = default_catalog().latest("fr.dcant.reference.Attestation")
    ref = store.put(b"attestation", media_type="application/pdf", file_name="urssaf.pdf")
    record = {"attestation_id": "A1", "kind": "URSSAF_VIGILANCE", "siren": "123456789", "issuer": "URSSAF",
              "issued_on": dt.date(2026, 1, 1), "valid_until": dt.date(2026, 7, 1),
              "status": "UP_TO_DATE", "document": ref.to_record(("sha256", "size", "media_type", "file_name", "uri"))}
    _, back = decode(default_catalog(), encode(schema, record))
    assert DocumentRef.from_record(back["document"]).sha256 == ref.sha256
