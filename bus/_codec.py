"""Avro single-object encoding: the payload format of every event on the bus.

A payload is ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the writer
schema's Parsing Canonical Form + the Avro binary body (Avro specification, "Single-object
encoding"). Decoding needs nothing but the catalog: the fingerprint names the writer schema,
the reader schema is the catalog's newest version of the same record, and Avro schema
resolution bridges the two.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import fastavro
from fastavro.read import SchemaResolutionError

from ._errors import PayloadDecodeError, PayloadEncodeError, UnknownSchemaError

if TYPE_CHECKING:
    from ._catalog import Catalog, Schema

__all__ = ["MARKER", "decode", "encode", "fingerprint_of", "split_header"]

MARKER = b"\xc3\x01"
_HEADER = 10


def fingerprint_of(payload: bytes) -> bytes:
    """The 8-byte writer-schema fingerprint of a single-object payload."""
    if len(payload) < _HEADER or payload[:2] != MARKER:
        raise PayloadDecodeError(
            "payload is not Avro single-object encoding (no C3 01 marker)", size=len(payload)
        )
    return payload[2:_HEADER]


def split_header(payload: bytes) -> tuple[bytes, memoryview]:
    """(fingerprint, body) of a single-object payload."""
    return fingerprint_of(payload), memoryview(payload)[_HEADER:]


def encode(schema: Schema, record: Mapping[str, Any]) -> bytes:
    """Encode ``record`` with ``schema`` as single-object Avro."""
    buf = io.BytesIO()
    buf.write(MARKER)
    buf.write(schema.fingerprint)
    try:
        fastavro.schemaless_writer(buf, schema.parsed, record, strict_allow_default=True)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise PayloadEncodeError(f"record does not fit {schema.name}: {exc}", schema=schema.name) from exc
    return buf.getvalue()


def decode(catalog: Catalog, payload: bytes, *, reader: Schema | None = None) -> tuple[Schema, dict[str, Any]]:
    """Decode a single-object payload; returns (writer schema, record in the reader's shape).

    ``reader`` defaults to the catalog's newest version of the writer's record name.
    """
    fp, body = split_header(payload)
    writer = catalog.by_fingerprint(fp)
    if writer is None:
        raise UnknownSchemaError(f"no catalogued schema has fingerprint {fp.hex()}", fingerprint=fp.hex())
    target = reader or catalog.latest(writer.name)
    stream = io.BytesIO(body)
    try:
        if target.fingerprint == writer.fingerprint:
            record = fastavro.schemaless_reader(stream, writer.parsed, None)
        else:
            record = fastavro.schemaless_reader(stream, writer.parsed, target.parsed)
    except SchemaResolutionError as exc:
        raise PayloadDecodeError(
            f"{writer.name} v{writer.version} cannot be read as v{target.version}: {exc}", schema=writer.name
        ) from exc
    except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise PayloadDecodeError(f"corrupt {writer.name} body: {exc!r}", schema=writer.name) from exc
    if stream.tell() != len(body):
        raise PayloadDecodeError(
            f"{len(body) - stream.tell()} trailing bytes after the {writer.name} record", schema=writer.name
        )
    if not isinstance(record, dict):
        raise PayloadDecodeError(f"{writer.name} payload is not a record", schema=writer.name)
    return writer, record
