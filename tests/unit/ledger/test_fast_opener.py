"""The replay's fast path opens exactly what Wire.open opens, and refuses with Wire.open's own words."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus import Actor, Catalog, KeyDirectory, Wire, default_catalog, generate_key
from bus._wire import Record
from bus.ledger._opening import FastOpener

from .audit_factories import PRODUCER, T0, company, directory, sealed, stored, wire


def reference(opener: FastOpener, record: Record):
    """The Opened of the reference path (Wire.open itself)."""
    return opener._slow(record)


@pytest.fixture(scope="module")
def records() -> list[Record]:
    w = wire()
    linked = w.seal(dataclasses.replace(company(9), correlationid="corr-1", causationid="cause-1"))
    return stored([*sealed(4), linked])


def test_valid_records_take_the_fast_path_and_open_as_wire_open_does(records):
    opener = FastOpener(Wire(default_catalog(), directory()))
    for record in records:
        assert opener.verifies(record.key, record.value, record.headers, record.timestamp_ms)
        got = opener.open(record)
        assert got.ok and got == reference(opener, record)
    assert got.correlationid == "corr-1" and got.causationid == "cause-1"


def test_an_ecdsa_producer_takes_the_fast_path_too():
    key = generate_key("213105554", "Commune test", algorithm="ECDSA_P256_SHA256", valid_from=T0 - dt.timedelta(days=1))
    record = stored([Wire(default_catalog(), KeyDirectory([key.public]), key, clock=lambda: T0).seal(company(1))])[0]
    opener = FastOpener(Wire(default_catalog(), KeyDirectory([key.public])))
    assert opener.verifies(record.key, record.value, record.headers, record.timestamp_ms)
    assert opener.open(record) == reference(opener, record)


def test_a_record_whose_source_names_another_siren_than_its_key_leaves_the_fast_path(monkeypatch):
    key = generate_key("420820078", "ACME", valid_from=T0 - dt.timedelta(days=1))
    monkeypatch.setattr("bus._wire._check_source", lambda *a, **k: None)  # a producer with a patched SDK
    forged = Wire(default_catalog(), KeyDirectory([key.public]), key, source="urn:siren:213105554:webdelib",
                  clock=lambda: T0).seal(company(1))
    monkeypatch.undo()
    record = stored([forged])[0]
    opener = FastOpener(Wire(default_catalog(), KeyDirectory([key.public])))
    assert not opener.verifies(record.key, record.value, record.headers, record.timestamp_ms)
    opened = opener.open(record)
    assert not opened.ok and opened.error_class == "ForeignSourceError"


def headers_with(record: Record, name: str, value: bytes | None, *, add: bool = False) -> Record:
    kept = [(k, v) for k, v in record.headers if add or k != name]
    return dataclasses.replace(record, headers=(*kept, (name, value)))


def retired_directory(at: dt.datetime) -> KeyDirectory:
    return KeyDirectory([dataclasses.replace(PRODUCER.retire(at).public)])


TAMPERINGS = {
    "payload": lambda r: dataclasses.replace(r, value=r.value[:-1] + bytes([r.value[-1] ^ 1])),
    "truncated": lambda r: dataclasses.replace(r, value=r.value[:-3]),
    "tombstone": lambda r: dataclasses.replace(r, value=None),
    "twice": lambda r: headers_with(r, "ce_id", b"other", add=True),
    "no signature": lambda r: dataclasses.replace(r, headers=tuple(h for h in r.headers if h[0] != "ce_sig")),
    "not base64": lambda r: headers_with(r, "ce_sig", b"!!!"),
    "content type": lambda r: headers_with(r, "content-type", b"application/json"),
    "spec version": lambda r: headers_with(r, "ce_specversion", b"0.3"),
    "event type": lambda r: headers_with(r, "ce_type", b"Not A Type"),
    "time": lambda r: headers_with(r, "ce_time", b"yesterday"),
    "not utf-8": lambda r: headers_with(r, "ce_source", b"\xff\xfe"),
    "empty header": lambda r: headers_with(r, "ce_subject", None),
    "oversized header": lambda r: headers_with(r, "ce_correlationid", b"x" * 5000),
    "oversized source": lambda r: headers_with(r, "ce_source", b"x" * 5000),
    "oversized type": lambda r: headers_with(r, "ce_type", b"fr.x" * 1200),
    "oversized dataschema": lambda r: headers_with(r, "ce_dataschema", b"x" * 5000),
    "oversized key id": lambda r: headers_with(r, "ce_sigkeyid", b"x" * 5000),
    "key": lambda r: dataclasses.replace(r, key=b"company:other"),
    "unknown key": lambda r: headers_with(r, "ce_sigkeyid", b"213105554:0000000000000000"),
    "dataschema": lambda r: headers_with(r, "ce_dataschema", b"urn:avro:fr.dcant.reference.Company:v1:crc64:00"),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_a_tampered_record_is_refused_exactly_as_wire_open_refuses_it(records, name):
    opener = FastOpener(Wire(default_catalog(), directory()))
    bad = TAMPERINGS[name](records[0])
    got = opener.open(bad)
    assert not got.ok and got == reference(opener, bad)
    assert not opener.verifies(bad.key, bad.value, bad.headers, bad.timestamp_ms)


@pytest.mark.parametrize("case", ["unknown schema", "retired before the event", "received after retirement",
                                  "too large"])
def test_refusals_that_depend_on_the_catalog_keys_or_limits(records, case):
    record = records[0]
    catalog, keys, limit = default_catalog(), directory(), 256 * 1024
    if case == "unknown schema":
        catalog = Catalog()
    elif case == "retired before the event":
        keys = retired_directory(T0 - dt.timedelta(hours=1))
    elif case == "received after retirement":
        keys = retired_directory(T0 + dt.timedelta(seconds=1))
        record = dataclasses.replace(record, timestamp_ms=int((T0 + dt.timedelta(hours=1)).timestamp() * 1000))
    else:
        limit = 20
    opener = FastOpener(Wire(catalog, keys, max_event_bytes=limit))
    got = opener.open(record)
    assert not got.ok and got == reference(opener, record)


def test_a_grown_catalog_is_noticed(records):
    catalog = Catalog()
    opener = FastOpener(Wire(catalog, directory()))
    assert not opener.open(records[0]).ok
    for schema in default_catalog():
        catalog.add(schema.raw, version=schema.version)
    assert opener.open(records[0]).ok


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_mutation_opens_as_wire_open_opens_it(records, data):
    opener = FastOpener(Wire(default_catalog(), directory()))
    record = data.draw(st.sampled_from(records))
    headers = list(record.headers)
    for _ in range(data.draw(st.integers(0, 2))):
        i = data.draw(st.integers(0, len(headers) - 1))
        action = data.draw(st.sampled_from(["drop", "repeat", "replace"]))
        if action == "drop":
            headers.pop(i)
        elif action == "repeat":
            headers.append(headers[i])
        else:
            headers[i] = (headers[i][0], data.draw(st.binary(max_size=40)))
        if not headers:
            break
    value = record.value
    if data.draw(st.booleans()):
        at = data.draw(st.integers(0, len(value) - 1))
        value = value[:at] + data.draw(st.binary(min_size=0, max_size=3)) + value[at + 1:]
    mutated = dataclasses.replace(record, headers=tuple(headers), value=value)
    assert opener.open(mutated) == reference(opener, mutated)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=90) | st.text("ABCDEFabcdef0123456789-_+/=", max_size=90).map(str.encode))
def test_the_signature_header_decodes_as_base64_b64decode_decodes_it(raw):
    from bus.ledger._opening import _URLSAFE

    padded = raw + b"=" * (-len(raw) % 4)
    try:
        expected = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        expected = None
    try:
        got = binascii.a2b_base64(padded.translate(_URLSAFE), strict_mode=True)
    except (binascii.Error, ValueError):
        got = None
    assert got == expected


ACTOR = Actor(iss="https://idp.test", sub="agent-1", token_sha256="cd" * 32, email="agent@mairie.test", role="adjoint")


def test_an_event_naming_its_actor_opens_with_it_and_an_unsigned_actor_is_refused():
    """The fast path builds v1 signed bytes only: a ce_actor goes to Wire.open, which signs it in (v3)."""
    w = wire()
    with_actor, plain = stored([w.seal(dataclasses.replace(company(1), actor=ACTOR)), w.seal(company(2))])
    opener = FastOpener(Wire(default_catalog(), directory()))
    got = opener.open(with_actor)
    assert got.ok and got.actor == ACTOR.to_json() and got.to_json()["actor"]["role"] == "adjoint"
    assert "actor" not in opener.open(plain).to_json()
    added = dataclasses.replace(plain, headers=(*plain.headers, ("ce_actor", ACTOR.to_header().encode())))
    assert not opener.verifies(added.key, added.value, added.headers, added.timestamp_ms)
    refused = opener.open(added)
    assert not refused.ok and refused.error_class == "SignatureError"
