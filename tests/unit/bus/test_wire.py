"""The wire contract end to end in memory: seal, open, and every way a record can be bad."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat

from bus import (
    EnvelopeError,
    Event,
    KeyDirectory,
    KeyNotValidError,
    PayloadDecodeError,
    RecordTooLargeError,
    SecurityError,
    SignatureError,
    UnknownKeyError,
    UnknownSchemaError,
    Wire,
    generate_key,
)
from bus._envelope import SIGNED_ATTRIBUTES, Envelope
from bus._wire import Record

from .conftest import T0, company_event


def _replace_header(record: Record, name: str, value: bytes | None) -> Record:
    headers = tuple((k, value if k == name else v) for k, v in record.headers if not (k == name and value is None))
    return dataclasses.replace(record, headers=headers)


def test_seal_then_open(wire):
    record = wire.seal(company_event())
    received = wire.open(record)
    assert received.type == "fr.dcant.reference.CompanyRegistered"
    assert received.subject == "company:42082007800012" == record.key.decode()
    assert received.data["name"] == "ACME"
    assert received.time == T0


def test_headers_are_cloudevents_binary_mode_per_the_sdk(wire):
    record = wire.seal(company_event())
    message = ce_kafka.KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    event = ce_kafka.from_binary(message, JSONFormat())
    assert event.get_type() == "fr.dcant.reference.CompanyRegistered"
    assert event.get_source() == "urn:siren:213105554:test"
    assert event.get_subject() == "company:42082007800012"
    assert event.get_datacontenttype() == "application/avro"
    assert event.get_extension("sigkeyid") == wire.signer.key_id
    assert event.get_time() == T0


def test_ids_are_uuid7(wire):
    import uuid

    env = Envelope.from_headers(wire.seal(company_event()).headers)
    assert uuid.UUID(env.id).version == 7


def test_signed_bytes_cover_every_attribute_in_fixed_order(wire):
    env = Envelope.from_headers(wire.seal(company_event()).headers)
    assert SIGNED_ATTRIBUTES[:4] == ("specversion", "id", "source", "type")
    base = env.signing_bytes(b"payload")
    for name in ("id", "source", "type", "subject", "time", "dataschema", "sigkeyid"):
        assert dataclasses.replace(env, **{name: getattr(env, name) + "x"}).signing_bytes(b"payload") != base
    assert dataclasses.replace(env, correlationid="c").signing_bytes(b"payload") != base
    assert env.signing_bytes(b"payloaD") != base


def test_altered_payload_is_refused_before_decoding(wire):
    record = wire.seal(company_event())
    value = bytearray(record.value)
    value[-1] ^= 0x01
    with pytest.raises(SignatureError) as info:
        wire.open(dataclasses.replace(record, value=bytes(value), topic="t", partition=0, offset=7))
    assert info.value.context["offset"] == 7


@pytest.mark.parametrize("header", ["ce_type", "ce_subject", "ce_time", "ce_source", "ce_id", "ce_dataschema"])
def test_altered_header_is_refused(wire, header):
    record = wire.seal(company_event())
    original = dict(record.headers)[header].decode()
    altered = original.replace("2026", "2025") if header == "ce_time" else original + "0"
    if header == "ce_subject":
        record = dataclasses.replace(record, key=altered.encode())
    with pytest.raises((SecurityError, EnvelopeError)):
        wire.open(_replace_header(record, header, altered.encode()))


@pytest.mark.parametrize("header", ["ce_id", "ce_type", "ce_sig", "ce_sigkeyid", "ce_dataschema", "ce_time"])
def test_missing_header_is_named(wire, header):
    record = _replace_header(wire.seal(company_event()), header, None)
    with pytest.raises(EnvelopeError, match=header):
        wire.open(record)


@pytest.mark.parametrize(("header", "value"), [
    ("ce_specversion", b"0.3"), ("ce_time", b"yesterday"), ("content-type", b"application/json"),
    ("ce_sig", b"***"), ("ce_type", b"no dots"), ("ce_subject", b"\xff\xfe"),
])
def test_malformed_header(wire, header, value):
    with pytest.raises(EnvelopeError):
        wire.open(_replace_header(wire.seal(company_event()), header, value))


def test_key_must_match_subject(wire):
    record = dataclasses.replace(wire.seal(company_event()), key=b"company:other")
    with pytest.raises(EnvelopeError, match="key"):
        wire.open(record)


def test_unknown_signing_key(catalog, wire):
    stranger = generate_key("999999999", "intruder", valid_from=T0 - dt.timedelta(days=1))
    forged = Wire(catalog, KeyDirectory([stranger.public]), stranger, clock=lambda: T0).seal(company_event())
    with pytest.raises(UnknownKeyError):
        wire.open(forged)


def test_an_approved_key_of_one_administration_cannot_speak_for_another(catalog, key, directory, monkeypatch):
    """Company 420820078's own valid key signs an event whose ce_source names the commune 213105554."""
    from bus import ForeignSourceError

    company = generate_key("420820078", "ACME", valid_from=T0 - dt.timedelta(days=1))
    readers = Wire(catalog, KeyDirectory([key.public, company.public]), key)
    as_commune = dataclasses.replace(company_event(), source="urn:siren:213105554:webdelib")
    with pytest.raises(ForeignSourceError) as refused:  # the SDK refuses to sign it
        Wire(catalog, KeyDirectory([company.public]), company, clock=lambda: T0).seal(as_commune)
    assert refused.value.context["key_siren"] == "420820078"
    monkeypatch.setattr("bus._wire._check_source", lambda *a, **k: None)  # a producer with a patched SDK
    forged = Wire(catalog, KeyDirectory([company.public]), company, clock=lambda: T0).seal(as_commune)
    monkeypatch.undo()
    with pytest.raises(ForeignSourceError) as refused:  # its signature verifies, its source does not
        readers.open(forged)
    assert "213105554" in str(refused.value) and refused.value.context["key_id"] == company.key_id
    own = Wire(catalog, KeyDirectory([company.public]), company, clock=lambda: T0).seal(
        dataclasses.replace(company_event(), source="urn:siren:420820078:erp"))
    assert readers.open(own).envelope.source == "urn:siren:420820078:erp"


