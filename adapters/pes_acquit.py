"""PES_ACQUIT (DGFiP PES V2 acquittement, retour v2) → ``fr.dcant.accounting.Acquittement``.

Hélios answers every PES_Aller with a PES_ACQUIT: one ElementACQUIT per acknowledged element
(a dépense or recette bordereau, a pièce justificative, a marché), each OK (EtatAck 1) or in
anomaly (EtatAck 0) with its error codes and labels, down to the pièce and the line. The
event ``fr.dcant.accounting.AcquittementReceived`` is keyed by the dépense bordereau it
concerns (``bordereau:<IdColl>:<ExerciceBord>:<NumBord>``) when there is exactly one, so it
lands in that bordereau's dossier; otherwise by the acknowledged file (``pes:<NomFic>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree

from ._base import Finding, Pivot, Sniff
from ._pes_common import NS_ACQUIT, Block, bordereau_subject, canonical_number, children, file_subject, parse_pes, sniffs_as
from ._pes_xsd import XSD_ACQUIT, validate_document

__all__ = ["EVENT_TYPE", "FAMILY", "FORMAT", "SCHEMA", "detect", "to_pivot", "validate"]

FORMAT = "pes-acquit"
FAMILY = "accounting"
EVENT_TYPE = "fr.dcant.accounting.AcquittementReceived"
SCHEMA = "fr.dcant.accounting.Acquittement"

#: DomaineAck labels, from the enumeration documentation of CommunAck.xsd v5.17.
DOMAINS = {
    "0": "Technique",
    "1": "Signature technique",
    "2": "Signature globale",
    "3": "Signature Bordereau",
    "4": "PJ",
    "5": "Dépense",
    "6": "Recette",
    "7": "Rôle",
    "8": "Budget",
    "9": "Etat Actif",
    "10": "Etat Passif",
    "11": "Marché",
    "12": "Facture",
    "99": "Paramétrage",
}
_DEPENSE = "5"
_ROOT = "/PES_ACQUIT"


def detect(sniff: Sniff) -> bool:
    """True for an XML document whose root is PES_ACQUIT."""
    return sniffs_as(sniff, "PES_ACQUIT", NS_ACQUIT)


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """The acquittement ``data`` as a pivot. Raises only :class:`bus.AdapterError` subclasses."""
    root = parse_pes(data, name=name, root_tag="PES_ACQUIT", namespace=NS_ACQUIT)
    top = Block(root, _ROOT, name)
    envelope = top.sub("Enveloppe")
    if envelope is None:
        raise top.error("Enveloppe", "Enveloppe is missing", rule="PES-REQUIRED")
    params = envelope.sub("Parametres")
    if params is None:
        raise envelope.error("Parametres", "Parametres is missing", rule="PES-REQUIRED")
    sender = envelope.sub("Emetteur")
    header = top.sub("EnTetePES")
    if header is None:
        raise top.error("EnTetePES", "EnTetePES is missing", rule="PES-REQUIRED")
    acquit = top.nodes.get("ACQUIT")
    if acquit is None:
        raise top.error("ACQUIT", "ACQUIT is missing", rule="PES-REQUIRED")
    entete = Block(next(children(acquit, "EnTeteAcquit"), None), f"{_ROOT}/ACQUIT/EnTeteAcquit", name)
    elements: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, element in enumerate(children(acquit, "ElementACQUIT")):
        elements.append(_element(element, index, name, errors))
    if not elements:
        raise top.error("ACQUIT/ElementACQUIT", "ACQUIT has no ElementACQUIT", rule="PES-REQUIRED")
    record = {
        "file_name": params.required("NomFic"),
        "file_type": params.text("TypFic"),
        "version": params.text("Version"),
        "sender_acronym": sender.text("Sigle") if sender is not None else None,
        "structure_date": header.date("DteStr", required=True),
        "accounting_office": header.required("IdPost"),
        "collectivity_id": header.required("IdColl"),
        "collectivity_code": header.text("CodCol") or header.text("CodColl"),
        "budget_code": header.text("CodBud"),
        "budget_label": header.text("LibelleColBud"),
        "acquit_version": entete.text("IdVer"),
        "accepted": all(e["accepted"] for e in elements),
        "elements": elements,
        "errors": errors,
    }
    return Pivot(type=EVENT_TYPE, schema=SCHEMA, subject=_subject(record), data=record, format=FORMAT)


def _element(element: etree._Element, index: int, name: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    path = f"{_ROOT}/ACQUIT/ElementACQUIT[{index + 1}]"
    block = Block(element, path, name)
    domain = block.required("DomaineAck")
    _errors(element, path, index, None, None, errors)
    for p, piece in enumerate(children(element, "DetailPiece"), start=1):
        piece_path = f"{path}/DetailPiece[{p}]"
        number = Block(piece, piece_path, name).required("NumPiece")
        _errors(piece, piece_path, index, number, None, errors)
        for q, line in enumerate(children(piece, "DetailLigne"), start=1):
            line_path = f"{piece_path}/DetailLigne[{q}]"
            _errors(line, line_path, index, number, Block(line, line_path, name).required("NumLigne"), errors)
    return {
        "domain": domain,
        "domain_label": DOMAINS.get(domain),
        "accepted": bool(block.boolean("EtatAck", required=True)),
        "bordereau_number": block.text("NumBord"),
        "bordereau_exercise": block.integer("ExerciceBord"),
        "market_id": block.text("IdMarche"),
        "unique_id": block.text("IdUnique"),
    }


def _errors(
    parent: etree._Element,
    path: str,
    index: int,
    piece: str | None,
    line: str | None,
    out: list[dict[str, Any]],
) -> None:
    for k, error in enumerate(children(parent, "Erreur"), start=1):
        block = Block(error, f"{path}/Erreur[{k}]", "")
        out.append(
            {
                "element_index": index,
                "piece_number": piece,
                "line_number": line,
                "code": block.text("NumAnoAck"),
                "label": block.text("LibelleAnoAck"),
                "location": block.path,
            }
        )


def _subject(record: dict[str, Any]) -> str:
    """The one dépense bordereau the acquittement is about, else the acknowledged file."""
    bordereaux = {
        (e["bordereau_exercise"], canonical_number(e["bordereau_number"]))
        for e in record["elements"]
        if e["domain"] == _DEPENSE and e["bordereau_number"] and e["bordereau_exercise"] is not None
    }
    if len(bordereaux) == 1:
        exercise, number = bordereaux.pop()
        return bordereau_subject(record["collectivity_id"], exercise, number)
    return file_subject(record["file_name"])


def validate(data: bytes, *, schema_dir: Path, name: str = "<bytes>") -> list[Finding]:
    """XSD findings of a PES_ACQUIT against PES_V2_Acquit_Autonome_V2.xsd (package v5.17)."""
    return validate_document(data, schema_dir=schema_dir, relative=XSD_ACQUIT, name=name)
