"""Sealing and opening events: the one place where the wire contract is applied.

:meth:`Wire.seal` turns a typed :class:`Event` into a Kafka record (key, Avro single-object
value, CloudEvents headers with the producer's signature). :meth:`Wire.open` does the
reverse on a consumed record and refuses anything that is not exactly that: it checks the
envelope, the signature (before decoding a byte of payload), the schema fingerprint, and the
key. The producer SDK, the consumer SDK, the test driver, the processors and the replay all
go through it, so a schema drift or a signature bug fails at the first hop.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._actor import Actor
from ._catalog import Catalog, Schema
from ._codec import decode, encode, fingerprint_of
from ._envelope import Envelope, format_time
from ._erasure import DossierKeyStore, Erasure, aad, dossier_of, is_personal, mark, protect, reveal
from ._errors import ConfigurationError, EnvelopeError, ForeignSourceError, NotARecipientError, RecordTooLargeError
from ._keys import KeyDirectory, Keyring, PublicKey, SigningKey
from ._sealed import (
    DataKeyCache, DecryptionKeyring, RecipientKey, UnwrapCache, binding, is_sealed, open_sealed, recipients_of,
    seal_payload,
)
from ._topics import topic_for_schema

__all__ = ["Event", "Received", "Record", "Wire", "utc_now"]

Headers = Sequence[tuple[str, bytes]]
_SOURCE_SIREN = re.compile(r"^urn:siren:(\d{9})(?::|$)")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def uuid7() -> str:
    """A UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, version 7, 74 random bits.

    Time-ordered ids keep a partition's ``ce_id`` roughly sortable for auditors. Written here
    because the generic libraries cost ~20 µs per id on the sealing hot path; this costs ~1 µs.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122/9562 variant
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """An event to publish: its type, dossier, payload record and payload schema name."""

    type: str
    subject: str
    schema: str
    data: Mapping[str, Any]
    id: str | None = None
    time: dt.datetime | None = None
    correlationid: str | None = None
    causationid: str | None = None
    source: str | None = None
    #: SIRENs to address the event to (``ce_recipients``); the payload is then encrypted to each. None: broadcast.
    recipients: Sequence[str] | None = None
    #: The agent who acted (``ce_actor``), from :meth:`bus.ActorVerifier.verify`: signed with the event.
    actor: Actor | None = None
    #: The dossier whose key encrypts the personal fields (:mod:`bus._erasure`); None: the subject. A derived
    #: event that copies a dossier's personal data under another subject names that dossier, so its erasure
    #: reaches the copy.
    dossier: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record as bytes, with where it was read from when it was read."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    timestamp_ms: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """A verified, decoded event and the record it came from."""

    envelope: Envelope
    schema: Schema
    writer: Schema
    data: dict[str, Any]
    record: Record
    #: Personal fields shown blanked (their dossier key is not held here, or was destroyed: see ``erasure``).
    hidden: tuple[str, ...] = ()
    #: The dossier's erasure, when this reader's key store holds it.
    erasure: Erasure | None = None
    #: The dossier whose key encrypts the personal fields (the subject, unless the event names another); None
    #: when the event has no personal value.
    dossier: str | None = None

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def actor(self) -> Actor | None:
        """The agent who acted, as signed by the producer (None when the event names none)."""
        return None if self.envelope.actor is None else Actor.from_header(self.envelope.actor)

    @property
    def subject(self) -> str:
        return self.envelope.subject

    @property
    def id(self) -> str:
        return self.envelope.id

    @property
    def time(self) -> dt.datetime:
        return self.envelope.timestamp


class Wire:
    """Applies the wire contract with one catalog, one key directory and (to publish) signing keys.

    ``signer`` is one key or a :class:`Keyring`; either way each event is signed with the key of
    its source's SIREN valid at the event's time (``ce_time``), the rule its verifiers apply, and
    sealing refuses (:class:`NoValidKeyError`) when there is none.
    """

    def __init__(
        self,
        catalog: Catalog,
        keys: KeyDirectory,
        signer: SigningKey | Keyring | None = None,
        *,
        source: str | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        max_event_bytes: int = 256 * 1024,
        encryption_keys: Mapping[str, RecipientKey] | None = None,
        decryption: DecryptionKeyring | None = None,
        recipient_policy: Mapping[str, Sequence[str]] | None = None,
        dossier_keys: DossierKeyStore | None = None,
    ) -> None:
        self.catalog = catalog
        self.keys = keys
        self.signer = signer
        self.source = source
        self.clock = clock
        self.max_event_bytes = max_event_bytes
        self._ring = Keyring([signer]) if isinstance(signer, SigningKey) else signer
        #: Recipients' public encryption keys by SIREN (to seal addressed events), and this reader's private ones.
        self.encryption_keys = dict(encryption_keys or {})
        self.decryption = decryption
        #: Per flow (logical topic), the SIRENs added to every addressed event's recipients (BUS_RECIPIENT_POLICY).
        self.recipient_policy = {flow: tuple(sirens) for flow, sirens in (recipient_policy or {}).items()}
        #: Data keys reused within limits when sealing, and those unwrapped when opening (see :mod:`bus._sealed`).
        self.data_keys = DataKeyCache()
        self.unwrapped = UnwrapCache()
        #: Per-dossier keys of personal fields (crypto-shredding, :mod:`bus._erasure`); None: sealed in clear.
        self.dossier_keys = dossier_keys

    def signing_key(self, at: dt.datetime, source: str | None = None) -> SigningKey:
        """The key this wire signs an event of ``source`` (default: the wire's) dated ``at`` with."""
        if self._ring is None or not len(self._ring):
            raise EnvelopeError("this wire has no signing key", hint="configure BUS_SOURCE and `bus keys generate`")
        match = _SOURCE_SIREN.match(source or self.source or "")
        return self._ring.for_event(at, match.group(1) if match else None)

    def _added_recipients(self, schema: str) -> tuple[str, ...]:
        """The recipients the policy adds to an addressed event of ``schema``'s flow (none outside the flows)."""
        if not self.recipient_policy:
            return ()
        try:
            return self.recipient_policy.get(topic_for_schema(schema), ())
        except ConfigurationError:
            return ()

    def recipient_keys(self, recipients: Sequence[str], schema: str, at: dt.datetime) -> tuple[tuple[str, ...],
                                                                                              list[RecipientKey]]:
        """(SIRENs, their encryption keys at ``at``) of an event of ``schema`` addressed to ``recipients``.

        The flow's policy adds its recipients; a document claim-checked from such an event is sealed
        to the same keys (:func:`bus.put_document`).
        """
        sirens = self.recipient_sirens(recipients, schema)
        return sirens, recipients_of(self.encryption_keys, self.keys, sirens, at)

    def recipient_sirens(self, recipients: Sequence[str], schema: str, **context: Any) -> tuple[str, ...]:
        """The SIRENs an event of ``schema`` addressed to ``recipients`` is sealed to: the flow's policy adds its own."""
        sirens = tuple(sorted({*recipients, *self._added_recipients(schema)}))
        if not sirens:
            raise EnvelopeError("an addressed event needs at least one recipient", **context)
        return sirens

    def seal(self, event: Event) -> Record:
        """Encode, envelope and sign ``event``; raises if it is too large or no key is valid at its time."""
        moment = event.time or self.clock()
        time_text = format_time(moment)  # refuses a naive time before any key is compared with it
        key = self.signing_key(moment, event.source)
        schema = self.catalog.latest(event.schema)
        payload = encode(schema, event.data)
        if len(payload) > self.max_event_bytes:
            raise RecordTooLargeError(
                f"{event.type} payload is {len(payload)} bytes, above {self.max_event_bytes}", subject=event.subject)
        recipients = None
        if event.recipients is not None:
            recipients = ",".join(self.recipient_sirens(event.recipients, event.schema, subject=event.subject))
        source = event.source or self.source or f"urn:siren:{key.public.siren}:bus"
        _check_source(source, key.public, subject=event.subject)
        envelope = Envelope(
            id=event.id or uuid7(),
            source=source,
            type=event.type,
            subject=event.subject,
            time=time_text,
            dataschema=schema.dataschema,
            sigkeyid=key.key_id,
            correlationid=event.correlationid,
            causationid=event.causationid,
            recipients=recipients,
            actor=None if event.actor is None else event.actor.to_header(),
        )
        if self.dossier_keys is not None:
            payload = protect(self.dossier_keys, schema, event.data, payload, event.dossier or envelope.subject,
                              aad(_binding(envelope)), subject=envelope.subject)
            if len(payload) > self.max_event_bytes:  # the personal value carries the payload twice
                raise RecordTooLargeError(f"{event.type} with its personal data encrypted is {len(payload)} bytes, "
                                          f"above {self.max_event_bytes}", subject=event.subject)
        if recipients is not None:
            keys = recipients_of(self.encryption_keys, self.keys, envelope.recipient_sirens, moment)
            payload = seal_payload(payload, keys, _binding(envelope), keys=self.data_keys)
            if len(payload) > self.max_event_bytes:  # what travels is the sealed value: its readers check that
                raise RecordTooLargeError(f"{event.type} sealed for {len(keys)} recipients is {len(payload)} bytes, "
                                          f"above {self.max_event_bytes}", subject=event.subject)
        headers = envelope.to_headers(signature=key.sign(envelope.signing_bytes(payload)))
        return Record(key=event.subject.encode(), value=payload, headers=tuple(headers))

    def open(self, record: Record) -> Received:
        """Verify and decode a consumed record; raises a typed BusError for anything wrong.

        Order matters: envelope, size, signature, then payload. Nothing is decoded before its
        signature is checked, so a forged payload never reaches fastavro.
        """
        context = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        value = record.value
        if value is None:
            raise EnvelopeError("record has no value (tombstone) where an event was expected", **context)
        if len(value) > self.max_event_bytes:
            raise RecordTooLargeError(f"record value is {len(value)} bytes, above {self.max_event_bytes}", **context)
        try:
            envelope = Envelope.from_headers(record.headers)
        except EnvelopeError as err:
            err.context.update({k: v for k, v in context.items() if v is not None})
            raise
        if record.key is not None and record.key != envelope.subject.encode():
            raise EnvelopeError("record key differs from ce_subject", header="ce_subject", **context)
        received = None
        if record.timestamp_ms is not None:
            received = dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)
        assert envelope.sig is not None  # from_headers requires it
        try:
            signer = self.keys.verify(envelope.sigkeyid, envelope.signing_bytes(value), envelope.sig,
                                      at=envelope.timestamp, received=received)
            _check_source(envelope.source, signer)
        except Exception as err:
            if hasattr(err, "context"):
                err.context.update({k: v for k, v in context.items() if v is not None})
            raise
        if envelope.recipients is not None:
            value = self._decrypt(envelope, value, context)
        elif is_sealed(value):
            raise EnvelopeError("a sealed payload without ce_recipients", header="ce_recipients", **context)
        hidden: tuple[str, ...] = ()
        erasure = dossier = None
        if is_personal(value):
            dossier = dossier_of(value, envelope.subject)
            value, hidden, erasure = reveal(self.dossier_keys, value, aad(_binding(envelope)), envelope.subject,
                                            **{k: v for k, v in context.items() if v is not None})
        fp = fingerprint_of(value)
        if not envelope.dataschema.endswith(fp.hex()):
            raise EnvelopeError("ce_dataschema does not name the payload's schema fingerprint",
                                header="ce_dataschema", **context)
        writer, data = decode(self.catalog, value)
        reader = self.catalog.latest(writer.name)
        if hidden:
            data = mark(reader, data, hidden, erased=erasure is not None)
        return Received(envelope=envelope, schema=reader, writer=writer, data=data, record=record, hidden=hidden,
                        erasure=erasure, dossier=dossier)

    def _decrypt(self, envelope: Envelope, value: bytes, context: Mapping[str, Any]) -> bytes:
        """The plaintext of a verified addressed event (NotARecipientError carries the verified envelope)."""
        if not is_sealed(value):
            raise EnvelopeError("ce_recipients on a payload that is not sealed", header="ce_recipients", **context)
        where = {k: v for k, v in context.items() if v is not None}
        try:
            return open_sealed(value, self.decryption, _binding(envelope), recipients=envelope.recipient_sirens,
                               unwrapped=self.unwrapped, id=envelope.id, **where)
        except NotARecipientError as err:
            err.envelope = envelope
            raise


def _check_source(source: str, key: PublicKey, **context: Any) -> None:
    """Refuse an event whose ``urn:siren:X`` source is not the signing key's SIREN (one tenant speaking as another).

    A source that names no SIREN (not ``urn:siren:``) is left to the envelope rules.
    """
    match = _SOURCE_SIREN.match(source)
    if match is not None and match.group(1) != key.siren:
        raise ForeignSourceError(
            f"ce_source {source} names SIREN {match.group(1)} but the event is signed by key {key.key_id} "
            f"of SIREN {key.siren}", source=source, key_id=key.key_id, key_siren=key.siren, **context)


def _binding(envelope: Envelope) -> bytes:
    return binding(envelope.id, envelope.source, envelope.type, envelope.subject, envelope.time,
                   envelope.dataschema, envelope.recipients)
