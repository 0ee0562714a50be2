"""Addressed, encrypted events (issue 12): round trips, and each refusal with its own error class."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import struct

import pytest

from bus import (
    DecryptionError,
    EncapsulationError,
    EnvelopeError,
    NotARecipientError,
    SignatureError,
    SwappedKeyError,
    TruncatedCiphertextError,
    Wire,
)
from bus._envelope import Envelope
from bus._sealed import (
    MAGIC,
    DecryptionKeyring,
    EncryptionKeyStore,
    _parse,
    decrypt_stream,
    encrypt_stream,
    generate_encryption_key,
)
from bus._wire import Record, _binding

from .conftest import T0, company_event

A, B, C = "210100012", "220200010", "230300018"


@pytest.fixture(scope="module")
def enc_keys():
    return {A: generate_encryption_key(A), B: generate_encryption_key(B, suite="MLKEM768_X25519"),
            C: generate_encryption_key(C)}


def _producer(catalog, directory, key, enc_keys) -> Wire:
    return Wire(catalog, directory, key, source="urn:siren:213105554:test", clock=lambda: T0,
                encryption_keys={s: k.public for s, k in enc_keys.items()})


def _reader(catalog, directory, *keys) -> Wire:
    return Wire(catalog, directory, None, decryption=DecryptionKeyring(keys))


def _addressed(*sirens: str):
    return dataclasses.replace(company_event(), recipients=sirens)


def _resign(record: Record, key, value: bytes) -> Record:
    """``value`` signed by the producer itself (a faulty producer: the signature then holds)."""
    envelope = Envelope.from_headers(record.headers)
    headers = envelope.to_headers(signature=key.sign(envelope.signing_bytes(value)))
    return dataclasses.replace(record, value=value, headers=tuple(headers))


def _slots(value: bytes) -> list[tuple[str, int, bytes]]:
    return _parse(value)[0]


def _rebuild(value: bytes, slots) -> bytes:
    _, nonce, ciphertext = _parse(value)
    parts = [MAGIC, struct.pack(">B", len(slots))]
    for kid, suite, wrapped in slots:
        parts += [struct.pack(">H", len(kid.encode())), kid.encode(), struct.pack(">BH", suite, len(wrapped)), wrapped]
    return b"".join([*parts, nonce, struct.pack(">I", len(ciphertext)), ciphertext])


def test_broadcast_bytes_are_unchanged(wire, catalog, directory, key, enc_keys):
    """No recipients: the same headers and signed bytes as before (v1 prefix, no ce_recipients)."""
    record = _producer(catalog, directory, key, enc_keys).seal(company_event())
    assert all(name != "ce_recipients" for name, _ in record.headers)
    envelope = Envelope.from_headers(record.headers)
    assert envelope.signing_bytes(record.value).startswith(b"dcant-bus-sig-v1\x00")
    assert record.value[:2] == b"\xc3\x01"
    assert _reader(catalog, directory).open(record).data["name"] == "ACME"


def test_broadcast_signed_bytes_are_the_v1_layout():
    """The signed bytes of an event without recipients, rebuilt by hand from the v1 layout (DESIGN §3)."""
    env = Envelope(id="i", source="urn:siren:213105554:t", type="fr.dcant.x.Y", subject="s", time="2026-03-02T08:30:00Z",
                   dataschema="urn:avro:x", sigkeyid="k", causationid="c")

    def field(text: str | None) -> bytes:
        return b"\xff\xff\xff\xff" if text is None else len(text).to_bytes(4, "big") + text.encode()

    expected = b"dcant-bus-sig-v1\x00" + b"".join(field(v) for v in (
        "1.0", "i", "urn:siren:213105554:t", "fr.dcant.x.Y", "s", "2026-03-02T08:30:00Z", "application/avro",
        "urn:avro:x", None, "c", "k")) + (3).to_bytes(8, "big") + b"abc"
    assert env.signing_bytes(b"abc") == expected
    assert [h for h, _ in env.to_headers(signature=b"x")] == [
        "ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "content-type", "ce_dataschema",
        "ce_causationid", "ce_sigkeyid", "ce_sig"]


@pytest.mark.parametrize("recipients", [(A,), (B,), (A, B, C)], ids=["x25519", "hybrid", "three"])
def test_round_trip_for_each_recipient(catalog, directory, key, enc_keys, recipients):
    record = _producer(catalog, directory, key, enc_keys).seal(_addressed(*recipients))
    assert dict(record.headers)["ce_recipients"] == ",".join(sorted(recipients)).encode()
    assert record.value.startswith(MAGIC) and b"ACME" not in record.value
    for siren in recipients:
        got = _reader(catalog, directory, enc_keys[siren]).open(record)
        assert got.data["name"] == "ACME" and got.record.value == record.value
        assert got.envelope.recipient_sirens == tuple(sorted(recipients))


def test_non_recipient_gets_the_verified_envelope_only(catalog, directory, key, enc_keys):
    record = _producer(catalog, directory, key, enc_keys).seal(_addressed(A, B))
    for reader in (_reader(catalog, directory), _reader(catalog, directory, enc_keys[C])):
        with pytest.raises(NotARecipientError) as caught:
            reader.open(record)
        assert caught.value.envelope.subject == "company:42082007800012"
        assert caught.value.envelope.recipient_sirens == (A, B)
        assert "ACME" not in str(caught.value) and not hasattr(caught.value, "data")


@pytest.mark.parametrize("where", ["wrapped key", "ciphertext", "recipients header"])
def test_alteration_fails_the_signature_before_any_decryption(catalog, directory, key, enc_keys, where):
    record = _producer(catalog, directory, key, enc_keys).seal(_addressed(A, C))
    value = bytearray(record.value)
    if where == "wrapped key":
        value[len(MAGIC) + 1 + 2 + len(_slots(record.value)[0][0]) + 3 + 5] ^= 1
        record = dataclasses.replace(record, value=bytes(value))
    elif where == "ciphertext":
        value[-3] ^= 1
        record = dataclasses.replace(record, value=bytes(value))
    else:
        record = dataclasses.replace(record, headers=tuple(
            (k, A.encode() if k == "ce_recipients" else v) for k, v in record.headers))
    # Even a reader holding no key gets SignatureError, not NotARecipientError: verification comes first.
    for reader in (_reader(catalog, directory), _reader(catalog, directory, enc_keys[A])):
        with pytest.raises(SignatureError):
            reader.open(record)


def test_truncated_ciphertext_is_refused(catalog, directory, key, enc_keys):
    record = _producer(catalog, directory, key, enc_keys).seal(_addressed(A))
    with pytest.raises(SignatureError):  # cut in transit
        _reader(catalog, directory, enc_keys[A]).open(dataclasses.replace(record, value=record.value[:-10]))
    cut = _resign(record, key, record.value[:-10])  # cut by the producer before signing
    with pytest.raises(TruncatedCiphertextError):
        _reader(catalog, directory, enc_keys[A]).open(cut)


def test_swapped_wrapped_keys_are_refused(catalog, directory, key, enc_keys):
    record = _producer(catalog, directory, key, enc_keys).seal(_addressed(A, C))
    (ka, sa, wa), (kc, sc, wc) = _slots(record.value)
    swapped = _resign(record, key, _rebuild(record.value, [(ka, sa, wc), (kc, sc, wa)]))
    with pytest.raises(SwappedKeyError):
        _reader(catalog, directory, enc_keys[A]).open(swapped)


def test_encapsulation_for_another_recipient_is_refused(catalog, directory, key, enc_keys):
    record = _producer(catalog, directory, key, enc_keys).seal(_addressed(A, C))
    (ka, sa, wa), (kc, sc, wc) = _slots(record.value)
    other = _resign(record, key, _rebuild(record.value, [(ka, sa, wc[:32] + wa[32:]), (kc, sc, wc)]))
    with pytest.raises(EncapsulationError):
        _reader(catalog, directory, enc_keys[A]).open(other)


def test_ciphertext_under_another_envelope_does_not_decrypt(catalog, directory, key, enc_keys):
    producer = _producer(catalog, directory, key, enc_keys)
    first, second = producer.seal(_addressed(A)), producer.seal(_addressed(A))
    moved = _resign(second, key, first.value)  # first's sealed value re-signed under second's envelope (ce_id)
    with pytest.raises(DecryptionError, match="does not decrypt"):  # AES-GCM's associated data is the envelope
        _reader(catalog, directory, enc_keys[A]).open(moved)


def test_a_data_key_serves_one_recipient_set_for_a_bounded_window(catalog, directory, key, enc_keys):
    from bus._sealed import DataKeyCache

    producer = _producer(catalog, directory, key, enc_keys)
    now = [0.0]
    producer.data_keys = DataKeyCache(max_uses=3, max_age=60, clock=lambda: now[0])
    reader = _reader(catalog, directory, enc_keys[A])
    first, second = producer.seal(_addressed(A, C)), producer.seal(_addressed(A, C))
    assert _slots(first.value) == _slots(second.value)  # one data key, wrapped once for A and C
    assert _parse(first.value)[1] != _parse(second.value)[1]  # each event its own nonce
    other_set = producer.seal(_addressed(A))  # another set of recipients: another data key
    assert _slots(other_set.value)[0] != _slots(first.value)[0]
    third, fourth = producer.seal(_addressed(A, C)), producer.seal(_addressed(A, C))  # uses: 3 is the most
    assert _slots(third.value) == _slots(first.value) != _slots(fourth.value)
    now[0] += 61
    fifth = producer.seal(_addressed(A, C))  # too old: a new one
    assert _slots(fifth.value) != _slots(fourth.value) and producer.data_keys.wraps == 4
    for record in (first, second, other_set, third, fourth, fifth):
        assert reader.open(record).data["name"] == "ACME"


def test_a_reader_unwraps_a_reused_data_key_once(catalog, directory, key, enc_keys, monkeypatch):
    import bus._sealed as sealed

    producer, reader = _producer(catalog, directory, key, enc_keys), _reader(catalog, directory, enc_keys[A])
    records = [producer.seal(_addressed(A, C)) for _ in range(5)]
    calls = []
    unwrap = sealed._unwrap
    monkeypatch.setattr(sealed, "_unwrap", lambda *a: calls.append(a) or unwrap(*a))
    assert [reader.open(r).data["name"] for r in records] == ["ACME"] * 5
    assert len(calls) == 1


def test_a_version_1_sealed_value_still_opens(catalog, directory, key, enc_keys):
    """Written before data keys were reused: a fresh data key per event, its wrap bound to the event."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from bus._sealed import _HPKE, MAGIC_V1, _info

    record = _producer(catalog, directory, key, enc_keys).seal(_addressed(A))
    envelope = Envelope.from_headers(record.headers)
    aad = _binding(envelope)
    payload = _producer(catalog, directory, key, enc_keys).seal(company_event()).value  # the Avro bytes
    data_key, nonce, public = AESGCM.generate_key(256), os.urandom(12), enc_keys[A].public
    wrapped = _HPKE["X25519"].encrypt(data_key, public.loaded(), info=_info(public.key_id, aad))
    kid = public.key_id.encode()
    ciphertext = AESGCM(data_key).encrypt(nonce, payload, aad)
    v1 = b"".join([MAGIC_V1, b"\x01", struct.pack(">H", len(kid)), kid, struct.pack(">BH", 1, len(wrapped)), wrapped,
                   nonce, struct.pack(">I", len(ciphertext)), ciphertext])
    assert _reader(catalog, directory, enc_keys[A]).open(_resign(record, key, v1)).data["name"] == "ACME"


