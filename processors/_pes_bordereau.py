"""Build the PES V2 dépense bordereau (``fr.dcant.accounting.Bordereau``) of one mandat.

The accounting chain issues one bordereau per certified invoice, holding one mandat with one
line: the budget, imputation and numbers come from the service fait event (the ordonnateur's
finance system numbers its bordereaux and mandats), the creditor from the invoice (BT-27 name,
BT-30 SIRET, BG-5 address, BT-84/BT-86 account), the délai global de paiement block (DGP) from
the chain's deadline arithmetic. The result is the pivot :mod:`adapters.pes_aller` writes as a
PES_Aller valid against the PES V2 XSD; texts are cut to the lengths the XSD allows.

The acknowledged file's name comes back in the PES_ACQUIT (``NomFic``), so it carries the
contract id, which routes the acquittement to the contract's state:
``PESALR2_<IdColl>_<Exer>_<IdBord>_<contract id>.xml`` (:func:`file_name`,
:func:`contract_of_file_name`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from adapters._pes_common import bordereau_subject, canonical_number

__all__ = ["build_bordereau", "contract_of_file_name", "creditor_of", "file_name", "mandat_amounts"]

_PREFIX = "PESALR2"
_SUFFIX = ".xml"
_CENT = Decimal("0.01")
_MANDAT_ORDINAIRE = "01"  # TypPce 01 mandat ordinaire
_BORDEREAU_ORDINAIRE = "01"  # TypBord 01 bordereau ordinaire
_TAUX_BCE = "02"  # CodIntMor 02: late-payment interest based on the ECB rate


def _cut(text: Any, length: int) -> str | None:
    if text is None:
        return None
    value = " ".join(str(text).split())
    return value[:length] or None


def file_name(collectivity_id: str, exercise: int, number: str, contract_id: str) -> str:
    """The PES_Aller file name (NomFic, at most 100 characters) that names the contract."""
    return f"{_PREFIX}_{collectivity_id.strip()}_{exercise}_{canonical_number(number)}_{contract_id}{_SUFFIX}"[:100]


def contract_of_file_name(name: str | None) -> str | None:
    """The contract id in a file name made by :func:`file_name`; None for any other name."""
    if not name or not name.startswith(_PREFIX + "_") or not name.endswith(_SUFFIX):
        return None
    parts = name[: -len(_SUFFIX)].split("_", 4)
    if len(parts) != 5 or not all(p.isdigit() for p in parts[2:4]) or not parts[4]:
        return None
    return parts[4]


def creditor_of(invoice: Mapping[str, Any]) -> dict[str, Any]:
    """The creditor facts the chain keeps from an Invoice pivot (BG-4 seller, BG-16 payment)."""
    seller = invoice.get("seller") or {}
    address = seller.get("address") or {}
    transfers = (invoice.get("payment_instructions") or {}).get("credit_transfers") or []
    account = transfers[0] if transfers else {}
    return {
        "name": seller.get("name"),
        "siret": invoice.get("seller_siret"),
        "street": address.get("line1"),
        "street_2": address.get("line2"),
        "post_code": address.get("post_code"),
        "city": address.get("city"),
        "country": address.get("country_code"),
        "iban": "".join((account.get("account_id") or "").split()) or None,
        "bic": account.get("provider_id"),
    }


def _tiers(creditor: Mapping[str, Any], legal_nature: str) -> dict[str, Any]:
    siret = creditor.get("siret")
    name = _cut(creditor.get("name"), 38) or "CREANCIER"
    address = None
    post_code = (creditor.get("post_code") or "").strip()
    if creditor.get("street") and creditor.get("city") and post_code.isdigit() and len(post_code) <= 5:
        address = {
            "type": "1", "line1": None, "line2": _cut(creditor["street"], 38), "line3": _cut(creditor.get("street_2"), 38),
            "postcode": post_code, "city": _cut(creditor["city"], 38),
            "non_resident": (creditor.get("country") or "FR") != "FR", "country_code": None,
        }
    bank = None
    if creditor.get("iban"):
        bank = {
            "iban": creditor["iban"], "bic": creditor.get("bic"), "country_code": None, "bank_id": None,
            "bank_code": None, "branch_code": None, "account_number": None, "rib_key": None, "bank_name": None,
            "holder": _cut(creditor.get("name"), 32) or name[:32], "date": None,
        }
    id_type = {14: "01", 9: "02"}.get(len(siret)) if siret and siret.isdigit() else None
    return {
        "id": siret if id_type else None, "id_type": id_type, "reference": None, "category": None,
        "legal_nature": legal_nature, "title": None, "name": name, "name_complement": None, "first_name": None,
        "address": address, "bank_account": bank,
    }


def mandat_amounts(invoice_excl_tax: Decimal, invoice_vat: Decimal, certified: Decimal) -> tuple[Decimal, Decimal]:
    """(HT, TVA) of the mandat: the certified amount, at most the invoice's, and the invoice's
    VAT in the same proportion (rounded half up to the cent)."""
    excl = min(certified, invoice_excl_tax).quantize(_CENT, rounding=ROUND_HALF_UP)
    if invoice_excl_tax == 0 or excl == invoice_excl_tax:
        return excl, invoice_vat
    return excl, (invoice_vat * excl / invoice_excl_tax).quantize(_CENT, rounding=ROUND_HALF_UP)


def build_bordereau(*, invoice: Mapping[str, Any], service_fait: Mapping[str, Any], contract_id: str,
                    issue_date: dt.date, amount_excl_tax: Decimal, vat_amount: Decimal) -> tuple[str, dict[str, Any]]:
    """(subject, Bordereau record) of the mandat paying ``invoice`` (a state entry of the chain).

    ``service_fait`` is a ServiceFait record; ``invoice["dgp"]`` the running payment period.
    """
    budget = service_fait["budget"]
    exercise, number = service_fait["exercise"], service_fait["bordereau_number"]
    dgp = invoice["dgp"]
    incl = amount_excl_tax + vat_amount
    invoice_number = str(invoice["number"])
    invoice_excl = invoice.get("amount_excl_tax")
    ligne = {
        "id": "1",
        "imputation": {"nature": service_fait["imputation"]["nature"], "function": service_fait["imputation"].get("function"),
                       "operation": service_fait["imputation"].get("operation"), "analytic_account": None},
        "transfer_label_1": _cut(f"FACTURE {invoice_number}", 70), "transfer_label_2": None, "payment_method": None,
        "intra_community_vat": False, "third_party_account": None,
        "amount_excl_tax": str(amount_excl_tax), "vat_amount": str(vat_amount),
        "contract_id": contract_id if len(contract_id) <= 30 else None, "attachments": [], "tiers": None,
    }
    mandat = {
        "id": service_fait["mandat_number"], "type": _MANDAT_ORDINAIRE, "nature": service_fait.get("mandat_nature") or "01",
        "service_code": _cut(service_fait.get("service_code"), 10), "assignment": None,
        "object": _cut(f"Facture {invoice_number} marché {contract_id}", 100),
        "issue_date": issue_date, "due_date": None,
        "amount_excl_tax": str(amount_excl_tax), "vat_amount": str(vat_amount), "amount_incl_tax": str(incl),
        "payment_delay": {
            "eligible": True, "start_date": dt.date.fromisoformat(dgp["start"]),
            "end_date": dt.date.fromisoformat(dgp["deadline"]), "days": dgp["days"],
            "interest_code": _TAUX_BCE, "interest_rate": None,
        },
        "attachments": [],
        "creditor": _tiers(invoice["creditor"], service_fait.get("creditor_legal_nature") or "03"),
        "invoices": [{
            "number": _cut(invoice_number, 20), "line_id": "1",
            "amount_excl_tax": invoice_excl if invoice_excl is not None and Decimal(invoice_excl) != amount_excl_tax else None,
            "seller_id": invoice["creditor"].get("siret"), "seller_name": _cut(invoice["creditor"].get("name"), 38),
        }],
        "lignes": [ligne],
    }
    record = {
        "file": {"id": None, "version": None, "file_type": None,
                 "file_name": file_name(budget["collectivity_id"], exercise, number, contract_id),
                 "sender_acronym": None, "sender_application": None, "receiver_acronym": None, "receiver_address": None},
        "header": {
            "structure_date": issue_date, "accounting_office": budget["accounting_office"],
            "accounting_office_name": budget.get("accounting_office_name"), "collectivity_id": budget["collectivity_id"],
            "finess": None, "collectivity_code": budget["collectivity_code"], "budget_code": budget["budget_code"],
            "budget_label": budget.get("budget_label"),
        },
        "depense_version": None, "dematerialised": True, "xml_id": None,
        "exercise": exercise, "number": number, "issue_date": issue_date, "type": _BORDEREAU_ORDINAIRE,
        "piece_count": 1, "annual_cumulative_amount": None,
        "total_excl_tax": str(amount_excl_tax), "total_vat": str(vat_amount),
        "mandats": [mandat],
    }
    return bordereau_subject(budget["collectivity_id"], exercise, number), record
