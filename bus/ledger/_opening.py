"""Opening records for an audit: :meth:`Wire.open`'s checks at little more than the signature's cost.

:class:`Opened` is the outcome of opening one record (the verified event, or why it was
refused). :class:`FastOpener` is the replay's hot path. It applies every check of
:meth:`Wire.open` (size, envelope headers, record key, key validity at the event time,
Ed25519 or ECDSA signature over the signed bytes, schema fingerprint, then the payload decoded
with its writer schema from the catalog, never before its signature is checked) but reads the
headers once into a dict, builds the signed bytes from the raw header bytes the strings come
from (the bytes :meth:`Envelope.signing_bytes` rebuilds), with the pieces that repeat (key,
producer, dataschema) made once, verifies a batch's signatures back to back, and decodes with
a reader compiled once per writer schema (:mod:`bus.ledger._avro`; a resolution between two
versions is left to fastavro). Any record it does not vouch for (an error anywhere, a
repeated header...) is opened by :meth:`Wire.open` itself: a refused record is refused with
exactly the error it always got.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import decimal
import re
import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from bus._actor import Actor
from bus._catalog import Schema
from bus._codec import MARKER, decode
from bus._envelope import _ABSENT, _MAX_HEADER, _SIG_PREFIX, _TYPE, CONTENT_TYPE, SPECVERSION, Envelope
from bus._errors import BusError, EnvelopeError, NotARecipientError
from bus._keys import CLOCK_SKEW, PublicKey
from bus._wire import Record, Wire
from bus.ledger._avro import CompiledReader, compile_reader

__all__ = ["FastOpener", "NOT_A_RECIPIENT", "Opened", "json_value", "open_records", "peek"]

#: The ``data`` of an addressed event opened by a reader that holds none of its recipients' keys.
NOT_A_RECIPIENT = "not a recipient"

_PLAIN = frozenset({str, int, float, bool, type(None)})


def json_value(value: Any) -> Any:
    """A decoded Avro value as JSON: instants and dates ISO 8601, bytes base64, decimals as strings."""
    kind = type(value)
    # Exact-type fast paths first: fastavro returns plain dicts, lists and scalars, and the
    # ABC isinstance checks below cost a third of a replay when run on every leaf.
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): v if type(v) in _PLAIN else json_value(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _PLAIN else json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Opened:
    """The outcome of opening one record: the verified event, or why it was refused."""

    topic: str | None
    partition: int | None
    offset: int | None
    timestamp_ms: int | None
    ok: bool
    error_class: str | None = None
    error: str | None = None
    id: str | None = None
    type: str | None = None
    source: str | None = None
    subject: str | None = None
    time: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    sigkeyid: str | None = None
    writer: str | None = None
    writer_version: int | None = None
    reader_version: int | None = None
    data: Any = None
    #: The agent who acted (the verified ``ce_actor`` claims), when the event names one.
    actor: dict[str, Any] | None = None
    #: Personal fields shown blanked (:mod:`bus._erasure`), and the dossier's erasure when it is known.
    hidden: tuple[str, ...] = ()
    erasure: dict[str, Any] | None = None
    #: The dossier whose key encrypts the personal fields (the subject unless the event names another).
    dossier: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON line ``bus replay`` prints."""
        out = {"topic": self.topic, "partition": self.partition, "offset": self.offset,
               "timestamp_ms": self.timestamp_ms, "verified": self.ok}
        if not self.ok:
            return {**out, "error_class": self.error_class, "error": self.error, "id": self.id, "type": self.type,
                    "subject": self.subject}
        return {**out, "id": self.id, "type": self.type, "source": self.source, "subject": self.subject,
                "time": self.time, "correlationid": self.correlationid, "causationid": self.causationid,
                "signed_by": self.sigkeyid, "schema": self.writer, "writer_version": self.writer_version,
                "reader_version": self.reader_version, "data": self.data,
                **({"actor": self.actor} if self.actor is not None else {}),
                **({"personal_data": self.personal_data()} if self.hidden else {})}

    def personal_data(self) -> dict[str, Any]:
        """What became of the personal fields shown blanked: erased (basis, date) or withheld from this reader."""
        if self.erasure is None:
            return {"state": "withheld", "fields": list(self.hidden)}
        return {"state": "erased", "fields": list(self.hidden), "basis": self.erasure["basis"],
                "erased_at": self.erasure["erased_at"], "erasure_event": self.erasure.get("event_id")}


def peek(record: Record) -> Envelope | None:
    """The record's envelope, unverified (for filtering only), or None if it has none."""
    try:
        return Envelope.from_headers(record.headers)
    except EnvelopeError:
        return None


