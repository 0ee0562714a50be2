"""The compiled Avro readers read what fastavro reads, and give up (raise) on anything else."""

from __future__ import annotations

import io
import random

import fastavro
import pytest
from fastavro.utils import generate_many
from hypothesis import given, settings
from hypothesis import strategies as st

from bus import default_catalog
from bus.ledger._avro import compile_reader

SCHEMAS = list(default_catalog())


def reference(parsed, body: bytes):
    """What ``bus._codec.decode`` accepts: fastavro's record, and no trailing byte."""
    stream = io.BytesIO(body)
    record = fastavro.schemaless_reader(stream, parsed, None)
    if stream.tell() != len(body):
        raise ValueError("trailing bytes")
    return record


def compiled(reader, body: bytes):
    record, end = reader(body, 0)
    if end != len(body):
        raise ValueError("the caller's trailing-bytes check")
    return record


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.name)
def test_every_pivot_schema_compiles_and_reads_what_fastavro_reads(schema):
    reader = compile_reader(schema.parsed)
    assert reader is not None
    rng, seen = random.Random(schema.name), 0
    for record in generate_many(schema.parsed, 12):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema.parsed, record)
        body = out.getvalue()
        seen += len(body)
        if seen > 400_000 and seen != len(body):
            break  # the deep schemas make random records of ~400 kB: a couple of them will do
        got = compiled(reader, body)
        assert got == reference(schema.parsed, body)
        assert list(got) == [f["name"] for f in schema.parsed["fields"]]  # field order, as JSON prints it
        for _ in range(8 if len(body) < 4096 else 0):  # a flipped byte: both refuse, or both read the same
            mutated = bytearray(body)
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            try:
                mine = compiled(reader, bytes(mutated))
            except Exception:  # noqa: BLE001 - giving up is always allowed: the caller asks fastavro
                continue
            assert mine == reference(schema.parsed, bytes(mutated))


KITCHEN = {"type": "record", "name": "Kitchen", "namespace": "t", "fields": [
    {"name": "f", "type": "float"}, {"name": "d", "type": "double"}, {"name": "b", "type": "bytes"},
    {"name": "x", "type": {"type": "fixed", "name": "Four", "size": 4}},
    {"name": "m", "type": {"type": "map", "values": ["null", "long"]}},
    {"name": "u", "type": ["null", "string", "t.Four", {"type": "array", "items": "boolean"}]},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "i", "type": "int"},
]}


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=80))
def test_arbitrary_bytes_are_refused_or_read_like_fastavro(body):
    parsed = fastavro.parse_schema(KITCHEN)
    reader = compile_reader(parsed)
    assert reader is not None
    try:
        mine = compiled(reader, body)
    except Exception:  # noqa: BLE001 - see above
        return
    assert mine == reference(parsed, body)


def test_constructs_it_does_not_know_get_no_reader():
    decimal = {"type": "record", "name": "D", "fields": [
        {"name": "a", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}}]}
    recursive = {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
    assert compile_reader(fastavro.parse_schema(decimal)) is None
    assert compile_reader(fastavro.parse_schema(recursive)) is None


def test_out_of_range_values_are_left_to_fastavro():
    parsed = fastavro.parse_schema({"type": "record", "name": "B", "fields": [
        {"name": "flag", "type": "boolean"}, {"name": "n", "type": "int"}]})
    reader = compile_reader(parsed)
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do
        reader(b"\x02\x00", 0)  # boolean byte 2
    with pytest.raises(Exception):  # noqa: B017
        reader(b"\x00\xff\xff\xff\xff\x1f", 0)  # an int wider than 32 bits
    assert reader(b"\x01\x03", 0) == ({"flag": True, "n": -2}, 2)
