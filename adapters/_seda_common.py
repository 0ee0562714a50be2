"""Vocabulary shared by the SEDA reader, writer and validator: namespaces, message kinds, times.

SEDA 2.1, 2.2 and 2.3 each have their own namespace (``fr:gouv:culture:archivesdefrance:seda:v2.x``,
as declared by ``targetNamespace`` in the official XSDs); the version of a message is read from it.
SEDA date-times are ``xsd:dateTime``, very often written without an offset by French archive
systems; the bus reads those as Europe/Paris local time so every pivot instant is aware.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from bus._errors import NonConformantError

__all__ = [
    "EVENT_TYPES",
    "FAMILY",
    "FORMAT",
    "MESSAGE_KINDS",
    "NS_BY_VERSION",
    "PARIS",
    "SCHEMAS",
    "VERSION_BY_NS",
    "WRITABLE_VERSIONS",
    "format_datetime",
    "is_ncname",
    "parse_date",
    "parse_datetime",
    "token",
]

FORMAT = "seda"
FAMILY = "archives"

NS_BY_VERSION = {v: f"fr:gouv:culture:archivesdefrance:seda:v{v}" for v in ("2.1", "2.2", "2.3")}
VERSION_BY_NS = {ns: v for v, ns in NS_BY_VERSION.items()}
#: The bus writes only these: 2.1 is superseded (see ``adapters.seda.from_pivot``).
WRITABLE_VERSIONS = ("2.2", "2.3")

#: Root element -> pivot record name; each message kind is one event of the archives family.
MESSAGE_KINDS = ("ArchiveTransfer", "ArchiveTransferReply", "Acknowledgement")
SCHEMAS = {kind: f"fr.dcant.archives.{kind}" for kind in MESSAGE_KINDS}
EVENT_TYPES = {
    "ArchiveTransfer": "fr.dcant.archives.ArchiveTransferRequested",
    "ArchiveTransferReply": "fr.dcant.archives.ArchiveTransferReplied",
    "Acknowledgement": "fr.dcant.archives.ArchiveTransferAcknowledged",
}

PARIS = zoneinfo.ZoneInfo("Europe/Paris")

# xsd:dateTime lexical space (years limited to 4 digits: Python's datetime range).
_DATETIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})T(?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?(?P<tz>Z|[+-]\d{2}:\d{2})?"
)
_XML_SPACE = re.compile(r"[ \t\n\r]+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# xsd:NCName restricted to ASCII plus Latin letters: what xsd:ID accepts in practice for SEDA ids.
_NCNAME = re.compile(r"[A-Za-z_\u00C0-\u02FF][A-Za-z0-9_.\-\u00B7\u00C0-\u02FF]*")


def token(text: str | None) -> str | None:
    """The xsd:token value of ``text`` (whitespace collapsed), None when empty."""
    if text is None:
        return None
    # XML whitespace only: a no-break space is part of an xsd:token, not a separator
    collapsed = _XML_SPACE.sub(" ", text).strip(" ")
    return collapsed or None


def is_ncname(value: str) -> bool:
    """True when ``value`` can be an xsd:ID / xsd:IDREF (the SEDA ``id`` attributes)."""
    return _NCNAME.fullmatch(value) is not None


def parse_datetime(text: str, *, document: str, xpath: str) -> dt.datetime:
    """An aware datetime from an xsd:dateTime; no offset means Europe/Paris local time."""
    value = text.strip()
    match = _DATETIME.fullmatch(value)
    if match is None:
        raise NonConformantError(
            f"{value!r} is not an xsd:dateTime", document=document, xpath=xpath, rule="XSD",
            hint="write the date-time as YYYY-MM-DDThh:mm:ss[.fff][Z|±hh:mm]",
        )
    frac = (match["frac"] or "")[:7]  # '.' + at most microseconds: the pivot keeps micros
    tz = match["tz"] or ""
    if tz == "Z":
        tz = "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(f"{match['date']}T{match['time']}{frac}{tz}")
    except ValueError as exc:
        raise NonConformantError(
            f"{value!r} is not a valid date-time: {exc}", document=document, xpath=xpath, rule="XSD"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=PARIS)
    return parsed


def parse_date(text: str, *, document: str, xpath: str) -> dt.date:
    """A date from an xsd:date (an offset, allowed by XSD, is ignored: rules count in days)."""
    value = text.strip()
    match = _DATE.match(value)
    if match is None:
        raise NonConformantError(f"{value!r} is not an xsd:date", document=document, xpath=xpath, rule="XSD")
    try:
        return dt.date.fromisoformat(match.group(0))
    except ValueError as exc:
        raise NonConformantError(
            f"{value!r} is not a valid date: {exc}", document=document, xpath=xpath, rule="XSD"
        ) from exc


def format_datetime(value: dt.datetime, *, field: str) -> str:
    """The xsd:dateTime of an aware pivot instant, with its offset."""
    if not isinstance(value, dt.datetime):
        raise NonConformantError(
            f"{field} must be a datetime, got {type(value).__name__}", rule="SEDA-PIVOT", xpath=field
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise NonConformantError(
            f"{field} is a naive datetime; pivot instants are aware", rule="SEDA-PIVOT", xpath=field,
            hint="give the datetime a timezone (Europe/Paris for French administrations)",
        )
    offset = value.utcoffset()
    if offset is not None and offset.total_seconds() % 60:
        # historic zone offsets (Paris LMT +00:09:21) have seconds xsd:dateTime cannot write
        value = value.astimezone(dt.timezone.utc)
    return value.isoformat()
