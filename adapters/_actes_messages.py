"""Readers of the ACTES legality-control dialogue and of the classification.

The dialogue about one act (messages 2-x courrier simple, 3-x pièces complémentaires, 4-x
lettre d'observations, 5-1 déféré au tribunal administratif) becomes one pivot,
``PrefectureMessage``, whose ``kind`` names the root element; the classification (7-2, 7-3)
becomes ``Classification`` with the matières tree flattened depth first.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from ._actes_common import MESSAGE_CODES, ElementReader, media_type
from ._actes_read import PivotParts, require_act_id

__all__ = ["PREFECTURE_KINDS", "read_classification", "read_prefecture_message"]

_NS = "fr.dcant.acts"
_PREF = "PREFECTURE_TO_COLLECTIVITY"
_CL = "COLLECTIVITY_TO_PREFECTURE"

#: root element -> (kind, sender, text element, documents layout). Senders per the ACTES
#: specification of each message type.
PREFECTURE_KINDS: dict[str, tuple[str, str, str | None, str]] = {
    "CourrierSimple": ("COURRIER_SIMPLE", _PREF, None, "Document"),
    "ReponseCourrierSimple": ("REPONSE_COURRIER_SIMPLE", _CL, None, "Document"),
    "DemandePieceComplementaire": ("PIECES_COMPLEMENTAIRES", _PREF, "DescriptionPieces", "Document"),
    "ARDemandePieceComplementaire": ("AR_PIECES_COMPLEMENTAIRES", _CL, None, ""),
    "RefusPieceComplementaire": ("REFUS_PIECES_COMPLEMENTAIRES", _CL, None, "Document"),
    "PieceComplementaire": ("REPONSE_PIECES_COMPLEMENTAIRES", _CL, None, "Documents"),
    "ARPieceComplementaire": ("AR_REPONSE_PIECES_COMPLEMENTAIRES", _PREF, None, "AR"),
    "LettreObservations": ("LETTRE_OBSERVATIONS", _PREF, "Motif", "Document"),
    "ARLettreObservations": ("AR_LETTRE_OBSERVATIONS", _CL, None, ""),
    "RejetLettreObservations": ("REJET_LETTRE_OBSERVATIONS", _CL, None, "Document"),
    "ReponseLettreObservations": ("REPONSE_LETTRE_OBSERVATIONS", _CL, None, "Document"),
    "ARReponseRejetLettreObservations": ("AR_REPONSE_LETTRE_OBSERVATIONS", _PREF, None, "AR"),
    "DefereTA": ("DEFERE", _PREF, "NatureIllegalite", "PiecesJointes"),
}


def _document(r: ElementReader, element: etree._Element) -> dict[str, Any]:
    name = r.text(element, "NomFichier")
    assert name is not None
    return {"file_name": name, "media_type": media_type(name), "content": None}


def read_prefecture_message(r: ElementReader, root: etree._Element) -> PivotParts:
    """Any root of :data:`PREFECTURE_KINDS` -> fr.dcant.acts.PrefectureMessage."""
    local = etree.QName(root).localname
    kind, direction, text_element, layout = PREFECTURE_KINDS[local]
    carrier = root
    reception = None
    message_date = None
    documents: list[dict[str, Any]] = []
    if layout == "AR":
        # ARReponseCL: the letter's identifier and date sit in actes:InfosCourrierPref.
        r.expect_only(root, ("InfosCourrierPref",))
        reception = r.date(root, "DateReception", attribute=True)
        info = r.child(root, "InfosCourrierPref")
        assert info is not None
        carrier = info
    elif layout == "Document":
        r.expect_only(root, tuple(x for x in (text_element, "Document") if x))
        node = r.child(root, "Document")
        assert node is not None
        documents.append(_document(r, node))
    elif layout == "Documents":
        r.expect_only(root, ("Documents",))
        holder = r.child(root, "Documents")
        assert holder is not None
        documents.extend(_document(r, d) for d in r.children(holder, "Document"))
    elif layout == "PiecesJointes":
        r.expect_only(root, ("DateDepot", "NatureIllegalite", "PiecesJointes"))
        message_date = r.date(root, "DateDepot")
        holder = r.child(root, "PiecesJointes", required=False)
        if holder is not None:
            documents.extend(_document(r, d) for d in r.children(holder, "PieceJointe"))
    else:
        r.expect_only(root, ())
    identifier = require_act_id(r, carrier)
    if layout != "PiecesJointes":
        message_date = r.date(carrier, "DateCourrierPref", attribute=True)
    data = {
        "kind": kind,
        "message_code": MESSAGE_CODES[local],
        "direction": direction,
        "act_id": str(identifier),
        "siren": identifier.siren,
        "department": identifier.department,
        "number": identifier.number,
        "message_date": message_date,
        "reception_date": reception,
        "text": r.text(root, text_element, required=False) if text_element else None,
        "documents": documents,
    }
    return f"{_NS}.PrefectureMessage", f"{_NS}.PrefectureMessageReceived", identifier.subject, data


def _matieres(r: ElementReader, parent: etree._Element, level: int, prefix: str | None, out: list[dict[str, Any]]) -> None:
    for node in r.children(parent, f"Matiere{level}"):
        raw = r.attr(node, "CodeMatiere")
        assert raw is not None
        own = r.integer(raw, node, "CodeMatiere")
        code = f"{prefix}.{own}" if prefix else str(own)
        out.append(
            {"code": code, "level": level, "own_code": own, "label": r.attr(node, "Libelle", required=False) or "", "parent_code": prefix}
        )
        if level < 5:
            _matieres(r, node, level + 1, code, out)


def read_classification(r: ElementReader, root: etree._Element) -> PivotParts:
    """actes:RetourClassification (7-2) / ReponseClassificationSansChangement (7-3) -> Classification."""
    version = r.date(root, "DateClassification")
    assert version is not None
    data: dict[str, Any] = {"version_date": version, "status": "UNCHANGED", "natures": [], "matieres": []}
    subject = f"classification:{version.isoformat()}"
    if etree.QName(root).localname == "ReponseClassificationSansChangement":
        r.expect_only(root, ("DateClassification",))
        return f"{_NS}.Classification", f"{_NS}.ClassificationPublished", subject, data
    r.expect_only(root, ("DateClassification", "NaturesActes", "Matieres"))
    data["status"] = "FULL"
    natures = r.child(root, "NaturesActes")
    assert natures is not None
    extended = False
    for node in r.children(natures, "NatureActe"):
        raw = r.attr(node, "CodeNatureActe")
        assert raw is not None
        types = []
        for pj in r.children(node, "TypePJNatureActe"):
            extended = True
            code = r.attr(pj, "CodeTypePJ")
            assert code is not None
            types.append({"code": code, "label": r.attr(pj, "Libelle", required=False) or ""})
        data["natures"].append(
            {
                "code": r.integer(raw, node, "CodeNatureActe"),
                "label": r.attr(node, "Libelle", required=False) or "",
                "abbreviation": r.attr(node, "TypeAbrege", required=False) or "",
                "attachment_types": types,
            }
        )
    if extended:
        r.warn("actes:TypePJNatureActe (typologie des pièces) is not in the ACTES v1.1 XSD; read as attachment_types")
    matieres = r.child(root, "Matieres", required=False)
    if matieres is not None:
        _matieres(r, matieres, 1, None, data["matieres"])
    return f"{_NS}.Classification", f"{_NS}.ClassificationPublished", subject, data