def test_signature_by_another_key_claiming_the_id(catalog, key, directory):
    impostor = generate_key("213105554", "impostor", valid_from=T0 - dt.timedelta(days=1))
    record = Wire(catalog, directory, impostor, clock=lambda: T0).seal(company_event())
    record = _replace_header(record, "ce_sigkeyid", key.key_id.encode())
    with pytest.raises(SignatureError):
        Wire(catalog, directory, key).open(record)


def test_retired_key_verifies_its_own_time_but_not_new_messages(catalog, key):
    retired_at = T0 + dt.timedelta(days=10)
    old_record = Wire(catalog, KeyDirectory([key.public]), key, clock=lambda: T0).seal(company_event())
    directory = KeyDirectory([key.retire(retired_at).public])
    reader = Wire(catalog, directory, None)
    # An event of its own time, received then: still verifiable years later.
    stamped = dataclasses.replace(old_record, timestamp_ms=int(T0.timestamp() * 1000))
    assert reader.open(stamped).data["siret"] == "42082007800012"
    # A new message signed after retirement.
    late = Wire(catalog, directory, key, clock=lambda: retired_at + dt.timedelta(days=1)).seal(company_event())
    with pytest.raises(KeyNotValidError):
        reader.open(late)
    # A back-dated message that reached the broker after retirement.
    backdated = dataclasses.replace(old_record, timestamp_ms=int((retired_at + dt.timedelta(days=2)).timestamp() * 1000))
    with pytest.raises(KeyNotValidError, match="retired"):
        reader.open(backdated)


def test_retirement_cannot_be_undone_by_replaying_the_older_record(key):
    directory = KeyDirectory([key.retire(T0).public])
    directory.add(key.public)  # the earlier, open-ended record replayed from the topic
    assert directory.get(key.key_id).valid_until == T0


def test_not_avro_payload_with_valid_signature_is_a_decode_error(catalog, key, directory):
    wire = Wire(catalog, directory, key, clock=lambda: T0)
    record = wire.seal(company_event())
    env = Envelope.from_headers(record.headers)
    bogus = b"not avro at all"
    resigned = env.with_signature(key.sign(env.signing_bytes(bogus)))
    with pytest.raises(PayloadDecodeError):
        wire.open(Record(record.key, bogus, tuple(resigned.to_headers())))


def test_unknown_fingerprint_with_valid_signature(catalog, key, directory):
    wire = Wire(catalog, directory, key, clock=lambda: T0)
    record = wire.seal(company_event())
    bogus = b"\xc3\x01" + b"\x42" * 8 + b"\x00"
    env = dataclasses.replace(Envelope.from_headers(record.headers), dataschema="urn:avro:x:v1:crc64:" + "42" * 8)
    resigned = env.with_signature(key.sign(env.signing_bytes(bogus)))
    with pytest.raises(UnknownSchemaError):
        wire.open(Record(record.key, bogus, tuple(resigned.to_headers())))


def test_oversized_event_is_refused_both_ways(catalog, key, directory):
    small = Wire(catalog, directory, key, clock=lambda: T0, max_event_bytes=64)
    with pytest.raises(RecordTooLargeError):
        small.seal(company_event(name="x" * 200))
    big = Wire(catalog, directory, key, clock=lambda: T0).seal(company_event(name="x" * 200))
    with pytest.raises(RecordTooLargeError):
        small.open(big)


def test_ecdsa_p256_keys_sign_and_verify(catalog):
    key = generate_key("213105554", "hsm", algorithm="ECDSA_P256_SHA256", valid_from=T0 - dt.timedelta(days=1))
    wire = Wire(catalog, KeyDirectory([key.public]), key, clock=lambda: T0)
    assert wire.open(wire.seal(company_event())).data["siren"] == "420820078"


def test_event_time_must_be_aware(wire):
    naive = dataclasses.replace(company_event(), time=dt.datetime(2026, 1, 1))
    with pytest.raises(EnvelopeError, match="timezone"):
        wire.seal(naive)