def test_sealed_value_without_recipients_header_is_refused(catalog, directory, key, enc_keys):
    record = _producer(catalog, directory, key, enc_keys).seal(_addressed(A))
    headers = tuple((k, v) for k, v in record.headers if k != "ce_recipients")
    envelope = Envelope.from_headers(headers)
    bare = dataclasses.replace(record, headers=tuple(envelope.to_headers(
        signature=key.sign(envelope.signing_bytes(record.value)))))
    with pytest.raises(EnvelopeError):
        _reader(catalog, directory, enc_keys[A]).open(bare)


def test_the_sealed_value_is_bounded_like_a_payload(catalog, directory, key, enc_keys):
    from bus import RecordTooLargeError

    producer = _producer(catalog, directory, key, enc_keys)
    plain = producer.seal(company_event())
    producer.max_event_bytes = len(plain.value) + 300  # the payload fits; with a hybrid wrapped key it does not
    producer.seal(_addressed(A))
    with pytest.raises(RecordTooLargeError):
        producer.seal(_addressed(A, B))


def test_binding_names_the_recipients(catalog, directory, key, enc_keys):
    record = _producer(catalog, directory, key, enc_keys).seal(_addressed(A, C))
    envelope = Envelope.from_headers(record.headers)
    assert _binding(envelope) != _binding(dataclasses.replace(envelope, recipients=A))