_CONTENT_TYPE = CONTENT_TYPE.encode()
_SPECVERSION = SPECVERSION.encode()
_LENGTH = struct.Struct(">I").pack  # each attribute's length prefix in the signed bytes (Envelope.signing_bytes)
_URLSAFE = bytes.maketrans(b"-_", b"+/")  # base64.b64decode(altchars=b"-_") without building the table each time
_from_iso = dt.datetime.fromisoformat
_SIGNED_HEAD = _SIG_PREFIX + _LENGTH(len(_SPECVERSION)) + _SPECVERSION
_CONTENT_TYPE_PIECE = _LENGTH(len(_CONTENT_TYPE)) + _CONTENT_TYPE
_GROUP = 256  # records whose signatures are verified back to back (a fetch chunk: measured best)
_SOURCE_SIREN = re.compile(rb"^urn:siren:(\d{9})(?::|$)")  # as Wire.open reads the producer's SIREN
_REMEMBERED = 1024  # distinct producers (source, type) or dataschemas remembered at most

Verify = Callable[[bytes, bytes], None]


def _verifier(key: PublicKey) -> Verify:
    """``verify(signature, message)`` with ``key``, raising on a mismatch."""
    loaded = serialization.load_der_public_key(key.public_der)
    if isinstance(loaded, ed25519.Ed25519PublicKey):
        return loaded.verify
    return lambda signature, message: key.verify_raw(message, signature)


Item = tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]], int | None]  # key, value, headers, ms


