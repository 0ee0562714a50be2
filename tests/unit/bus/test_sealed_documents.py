"""Sealed (addressed) claim-checked documents: stored encrypted, read back by recipients only."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc

import pytest

from bus._content import LocalContentStore, put_document, read_document
from bus._errors import DecryptionError, DocumentTooLargeError, NotARecipientError, TruncatedCiphertextError
from bus._sealed import DecryptionKeyring, DocumentKey, generate_encryption_key, open_document, seal_document

A, B, C = "210100012", "220200010", "230300018"
PLAIN = b"%PDF-1.7 deliberation du conseil municipal " * 5000


@pytest.fixture(scope="module")
def enc_keys():
    return {A: generate_encryption_key(A), B: generate_encryption_key(B, suite="MLKEM768_X25519"),
            C: generate_encryption_key(C)}


@pytest.fixture
def sealed(tmp_path, enc_keys):
    store = LocalContentStore(tmp_path)
    key = DocumentKey.fresh([enc_keys[A].public, enc_keys[B].public])
    ref = put_document(store, PLAIN, key=key, media_type="application/pdf", file_name="acte.pdf")
    return store, ref


def _read(store, sha256, *keys) -> bytes:
    with read_document(store, sha256, DecryptionKeyring(keys) if keys else None) as (handle, _):
        return handle.read()


@pytest.mark.parametrize("reader", [A, B])
def test_each_recipient_reads_the_document_back(sealed, enc_keys, reader):
    store, ref = sealed
    assert _read(store, ref.sha256, enc_keys[reader]) == PLAIN


def test_the_store_holds_ciphertext_only_and_its_digest_pins_it(sealed):
    store, ref = sealed
    stored = store.path(ref.sha256).read_bytes()
    assert b"deliberation" not in stored
    assert hashlib.sha256(stored).hexdigest() == ref.sha256  # an auditor checks it without any key
    assert ref.size == len(stored)


def test_the_key_names_its_recipients(sealed, enc_keys):
    store, ref = sealed
    with read_document(store, ref.sha256, DecryptionKeyring([enc_keys[A]])) as (_, key):
        assert key is not None and key.sirens() == (A, B)
    assert repr(key._key) not in repr(key)


@pytest.mark.parametrize("holder", [None, C])
def test_a_non_recipient_gets_no_plaintext(sealed, enc_keys, holder):
    store, ref = sealed
    with pytest.raises(NotARecipientError):
        _read(store, ref.sha256, *([enc_keys[holder]] if holder else []))


def test_a_truncated_stored_document_is_refused_before_any_plaintext(sealed, enc_keys):
    store, ref = sealed
    path = store.path(ref.sha256)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 70_000])
    with pytest.raises(TruncatedCiphertextError):
        _read(store, ref.sha256, enc_keys[A])


def test_an_altered_stored_document_is_refused(sealed, enc_keys):
    store, ref = sealed
    path = store.path(ref.sha256)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DecryptionError) as caught:
        _read(store, ref.sha256, enc_keys[A])
    assert not isinstance(caught.value, NotARecipientError)


def test_a_cut_stream_read_without_the_digest_check_still_fails(sealed, enc_keys):
    store, ref = sealed
    data = store.path(ref.sha256).read_bytes()
    for cut in (10, 300, len(data) - 20):
        with pytest.raises(TruncatedCiphertextError):
            _, chunks = open_document(io.BytesIO(data[:cut]).read, DecryptionKeyring([enc_keys[A]]))
            b"".join(chunks)


def test_a_document_derived_under_the_same_key_has_a_content_key_of_its_own(tmp_path, enc_keys):
    store = LocalContentStore(tmp_path)
    key = DocumentKey.fresh([enc_keys[A].public])
    first = put_document(store, b"annexe", key=key, media_type="application/pdf", file_name="a.pdf")
    second = put_document(store, b"annexe", key=key, media_type="application/pdf", file_name="b.pdf")
    assert first.sha256 != second.sha256  # a fresh salt, so a fresh content key and another ciphertext
    assert _read(store, first.sha256, enc_keys[A]) == _read(store, second.sha256, enc_keys[A]) == b"annexe"


def test_a_document_in_clear_reads_as_before(tmp_path):
    store = LocalContentStore(tmp_path)
    ref = put_document(store, b"public act", key=None, media_type="text/plain", file_name="a.txt")
    with read_document(store, ref.sha256, None) as (handle, key):
        assert key is None and handle.read() == b"public act"


def test_the_size_bound_is_on_the_plaintext_and_keeps_nothing(tmp_path, enc_keys):
    store = LocalContentStore(tmp_path)
    key = DocumentKey.fresh([enc_keys[A].public])
    with pytest.raises(DocumentTooLargeError):
        put_document(store, b"x" * 1001, key=key, media_type="text/plain", file_name="a.txt", max_bytes=1000)
    assert not (tmp_path / "objects").exists()
    assert not list((tmp_path / "incoming").iterdir())


def test_a_large_document_is_sealed_and_opened_in_bounded_memory(tmp_path, enc_keys):
    store = LocalContentStore(tmp_path)
    key = DocumentKey.fresh([enc_keys[A].public])
    total = 48 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    tracemalloc.start()
    try:
        ref = put_document(store, (block for _ in range(total // len(block))), key=key,
                           media_type="application/pdf", file_name="big.pdf")
        read, digest = 0, hashlib.sha256()
        with read_document(store, ref.sha256, DecryptionKeyring([enc_keys[A]])) as (handle, _):
            for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                read += len(chunk)
                digest.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == total
    assert digest.digest() == hashlib.sha256(block * (total // len(block))).digest()
    assert peak < 8 * 1024 * 1024  # a few chunks, never the document


def test_a_stream_sealed_for_one_document_does_not_open_as_another(tmp_path, enc_keys):
    key = DocumentKey.fresh([enc_keys[A].public])
    one = b"".join(seal_document([b"a" * 200_000], key))
    other = b"".join(seal_document([b"b" * 200_000], key))
    header = 3 + len(key.slots) + 32  # magic, slots, salt
    spliced = other[:header] + one[header:]  # one's chunks under the other's salt
    with pytest.raises(DecryptionError):
        _, chunks = open_document(io.BytesIO(spliced).read, DecryptionKeyring([enc_keys[A]]))
        b"".join(chunks)


def test_a_document_is_sealed_to_the_recipients_its_event_is_sealed_to(catalog, directory, key, enc_keys):
    import dataclasses

    from bus import Wire
    from bus._topics import topic_for_schema

    from .conftest import T0, company_event

    event = dataclasses.replace(company_event(), recipients=(A,))
    wire = Wire(catalog, directory, key, source="urn:siren:213105554:test", clock=lambda: T0,
                encryption_keys={s: k.public for s, k in enc_keys.items()},
                recipient_policy={topic_for_schema(event.schema): (C,)})
    sirens, keys = wire.recipient_keys((A,), event.schema, T0)
    assert sirens == (A, C) and [k.siren for k in keys] == [A, C]  # the flow's policy adds its own
    assert dict(wire.seal(event).headers)["ce_recipients"] == ",".join(sirens).encode()
    assert DocumentKey.fresh(keys).sirens() == sirens