def test_key_store_is_private_and_encrypted_at_rest(tmp_path, enc_keys):
    store = EncryptionKeyStore(tmp_path, b"correct horse")
    for k in enc_keys.values():
        store.save(k)
    pems = sorted(tmp_path.glob("*/*.enc.pem"))
    assert len(pems) == 3 and all(p.stat().st_mode & 0o777 == 0o600 for p in pems)
    assert all(b"ENCRYPTED PRIVATE KEY" in p.read_bytes() for p in pems)
    loaded = {k.key_id: k for k in store.load_all()}
    for k in enc_keys.values():
        assert loaded[k.key_id].public == k.public
    with pytest.raises(Exception) as caught:
        EncryptionKeyStore(tmp_path, b"wrong").load_all()
    assert type(caught.value).__name__ == "ConfigurationError"


def test_keys_loaded_from_the_store_decrypt(tmp_path, catalog, directory, key, enc_keys):
    EncryptionKeyStore(tmp_path, b"pw").save(enc_keys[B])
    record = _producer(catalog, directory, key, enc_keys).seal(_addressed(B))
    reader = Wire(catalog, directory, None, decryption=EncryptionKeyStore(tmp_path, b"pw").keyring())
    assert reader.open(record).data["name"] == "ACME"


# -- documents ----------------------------------------------------------------------------------


