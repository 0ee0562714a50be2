"""Avro single-object encoding: marker, fingerprint, resolution, corrupt input."""

from __future__ import annotations

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus import Catalog, PayloadDecodeError, PayloadEncodeError, UnknownSchemaError
from bus._codec import MARKER, decode, encode, fingerprint_of

from .conftest import company_event

COMPANY = "fr.dcant.reference.Company"


def test_payload_starts_with_marker_and_fingerprint(catalog):
    schema = catalog.latest(COMPANY)
    payload = encode(schema, company_event().data)
    assert payload[:2] == MARKER == b"\xc3\x01"
    assert fingerprint_of(payload) == schema.fingerprint


def test_fingerprint_is_the_spec_crc64_of_the_canonical_form():
    # Avro spec: the CRC-64-AVRO fingerprint of the schema "null" is 0x63dd24e7cc258f8a,
    # written little-endian in single-object encoding.
    schema = Catalog().add({"type": "record", "name": "N", "fields": []}, version=1)
    assert schema.canonical == '{"name":"N","type":"record","fields":[]}'
    from fastavro.schema import fingerprint

    assert fingerprint('"null"', "CRC-64-AVRO") == (0x63DD24E7CC258F8A).to_bytes(8, "little").hex()


def test_round_trip(catalog):
    event = company_event(name="Société Générale de Travaux")
    writer, data = decode(catalog, encode(catalog.latest(COMPANY), event.data))
    assert writer.name == COMPANY
    assert data["name"] == "Société Générale de Travaux"
    assert data["siret"] == "42082007800012"


def test_golden_bytes_are_stable(catalog):
    # Pins the wire bytes of one record: a change here breaks every stored event.
    payload = encode(catalog.latest(COMPANY), company_event().data)
    body = fastavro.schemaless_reader(__import__("io").BytesIO(payload[10:]), catalog.latest(COMPANY).parsed, None)
    assert body["siren"] == "420820078"
    assert payload[10:12] == b"\x00\x12"  # enum index 0 (ESTABLISHMENT), then "420820078" has length 9 → zigzag 18


def test_decode_with_an_older_writer_schema_resolves_to_the_reader():
    v1 = {"type": "record", "name": "Doc", "namespace": "t", "fields": [{"name": "a", "type": "string"}]}
    v2 = {"type": "record", "name": "Doc", "namespace": "t", "fields": [
        {"name": "a", "type": "string"}, {"name": "b", "type": ["null", "string"], "default": None}]}
    cat = Catalog()
    old = cat.add(v1, version=1)
    cat.add(v2, version=2)
    writer, data = decode(cat, encode(old, {"a": "x"}))
    assert writer.version == 1
    assert data == {"a": "x", "b": None}


@pytest.mark.parametrize("payload", [b"", b"\xc3", b"{}", b"\x00\x01" + b"\x00" * 10])
def test_not_single_object_is_refused(catalog, payload):
    with pytest.raises(PayloadDecodeError):
        decode(catalog, payload)


def test_unknown_fingerprint(catalog):
    with pytest.raises(UnknownSchemaError):
        decode(catalog, MARKER + b"\x01" * 8 + b"\x00")


def test_trailing_bytes_are_refused(catalog):
    payload = encode(catalog.latest(COMPANY), company_event().data)
    with pytest.raises(PayloadDecodeError, match="trailing"):
        decode(catalog, payload + b"\x00")


def test_encoding_a_wrong_record_is_typed(catalog):
    with pytest.raises(PayloadEncodeError):
        encode(catalog.latest(COMPANY), {"kind": "NOPE"})


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200))
def test_random_bodies_only_raise_typed_errors(catalog, body):
    payload = MARKER + catalog.latest(COMPANY).fingerprint + body
    try:
        decode(catalog, payload)
    except PayloadDecodeError:
        pass
