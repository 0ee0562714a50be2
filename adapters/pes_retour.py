"""PES_Retour dépense (DGFiP PES V2 return file) → ``fr.dcant.accounting.PesRetour``.

After visa and payment, Hélios sends the ordonnateur a PES_Retour (``HELIOS_SIMU_RETOUR_*``,
TypFic PESRETOUR_DEP): per bordereau, the state of each mandat (EtatPce: en instance, pris
en charge, rejeté, soldé) and line (EtatLigPce), the dates of prise en charge, rejection or
suspension, and the payments (PaiementEmargement: date, amount). The event
``fr.dcant.accounting.PesRetourReceived`` is keyed by the bordereau when the file concerns
exactly one (``bordereau:<IdColl>:<Exer>:<IdBord>``), otherwise by the file (``pes:<NomFic>``).
"""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from ._base import Finding, Pivot, Sniff
from ._pes_common import NS_RETOUR, Block, bordereau_subject, children, file_subject, parse_pes, sniffs_as
from ._pes_xsd import XSD_RETOUR, validate_document

__all__ = ["EVENT_TYPE", "FAMILY", "FORMAT", "SCHEMA", "detect", "to_pivot", "validate"]

FORMAT = "pes-retour"
FAMILY = "accounting"
EVENT_TYPE = "fr.dcant.accounting.PesRetourReceived"
SCHEMA = "fr.dcant.accounting.PesRetour"

#: EtatPce labels (CommunDepense_Retour.xsd v5.17).
PIECE_STATES = {"01": "En instance", "02": "Prise en charge", "04": "Rejeté", "05": "Soldé"}
#: EtatLigPce labels (CommunDepense_Retour.xsd v5.17).
LINE_STATES = {
    "01": "Pris en charge",
    "02": "Rejeté",
    "03": "Pré visé PEC sans ano",
    "04": "Pré visé PEC avec ano",
    "05": "Pré visé rejet forçable",
    "06": "Pré visé rejet non forçable",
    "07": "PEC avec anomalies",
    "08": "PEC sans anomalies",
    "09": "Rejet",
    "10": "Rejet non forçable",
    "15": "Pris en charge avec forçage",
    "16": "Mis en instance",
}
_ROOT = "/PES_Retour"


def detect(sniff: Sniff) -> bool:
    """True for an XML document whose root is PES_Retour."""
    return sniffs_as(sniff, "PES_Retour", NS_RETOUR)


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """The dépense return file ``data`` as a pivot. Raises only :class:`bus.AdapterError` subclasses."""
    root = parse_pes(data, name=name, root_tag="PES_Retour", namespace=NS_RETOUR)
    top = Block(root, _ROOT, name)
    envelope = top.sub("Enveloppe")
    params = envelope.sub("Parametres") if envelope is not None else None
    if params is None:
        raise top.error("Enveloppe/Parametres", "Enveloppe/Parametres is missing", rule="PES-REQUIRED")
    header = top.sub("EnTetePES")
    if header is None:
        raise top.error("EnTetePES", "EnTetePES is missing", rule="PES-REQUIRED")
    depense = top.nodes.get("PES_DepenseRetour")
    if depense is None:
        raise NonConformantError(
            "the PES_Retour carries no PES_DepenseRetour",
            document=name,
            rule="PES-DEPENSE",
            xpath=f"{_ROOT}/PES_DepenseRetour",
            hint="only dépense return files become pivot events; recette and client returns are not carried",
        )
    entete = Block(next(children(depense, "EnTeteDepense"), None), f"{_ROOT}/PES_DepenseRetour/EnTeteDepense", name)
    bordereaux = [
        _bordereau(element, f"{_ROOT}/PES_DepenseRetour/Bordereau[{i}]", name)
        for i, element in enumerate(children(depense, "Bordereau"), start=1)
    ]
    record = {
        "file_name": params.required("NomFic"),
        "file_type": params.text("TypFic"),
        "version": params.text("Version"),
        "structure_date": header.date("DteStr", required=True),
        "accounting_office": header.required("IdPost"),
        "accounting_office_name": header.text("LibellePoste"),
        "collectivity_id": header.required("IdColl"),
        # CodColl is the PES_Retour spelling, CodCol the PES_Aller one; accept either.
        "collectivity_code": header.text("CodColl") or header.text("CodCol"),
        "budget_code": header.text("CodBud"),
        "budget_label": header.text("LibelleColBud"),
        "restitution_type": entete.text("TypRestit"),
        "depense_version": entete.text("IdVer"),
        "bordereaux": bordereaux,
    }
    if len(bordereaux) == 1:
        subject = bordereau_subject(record["collectivity_id"], bordereaux[0]["exercise"], bordereaux[0]["number"])
    else:
        subject = file_subject(record["file_name"])
    return Pivot(type=EVENT_TYPE, schema=SCHEMA, subject=subject, data=record, format=FORMAT)


