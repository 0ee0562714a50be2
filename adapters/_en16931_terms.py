"""The flat EN 16931 terms map of an Invoice pivot: one JSON object keyed by term ids (BT-1...).

What ``bus adapt --terms`` and the adapters' ``terms`` give integrators who think in EN 16931
terms rather than in the pivot's nested fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

__all__ = ["terms"]


_PARTY_TERMS = (
    ("seller", {"name": "BT-27", "trading_name": "BT-28", "vat_identifier": "BT-31", "tax_registration": "BT-32", "legal_form": "BT-33"},
     "BT-29", "BT-30", "BT-34", ("BT-35", "BT-36", "BT-162", "BT-37", "BT-38", "BT-39", "BT-40"), ("BT-41", "BT-42", "BT-43")),
    ("buyer", {"name": "BT-44", "trading_name": "BT-45", "vat_identifier": "BT-48"},
     "BT-46", "BT-47", "BT-49", ("BT-50", "BT-51", "BT-163", "BT-52", "BT-53", "BT-54", "BT-55"), ("BT-56", "BT-57", "BT-58")),
    ("payee", {"name": "BT-59"}, "BT-60", "BT-61", None, None, None),
    ("tax_representative", {"name": "BT-62", "vat_identifier": "BT-63"},
     None, None, None, ("BT-64", "BT-65", "BT-164", "BT-66", "BT-67", "BT-68", "BT-69"), None),
)
_ADDRESS_KEYS = ("line1", "line2", "line3", "city", "post_code", "country_subdivision", "country_code")
_HEADER_TERMS = {
    "number": "BT-1", "issue_date": "BT-2", "type_code": "BT-3", "currency": "BT-5", "tax_currency": "BT-6",
    "tax_point_date": "BT-7", "tax_point_date_code": "BT-8", "due_date": "BT-9", "buyer_reference": "BT-10",
    "project_reference": "BT-11", "contract_reference": "BT-12", "purchase_order_reference": "BT-13",
    "sales_order_reference": "BT-14", "receiving_advice_reference": "BT-15", "despatch_advice_reference": "BT-16",
    "tender_reference": "BT-17", "buyer_accounting_reference": "BT-19", "payment_terms": "BT-20",
    "business_process": "BT-23", "profile": "BT-24",
}
_TOTAL_TERMS = {
    "line_total": "BT-106", "allowance_total": "BT-107", "charge_total": "BT-108", "tax_exclusive": "BT-109",
    "tax_total": "BT-110", "tax_total_accounting": "BT-111", "tax_inclusive": "BT-112", "prepaid": "BT-113",
    "rounding": "BT-114", "payable": "BT-115",
}


def _put(out: dict[str, Any], term: str | None, value: Any) -> None:
    if term is None or value is None or value == "":
        return
    out[term] = value.isoformat() if isinstance(value, dt.date) else value


def terms(data: Mapping[str, Any]) -> dict[str, Any]:
    """A flat JSON object keyed by EN 16931 term ids; absent terms are omitted, amounts as written.

    Repeatable identifiers (BT-29, BT-46, BT-60) take their first value; ``lines`` counts BG-25.
    """
    out: dict[str, Any] = {}
    for key, term in _HEADER_TERMS.items():
        _put(out, term, data.get(key))
    if data.get("invoiced_object"):
        _put(out, "BT-18", data["invoiced_object"].get("id"))
    for role, simple, ident, legal, endpoint, address_terms, contact_terms in _PARTY_TERMS:
        party = data.get(role)
        if not party:
            continue
        for key, term in simple.items():
            _put(out, term, party.get(key))
        if ident and party.get("identifiers"):
            first = party["identifiers"][0]
            _put(out, ident, first.get("id"))
            _put(out, f"{ident}-1", first.get("scheme"))
        for term, key in ((legal, "legal_registration"), (endpoint, "electronic_address")):
            if term and party.get(key):
                _put(out, term, party[key].get("id"))
                _put(out, f"{term}-1", party[key].get("scheme"))
        if address_terms and party.get("address"):
            for term, key in zip(address_terms, _ADDRESS_KEYS, strict=True):
                _put(out, term, party["address"].get(key))
        if contact_terms and party.get("contact"):
            for term, key in zip(contact_terms, ("name", "telephone", "email"), strict=True):
                _put(out, term, party["contact"].get(key))
    delivery = data.get("delivery") or {}
    _put(out, "BT-70", delivery.get("party_name"))
    _put(out, "BT-71", (delivery.get("location") or {}).get("id"))
    _put(out, "BT-72", delivery.get("actual_date"))
    period = data.get("invoicing_period") or {}
    _put(out, "BT-73", period.get("start_date"))
    _put(out, "BT-74", period.get("end_date"))
    payment = data.get("payment_instructions") or {}
    _put(out, "BT-81", payment.get("means_code"))
    _put(out, "BT-83", payment.get("remittance_information"))
    if payment.get("credit_transfers"):
        _put(out, "BT-84", payment["credit_transfers"][0].get("account_id"))
    for key, term in _TOTAL_TERMS.items():
        _put(out, term, (data.get("totals") or {}).get(key))
    out["lines"] = len(data.get("lines") or [])
    return out
