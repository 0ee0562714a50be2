"""ACTES (@CTES v1.1) transmission envelopes, read and written.

An ACTES transmission is an archive of an envelope plus message files. The envelope names the
emitter and the files: actes:EnveloppeCLMISILL (local authority -> MISILL, with the emitter's
SIREN, department, arrondissement, nature, referent and return addresses) or
actes:EnveloppeMISILLCL (prefecture -> local authority). It is a separate format from
:mod:`adapters.actes` because it is a separate file with its own root element; both
write from the same Act pivot: ``actes`` writes the act message, this module its envelope.

``to_pivot`` gives an ``fr.dcant.acts.ActEnvelope`` pivot (event ActEnvelopeReceived).
``from_pivot`` writes an EnveloppeCLMISILL from an ``fr.dcant.acts.Act`` pivot (listing
``<IDActe>-1-1_0.xml``), or writes back an ActEnvelope pivot in its own direction.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from bus._errors import NonConformantError, UnknownFormatError

from ._actes_common import ACTES_NS, ElementReader
from ._actes_read import read_envelope
from ._actes_write import write_envelope, write_envelope_pivot
from ._actes_xsd import validate_actes
from ._base import Finding, Pivot, Sniff
from ._xml import parse_xml

__all__ = ["FAMILY", "FORMAT", "detect", "from_pivot", "to_pivot", "validate"]

FORMAT = "actes-envelope"
FAMILY = "acts"

_ENVELOPES = frozenset({"EnveloppeCLMISILL", "EnveloppeMISILLCL"})


def detect(sniff: Sniff) -> bool:
    """An XML document whose root is an ACTES v1.1 envelope."""
    return sniff.kind == "xml" and sniff.root_ns == ACTES_NS and sniff.root_tag in _ENVELOPES


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """Read an ACTES envelope into an ``fr.dcant.acts.ActEnvelope`` pivot. Raises only AdapterError."""
    root = parse_xml(data, name=name)
    q = etree.QName(root)
    if q.namespace != ACTES_NS or q.localname not in _ENVELOPES:
        raise UnknownFormatError(
            f"root element {{{q.namespace}}}{q.localname} is not an ACTES envelope",
            document=name,
            hint="read other ACTES messages with --format actes",
        )
    r = ElementReader(root, name)
    schema, event_type, subject, payload = read_envelope(r, root)
    return Pivot(type=event_type, schema=schema, subject=subject, data=payload, format=FORMAT, warnings=tuple(r.warnings))


def from_pivot(pivot: Pivot) -> bytes:
    """The envelope of an Act pivot (EnveloppeCLMISILL) or of an ActEnvelope pivot, ISO-8859-1."""
    if pivot.schema == "fr.dcant.acts.Act":
        return write_envelope(pivot.data)
    if pivot.schema == "fr.dcant.acts.ActEnvelope":
        return write_envelope_pivot(pivot.data)
    raise NonConformantError(
        f"the actes-envelope writer takes fr.dcant.acts.Act or ActEnvelope pivots, not {pivot.schema}",
        rule="ACTES-PIVOT",
        hint="export an ActTransmitted or ActEnvelopeReceived event",
    )


def validate(data: bytes, *, schema_dir: Path | str, name: str = "<bytes>") -> list[Finding]:
    """XSD findings of an ACTES envelope against ``<schema_dir>/acts/xsd/actesv1_1.xsd``."""
    return validate_actes(data, schema_dir=schema_dir, name=name)