def _stream(data: bytes, chunk: int = 1000) -> bytes:
    return b"".join(encrypt_stream([data[i:i + 777] for i in range(0, len(data), 777)], b"k" * 32, b"doc",
                                   chunk=chunk))


@pytest.mark.parametrize("size", [0, 1, 999, 1000, 1001, 5000, 12345])
def test_stream_round_trip(size):
    data = os.urandom(size)
    assert b"".join(decrypt_stream(io.BytesIO(_stream(data)).read, b"k" * 32, b"doc")) == data


def test_stream_truncated_at_a_chunk_boundary_is_refused():
    sealed = _stream(os.urandom(5000))
    head, body = 28, 1016
    for cut in (head + body, head + 2 * body, head):
        with pytest.raises(TruncatedCiphertextError):
            b"".join(decrypt_stream(io.BytesIO(sealed[:cut]).read, b"k" * 32, b"doc"))


def test_stream_reordered_or_altered_is_refused():
    sealed = _stream(os.urandom(5000))
    head, body = 28, 1016
    c = [sealed[head + i * body:head + (i + 1) * body] for i in range(5)]
    reordered = sealed[:head] + c[1] + c[0] + b"".join(c[2:]) + sealed[head + 5 * body:]
    with pytest.raises(DecryptionError) as caught:
        b"".join(decrypt_stream(io.BytesIO(reordered).read, b"k" * 32, b"doc"))
    assert type(caught.value) is DecryptionError
    with pytest.raises(DecryptionError):
        b"".join(decrypt_stream(io.BytesIO(sealed).read, b"k" * 32, b"another document"))


