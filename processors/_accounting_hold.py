"""What the accounting chain holds instead of dropping, kept in its JSON state.

Two inputs can come before the chain can act on them (see :mod:`processors.accounting`):

* an invoice naming a contract whose data (DECP, award notice) has not come yet is checked
  ``suspended`` with rule CONTRACT-AWAITED; its entry keeps ``awaiting_contract``
  (``{"own_findings": [...]}``: the invoice's own EN 16931 findings of that check) until the
  contract's terms arrive and :func:`recheck` checks it against them;
* a service fait for an invoice not accepted yet is kept as a :func:`service_fait_record`: on
  the invoice's entry (``service_fait_held``) while it is suspended or rejected, or in
  ``state["pending_service_fait"]`` under ``<seller>:<BT-1>`` while the invoice is unknown.

``state["held"]`` lists both for people watching the chain (:func:`refresh_held`). A state
stored before holding existed gets its keys from :func:`ensure_hold_keys`; its entries have no
``awaiting_contract`` nor ``service_fait_held``, which reads as nothing held.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bus._wire import Received

from ._contract_checks import CONTRACT_AWAITED, check_against_terms

__all__ = [
    "awaiting_contract",
    "awaiting_of",
    "ensure_hold_keys",
    "hold_service_fait",
    "recheck",
    "refresh_held",
    "service_fait_record",
    "take_service_fait",
]


def ensure_hold_keys(state: dict[str, Any]) -> None:
    """Give a state stored before holding existed its (empty) hold keys."""
    state.setdefault("pending_service_fait", {})
    state.setdefault("held", {"invoices_awaiting_contract": [], "service_fait_awaiting_acceptance": []})


def _key(seller_id: str, number: str) -> str:
    return f"{seller_id}:{number}"


def service_fait_record(event: Received, certified: Decimal) -> dict[str, Any]:
    """A ServiceFaitRecorded as the state keeps it, plain JSON: its data (dates as ISO text),
    its checked ``certified`` amount, its id and its correlation (the mandat's)."""
    data = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in event.data.items()}
    return {"event": event.id, "correlation": event.envelope.correlationid or event.id,
            "certified": str(certified), "data": data}


def hold_service_fait(state: dict[str, Any], entry: dict[str, Any] | None, record: dict[str, Any]) -> None:
    """Keep ``record`` until its invoice is accepted: on its suspended or rejected ``entry``, or,
    the invoice unknown (``entry`` None), as pending. The first one held wins; a credit note, or
    an invoice number only a replaced invoice bears, is not waited for."""
    data = record["data"]
    if entry is not None:
        if entry["status"] in ("suspended", "rejected") and not entry["credit_note"]:
            entry["service_fait_held"] = entry.get("service_fait_held") or record
        return
    if any(e["seller_id"] == data["seller_id"] and e["number"] == data["invoice_number"]
           for e in state["invoices"].values()):
        return  # only a replaced invoice has that number: its correction is the one to certify
    state["pending_service_fait"].setdefault(_key(data["seller_id"], data["invoice_number"]), record)


def take_service_fait(state: dict[str, Any], entry: Mapping[str, Any],
                      *followed: dict[str, Any] | None) -> dict[str, Any] | None:
    """The service fait held for the invoice of the new ``entry``: the one held on an entry it
    follows (the same invoice sent again, the one it corrects), else the pending one; none of
    them is held any more."""
    found = [f.get("service_fait_held") for f in followed if f is not None]
    for earlier in followed:
        if earlier is not None:
            earlier["service_fait_held"] = None
    found.append(state["pending_service_fait"].pop(_key(entry["seller_id"], entry["number"]), None))
    return next((record for record in found if record is not None), None)


def awaiting_of(findings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``awaiting_contract`` of an invoice checked with ``findings``: None unless it waits."""
    if not any(f["rule"] == CONTRACT_AWAITED for f in findings):
        return None
    return {"own_findings": [f for f in findings if f["rule"] != CONTRACT_AWAITED]}


def awaiting_contract(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entries held for the contract's data, oldest first (received, then arrived); not
    one that a correction (BT-25) replaced."""
    waiting = [e for e in state["invoices"].values()
               if e["status"] == "suspended" and e.get("awaiting_contract") is not None]
    return sorted(waiting, key=lambda e: e["received_on"])


def recheck(entry: dict[str, Any], terms: Mapping[str, Any], *, invoiced: Decimal,
            invoiced_by_seller: Decimal) -> list[dict[str, Any]]:
    """The findings of a held invoice now that its contract's ``terms`` are known (amounts as
    :func:`check_against_terms`): against them, then its own; it no longer waits."""
    findings = check_against_terms(terms, seller_siret=entry["creditor"]["siret"], seller_label=entry["seller_id"],
                                   amount_excl_tax=Decimal(entry["amount_excl_tax"]), invoiced=invoiced,
                                   invoiced_by_seller=invoiced_by_seller)
    own = entry["awaiting_contract"]["own_findings"]
    entry["awaiting_contract"] = None
    return findings + own


def refresh_held(state: dict[str, Any]) -> None:
    """``state["held"]``: the invoices awaiting their contract (oldest first) and the service
    faits awaiting acceptance (``<seller>:<BT-1>``, sorted)."""
    on_entries = [_key(e["seller_id"], e["number"]) for e in state["invoices"].values() if e.get("service_fait_held")]
    state["held"] = {
        "invoices_awaiting_contract": [e["subject"] for e in awaiting_contract(state)],
        "service_fait_awaiting_acceptance": sorted([*on_entries, *state["pending_service_fait"]]),
    }