class FastOpener:
    """Opens records as :meth:`Wire.open` does, with the per-key, per-schema and per-type work done once.

    Records are opened by batches. Keys and schemas are remembered as met, and checked again
    at each batch: a key replaced in the directory (retired) or a grown catalog (a new
    version: the reader schema is the newest) is noticed from the next batch on.
    """

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        # Pieces of the signed bytes, each made once from header values seen valid (UTF-8, pattern).
        self._keys: dict[bytes, tuple[PublicKey, Verify, bytes]] = {}  # ce_sigkeyid
        self._producers: dict[tuple[bytes, bytes], bytes] = {}  # (ce_source, ce_type)
        self._dataschemas: dict[bytes, bytes] = {}  # ce_dataschema (after the content type)
        self._schemas: dict[bytes, tuple[bytes, Schema, CompiledReader | None, int]] = {}
        self._catalog_size = -1

    def _refresh(self) -> None:
        if len(self.wire.catalog) != self._catalog_size:
            self._schemas.clear()
            self._catalog_size = len(self.wire.catalog)
        keys = self.wire.keys
        for raw, (public, _, _) in list(self._keys.items()):
            if public.key_id not in keys or keys.get(public.key_id) is not public:
                del self._keys[raw]

    def _key(self, raw: bytes) -> tuple[PublicKey, Verify, bytes]:
        if len(raw) > _MAX_HEADER:
            raise ValueError("oversized ce_sigkeyid: Wire.open words the error")
        public = self.wire.keys.get(raw.decode())
        known = self._keys[raw] = (public, _verifier(public), _LENGTH(len(raw)) + raw)
        return known

    def _producer(self, source: bytes, type_: bytes) -> bytes | None:
        if len(source) > _MAX_HEADER or len(type_) > _MAX_HEADER or not _TYPE.match(type_.decode()):
            return None
        source.decode()
        if len(self._producers) >= _REMEMBERED:  # a hostile topic must not grow it without end
            self._producers.clear()
        piece = self._producers[source, type_] = _LENGTH(len(source)) + source + _LENGTH(len(type_)) + type_
        return piece

    def _dataschema(self, dataschema: bytes) -> bytes:
        if len(dataschema) > _MAX_HEADER:
            raise ValueError("oversized ce_dataschema: Wire.open words the error")
        dataschema.decode()
        if len(self._dataschemas) >= _REMEMBERED:
            self._dataschemas.clear()
        piece = self._dataschemas[dataschema] = _CONTENT_TYPE_PIECE + _LENGTH(len(dataschema)) + dataschema
        return piece

    def _schema(self, fp: bytes) -> tuple[bytes, Schema, CompiledReader | None, int]:
        """(fingerprint hex, writer schema, its compiled reader (None: resolve with fastavro), reader version)."""
        writer = self.wire.catalog.by_fingerprint(fp)
        if writer is None:
            raise LookupError("unknown schema: Wire.open words the error")
        reader = self.wire.catalog.latest(writer.name)
        compiled = compile_reader(writer.parsed) if reader.fingerprint == writer.fingerprint else None
        known = self._schemas[fp] = (fp.hex().encode(), writer, compiled, reader.version)
        return known

    def _envelope(self, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]],
                  timestamp_ms: int | None) -> tuple[Any, ...] | None:
        """Wire.open's checks before the payload: (verify, signature, signed bytes, dataschema, fields) or None."""
        if value is None or len(value) > self.wire.max_event_bytes:
            return None
        h = dict(headers)
        if len(h) != len(headers) or "ce_recipients" in h or "ce_actor" in h:
            # a repeated header: Wire.open says which; an addressed (encrypted) event or one naming its actor
            # (signed bytes v2, v3): Wire.open, which alone builds those signed bytes
            return None
        spec, id_, source, type_, subject, time = (h["ce_specversion"], h["ce_id"], h["ce_source"], h["ce_type"],
                                                   h["ce_subject"], h["ce_time"])
        dataschema, sigkeyid, sig = h["ce_dataschema"], h["ce_sigkeyid"], h["ce_sig"]
        correlation, causation = h.get("ce_correlationid"), h.get("ce_causationid")
        # Sizes: ce_source, ce_type, ce_dataschema and ce_sigkeyid are checked once, as their pieces are made.
        if spec != _SPECVERSION or h.get("content-type", _CONTENT_TYPE) != _CONTENT_TYPE or max(
                len(id_), len(subject), len(time), len(sig), 0 if correlation is None else len(correlation),
                0 if causation is None else len(causation)) > _MAX_HEADER:
            return None
        producer = self._producers.get((source, type_)) or self._producer(source, type_)
        if producer is None:
            return None
        fields = (id_.decode(), subject.decode(), time.decode(),
                  None if correlation is None else correlation.decode(),
                  None if causation is None else causation.decode())
        at = _from_iso(fields[2].replace("Z", "+00:00"))  # parse_time, whose errors Wire.open words
        if at.tzinfo is None or (key is not None and key != subject):
            return None
        public, verify, key_piece = self._keys.get(sigkeyid) or self._key(sigkeyid)
        named = _SOURCE_SIREN.match(source)
        if named is not None and named.group(1) != public.siren.encode():
            return None  # ForeignSourceError: Wire.open raises it
        # KeyDirectory.verify's rules: valid at the event time, received before its retirement (+ skew).
        until = public.valid_until
        if at < public.valid_from or (until is not None and (at >= until or (timestamp_ms is not None and (
                dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC) >= until + CLOCK_SKEW)))):
            return None
        trust = self.wire.keys.trust
        if trust.enforced and not self.wire.keys.trusted(
                public, at, None if timestamp_ms is None else dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)):
            return None  # Wire.open raises the trust error that applies
        signature = binascii.a2b_base64((sig + b"=" * (-len(sig) % 4)).translate(_URLSAFE), strict_mode=True)
        signed = b"".join((  # Envelope.signing_bytes, from the header bytes the strings were decoded from
            _SIGNED_HEAD, _LENGTH(len(id_)), id_, producer, _LENGTH(len(subject)), subject, _LENGTH(len(time)), time,
            self._dataschemas.get(dataschema) or self._dataschema(dataschema),
            _ABSENT if correlation is None else _LENGTH(len(correlation)) + correlation,
            _ABSENT if causation is None else _LENGTH(len(causation)) + causation,
            key_piece, len(value).to_bytes(8, "big"), value))
        return verify, signature, signed, dataschema, (source, type_, public.key_id, fields)

    def _payload(self, value: bytes, dataschema: bytes) -> tuple[Schema, Any, int] | None:
        """Wire.open's checks after the signature: the fingerprint ce_dataschema names, the decoded payload."""
        if len(value) < 10 or value[:2] != MARKER:
            return None
        fp = value[2:10]
        fp_hex, writer, compiled, reader_version = self._schemas.get(fp) or self._schema(fp)
        if not dataschema.endswith(fp_hex):
            return None
        if compiled is None:
            writer, data = decode(self.wire.catalog, value)
        else:
            data, end = compiled(value, 10)
            if end != len(value):
                return None
        return writer, data, reader_version

    def _open_many(self, items: Sequence[Item]) -> list[tuple[tuple[Any, ...], tuple[Schema, Any, int]] | None]:
        """For each item, (envelope, payload) if the fast path vouches for it, else None.

        By groups of :data:`_GROUP`: every envelope first, then every signature back to back
        (the verifier's code and tables stay in the processor's caches, the signed bytes too:
        ~5% faster than one record at a time), then the payloads of the verified records only.
        """
        self._refresh()
        if len(items) > _GROUP:
            return [got for i in range(0, len(items), _GROUP) for got in self._open_group(items[i:i + _GROUP])]
        return self._open_group(items)

    def _open_group(self, items: Sequence[Item]) -> list[tuple[tuple[Any, ...], tuple[Schema, Any, int]] | None]:
        envelopes: list[tuple[Any, ...] | None] = []
        for item in items:
            try:
                envelopes.append(self._envelope(*item))
            except Exception:  # noqa: BLE001 - whatever went wrong, Wire.open finds it again and words it
                envelopes.append(None)
        for i, envelope in enumerate(envelopes):
            if envelope is not None:
                try:
                    envelope[0](envelope[1], envelope[2])
                except Exception:  # noqa: BLE001 - as above (InvalidSignature mostly)
                    envelopes[i] = None
        out: list[tuple[tuple[Any, ...], tuple[Schema, Any, int]] | None] = []
        for item, envelope in zip(items, envelopes, strict=True):
            payload = None
            if envelope is not None:
                try:
                    payload = self._payload(item[1], envelope[3])  # type: ignore[arg-type]
                except Exception:  # noqa: BLE001 - as above
                    payload = None
            out.append(None if payload is None else (envelope, payload))  # type: ignore[arg-type]
        return out

    def unverified(self, items: Sequence[Item]) -> list[int]:
        """Indexes of the items the fast path does not vouch for (open those with :meth:`open`).

        Every other item is verified (signature, key validity) and decoded, as Wire.open would.
        """
        return [i for i, got in enumerate(self._open_many(items)) if got is None]

    def verifies(self, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]],
                 timestamp_ms: int | None) -> bool:
        """Whether one record opens on the fast path (False does not mean refused: see :meth:`open`)."""
        return not self.unverified([(key, value, headers, timestamp_ms)])

    def open_all(self, records: Sequence[Record]) -> list[Opened]:
        """Verify and decode each record; never raises for a bad record (it comes back refused)."""
        got = self._open_many([(r.key, r.value, r.headers, r.timestamp_ms) for r in records])
        return [self._slow(record) if opened is None else self._opened(record, *opened)
                for record, opened in zip(records, got, strict=True)]

    def open(self, record: Record) -> Opened:
        return self.open_all([record])[0]

    @staticmethod
    def _opened(record: Record, envelope: tuple[Any, ...], payload: tuple[Schema, Any, int]) -> Opened:
        source, type_, key_id, (id_, subject, moment, correlation, causation) = envelope[4]
        writer, data, reader_version = payload
        return Opened(record.topic, record.partition, record.offset, record.timestamp_ms, True,
                      id=id_, source=source.decode(), type=type_.decode(), subject=subject, time=moment,
                      correlationid=correlation, causationid=causation, sigkeyid=key_id, writer=writer.name,
                      writer_version=writer.version, reader_version=reader_version, data=json_value(data))

    def _slow(self, record: Record) -> Opened:
        """Wire.open itself: the reference for every record the fast path did not vouch for."""
        try:
            got = self.wire.open(record)
        except NotARecipientError as err:  # verified (signature, key, trust) but not readable without its key
            env = err.envelope
            return Opened(record.topic, record.partition, record.offset, record.timestamp_ms, True,
                          id=env.id, type=env.type, source=env.source, subject=env.subject, time=env.time,
                          correlationid=env.correlationid, causationid=env.causationid, sigkeyid=env.sigkeyid,
                          data=NOT_A_RECIPIENT, actor=_actor_of(env))
        except BusError as err:
            env = peek(record)
            return Opened(record.topic, record.partition, record.offset, record.timestamp_ms, False,
                          type(err).__name__, getattr(err, "message", str(err)),
                          id=env.id if env else None, type=env.type if env else None,
                          subject=env.subject if env else None)
        env = got.envelope
        return Opened(record.topic, record.partition, record.offset, record.timestamp_ms, True,
                      id=env.id, type=env.type, source=env.source, subject=env.subject, time=env.time,
                      correlationid=env.correlationid, causationid=env.causationid, sigkeyid=env.sigkeyid,
                      writer=got.writer.name, writer_version=got.writer.version,
                      reader_version=got.schema.version, data=json_value(got.data), actor=_actor_of(env),
                      hidden=got.hidden, erasure=None if got.erasure is None else got.erasure.to_json(),
                      dossier=got.dossier)


def _actor_of(envelope: Envelope) -> dict[str, Any] | None:
    return None if envelope.actor is None else Actor.from_header(envelope.actor).to_json()



def open_records(wire: Wire, records: Sequence[Record]) -> list[Opened]:
    """Verify and decode each record (never raises for a bad record)."""
    return FastOpener(wire).open_all(records)