# -- through the test driver: a core reading an encrypted input --------------------------------


def _driver_with_producer(enc_keys, reader_keys, core=None):
    from bus import generate_key
    from bus.testing import TopologyTestDriver

    from .test_driver import CountingCore

    driver = TopologyTestDriver(core or CountingCore())
    driver.wire.decryption = DecryptionKeyring(reader_keys)  # the worker holds the keys of those it serves
    driver.wire.encryption_keys = {s: k.public for s, k in enc_keys.items()}
    producer_key = generate_key("213100000", "producer", valid_from=driver.clock.now - dt.timedelta(days=30))
    driver.directory.add(producer_key.public)
    producer = Wire(driver.catalog, driver.directory, producer_key, source="urn:siren:213100000:test",
                    clock=driver.clock, encryption_keys={s: k.public for s, k in enc_keys.items()})
    return driver, producer


def test_a_core_reads_an_encrypted_input_as_a_recipient(enc_keys):
    driver, producer = _driver_with_producer(enc_keys, [enc_keys[B]])
    driver.input_topic("reference.companies").pipe_record(producer.seal(_addressed(A, B, C)))
    out = driver.output_topic("reference.companies").read()
    assert out.data["name"] == "seen 1" and out.data["siren"] == "420820078"
    assert not driver.dead_letters
    # Its output, derived from an addressed event, is addressed to the same recipients, encrypted.
    assert out.envelope.recipient_sirens == (A, B, C) and b"seen 1" not in out.record.value


def test_a_core_passes_an_event_for_others_unread(enc_keys):
    driver, producer = _driver_with_producer(enc_keys, [enc_keys[C]])
    topic = driver.input_topic("reference.companies")
    topic.pipe_record(producer.seal(_addressed(A, B)))
    topic.pipe_record(producer.seal(_addressed(C)))
    assert driver.stats["not-a-recipient"] == 1 and not driver.dead_letters
    assert [r.data["name"] for r in driver.output_topic("reference.companies").read_all()] == ["seen 1"]


def test_a_timer_output_of_a_state_fed_by_addressed_events_is_addressed_to_their_recipients(enc_keys):
    """A deadline derived from addressed data (here a closure announced a day later) is no broadcast."""
    driver, producer = _driver_with_producer(enc_keys, [enc_keys[A], enc_keys[B]])
    closed = dataclasses.replace(company_event(administrative_state="CLOSED"), recipients=(A, B),
                                 time=driver.clock.now)
    driver.input_topic("reference.companies").pipe_record(producer.seal(closed))
    driver.advance(dt.timedelta(days=1))
    announced = [r for r in driver.output_topic("reference.companies").read_all()
                 if r.type == "fr.dcant.reference.CompanyClosed"]
    assert len(announced) == 1
    assert announced[0].envelope.recipient_sirens == (A, B) and b"CLOSED" not in announced[0].record.value


def test_a_core_with_public_outputs_broadcasts_what_it_derives_from_addressed_events(enc_keys):
    from .test_driver import CountingCore

    class OpenFigures(CountingCore):
        public_outputs = True  # aggregates for open data, as the barometer's

    driver, producer = _driver_with_producer(enc_keys, [enc_keys[A]], OpenFigures())
    driver.input_topic("reference.companies").pipe_record(producer.seal(_addressed(A)))
    out = driver.output_topic("reference.companies").read()
    assert out.envelope.recipients is None and out.data["name"] == "seen 1"


