"""Read a PES_Aller dépense into ``fr.dcant.accounting.Bordereau`` records, one per bordereau.

The reader is tolerant, as the bus's readers are: it needs the values the pivot requires
(EnTetePES identifiers, Exer, IdBord, DteBordEm, TypBord, IdPce, IdLigne, Nature, MtHT,
Tiers/Nom...) and reports inconsistencies it can see cheaply (totals, piece count) as
warnings rather than refusing the file. Blocks the pivot does not carry (InfoTVAHLM, OpSpec,
RattachPiece, signatures, PES_PJ) are skipped.
"""

from __future__ import annotations

import decimal
from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from ._pes_common import Block, children

__all__ = ["read_aller"]


def read_aller(root: etree._Element, *, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The bordereaux of the PES_Aller ``root`` as pivot records, and the reader's warnings."""
    top = Block(root, "/PES_Aller", name)
    envelope = top.sub("Enveloppe")
    if envelope is None:
        raise top.error("Enveloppe", "Enveloppe is missing", rule="PES-REQUIRED")
    header = top.sub("EnTetePES")
    if header is None:
        raise top.error("EnTetePES", "EnTetePES is missing", rule="PES-REQUIRED")
    depense = top.nodes.get("PES_DepenseAller")
    if depense is None:
        raise NonConformantError(
            "the PES_Aller carries no PES_DepenseAller",
            document=name,
            rule="PES-DEPENSE",
            xpath="/PES_Aller/PES_DepenseAller",
            hint="only the dépense domain of PES_Aller becomes a pivot event; send recette files elsewhere",
        )
    file_record = _file(root, envelope)
    header_record = _header(header)
    entete = Block(next(children(depense, "EnTeteDepense"), None), "/PES_Aller/PES_DepenseAller/EnTeteDepense", name)
    warnings: list[str] = []
    bordereaux = []
    for index, element in enumerate(children(depense, "Bordereau"), start=1):
        path = f"/PES_Aller/PES_DepenseAller/Bordereau[{index}]"
        record = _bordereau(element, path, name, warnings)
        bordereaux.append(
            {
                "file": file_record,
                "header": header_record,
                "depense_version": entete.text("IdVer"),
                "dematerialised": entete.boolean("InfoDematerialisee"),
                **record,
            }
        )
    if not bordereaux:
        raise NonConformantError(
            "PES_DepenseAller has no Bordereau",
            document=name,
            rule="PES-REQUIRED",
            xpath="/PES_Aller/PES_DepenseAller/Bordereau",
        )
    return bordereaux, warnings


def _file(root: etree._Element, envelope: Block) -> dict[str, Any]:
    params = envelope.sub("Parametres") or Block(None, envelope.path + "/Parametres", envelope.document)
    sender = envelope.sub("Emetteur") or Block(None, envelope.path + "/Emetteur", envelope.document)
    receiver = envelope.sub("Recepteur") or Block(None, envelope.path + "/Recepteur", envelope.document)
    return {
        "id": root.get("Id"),
        "version": params.text("Version"),
        "file_type": params.text("TypFic"),
        "file_name": params.text("NomFic"),
        "sender_acronym": sender.text("Sigle"),
        "sender_application": sender.text("Adresse"),
        "receiver_acronym": receiver.text("Sigle"),
        "receiver_address": receiver.text("Adresse"),
    }


def _header(header: Block) -> dict[str, Any]:
    return {
        "structure_date": header.date("DteStr", required=True),
        "accounting_office": header.required("IdPost"),
        "accounting_office_name": header.text("LibellePoste"),
        "collectivity_id": header.required("IdColl"),
        "finess": header.text("FinJur"),
        # CodColl is the PES_Retour spelling; some ordonnateur software writes it in PES_Aller too.
        "collectivity_code": header.text("CodCol") or header.required("CodColl"),
        "budget_code": header.required("CodBud"),
        "budget_label": header.text("LibelleColBud"),
    }


def _bordereau(element: etree._Element, path: str, name: str, warnings: list[str]) -> dict[str, Any]:
    bordereau = Block(element, path, name)
    bloc = bordereau.sub("BlocBordereau")
    if bloc is None:
        raise bordereau.error("BlocBordereau", "BlocBordereau is missing", rule="PES-REQUIRED")
    issue_date = bloc.date("DteBordEm", required=True)
    mandats = [
        _mandat(piece, f"{path}/Piece[{i}]", name, issue_date)
        for i, piece in enumerate(children(element, "Piece"), start=1)
    ]
    record = {
        "xml_id": element.get("Id"),
        "exercise": bloc.integer("Exer", required=True),
        "number": bloc.required("IdBord"),
        "issue_date": issue_date,
        "type": bloc.required("TypBord"),
        "piece_count": bloc.integer("NbrPce"),
        "annual_cumulative_amount": bloc.amount("MtCumulAnnuel"),
        "total_excl_tax": bloc.amount("MtBordHT"),
        "total_vat": bloc.amount("MtBordTVA"),
        "mandats": mandats,
    }
    _check_totals(record, path, warnings)
    return record


def _check_totals(record: dict[str, Any], path: str, warnings: list[str]) -> None:
    """Warn about totals that disagree with the pieces (Hélios rejects such bordereaux)."""
    if record["piece_count"] is not None and record["piece_count"] != len(record["mandats"]):
        warnings.append(f"{path}/BlocBordereau/NbrPce is {record['piece_count']} but the bordereau has {len(record['mandats'])} Piece")
    lines_ht = sum((decimal.Decimal(m["amount_excl_tax"]) for m in record["mandats"]), decimal.Decimal(0))
    if record["total_excl_tax"] is not None and decimal.Decimal(record["total_excl_tax"]) != lines_ht:
        warnings.append(f"{path}/BlocBordereau/MtBordHT is {record['total_excl_tax']} but its lines' MtHT sum to {lines_ht}")


def _mandat(element: etree._Element, path: str, name: str, issue_date: Any) -> dict[str, Any]:
    piece = Block(element, path, name)
    bloc = piece.sub("BlocPiece")
    if bloc is None:
        raise piece.error("BlocPiece", "BlocPiece is missing", rule="PES-REQUIRED")
    info = bloc.sub("InfoPce")
    if info is None:
        raise bloc.error("InfoPce", "InfoPce is missing", rule="PES-REQUIRED")
    dgp = bloc.sub("DGP")
    lignes: list[dict[str, Any]] = []
    invoices: list[dict[str, Any]] = []
    creditor: dict[str, Any] | None = None
    ht = tva = decimal.Decimal(0)
    has_tva = False
    for i, ligne_element in enumerate(children(element, "LigneDePiece"), start=1):
        ligne, invoice = _ligne(ligne_element, f"{path}/LigneDePiece[{i}]", name)
        if creditor is None:
            creditor = ligne["tiers"]
        if ligne["tiers"] == creditor:
            ligne["tiers"] = None  # the mandat's creditor: carried once, on the mandat
        lignes.append(ligne)
        if invoice is not None:
            invoices.append(invoice)
        ht += decimal.Decimal(ligne["amount_excl_tax"])
        if ligne["vat_amount"] is not None:
            has_tva = True
            tva += decimal.Decimal(ligne["vat_amount"])
    if not lignes:
        raise piece.error("LigneDePiece", "the Piece has no LigneDePiece", rule="PES-REQUIRED")
    return {
        "id": info.required("IdPce"),
        "type": info.required("TypPce"),
        "nature": info.required("NatPce"),
        "service_code": info.text("CodServ"),
        "assignment": info.text("Affect"),
        "object": info.text("Obj"),
        "issue_date": issue_date,
        "due_date": info.date("DteEch"),
        "amount_excl_tax": str(ht),
        "vat_amount": str(tva) if has_tva else None,
        "amount_incl_tax": str(ht + tva),
        "payment_delay": _payment_delay(dgp) if dgp is not None else None,
        "attachments": _attachments(info.element, info.path, name),
        "creditor": creditor,
        "invoices": invoices,
        "lignes": lignes,
    }


def _attachments(parent: etree._Element | None, path: str, name: str) -> list[dict[str, Any]]:
    if parent is None:
        return []
    out = []
    for i, element in enumerate(children(parent, "PJRef"), start=1):
        ref = Block(element, f"{path}/PJRef[{i}]", name)
        out.append(
            {
                "support": ref.required("Support"),
                "unique_id": ref.required("IdUnique"),
                "name": ref.text("NomPJ"),
                "type": ref.text("TypePJ"),
            }
        )
    return out


def _payment_delay(dgp: Block) -> dict[str, Any]:
    return {
        "eligible": dgp.boolean("Dgp", required=True),
        "start_date": dgp.date("DteDebDgp", required=True),
        "end_date": dgp.date("DteFinDgp", required=True),
        "days": dgp.integer("DureeDgp", required=True),
        "interest_code": dgp.text("CodIntMor"),
        "interest_rate": dgp.amount("TxIntMor"),
    }


def _ligne(element: etree._Element, path: str, name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    ligne = Block(element, path, name)
    bloc = ligne.sub("BlocLignePiece")
    if bloc is None:
        raise ligne.error("BlocLignePiece", "BlocLignePiece is missing", rule="PES-REQUIRED")
    info = bloc.sub("InfoLignePce")
    if info is None:
        raise bloc.error("InfoLignePce", "InfoLignePce is missing", rule="PES-REQUIRED")
    links = bloc.sub("LiensIdent")
    tiers_block = ligne.sub("Tiers")
    tiers = _tiers(tiers_block) if tiers_block is not None else None
    record = {
        "id": info.required("IdLigne"),
        "imputation": {
            "nature": info.required("Nature"),
            "function": info.text("Fonction"),
            "operation": info.text("Operation"),
            "analytic_account": info.text("CptAna"),
        },
        "transfer_label_1": info.text("LibVir1"),
        "transfer_label_2": info.text("LibVir2"),
        "payment_method": info.text("ModRegl"),
        "intra_community_vat": bool(info.boolean("TVAIntraCom")),
        "third_party_account": info.text("CpteTiers"),
        "amount_excl_tax": info.amount("MtHT", required=True),
        "vat_amount": info.amount("MtTVA"),
        "contract_id": links.text("IdMarche") if links is not None else None,
        "attachments": _attachments(info.element, info.path, name),
        "tiers": tiers,
    }
    invoice = None
    number = info.text("Facture")
    if number is not None:
        invoice = {
            "number": number,
            "line_id": record["id"],
            "amount_excl_tax": info.amount("MtFactHT"),
            "seller_id": tiers["id"] if tiers else None,
            "seller_name": tiers["name"] if tiers else None,
        }
    return record, invoice


def _tiers(tiers: Block) -> dict[str, Any]:
    info = tiers.sub("InfoTiers")
    if info is None:
        raise tiers.error("InfoTiers", "InfoTiers is missing", rule="PES-REQUIRED")
    address = tiers.sub("Adresse")
    bank = tiers.sub("CpteBancaire")
    return {
        "id": info.text("IdTiers"),
        "id_type": info.text("NatIdTiers"),
        "reference": info.text("RefTiers"),
        "category": info.text("CatTiers"),
        "legal_nature": info.text("NatJur"),
        "title": info.text("Civilite"),
        "name": info.required("Nom"),
        "name_complement": info.text("ComplNom"),
        "first_name": info.text("Prenom"),
        "address": _address(address) if address is not None else None,
        "bank_account": _bank(bank) if bank is not None else None,
    }


def _address(address: Block) -> dict[str, Any]:
    return {
        "type": address.required("TypAdr"),
        "line1": address.text("Adr1"),
        "line2": address.text("Adr2"),
        "line3": address.text("Adr3"),
        "postcode": address.text("CP"),
        "city": address.text("Ville"),
        "non_resident": bool(address.boolean("CodRes")),
        "country_code": address.text("CodPays"),
    }


def _bank(bank: Block) -> dict[str, Any]:
    return {
        "iban": bank.text("IBAN"),
        "bic": bank.text("BIC"),
        "country_code": bank.text("IdPayInt"),
        "bank_id": bank.text("IdBancInt"),
        "bank_code": bank.text("CodeEtab"),
        "branch_code": bank.text("CodeGuic"),
        "account_number": bank.text("IdCpte"),
        "rib_key": bank.text("CleRib"),
        "bank_name": bank.text("LibBanc"),
        "holder": bank.text("TitCpte"),
        "date": bank.date("DteBanc"),
    }