def _bordereau(element: etree._Element, path: str, name: str) -> dict[str, Any]:
    bordereau = Block(element, path, name)
    bloc = bordereau.sub("BlocBordereau")
    if bloc is None:
        raise bordereau.error("BlocBordereau", "BlocBordereau is missing", rule="PES-REQUIRED")
    return {
        "exercise": bloc.integer("Exer", required=True),
        "number": bloc.required("IdBord"),
        "type": bloc.required("TypBord"),
        "mandats": [_mandat(piece, f"{path}/Piece[{i}]", name) for i, piece in enumerate(children(element, "Piece"), start=1)],
    }


def _mandat(element: etree._Element, path: str, name: str) -> dict[str, Any]:
    piece = Block(element, path, name)
    info = piece.sub("InfoPiece")
    if info is None:
        raise piece.error("InfoPiece", "InfoPiece is missing", rule="PES-REQUIRED")
    lines = [_line(line, f"{path}/LigneDePiece[{i}]", name) for i, line in enumerate(children(element, "LigneDePiece"), start=1)]
    ht = sum((decimal.Decimal(line["amount_excl_tax"]) for line in lines), decimal.Decimal(0))
    vats = [decimal.Decimal(line["vat_amount"]) for line in lines if line["vat_amount"] is not None]
    payments = [p for line in lines for p in line["payments"]]
    state = info.required("EtatPce")
    return {
        "id": info.required("IdPce"),
        "type": info.required("TypPce"),
        "nature": info.required("NatPce"),
        "service_code": info.text("CodServ"),
        "object": info.text("Obj"),
        "state": state,
        "state_label": PIECE_STATES.get(state),
        "taken_in_charge_date": info.date("DtePcePec"),
        "rejection_date": info.date("DtePceRej"),
        "suspension_date": info.date("DtePceInst"),
        "observation": info.text("ObsEtat"),
        "comment": info.text("Commentaire"),
        "amount_excl_tax": str(ht),
        "vat_amount": str(sum(vats, decimal.Decimal(0))) if vats else None,
        "paid_amount": str(sum((decimal.Decimal(p["amount"]) for p in payments), decimal.Decimal(0))) if payments else None,
        "last_payment_date": max((p["date"] for p in payments), default=None),
        "lines": lines,
    }


def _line(element: etree._Element, path: str, name: str) -> dict[str, Any]:
    ligne = Block(element, path, name)
    bloc = ligne.sub("BlocLignePiece")
    if bloc is None:
        raise ligne.error("BlocLignePiece", "BlocLignePiece is missing", rule="PES-REQUIRED")
    info = bloc.sub("InfoLignePiece")
    if info is None:
        raise bloc.error("InfoLignePiece", "InfoLignePiece is missing", rule="PES-REQUIRED")
    paiement = bloc.sub("InfoPaiement")
    links = bloc.sub("LiensIdent")
    tiers = ligne.sub("Tiers")
    tiers_info = tiers.sub("InfoTiers") if tiers is not None else None
    state = info.required("EtatLigPce")
    return {
        "id": info.required("IdLigne"),
        "state": state,
        "state_label": LINE_STATES.get(state),
        "observation": info.text("ObsEtat"),
        "comment": info.text("Commentaire"),
        "transfer_label_1": info.text("LibVir1"),
        "transfer_label_2": info.text("LibVir2"),
        "amount_excl_tax": info.amount("MtHT", required=True),
        "vat_amount": info.amount("MtTVA"),
        "payment_count": paiement.integer("NbrPay") if paiement is not None else None,
        "paid_total": paiement.amount("MtPayTot") if paiement is not None else None,
        "contract_id": links.text("IdMarche") if links is not None else None,
        "tiers_id": tiers_info.text("IdTiers") if tiers_info is not None else None,
        "tiers_name": tiers_info.text("Nom") if tiers_info is not None else None,
        "payments": [_payment(p, f"{path}/PaiementEmargement[{i}]", name) for i, p in enumerate(children(element, "PaiementEmargement"), start=1)],
    }


def _payment(element: etree._Element, path: str, name: str) -> dict[str, Any]:
    block = Block(element, path, name)
    date: dt.date | None = block.date("DtePay", required=True)
    return {"origin": block.required("OrgEma"), "date": date, "amount": block.amount("MtPay", required=True)}


def validate(data: bytes, *, schema_dir: Path, name: str = "<bytes>") -> list[Finding]:
    """XSD findings of a PES_Retour against PES_V2/RETOUR/Rev0/PES_Retour.xsd (package v5.17)."""
    return validate_document(data, schema_dir=schema_dir, relative=XSD_RETOUR, name=name)