# -- the directory: encryption keys published by their SIREN, approved for ENCRYPTION -------------


def test_a_producer_addresses_an_event_to_the_approved_published_key(catalog, tmp_path):
    from bus import NoValidKeyError, UnapprovedKeyError
    from bus._directory import approval_event, encryption_approval, encryption_key_event

    from .test_authority import DAY, SIREN, T0 as RA_T0, Bus

    bus = Bus(catalog, tmp_path)
    signer = bus.register()
    bus.approve(signer)
    recipient = "220200010"
    recipient_signer = bus.register(siren=recipient)
    bus.approve(recipient_signer)
    enc = generate_encryption_key(recipient, suite="MLKEM768_X25519", valid_from=RA_T0 + DAY, owner="Région")
    assert bus.publish(encryption_key_event(enc.public), recipient_signer, RA_T0 + DAY) == "encryption key"
    at = RA_T0 + 3 * DAY
    producer = Wire(catalog, bus.directory, signer, source=f"urn:siren:{SIREN}:test")
    event = dataclasses.replace(company_event(), time=at, recipients=(recipient,))
    with pytest.raises(UnapprovedKeyError):  # published, not yet approved for ENCRYPTION
        producer.seal(event)
    bus.publish(approval_event(encryption_approval(enc.public, at=RA_T0 + 2 * DAY)), bus.ra, RA_T0 + 2 * DAY)
    record = dataclasses.replace(producer.seal(event), timestamp_ms=int(at.timestamp() * 1000))
    reader = Wire(catalog, bus.directory, None, decryption=DecryptionKeyring([enc]))
    assert reader.open(record).data["name"] == "ACME"
    with pytest.raises(NoValidKeyError):  # an event dated before the key's validity cannot be addressed to it
        producer.seal(dataclasses.replace(event, time=RA_T0 + dt.timedelta(hours=1)))


def test_an_encryption_key_published_by_another_siren_is_refused(catalog, tmp_path, monkeypatch):
    from bus import ForeignSourceError, ForgedRegistrationError
    from bus._directory import encryption_key_event

    from .test_authority import DAY, T0 as RA_T0, Bus

    bus = Bus(catalog, tmp_path)
    stranger = bus.register()
    bus.approve(stranger)
    enc = generate_encryption_key("220200010", valid_from=RA_T0 + DAY)
    with pytest.raises(ForeignSourceError):  # the SDK signs nothing in another administration's name
        bus.seal(encryption_key_event(enc.public), stranger, RA_T0 + DAY)
    monkeypatch.setattr("bus._wire._check_source", lambda *a, **k: None)  # a producer with a patched SDK
    with pytest.raises(ForgedRegistrationError):  # ... and the directory still refuses what it made
        bus.publish(encryption_key_event(enc.public), stranger, RA_T0 + DAY)
    assert "220200010" not in bus.directory.encryption_keys


class _Pipe:
    """A ``read(n)`` over an iterator of byte strings (what a content store's stream gives)."""

    def __init__(self, pieces) -> None:
        self._pieces, self._buffer = iter(pieces), bytearray()

    def read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buffer += piece
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux) to read the RSS")
def test_a_160_mb_document_streams_through_in_bounded_memory():
    import hashlib

    block = os.urandom(1 << 20)
    sent, got = hashlib.sha256(), hashlib.sha256()

    def document():
        for i in range(160):
            piece = i.to_bytes(4, "big") + block[4:]
            sent.update(piece)
            yield piece

    data_key = os.urandom(32)
    before = peak = _rss()
    for plain in decrypt_stream(_Pipe(encrypt_stream(document(), data_key, b"act")).read, data_key, b"act"):
        got.update(plain)
        peak = max(peak, _rss())
    assert got.digest() == sent.digest()
    assert peak - before < 64 * 1024 * 1024, f"RSS grew by {(peak - before) >> 20} MB"
