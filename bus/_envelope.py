"""The CloudEvents 1.0 envelope in Kafka binary content mode, and the bytes a producer signs.

Attributes travel as ``ce_*`` headers (``content-type`` for ``datacontenttype``), the Avro
single-object payload is the record value, and the record key is the dossier id
(``ce_subject``). The signed bytes are the attributes in :data:`SIGNED_ATTRIBUTES` order,
each length-prefixed exactly as they travel, followed by the length-prefixed payload: no
canonicalisation step can disagree between producer and consumer because both read the same
header strings.

Extensions: ``ce_recipients`` (an addressed event, signed bytes v2) and ``ce_actor`` (the agent who
acted, :mod:`bus._actor`). An event with an actor is signed as v3: the attributes, then the
recipients (or the absent marker), then the actor, each length-prefixed, then the payload. An
event without either keeps the v1 (or v2) bytes, so every event signed before stays valid.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import re
import struct
from collections.abc import Iterable, Sequence

from ._actor import Actor
from ._errors import EnvelopeError

__all__ = ["SIGNED_ATTRIBUTES", "Envelope", "format_time", "parse_time"]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/avro"
#: Order of the attributes in the signed bytes. Changing it is a new signature version.
SIGNED_ATTRIBUTES = (
    "specversion", "id", "source", "type", "subject", "time",
    "datacontenttype", "dataschema", "correlationid", "causationid", "sigkeyid",
)
_SIG_PREFIX = b"dcant-bus-sig-v1\x00"
#: Prefix of the signed bytes of an addressed (``ce_recipients``) event: its own signature version, so a
#: broadcast event's signed bytes (v1) are unchanged and an addressed one cannot be read as broadcast.
_SIG_PREFIX_ADDRESSED = b"dcant-bus-sig-v2\x00"
#: Prefix of the signed bytes of an event with a ``ce_actor``: the actor is signed, whether addressed or not.
_SIG_PREFIX_ACTOR = b"dcant-bus-sig-v3\x00"
_REQUIRED = ("specversion", "id", "source", "type", "subject", "time", "dataschema", "sigkeyid", "sig")
_HEADER_OF = {name: f"ce_{name}" for name in SIGNED_ATTRIBUTES} | {
    "datacontenttype": "content-type", "sig": "ce_sig", "recipients": "ce_recipients", "actor": "ce_actor"}
_RECIPIENTS = re.compile(r"^\d{9}(,\d{9})*$")
_ATTR_OF = {header: name for name, header in _HEADER_OF.items()}
_ABSENT = struct.pack(">I", 0xFFFFFFFF)
_TYPE = re.compile(r"^[a-z0-9]+(\.[A-Za-z0-9]+)+$")
_MAX_HEADER = 4096


def _field(value: str | None) -> bytes:
    if value is None:
        return _ABSENT
    raw = value.encode()
    return len(raw).to_bytes(4, "big") + raw


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 UTC with microseconds, as ``ce_time`` carries it."""
    if moment.tzinfo is None:
        raise EnvelopeError("event time must be timezone-aware")
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EnvelopeError(f"ce_time {value!r} is not RFC 3339", header="ce_time") from exc
    if parsed.tzinfo is None:
        raise EnvelopeError(f"ce_time {value!r} has no offset", header="ce_time")
    return parsed


