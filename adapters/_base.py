"""The adapter contract: native bytes in, pivot out, and back where the bus writes the format.

Every adapter is one module of :mod:`adapters` exposing module-level names:

``FORMAT``      short format name used by ``bus adapt --format`` (``"ubl"``, ``"pes-aller"``...)
``FAMILY``      the pivot family (``"invoices"``, ``"procurement"``, ``"accounting"``,
                ``"acts"``, ``"archives"``, ``"reference"``)
``detect(sniff) -> bool``         cheap recognition from the root element / media kind
``to_pivot(data, *, name) -> Pivot``  raises only :class:`bus.AdapterError` subclasses
optional ``from_pivot(pivot) -> bytes``, ``terms(pivot) -> dict``,
``validate(data, *, schema_dir, name) -> list[Finding]``

Adapters are pure: no Kafka, no network, no clock, no global state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["Adapter", "Finding", "Pivot", "Sniff", "to_json_value"]

MediaKind = Literal["xml", "json", "pdf", "csv", "zip", "unknown"]


@dataclasses.dataclass(frozen=True, slots=True)
class Sniff:
    """What the registry learned from the first bytes of a document, for ``detect``."""

    kind: MediaKind
    root_ns: str | None = None
    root_tag: str | None = None
    head: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True)
class Pivot:
    """A native document turned into a pivot event, ready for the envelope.

    ``type`` is the CloudEvents type (``fr.dcant.<family>.<Event>``), ``schema`` the full
    Avro name of the payload, ``subject`` the dossier id (the Kafka key), ``data`` the Avro
    record as Python values (dates as :class:`datetime.date`, amounts as decimal strings).
    """

    type: str
    schema: str
    subject: str
    data: Mapping[str, Any]
    format: str
    warnings: tuple[str, ...] = ()


@runtime_checkable
class Adapter(Protocol):
    """What every adapter offers (a module of :mod:`adapters`, or a plugin's module or object)."""

    FORMAT: str
    FAMILY: str

    def detect(self, sniff: Sniff) -> bool: ...

    def to_pivot(self, data: bytes, *, name: str) -> Pivot: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """One validation failure: the rule (XSD or business rule id), where, and what."""

    rule: str
    location: str
    message: str
    severity: Literal["fatal", "warning"] = "fatal"

    def __str__(self) -> str:
        return f"{self.rule} at {self.location}: {self.message}"


def to_json_value(value: Any) -> Any:
    """Make a pivot value printable as JSON (dates ISO 8601, bytes hex, decimals as strings)."""
    if isinstance(value, Mapping):
        return {k: to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value
