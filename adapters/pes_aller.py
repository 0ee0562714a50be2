"""PES_Aller dépense (DGFiP PES V2, schema package v5.17) ⇄ ``fr.dcant.accounting.Bordereau``.

An ordonnateur sends its mandats to the public accountant (Hélios) as a PES_Aller file:
EnTetePES names the budget (IdColl, CodCol, CodBud), PES_DepenseAller carries bordereaux
of mandats (Piece), each with lines (LigneDePiece: imputation, amounts, creditor Tiers).
Every bordereau becomes one ``fr.dcant.accounting.BordereauIssued`` event whose subject is
``bordereau:<IdColl>:<Exer>:<IdBord>``. The bus writes PES_Aller back from that pivot
(:func:`from_pivot`), and what it writes validates against the PES V2 XSD v5.17.

Signatures (:mod:`adapters._pes_signature`): :func:`from_pivot` with a :class:`PesSigner`
signs each bordereau the way Hélios takes it (enveloped XAdES, DGFiP signature policy).
:func:`to_pivots` verifies every signature it finds and refuses the file with a
:class:`~bus.DocumentSignatureError` when one does not verify; an unsigned file is read as
before (Hélios too takes unsigned non-dematerialised flux) unless ``require_signature`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bus._errors import NonConformantError

from ._base import Finding, Pivot, Sniff
from ._pes_aller_read import read_aller
from ._pes_aller_write import write_aller
from ._pes_common import NS_ALLER, bordereau_subject, parse_pes, sniffs_as
from ._pes_signature import PesSigner, sign_aller, verify_aller
from ._pes_xsd import XSD_ALLER, validate_document

__all__ = [
    "EVENT_TYPE",
    "FAMILY",
    "FORMAT",
    "SCHEMA",
    "PesSigner",
    "detect",
    "from_pivot",
    "to_pivot",
    "to_pivots",
    "validate",
]

FORMAT = "pes-aller"
FAMILY = "accounting"
EVENT_TYPE = "fr.dcant.accounting.BordereauIssued"
SCHEMA = "fr.dcant.accounting.Bordereau"


def detect(sniff: Sniff) -> bool:
    """True for an XML document whose root is PES_Aller."""
    return sniffs_as(sniff, "PES_Aller", NS_ALLER)


def to_pivots(data: bytes, *, name: str = "<bytes>", trust: Path | None = None,
              require_signature: bool = False) -> list[Pivot]:
    """Every dépense bordereau of the PES_Aller ``data``, one pivot each, in file order.

    A PES_Aller may carry several bordereaux; each is its own dossier on the bus. Every
    signature present is verified (``trust``: a PEM file of trusted CA certificates; without
    it the chain is not checked and the pivots' warnings say so); ``require_signature``
    refuses an unsigned file. Raises only :class:`bus.AdapterError` subclasses (and
    :class:`bus.ConfigurationError` for a ``trust`` file that does not exist).
    """
    root = parse_pes(data, name=name, root_tag="PES_Aller", namespace=NS_ALLER)
    check = verify_aller(data, root, name=name, trust=trust, require=require_signature)
    records, warnings = read_aller(root, name=name)
    warnings = [*check.warnings, *warnings]
    return [
        Pivot(
            type=EVENT_TYPE,
            schema=SCHEMA,
            subject=bordereau_subject(r["header"]["collectivity_id"], r["exercise"], r["number"]),
            data=r,
            format=FORMAT,
            warnings=tuple(warnings),
        )
        for r in records
    ]


def to_pivot(data: bytes, *, name: str = "<bytes>", trust: Path | None = None,
             require_signature: bool = False) -> Pivot:
    """The single dépense bordereau of the PES_Aller ``data`` as a pivot.

    A file with several bordereaux is refused with a :class:`NonConformantError`: use
    :func:`to_pivots`, which returns one pivot per bordereau.
    """
    pivots = to_pivots(data, name=name, trust=trust, require_signature=require_signature)
    if len(pivots) > 1:
        raise NonConformantError(
            f"the PES_Aller carries {len(pivots)} bordereaux",
            document=name,
            rule="PES-ONE-BORDEREAU",
            xpath="/PES_Aller/PES_DepenseAller/Bordereau",
            hint="read it with adapters.pes_aller.to_pivots, which gives one event per bordereau",
        )
    return pivots[0]


def from_pivot(pivot: Pivot | Mapping[str, Any], *, schema_dir: Path | None = None,
               signer: PesSigner | None = None) -> bytes:
    """The PES_Aller (ISO-8859-1 bytes) of a Bordereau pivot, or of its ``data`` mapping.

    Totals left null in the pivot are computed from the lines. With ``signer`` each bordereau
    is signed (enveloped XAdES; the pivot needs its ``xml_id``) and ``InfoDematerialisee`` set
    to 1. With ``schema_dir`` the
    written bytes are also validated against the PES_Aller XSD v5.17 and a
    :class:`NonConformantError` lists the XSD findings when they do not conform.
    """
    if isinstance(pivot, Pivot):
        if pivot.schema != SCHEMA:
            raise NonConformantError(
                f"cannot write a {pivot.schema} pivot as PES_Aller",
                document=pivot.subject,
                rule="PES-PIVOT",
                hint=f"pes-aller writes {SCHEMA} pivots only",
            )
        data, document = pivot.data, pivot.subject
    else:
        data, document = pivot, "<pivot>"
    out = write_aller(data, document=document)
    if signer is not None:
        out = sign_aller(out, signer, document=document)
    if schema_dir is not None:
        findings = validate(out, schema_dir=schema_dir, name=document)
        if findings:
            raise NonConformantError(
                f"the written PES_Aller breaks the XSD: {'; '.join(map(str, findings[:5]))}",
                document=document,
                rule="XSD",
                xpath=findings[0].location,
                hint="correct the pivot values named in the findings (lengths, patterns, enumerations)",
            )
    return out


def validate(data: bytes, *, schema_dir: Path, name: str = "<bytes>") -> list[Finding]:
    """XSD findings of a PES_Aller against ``schema_dir``/accounting/pes-xsd-v5.17."""
    return validate_document(data, schema_dir=schema_dir, relative=XSD_ALLER, name=name)
