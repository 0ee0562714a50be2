"""Write a ``fr.dcant.accounting.Bordereau`` pivot as a PES_Aller dépense file (PES V2, v5.17).

Elements are written in the order of the XSD sequences, each value in its ``V`` attribute,
and the file is encoded in ISO-8859-1 as the DGFiP samples and Hélios practice are
(characters outside Latin-1 become character references, so nothing is lost). The writer
is strict: a value the XSD requires but the pivot lacks, or a pivot whose derived fields
contradict its lines, is a :class:`NonConformantError` naming the pivot field; totals left
null in the pivot (``piece_count``, ``total_excl_tax``, mandat amounts) are computed.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from ._pes_common import NS_ALLER

__all__ = ["write_aller"]

_NCNAME = re.compile(r"[A-Za-z_][\w.\-]*\Z")

# Defaults for the envelope of a file the bus writes from a hand-built pivot.
_DEFAULT_VERSION = "2"  # Enveloppe/Parametres/Version "doit être valorisé à 2"
_DEFAULT_FILE_TYPE = "PESALR2"
_DEFAULT_SENDER = "DCANT"
_DEFAULT_APPLICATION = "dcant-bus"
_DEFAULT_DEPENSE_VERSION = "2"  # EnTeteDepense/IdVer "Mettre à 2"


def write_aller(data: Mapping[str, Any], *, document: str) -> bytes:
    """The PES_Aller bytes (ISO-8859-1) of the Bordereau record ``data``."""
    writer = _Writer(document)
    root = writer.pes_aller(data)
    return etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1")


class _Writer:
    """Builds the tree; ``document`` names the pivot in errors."""

    def __init__(self, document: str) -> None:
        self.document = document

    # -- primitives -------------------------------------------------------------------------

    def fail(self, field: str, message: str, *, rule: str = "PES-WRITE") -> NonConformantError:
        return NonConformantError(
            message,
            document=self.document,
            rule=rule,
            xpath=field,
            hint="complete or correct that pivot field; the PES_Aller XSD v5.17 requires it",
        )

    def put(self, parent: etree._Element, tag: str, value: Any) -> None:
        """Append ``<tag V="value"/>`` when the value is present."""
        if value is None:
            return
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, dt.date):
            text = value.isoformat()
        else:
            text = str(value)
        try:
            etree.SubElement(parent, tag, V=text)
        except ValueError as exc:  # control characters and NULs cannot appear in XML
            raise self.fail(tag, f"{tag} {text!r} holds characters XML cannot carry", rule="PES-CHARACTERS") from exc

    def need(self, record: Mapping[str, Any], key: str, field: str) -> Any:
        value = record.get(key)
        if value is None or value == "":
            raise self.fail(f"{field}.{key}", f"{field}.{key} is required to write a PES_Aller")
        return value

    def decimal(self, value: str, field: str) -> decimal.Decimal:
        try:
            return decimal.Decimal(value)
        except (decimal.InvalidOperation, TypeError, ValueError):
            raise self.fail(field, f"{field} {value!r} is not a decimal amount", rule="PES-AMOUNT") from None

    # -- blocks -----------------------------------------------------------------------------

    def pes_aller(self, data: Mapping[str, Any]) -> etree._Element:
        root = etree.Element(etree.QName(NS_ALLER, "PES_Aller"), nsmap={"n": NS_ALLER})
        file = data.get("file") or {}
        if file.get("id") is not None:
            if not _NCNAME.match(file["id"]):
                raise self.fail("file.id", f"file.id {file['id']!r} is not an XML ID (NCName)", rule="PES-ID")
            root.set("Id", file["id"])
        header = data.get("header")
        if not header:
            raise self.fail("header", "header (EnTetePES) is required to write a PES_Aller")
        self.envelope(root, file, data)
        self.entete(root, header)
        depense = etree.SubElement(root, "PES_DepenseAller")
        entete = etree.SubElement(depense, "EnTeteDepense")
        self.put(entete, "IdVer", data.get("depense_version") or _DEFAULT_DEPENSE_VERSION)
        self.put(entete, "InfoDematerialisee", data.get("dematerialised"))
        self.bordereau(depense, data)
        return root

    def envelope(self, root: etree._Element, file: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        envelope = etree.SubElement(root, "Enveloppe")
        params = etree.SubElement(envelope, "Parametres")
        self.put(params, "Version", file.get("version") or _DEFAULT_VERSION)
        self.put(params, "TypFic", file.get("file_type") or _DEFAULT_FILE_TYPE)
        file_name = file.get("file_name")
        if not file_name:
            header = data.get("header") or {}
            file_name = f"PESALR2_{header.get('collectivity_id')}_{data.get('exercise')}_{data.get('number')}.xml"
        self.put(params, "NomFic", file_name)
        sender = etree.SubElement(envelope, "Emetteur")
        self.put(sender, "Sigle", file.get("sender_acronym") or _DEFAULT_SENDER)
        self.put(sender, "Adresse", file.get("sender_application") or _DEFAULT_APPLICATION)
        if file.get("receiver_acronym") is not None or file.get("receiver_address") is not None:
            receiver = etree.SubElement(envelope, "Recepteur")
            self.put(receiver, "Sigle", file.get("receiver_acronym"))
            self.put(receiver, "Adresse", file.get("receiver_address"))

    def entete(self, root: etree._Element, header: Mapping[str, Any]) -> None:
        entete = etree.SubElement(root, "EnTetePES")
        self.put(entete, "DteStr", self.need(header, "structure_date", "header"))
        self.put(entete, "IdPost", self.need(header, "accounting_office", "header"))
        self.put(entete, "LibellePoste", header.get("accounting_office_name"))
        self.put(entete, "IdColl", self.need(header, "collectivity_id", "header"))
        self.put(entete, "FinJur", header.get("finess"))
        self.put(entete, "CodCol", self.need(header, "collectivity_code", "header"))
        self.put(entete, "CodBud", self.need(header, "budget_code", "header"))
        self.put(entete, "LibelleColBud", header.get("budget_label"))

    def bordereau(self, depense: etree._Element, data: Mapping[str, Any]) -> None:
        mandats: Sequence[Mapping[str, Any]] = data.get("mandats") or []
        if not mandats:
            raise self.fail("mandats", "a bordereau needs at least one mandat")
        bordereau = etree.SubElement(depense, "Bordereau")
        if data.get("xml_id") is not None:
            if not _NCNAME.match(data["xml_id"]):
                raise self.fail("xml_id", f"xml_id {data['xml_id']!r} is not an XML ID (NCName)", rule="PES-ID")
            bordereau.set("Id", data["xml_id"])
        bloc = etree.SubElement(bordereau, "BlocBordereau")
        issue_date = self.need(data, "issue_date", "bordereau")
        self.put(bloc, "Exer", self.need(data, "exercise", "bordereau"))
        self.put(bloc, "IdBord", self.need(data, "number", "bordereau"))
        self.put(bloc, "DteBordEm", issue_date)
        self.put(bloc, "TypBord", self.need(data, "type", "bordereau"))
        count = data.get("piece_count")
        self.put(bloc, "NbrPce", len(mandats) if count is None else count)
        self.put(bloc, "MtCumulAnnuel", data.get("annual_cumulative_amount"))
        total = data.get("total_excl_tax")
        if total is None:
            total = str(sum((self.mandat_totals(m, f"mandats[{i}]")[0] for i, m in enumerate(mandats)), decimal.Decimal(0)))
        self.put(bloc, "MtBordHT", total)
        self.put(bloc, "MtBordTVA", data.get("total_vat"))
        for i, mandat in enumerate(mandats):
            self.piece(bordereau, mandat, f"mandats[{i}]", issue_date)

    def mandat_totals(self, mandat: Mapping[str, Any], field: str) -> tuple[decimal.Decimal, decimal.Decimal | None]:
        """HT and TVA sums of the mandat's lines (TVA None when no line has one)."""
        ht = decimal.Decimal(0)
        tva: decimal.Decimal | None = None
        for j, ligne in enumerate(mandat.get("lignes") or []):
            ht += self.decimal(self.need(ligne, "amount_excl_tax", f"{field}.lignes[{j}]"), f"{field}.lignes[{j}].amount_excl_tax")
            if ligne.get("vat_amount") is not None:
                tva = (tva or decimal.Decimal(0)) + self.decimal(ligne["vat_amount"], f"{field}.lignes[{j}].vat_amount")
        return ht, tva

    def check_mandat(self, mandat: Mapping[str, Any], field: str, issue_date: dt.date) -> None:
        """Mandat-level fields are not written in PES (they derive from the bordereau and the
        lines): refuse a pivot where they disagree, since writing it would silently lose them."""
        if mandat.get("issue_date") is not None and mandat["issue_date"] != issue_date:
            raise self.fail(f"{field}.issue_date", f"{field}.issue_date differs from the bordereau's DteBordEm", rule="PES-MANDAT-DATE")
        ht, tva = self.mandat_totals(mandat, field)
        expected = {"amount_excl_tax": ht, "vat_amount": tva, "amount_incl_tax": ht + (tva or 0)}
        for key, value in expected.items():
            given = mandat.get(key)
            if given is not None and (value is None or self.decimal(given, f"{field}.{key}") != value):
                raise self.fail(f"{field}.{key}", f"{field}.{key} is {given} but the lines give {value}", rule="PES-MANDAT-TOTAL")

    def piece(self, bordereau: etree._Element, mandat: Mapping[str, Any], field: str, issue_date: dt.date) -> None:
        lignes: Sequence[Mapping[str, Any]] = mandat.get("lignes") or []
        if not lignes:
            raise self.fail(f"{field}.lignes", f"{field} needs at least one ligne")
        self.check_mandat(mandat, field, issue_date)
        piece = etree.SubElement(bordereau, "Piece")
        bloc = etree.SubElement(piece, "BlocPiece")
        info = etree.SubElement(bloc, "InfoPce")
        self.put(info, "CodServ", mandat.get("service_code"))
        self.put(info, "Affect", mandat.get("assignment"))
        self.put(info, "IdPce", self.need(mandat, "id", field))
        self.put(info, "TypPce", self.need(mandat, "type", field))
        self.put(info, "NatPce", self.need(mandat, "nature", field))
        self.put(info, "Obj", mandat.get("object"))
        self.put(info, "DteEch", mandat.get("due_date"))
        self.attachments(info, mandat.get("attachments") or [], field)
        delay = mandat.get("payment_delay")
        if delay is not None:
            dgp = etree.SubElement(bloc, "DGP")
            self.put(dgp, "Dgp", self.need(delay, "eligible", f"{field}.payment_delay"))
            self.put(dgp, "DteDebDgp", self.need(delay, "start_date", f"{field}.payment_delay"))
            self.put(dgp, "DteFinDgp", self.need(delay, "end_date", f"{field}.payment_delay"))
            self.put(dgp, "DureeDgp", self.need(delay, "days", f"{field}.payment_delay"))
            self.put(dgp, "CodIntMor", delay.get("interest_code"))
            self.put(dgp, "TxIntMor", delay.get("interest_rate"))
        invoices = self.invoices_by_line(mandat, field)
        for j, ligne in enumerate(lignes):
            tiers = ligne.get("tiers") or mandat.get("creditor")
            self.ligne(piece, ligne, f"{field}.lignes[{j}]", invoices.get(str(ligne.get("id"))), tiers)

    def invoices_by_line(self, mandat: Mapping[str, Any], field: str) -> dict[str, Mapping[str, Any]]:
        line_ids = {str(ligne.get("id")) for ligne in mandat.get("lignes") or []}
        out: dict[str, Mapping[str, Any]] = {}
        for k, invoice in enumerate(mandat.get("invoices") or []):
            where = f"{field}.invoices[{k}]"
            line_id = str(self.need(invoice, "line_id", where))
            self.need(invoice, "number", where)
            if line_id not in line_ids:
                raise self.fail(f"{where}.line_id", f"{where}.line_id {line_id} names no ligne of the mandat", rule="PES-INVOICE-LINE")
            if line_id in out:
                raise self.fail(f"{where}.line_id", f"PES carries one invoice per line; line {line_id} has two", rule="PES-INVOICE-LINE")
            out[line_id] = invoice
        return out

    def attachments(self, parent: etree._Element, refs: Sequence[Mapping[str, Any]], field: str) -> None:
        for k, ref in enumerate(refs):
            pj = etree.SubElement(parent, "PJRef")
            self.put(pj, "Support", self.need(ref, "support", f"{field}.attachments[{k}]"))
            self.put(pj, "IdUnique", self.need(ref, "unique_id", f"{field}.attachments[{k}]"))
            self.put(pj, "NomPJ", ref.get("name"))
            self.put(pj, "TypePJ", ref.get("type"))

    def ligne(
        self,
        piece: etree._Element,
        ligne: Mapping[str, Any],
        field: str,
        invoice: Mapping[str, Any] | None,
        tiers: Mapping[str, Any] | None,
    ) -> None:
        element = etree.SubElement(piece, "LigneDePiece")
        bloc = etree.SubElement(element, "BlocLignePiece")
        info = etree.SubElement(bloc, "InfoLignePce")
        imputation = self.need(ligne, "imputation", field)
        self.put(info, "IdLigne", self.need(ligne, "id", field))
        self.put(info, "Nature", self.need(imputation, "nature", f"{field}.imputation"))
        self.put(info, "Fonction", imputation.get("function"))
        self.put(info, "Operation", imputation.get("operation"))
        self.put(info, "CptAna", imputation.get("analytic_account"))
        self.put(info, "Facture", invoice.get("number") if invoice else None)
        self.put(info, "LibVir1", ligne.get("transfer_label_1"))
        self.put(info, "LibVir2", ligne.get("transfer_label_2"))
        self.put(info, "ModRegl", ligne.get("payment_method"))
        self.put(info, "TVAIntraCom", bool(ligne.get("intra_community_vat")))
        self.put(info, "CpteTiers", ligne.get("third_party_account"))
        self.put(info, "MtHT", self.need(ligne, "amount_excl_tax", field))
        self.put(info, "MtTVA", ligne.get("vat_amount"))
        self.put(info, "MtFactHT", invoice.get("amount_excl_tax") if invoice else None)
        self.attachments(info, ligne.get("attachments") or [], field)
        if ligne.get("contract_id") is not None:
            links = etree.SubElement(bloc, "LiensIdent")
            self.put(links, "IdMarche", ligne["contract_id"])
        if tiers is not None:
            self.tiers(element, tiers, f"{field}.tiers")

    def tiers(self, parent: etree._Element, tiers: Mapping[str, Any], field: str) -> None:
        element = etree.SubElement(parent, "Tiers")
        info = etree.SubElement(element, "InfoTiers")
        self.put(info, "IdTiers", tiers.get("id"))
        self.put(info, "NatIdTiers", tiers.get("id_type"))
        self.put(info, "RefTiers", tiers.get("reference"))
        # CatTiers: "Par défaut sur 01" (XSD documentation).
        self.put(info, "CatTiers", tiers.get("category") or "01")
        self.put(info, "NatJur", self.need(tiers, "legal_nature", field))
        self.put(info, "Civilite", tiers.get("title"))
        self.put(info, "Nom", self.need(tiers, "name", field))
        self.put(info, "ComplNom", tiers.get("name_complement"))
        self.put(info, "Prenom", tiers.get("first_name"))
        address = tiers.get("address")
        if address is not None:
            adr = etree.SubElement(element, "Adresse")
            where = f"{field}.address"
            self.put(adr, "TypAdr", self.need(address, "type", where))
            self.put(adr, "Adr1", address.get("line1"))
            self.put(adr, "Adr2", self.need(address, "line2", where))
            self.put(adr, "Adr3", address.get("line3"))
            self.put(adr, "CP", self.need(address, "postcode", where))
            self.put(adr, "Ville", self.need(address, "city", where))
            self.put(adr, "CodRes", bool(address.get("non_resident")))
            self.put(adr, "CodPays", address.get("country_code"))
        bank = tiers.get("bank_account")
        if bank is not None:
            self.bank(element, bank, f"{field}.bank_account")

    def bank(self, parent: etree._Element, bank: Mapping[str, Any], field: str) -> None:
        element = etree.SubElement(parent, "CpteBancaire")
        # TBancaire is a choice: the French RIB branch or the IBAN branch, never both.
        if bank.get("iban"):
            self.put(element, "BIC", bank.get("bic"))
            self.put(element, "IBAN", bank["iban"])
        elif bank.get("bank_code") is not None:
            self.put(element, "IdPayInt", bank.get("country_code"))
            self.put(element, "IdBancInt", bank.get("bank_id"))
            self.put(element, "CodeEtab", bank["bank_code"])
            self.put(element, "CodeGuic", self.need(bank, "branch_code", field))
            self.put(element, "IdCpte", self.need(bank, "account_number", field))
            self.put(element, "CleRib", self.need(bank, "rib_key", field))
        else:
            raise self.fail(field, f"{field} needs an iban or a French RIB (bank_code...)", rule="PES-BANK")
        self.put(element, "LibBanc", bank.get("bank_name"))
        self.put(element, "TitCpte", self.need(bank, "holder", field))
        self.put(element, "DteBanc", bank.get("date"))
