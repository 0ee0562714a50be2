"""SEDA 2.x adapter (Standard d'Échange de Données pour l'Archivage): the archives family.

Reads the three messages of a transfer to an archival agency, in SEDA 2.1, 2.2 or 2.3 (the
version comes from the root namespace ``fr:gouv:culture:archivesdefrance:seda:v2.x``):

``ArchiveTransfer``       -> ``fr.dcant.archives.ArchiveTransfer``, event ``ArchiveTransferRequested``
``ArchiveTransferReply``  -> ``fr.dcant.archives.ArchiveTransferReply``, event ``ArchiveTransferReplied``
``Acknowledgement``       -> ``fr.dcant.archives.Acknowledgement``, event ``ArchiveTransferAcknowledged``

The subject is ``transfer:<MessageIdentifier>`` of the transfer (the reply and the
acknowledgement use the identifier of the message they answer), so all events of a transfer
share a Kafka key. A SIP zip is accepted too: its root ``manifest.xml`` is read, bounded.

Writes the same three messages in SEDA 2.2 or 2.3, the version the pivot names. A pivot read
from SEDA 2.1 is written as SEDA 2.2: 2.2 is the backward-compatible successor of 2.1 (same
structure, additions only), and the bus does not produce the superseded version. The output
validates against the official XSDs (``validate`` checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bus._errors import AdapterError, MalformedDocumentError, NonConformantError, UnknownFormatError

from ._base import Finding, Pivot, Sniff
from ._seda_common import EVENT_TYPES, FAMILY, FORMAT, MESSAGE_KINDS, NS_BY_VERSION, SCHEMAS, VERSION_BY_NS
from ._seda_profile import compile_profile, profile_sha256, validate_transfer
from ._seda_read import SedaReader
from ._seda_sip import looks_like_sip, read_manifest
from ._seda_write import SedaWriter
from ._seda_xsd import seda_schema, xsd_findings
from ._xml import parse_xml, qname

__all__ = ["FAMILY", "FORMAT", "compile_profile", "detect", "from_pivot", "profile_sha256", "to_pivot", "validate",
           "validate_transfer"]

_SUBJECT_FIELD = {
    "ArchiveTransfer": "message_identifier",
    "ArchiveTransferReply": "message_request_identifier",
    "Acknowledgement": "message_received_identifier",
}


def detect(sniff: Sniff) -> bool:
    """A SEDA 2.x message root in a SEDA namespace, or a zip shaped like a SIP."""
    if sniff.kind == "zip":
        return looks_like_sip(sniff.head)
    return sniff.kind == "xml" and sniff.root_ns in VERSION_BY_NS and sniff.root_tag in MESSAGE_KINDS


def _message(data: bytes, name: str) -> tuple[Any, str, str]:
    """The parsed root, its message kind and SEDA version; unwraps a SIP zip first."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedDocumentError("a SEDA document must be given as bytes", document=name)
    data = bytes(data)
    if data[:4] == b"PK\x03\x04":
        data = read_manifest(data, name=name)
        name = f"{name}!manifest.xml"
    root = parse_xml(data, name=name)
    ns, local = qname(root)
    version = VERSION_BY_NS.get(ns or "")
    if version is None or local not in MESSAGE_KINDS:
        raise UnknownFormatError(
            f"root element {{{ns}}}{local} is not a SEDA 2.x ArchiveTransfer, ArchiveTransferReply or Acknowledgement",
            document=name,
            hint="the seda adapter reads SEDA 2.1/2.2/2.3 transfer messages only",
        )
    return root, local, version


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """Read a SEDA message (or SIP zip) into its pivot.

    ``data`` the document bytes; ``name`` how errors name the document.
    Raises only :class:`bus.AdapterError` subclasses.
    """
    root, kind, version = _message(data, name)
    reader = SedaReader(NS_BY_VERSION[version], document=name)
    record = {
        "ArchiveTransfer": reader.archive_transfer,
        "ArchiveTransferReply": reader.archive_transfer_reply,
        "Acknowledgement": reader.acknowledgement,
    }[kind](root, version)
    warnings: tuple[str, ...] = ()
    if version == "2.1":
        warnings = ("SEDA 2.1 message: the bus writes it back as SEDA 2.2",)
    return Pivot(
        type=EVENT_TYPES[kind],
        schema=SCHEMAS[kind],
        subject=f"transfer:{record[_SUBJECT_FIELD[kind]]}",
        data=record,
        format=FORMAT,
        warnings=warnings,
    )


def from_pivot(pivot: Pivot | Mapping[str, Any], *, kind: str | None = None) -> bytes:
    """Write the SEDA message of a pivot, in the pivot's SEDA version (2.1 is written as 2.2).

    ``pivot`` a :class:`Pivot` of this adapter's schemas, or a bare record with ``kind`` naming the
    message (``ArchiveTransfer``, ``ArchiveTransferReply`` or ``Acknowledgement``; default
    ``ArchiveTransfer``). Raises :class:`NonConformantError` naming the pivot field when the
    record cannot make a valid message.
    """
    if isinstance(pivot, Pivot):
        by_schema = {schema: k for k, schema in SCHEMAS.items()}
        if pivot.schema not in by_schema:
            raise NonConformantError(
                f"pivot schema {pivot.schema} is not written by the seda adapter", rule="SEDA-PIVOT",
                xpath="schema", hint=f"give one of {sorted(by_schema)}",
            )
        kind, data = by_schema[pivot.schema], pivot.data
    else:
        kind, data = kind or "ArchiveTransfer", pivot
    if kind not in MESSAGE_KINDS or not isinstance(data, Mapping):
        raise NonConformantError(f"cannot write {kind!r} from {type(data).__name__}", rule="SEDA-PIVOT", xpath="kind")
    version = data.get("seda_version")
    if version == "2.1":
        version = "2.2"
    if version not in ("2.2", "2.3"):
        raise NonConformantError(
            f"seda_version {version!r} cannot be written", rule="SEDA-PIVOT", xpath="seda_version",
            hint='set seda_version to "2.2" or "2.3"',
        )
    writer = SedaWriter(version)
    try:
        if kind == "ArchiveTransfer":
            return writer.archive_transfer(data)
        if kind == "ArchiveTransferReply":
            return writer.archive_transfer_reply(data)
        return writer.acknowledgement(data)
    except AdapterError:
        raise
    except (KeyError, TypeError, AttributeError) as exc:  # a record that is not shaped like the schema
        raise NonConformantError(
            f"pivot record does not have the shape of {SCHEMAS[kind]}: {exc!r}", rule="SEDA-PIVOT", xpath=kind,
            hint="build the record from the avsc in schemas/avro/archives",
        ) from exc


def validate(data: bytes, *, schema_dir: Path, name: str = "<bytes>") -> list[Finding]:
    """XSD findings of a SEDA message against ``schema_dir/archives/seda-xsd/seda-<v>/seda-<v>-main.xsd``.

    ``schema_dir`` the root of the official schema packages (laid out like ``../shared/corpus``).
    Raises ConfigurationError when the XSD of the message's version is missing.
    """
    root, _kind, version = _message(data, name)
    return xsd_findings(seda_schema(Path(schema_dir), version), root)
