"""A contract's totals in the accounting chain, and its settlement (``ContractPaidInFull``).

After every event the chain recomputes the contract's totals from its invoice entries (what
is invoiced, mandated, paid, owed as late-payment interest); once the awarded amount (or the
modified one) is invoiced and every active invoice paid, the contract is settled, once.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from bus._processor import follow_up
from bus._wire import Event, Received

from . import _accounting_events as ev
from ._contract_checks import decimal_of, effective_terms

__all__ = ["ACTIVE", "ZERO", "contract_key", "settlement", "total", "update_totals"]

#: Invoice statuses whose amount counts as invoiced on the contract.
ACTIVE = frozenset({"accepted", "mandated", "paid"})
ZERO = Decimal(0)


def contract_key(contract_id: str) -> str:
    """The state key of a contract: ``contract:<id>``."""
    return f"contract:{contract_id}"


def total(values: Any) -> Decimal:
    """The sum of decimal strings (0 for none)."""
    return sum((Decimal(v) for v in values), ZERO)


def update_totals(state: dict[str, Any]) -> None:
    """Recompute ``state["totals"]`` from the contract's terms and its invoice entries."""
    terms = effective_terms(state["contract"])
    entries = list(state["invoices"].values())
    active = [e for e in entries if e["status"] in ACTIVE]
    state["totals"] = {
        "awarded": terms.get("ceiling") if terms else None,
        "invoiced": str(total(e["amount_excl_tax"] for e in active)),
        "mandated": str(total(m["amount_excl_tax"] for e in entries for m in e["mandats"] if m["status"] != "anomaly")),
        "paid": str(total(e["paid"] for e in entries)),
        "late_payment": str(total(e["late_payment"] for e in entries)),
    }


def settlement(state: dict[str, Any], event: Received) -> list[Event]:
    """ContractPaidInFull once the contract amount is invoiced and every invoice is paid (once)."""
    terms = effective_terms(state["contract"])
    ceiling = decimal_of(terms.get("ceiling")) if terms else None
    if state["settled"] or ceiling is None or state["contract_id"] is None:
        return []
    active = [e for e in state["invoices"].values() if e["status"] in ACTIVE]
    if Decimal(state["totals"]["invoiced"]) < ceiling:
        return []
    if any(not e["credit_note"] and Decimal(e["paid"]) < Decimal(e["amount_payable"]) for e in active):
        return []
    state["settled"] = True
    last = max(e["last_payment"] for e in active if e["last_payment"])
    data = ev.settlement_data(contract_id=state["contract_id"], buyer_id=terms.get("buyer_id") if terms else None,
                              totals=state["totals"], invoice_count=len(active),
                              last_payment=dt.date.fromisoformat(last))
    return [follow_up(event, type=ev.CONTRACT_PAID_IN_FULL, schema=ev.CONTRACT_SETTLEMENT, data=data,
                      subject=contract_key(state["contract_id"]))]