@dataclasses.dataclass(frozen=True, slots=True)
class Envelope:
    """CloudEvents attributes of one event, as strings exactly as they travel."""

    id: str
    source: str
    type: str
    subject: str
    time: str
    dataschema: str
    sigkeyid: str
    correlationid: str | None = None
    causationid: str | None = None
    sig: bytes | None = None
    specversion: str = SPECVERSION
    datacontenttype: str = CONTENT_TYPE
    #: ``ce_recipients``: the SIRENs an addressed event is encrypted to, comma-separated (None: broadcast).
    recipients: str | None = None
    #: ``ce_actor``: the agent who acted, canonical JSON of :class:`bus.Actor` (None: no agent named).
    actor: str | None = None

    @property
    def recipient_sirens(self) -> tuple[str, ...]:
        return () if self.recipients is None else tuple(self.recipients.split(","))

    @property
    def timestamp(self) -> dt.datetime:
        return parse_time(self.time)

    def signing_bytes(self, payload: bytes | memoryview) -> bytes:
        """The bytes the producer signs: attributes in fixed order, then the payload."""
        if self.actor is not None:
            parts = [_SIG_PREFIX_ACTOR]
        else:
            parts = [_SIG_PREFIX if self.recipients is None else _SIG_PREFIX_ADDRESSED]
        parts += [_field(getattr(self, name)) for name in SIGNED_ATTRIBUTES]
        if self.actor is not None:  # v3: the recipients' place (absent marker when broadcast), then the actor
            parts += [_field(self.recipients), _field(self.actor)]
        elif self.recipients is not None:
            parts.append(_field(self.recipients))
        parts.append(len(payload).to_bytes(8, "big"))
        parts.append(payload)
        return b"".join(parts)

    def with_signature(self, sig: bytes) -> Envelope:
        return dataclasses.replace(self, sig=sig)

    def to_headers(self, *, signature: bytes | None = None) -> list[tuple[str, bytes]]:
        """Kafka headers in binary content mode (``ce_sig`` base64url without padding).

        ``signature`` overrides ``self.sig`` (saves building a signed copy on the hot path).
        """
        out = [(_HEADER_OF[name], value.encode()) for name in SIGNED_ATTRIBUTES
               if (value := getattr(self, name)) is not None]
        if self.recipients is not None:
            out.append(("ce_recipients", self.recipients.encode()))
        if self.actor is not None:
            out.append(("ce_actor", self.actor.encode()))
        sig = self.sig if signature is None else signature
        if sig is not None:
            out.append(("ce_sig", base64.urlsafe_b64encode(sig).rstrip(b"=")))
        return out

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes | None]] | Iterable[tuple[str, bytes | None]]) -> Envelope:
        """Read the envelope from Kafka headers; raise EnvelopeError naming the bad header."""

        values: dict[str, str] = {}
        sig: bytes | None = None
        for header, raw in headers:
            attr = _ATTR_OF.get(header)
            if attr is None:
                continue
            if attr in values or (attr == "sig" and sig is not None):
                raise EnvelopeError(f"header {header} appears twice", header=header)
            if raw is None or len(raw) > _MAX_HEADER:
                raise EnvelopeError(f"header {header} is empty or oversized", header=header)
            if attr == "sig":
                try:
                    sig = base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise EnvelopeError("ce_sig is not base64url", header=header) from exc
                continue
            try:
                values[attr] = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EnvelopeError(f"header {header} is not UTF-8", header=header) from exc
        missing = [n for n in _REQUIRED if (n not in values and n != "sig") or (n == "sig" and sig is None)]
        if missing:
            names = ", ".join(_HEADER_OF[n] for n in missing)
            raise EnvelopeError(f"missing CloudEvents header(s): {names}", header=_HEADER_OF[missing[0]])
        if values["specversion"] != SPECVERSION:
            raise EnvelopeError(f"unsupported ce_specversion {values['specversion']!r}", header="ce_specversion")
        content_type = values.get("datacontenttype", CONTENT_TYPE)
        if content_type != CONTENT_TYPE:
            raise EnvelopeError(f"content-type {content_type!r} is not {CONTENT_TYPE}", header="content-type")
        if not _TYPE.match(values["type"]):
            raise EnvelopeError(f"ce_type {values['type']!r} is not a reverse-DNS event type", header="ce_type")
        parse_time(values["time"])
        recipients = values.get("recipients")
        if recipients is not None and not _RECIPIENTS.match(recipients):
            raise EnvelopeError(f"ce_recipients {recipients!r} is not comma-separated SIRENs", header="ce_recipients")
        actor = values.get("actor")
        if actor is not None:
            Actor.from_header(actor)  # the form only; readers get the parsed actor from Received.actor
        return cls(
            id=values["id"], source=values["source"], type=values["type"], subject=values["subject"],
            time=values["time"], dataschema=values["dataschema"], sigkeyid=values["sigkeyid"],
            correlationid=values.get("correlationid"), causationid=values.get("causationid"),
            sig=sig, specversion=values["specversion"], datacontenttype=content_type, recipients=recipients,
            actor=actor,
        )
