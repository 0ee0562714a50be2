"""ACTES (@CTES v1.1): the legality-control exchange between local authorities and the prefecture.

Reads every message of the ACTES v1.1 namespace into its pivot, dispatching on the root element:

========================================  ========================  ===============================
root element (message type)               pivot schema              CloudEvents type
========================================  ========================  ===============================
Acte (1-1)                                fr.dcant.acts.Act         ActTransmitted
ARActe (1-2)                              ActAcknowledged           ActAcknowledged
AnomalieActe (1-3), AnomalieEnveloppe     ActAnomaly                ActAnomalyReported
CourrierSimple ... DefereTA (2-x to 5-1)  PrefectureMessage         PrefectureMessageReceived
Annulation (6-1), ARAnnulation (6-2)      ActCancelled              ActCancelled
RetourClassification (7-2), 7-3          Classification            ClassificationPublished
========================================  ========================  ===============================

The transmission envelopes (EnveloppeCLMISILL, EnveloppeMISILLCL) belong to the sibling
adapter :mod:`adapters.actes_envelope`, so that ``bus export actes`` writes the act message
and ``bus export actes-envelope`` its envelope from the same Act pivot.

The act message and the AnomalieActe carry no SIREN: they are read under their ACTES file
name (``<dept>-<SIREN>-<YYYYMMDD>-<NumeroInterne>-<nature>-<t>-<s>_<n>.xml``), passed as
``name``. Readers are tolerant (deviations from the XSD become pivot warnings); the writer is
strict. ``validate`` checks a message against ``<schema_dir>/acts/xsd/actesv1_1.xsd``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lxml import etree

from bus._errors import NonConformantError, UnknownFormatError

from . import _actes_messages, _actes_read
from ._actes_common import ACTES_NS, ElementReader, act_id
from ._actes_write import act_message_name, write_act
from ._actes_xsd import validate_actes
from ._base import Finding, Pivot, Sniff
from ._xml import parse_xml

__all__ = ["FAMILY", "FORMAT", "act_id", "act_message_name", "detect", "from_pivot", "to_pivot", "validate"]

FORMAT = "actes"
FAMILY = "acts"

_ENVELOPES = frozenset({"EnveloppeCLMISILL", "EnveloppeMISILLCL"})

_Reader = Callable[[ElementReader, etree._Element], _actes_read.PivotParts]
_READERS: dict[str, _Reader] = {
    "Acte": _actes_read.read_act,
    "ARActe": _actes_read.read_act_acknowledged,
    "AnomalieActe": _actes_read.read_act_anomaly,
    "AnomalieEnveloppe": _actes_read.read_envelope_anomaly,
    "Annulation": _actes_read.read_cancellation,
    "ARAnnulation": _actes_read.read_cancellation,
    "RetourClassification": _actes_messages.read_classification,
    "ReponseClassificationSansChangement": _actes_messages.read_classification,
    **{root: _actes_messages.read_prefecture_message for root in _actes_messages.PREFECTURE_KINDS},
}


def detect(sniff: Sniff) -> bool:
    """An XML document whose root is an ACTES v1.1 message other than an envelope."""
    return sniff.kind == "xml" and sniff.root_ns == ACTES_NS and sniff.root_tag not in _ENVELOPES


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """Read an ACTES message into its pivot (see the table in the module docstring).

    ``name`` is the file name; the act message (1-1) and AnomalieActe (1-3) need it in the
    ACTES convention since they carry no SIREN. Raises only AdapterError subclasses.
    """
    root = parse_xml(data, name=name)
    q = etree.QName(root)
    if q.namespace != ACTES_NS:
        raise UnknownFormatError(f"root element {{{q.namespace}}}{q.localname} is not an ACTES v1.1 message", document=name)
    reader = _READERS.get(q.localname)
    if reader is None:
        hint = (
            "read ACTES envelopes with --format actes-envelope"
            if q.localname in _ENVELOPES
            else "the bus reads the ACTES messages a dossier's lifecycle needs; DemandeClassification is a request to the prefecture"
        )
        raise NonConformantError(
            f"ACTES message actes:{q.localname} has no pivot", document=name, rule="ACTES-MESSAGE", xpath=f"/actes:{q.localname}", hint=hint
        )
    r = ElementReader(root, name)
    schema, event_type, subject, payload = reader(r, root)
    return Pivot(type=event_type, schema=schema, subject=subject, data=payload, format=FORMAT, warnings=tuple(r.warnings))


def from_pivot(pivot: Pivot) -> bytes:
    """The ACTES act message (actes:Acte, 1-1) of an ``fr.dcant.acts.Act`` pivot, ISO-8859-1.

    Its ACTES file name is :func:`act_message_name` of the pivot data. Dates may be
    ``datetime.date`` or ISO strings (pivots read back from JSON).
    """
    if pivot.schema != "fr.dcant.acts.Act":
        raise NonConformantError(
            f"the actes writer writes the act message of fr.dcant.acts.Act pivots, not {pivot.schema}",
            rule="ACTES-PIVOT",
            hint="export an ActTransmitted event (schema fr.dcant.acts.Act)",
        )
    return write_act(pivot.data)


def validate(data: bytes, *, schema_dir: Path | str, name: str = "<bytes>") -> list[Finding]:
    """XSD findings of an ACTES message against ``<schema_dir>/acts/xsd/actesv1_1.xsd``."""
    return validate_actes(data, schema_dir=schema_dir, name=name)
