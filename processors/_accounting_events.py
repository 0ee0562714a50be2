"""Event types of the accounting chain and the payloads of what it emits.

Inputs are the pivots of other processors and adapters (contract data, award notices,
invoices, PES acquittements and returns) and two events of the buyer's systems (service fait,
payment). Outputs are built here from the chain's state entries, so the core reads as the
business flow and the field-by-field mapping to the Avro schemas stays in one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ._contract_checks import STATUSES, Outcome
from ._late_interest import LateInterest

__all__ = [
    "ACQUITTEMENT_RECEIVED",
    "AWARD_PUBLISHED",
    "BORDEREAU",
    "BORDEREAU_ISSUED",
    "CONTRACT_DATA_PUBLISHED",
    "CONTRACT_MODIFIED",
    "CONTRACT_PAID_IN_FULL",
    "CONTRACT_SETTLEMENT",
    "INVOICE_CHECK",
    "INVOICE_CHECKED",
    "INVOICE_PAYMENT",
    "INVOICE_RECEIVED",
    "INVOICE_STATUS_CHANGED",
    "LATE_PAYMENT_INTEREST",
    "LATE_PAYMENT_INTEREST_DUE",
    "MANDAT_ANOMALY",
    "MANDAT_IN_ANOMALY",
    "PAYMENT_DEADLINE",
    "PAYMENT_DEADLINE_EXCEEDED",
    "PAYMENT_RECORDED",
    "PES_RETOUR_RECEIVED",
    "SERVICE_FAIT",
    "SERVICE_FAIT_RECORDED",
    "anomaly_data",
    "check_data",
    "deadline_data",
    "interest_data",
    "settlement_data",
]

# Consumed.
CONTRACT_DATA_PUBLISHED = "fr.dcant.procurement.ContractDataPublished"
AWARD_PUBLISHED = "fr.dcant.procurement.AwardPublished"
CONTRACT_MODIFIED = "fr.dcant.procurement.ContractModified"
INVOICE_RECEIVED = "fr.dcant.invoices.InvoiceReceived"
SERVICE_FAIT_RECORDED = "fr.dcant.accounting.ServiceFaitRecorded"
ACQUITTEMENT_RECEIVED = "fr.dcant.accounting.AcquittementReceived"
PES_RETOUR_RECEIVED = "fr.dcant.accounting.PesRetourReceived"
PAYMENT_RECORDED = "fr.dcant.accounting.PaymentRecorded"
SERVICE_FAIT = "fr.dcant.accounting.ServiceFait"
INVOICE_PAYMENT = "fr.dcant.accounting.InvoicePayment"

# Emitted: (CloudEvents type, payload schema).
INVOICE_CHECKED, INVOICE_CHECK = "fr.dcant.accounting.InvoiceChecked", "fr.dcant.accounting.InvoiceCheck"
BORDEREAU_ISSUED, BORDEREAU = "fr.dcant.accounting.BordereauIssued", "fr.dcant.accounting.Bordereau"
PAYMENT_DEADLINE_EXCEEDED, PAYMENT_DEADLINE = "fr.dcant.accounting.PaymentDeadlineExceeded", "fr.dcant.accounting.PaymentDeadline"
LATE_PAYMENT_INTEREST_DUE, LATE_PAYMENT_INTEREST = "fr.dcant.accounting.LatePaymentInterestDue", "fr.dcant.accounting.LatePaymentInterest"
MANDAT_IN_ANOMALY, MANDAT_ANOMALY = "fr.dcant.accounting.MandatInAnomaly", "fr.dcant.accounting.MandatAnomaly"
INVOICE_STATUS_CHANGED = "fr.dcant.invoices.InvoiceStatusChanged"  # to the supplier: processors._accounting_status
CONTRACT_PAID_IN_FULL, CONTRACT_SETTLEMENT = "fr.dcant.accounting.ContractPaidInFull", "fr.dcant.accounting.ContractSettlement"


def _date(iso: str | None) -> dt.date | None:
    return dt.date.fromisoformat(iso) if iso else None


def check_data(entry: Mapping[str, Any], outcome: Outcome, findings: list[dict[str, Any]], *,
               contract_id: str | None, ceiling: str | None, invoiced: Decimal) -> dict[str, Any]:
    """The InvoiceCheck record of a checked invoice entry."""
    code, label, chorus = STATUSES[outcome]
    dgp = entry.get("dgp") or {}
    suspension = entry.get("suspension") or {}
    return {
        "invoice_number": entry["number"], "seller_id": entry["seller_id"], "seller_siret": entry["creditor"]["siret"],
        "contract_id": contract_id, "order_reference": entry.get("order_reference"),
        "outcome": outcome, "lifecycle_status": code, "lifecycle_label": label, "chorus_status": chorus,
        "findings": findings, "received_date": _date(entry["received_on"]),
        "amount_excl_tax": entry.get("amount_excl_tax"), "amount_payable": entry.get("amount_payable"),
        "currency": entry["currency"], "corrects": entry.get("corrects"),
        "payment_period_start": _date(dgp.get("start")), "payment_period_days": dgp.get("days"),
        "payment_deadline": _date(dgp.get("deadline")),
        "remaining_days": suspension.get("remaining") if outcome == "suspended" else None,
        "contract_ceiling": ceiling, "contract_invoiced": str(invoiced),
    }


def _mandat_number(entry: Mapping[str, Any]) -> str | None:
    mandats = entry.get("mandats") or []
    return mandats[-1]["id"] if mandats else None


def deadline_data(entry: Mapping[str, Any], *, contract_id: str, today: dt.date, days_late: int,
                  outstanding: Decimal, rate: Decimal) -> dict[str, Any]:
    """The PaymentDeadline record of an unpaid invoice whose period expired."""
    dgp = entry["dgp"]
    return {
        "invoice_number": entry["number"], "seller_id": entry["seller_id"], "contract_id": contract_id,
        "payment_period_start": _date(dgp["start"]), "payment_period_days": dgp["days"],
        "payment_deadline": _date(dgp["deadline"]), "observed_on": today, "days_late": days_late,
        "outstanding_amount": str(outstanding), "interest_rate": str(rate), "mandat_number": _mandat_number(entry),
    }


def interest_data(entry: Mapping[str, Any], interest: LateInterest, *, contract_id: str,
                  mandat_number: str | None) -> dict[str, Any]:
    """The LatePaymentInterest record of one late payment."""
    return {
        "invoice_number": entry["number"], "seller_id": entry["seller_id"], "contract_id": contract_id,
        "mandat_number": mandat_number or _mandat_number(entry), "principal": str(interest.principal),
        "payment_deadline": interest.deadline, "payment_date": interest.paid_on, "days_late": interest.days_late,
        "rate_reference_date": interest.rate_reference_date, "ecb_rate": str(interest.ecb_rate),
        "interest_rate": str(interest.rate), "interest_amount": str(interest.interest),
        "indemnity": str(interest.indemnity), "total_due": str(interest.total), "currency": entry["currency"],
        "rate_provisional": interest.provisional,
    }


def anomaly_data(entry: Mapping[str, Any], mandat: Mapping[str, Any], *, contract_id: str, file_name: str,
                 errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The MandatAnomaly record of a mandat the accountant's systems refused."""
    return {
        "invoice_number": entry["number"], "seller_id": entry["seller_id"], "contract_id": contract_id,
        "bordereau": mandat["bordereau"], "mandat_number": mandat["id"], "file_name": file_name, "errors": errors,
    }


def settlement_data(*, contract_id: str, buyer_id: str | None, totals: Mapping[str, str], invoice_count: int,
                    last_payment: dt.date) -> dict[str, Any]:
    """The ContractSettlement record of a contract paid in full."""
    return {
        "contract_id": contract_id, "buyer_id": buyer_id, "awarded_amount": totals["awarded"],
        "invoiced_excl_tax": totals["invoiced"], "mandated_excl_tax": totals["mandated"], "paid": totals["paid"],
        "invoice_count": invoice_count, "late_payment_total": totals["late_payment"], "last_payment_date": last_payment,
    }
