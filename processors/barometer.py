"""The barometer of digital public services: figures per administration, flow and month.

The programme asks for a barometer of what dematerialisation brings (recommendation 5). This
pure core measures it from the events themselves, as other cores and parties publish them, and
emits ``fr.dcant.barometer.BarometerUpdated`` (schema ``fr.dcant.barometer.Barometer``, topic
``barometer``, compacted) with subject ``barometer:<SIREN>:<flow>:<month>``: each output holds
the figures of that cell to date, so the latest one per subject is the figure.

| event read | flow | figures |
|---|---|---|
| ``acts.ActTransmitted`` | acts | acts transmitted electronically |
| ``acts.ActBecameExecutory`` | acts | executory, days from transmission to executory |
| ``procurement.CandidatureEnriched`` | procurement | candidatures, SIRET alone, reused / requested, grade |
| ``procurement.ContractDataPublished`` | procurement | (the contract's buyer, to place invoices) |
| ``invoices.InvoiceReceived`` | invoices | invoices received |
| ``invoices.SupplierVerified`` | invoices | documents reused / requested, grade |
| ``accounting.InvoiceChecked`` | invoices | rejected, suspended and the rules why |
| ``accounting.PaymentRecorded`` | invoices | payments, delay, paid by the deadline |
| ``accounting.LatePaymentInterestDue`` | invoices | days late, interest, 40 € indemnities |
| ``archives.ArchiveStateChanged`` | archives | transfers accepted / refused, closure to archiving |

Grades follow the national observatory of online procedures for "Dites-le-nous une fois":
0–1 document asked is optimal, 2–4 partial, more than 4 weak. The month is the business date an
event carries (executory date, payment date, archiving date), else the event's time, in UTC.

Every figure needs the administration. Accounting events name a contract or an invoice, not a
buyer: the state keeps which buyer each contract and invoice belongs to, and the payment period of
each checked invoice. So the core keeps one state (key ``barometer``): the cells and those
indexes, which shrink as invoices are paid and dossiers archived.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from bus import Context, Event, Received, follow_up

__all__ = ["CELL_FIELDS", "Barometer", "figures", "grade"]

TYPE = "fr.dcant.barometer.BarometerUpdated"
SCHEMA = "fr.dcant.barometer.Barometer"
KEY = "barometer"

ACT_TRANSMITTED = "fr.dcant.acts.ActTransmitted"
ACT_EXECUTORY = "fr.dcant.acts.ActBecameExecutory"
CANDIDATURE_ENRICHED = "fr.dcant.procurement.CandidatureEnriched"
CONTRACT_DATA = "fr.dcant.procurement.ContractDataPublished"
INVOICE_RECEIVED = "fr.dcant.invoices.InvoiceReceived"
SUPPLIER_VERIFIED = "fr.dcant.invoices.SupplierVerified"
INVOICE_CHECKED = "fr.dcant.accounting.InvoiceChecked"
PAYMENT_RECORDED = "fr.dcant.accounting.PaymentRecorded"
LATE_INTEREST = "fr.dcant.accounting.LatePaymentInterestDue"
ARCHIVE_STATE = "fr.dcant.archives.ArchiveStateChanged"

UNKNOWN = "inconnu"
_COUNTERS = (
    "events", "acts_transmitted", "acts_executory", "transmission_to_executory_days_total", "candidatures",
    "candidatures_siret_only", "documents_reused", "documents_requested", "grade_optimal", "grade_partial",
    "grade_weak", "invoices_received", "invoices_rejected", "invoices_suspended", "payments",
    "payment_delay_days_total", "paid_within_deadline", "late_payments", "days_late_total", "transfers_accepted",
    "transfers_refused", "closure_to_archive_days_total",
)
#: Every figure of a cell, in the order of the schema (and of the open data files).
CELL_FIELDS = (
    "administration", "flow", "month", "events", "acts_transmitted", "acts_executory",
    "transmission_to_executory_days_total", "transmission_to_executory_days_average", "candidatures",
    "candidatures_siret_only", "documents_reused", "documents_requested", "grade_optimal", "grade_partial",
    "grade_weak", "invoices_received", "invoices_rejected", "invoices_suspended", "rejection_reasons", "payments",
    "payment_delay_days_total", "payment_delay_days_average", "paid_within_deadline", "paid_within_deadline_share",
    "late_payments", "days_late_total", "late_interest", "late_indemnities", "transfers_accepted",
    "transfers_refused", "closure_to_archive_days_total", "closure_to_archive_days_average",
)


def grade(requested: int) -> str:
    """The observatory's grade of a procedure that asked ``requested`` documents."""
    return "optimal" if requested <= 1 else "partial" if requested <= 4 else "weak"


def _siren(identifier: str | None) -> str:
    """The SIREN in a SIREN or SIRET (an administration's identifier), else ``inconnu``."""
    digits = (identifier or "").replace(" ", "")
    return digits[:9] if digits.isdigit() and len(digits) in (9, 14) else UNKNOWN


def _month(value: dt.date | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC)
    return f"{value.year:04d}-{value.month:02d}"


def _average(total: int, count: int, places: str = "0.1") -> str | None:
    return str((Decimal(total) / count).quantize(Decimal(places))) if count else None


def _invoice_key(seller: str | None, number: str) -> str:
    return f"{seller or ''}:{number}"


class Barometer:
    """Pure core: every flow's events in, one updated cell per event out."""

    name = "barometer"
    #: Counts per administration, flow and month are open data: broadcast, whatever their inputs' recipients.
    public_outputs = True
    inputs = ("acts", "procurement", "invoices", "accounting", "archives")
    tables: tuple[str, ...] = ()
    types = frozenset({ACT_TRANSMITTED, ACT_EXECUTORY, CANDIDATURE_ENRICHED, CONTRACT_DATA, INVOICE_RECEIVED,
                       SUPPLIER_VERIFIED, INVOICE_CHECKED, PAYMENT_RECORDED, LATE_INTEREST, ARCHIVE_STATE})

    def key(self, event: Received, ctx: Context) -> str | None:
        return KEY if event.type in self.types else None

    def initial_state(self) -> dict[str, Any]:
        # cells: "<siren>|<flow>|<month>" -> figures; contracts / invoices: buyer indexes;
        # periods: invoice -> [payment period start, deadline] (ISO dates); closed: dossier -> closing date.
        return {"cells": {}, "contracts": {}, "invoices": {}, "periods": {}, "closed": {}}

    def on_time(self, state: Any, key: str, ctx: Context) -> tuple[Any, list[Event]]:
        return state, []

    def process(self, state: Any, event: Received, ctx: Context) -> tuple[Any, list[Event]]:
        handler = _HANDLERS[event.type]
        placed = handler(state, event.data, event)
        if placed is None:
            return state, []
        siren, flow, month, changes = placed
        cell_key = f"{siren}|{flow}|{month}"
        cell = state["cells"].setdefault(cell_key, _empty(siren, flow, month))
        cell["events"] += 1
        for name, value in changes.items():
            if name == "reasons":
                for reason in value:
                    cell["reasons"][reason] = cell["reasons"].get(reason, 0) + 1
            elif name in ("late_interest", "late_indemnities"):
                cell[name] = str(Decimal(cell[name]) + Decimal(value))
            else:
                cell[name] += value
        return state, [follow_up(event, type=TYPE, schema=SCHEMA, subject=f"barometer:{siren}:{flow}:{month}",
                                 data=figures(cell))]


def _empty(siren: str, flow: str, month: str) -> dict[str, Any]:
    return {"administration": siren, "flow": flow, "month": month, **dict.fromkeys(_COUNTERS, 0),
            "late_interest": "0.00", "late_indemnities": "0.00", "reasons": {}}


def figures(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell as the Barometer schema has it: counters, averages and shares derived."""
    out = {name: cell[name] for name in ("administration", "flow", "month", *_COUNTERS, "late_interest",
                                         "late_indemnities")}
    out["rejection_reasons"] = [{"reason": r, "count": n} for r, n in sorted(cell["reasons"].items())]
    out["transmission_to_executory_days_average"] = _average(cell["transmission_to_executory_days_total"],
                                                             cell["acts_executory"])
    out["payment_delay_days_average"] = _average(cell["payment_delay_days_total"], cell["payments"])
    out["paid_within_deadline_share"] = _average(cell["paid_within_deadline"], cell["payments"], "0.001")
    out["closure_to_archive_days_average"] = _average(cell["closure_to_archive_days_total"],
                                                      cell["transfers_accepted"])
    return {name: out[name] for name in CELL_FIELDS}


Placed = tuple[str, str, str, dict[str, Any]] | None


def _act_transmitted(state: dict[str, Any], data: dict[str, Any], event: Received) -> Placed:
    return _siren(data["siren"]), "acts", _month(event.time), {"acts_transmitted": 1}


def _act_executory(state: dict[str, Any], data: dict[str, Any], event: Received) -> Placed:
    days = (data["executory_date"] - data["transmission_date"]).days
    return _siren(data["siren"]), "acts", _month(data["executory_date"]), {
        "acts_executory": 1, "transmission_to_executory_days_total": days}


def _documents(data: dict[str, Any]) -> dict[str, Any]:
    requested = int(data["requested"])
    return {"documents_reused": int(data["reused"]), "documents_requested": requested,
            f"grade_{grade(requested)}": 1}


def _candidature(state: dict[str, Any], data: dict[str, Any], event: Received) -> Placed:
    changes = {"candidatures": 1, **_documents(data)}
    if data.get("siret") and data["verdict"] in ("COMPLIANT", "DOCUMENTS_PENDING"):
        changes["candidatures_siret_only"] = 1
    return _siren(data.get("buyer_identifier")), "procurement", _month(event.time), changes


def _contract(state: dict[str, Any], data: dict[str, Any], event: Received) -> Placed:
    state["contracts"][data["id"]] = _siren(data.get("buyer_id"))
    return None  # an index, not a figure: the contract itself is counted by its award elsewhere


def _invoice_received(state: dict[str, Any], data: dict[str, Any], event: Received) -> Placed:
    buyer = _siren(data.get("buyer_key") or ((data.get("buyer") or {}).get("legal_registration") or {}).get("id"))
    if buyer == UNKNOWN and data.get("contract_reference"):
        buyer = state["contracts"].get(data["contract_reference"], UNKNOWN)
    state["invoices"][data["number"]] = buyer
    return buyer, "invoices", _month(event.time), {"invoices_received": 1}


def _buyer_of_invoice(state: dict[str, Any], data: dict[str, Any]) -> str:
    contract = data.get("contract_id")
    if contract and contract in state["contracts"]:
        return str(state["contracts"][contract])
    return str(state["invoices"].get(data["invoice_number"], UNKNOWN))


def _supplier_verified(state: dict[str, Any], data: dict[str, Any], event: Received) -> Placed:
    buyer = _siren(data.get("buyer_identifier"))
    if buyer == UNKNOWN:
        buyer = state["invoices"].get(data["invoice_number"], UNKNOWN)
    return buyer, "invoices", _month(event.time), _documents(data)


def _invoice_checked(state: dict[str, Any], data: dict[str, Any], event: Received) -> Placed:
    outcome = data["outcome"]
    changes: dict[str, Any] = {}
    if outcome in ("rejected", "suspended"):
        changes[f"invoices_{outcome}"] = 1
        changes["reasons"] = sorted({f["rule"] for f in data.get("findings") or ()})
    if data.get("payment_period_start") is not None:
        deadline = data.get("payment_deadline")
        state["periods"][_invoice_key(data["seller_id"], data["invoice_number"])] = [
            data["payment_period_start"].isoformat(), deadline.isoformat() if deadline else None]
    return _buyer_of_invoice(state, data), "invoices", _month(event.time), changes


def _payment(state: dict[str, Any], data: dict[str, Any], event: Received) -> Placed:
    paid: dt.date = data["payment_date"]
    changes = {"payments": 1}
    period = state["periods"].pop(_invoice_key(data["seller_id"], data["invoice_number"]), None)
    if period is not None:
        start = dt.date.fromisoformat(period[0])
        deadline = dt.date.fromisoformat(period[1]) if period[1] else start + dt.timedelta(days=30)
        changes["payment_delay_days_total"] = (paid - start).days
        changes["paid_within_deadline"] = int(paid <= deadline)
    buyer = _buyer_of_invoice(state, data)
    state["invoices"].pop(data["invoice_number"], None)
    return buyer, "invoices", _month(paid), changes


def _late_interest(state: dict[str, Any], data: dict[str, Any], event: Received) -> Placed:
    return _buyer_of_invoice(state, data), "invoices", _month(data["payment_date"]), {
        "late_payments": 1, "days_late_total": int(data["days_late"]),
        "late_interest": data["interest_amount"], "late_indemnities": data["indemnity"]}


def _archive_state(state: dict[str, Any], data: dict[str, Any], event: Received) -> Placed:
    dossier = data["dossier"]
    if data["state"] == "CLOSED":
        if data.get("closing_date") is not None:
            state["closed"][dossier] = data["closing_date"].isoformat()
        return None
    if data["state"] not in ("ARCHIVED", "REOPENED"):
        return None
    kind, _, rest = dossier.partition(":")
    siren = _siren(rest.split(":", 1)[0]) if kind == "act" else str(state["contracts"].get(rest, UNKNOWN))
    when: dt.datetime = data["date"]
    if data["state"] == "REOPENED":
        return siren, "archives", _month(when), {"transfers_refused": 1}
    closed = state["closed"].pop(dossier, None)
    closing = data.get("closing_date") or (dt.date.fromisoformat(closed) if closed else None)
    changes = {"transfers_accepted": 1}
    if closing is not None:
        changes["closure_to_archive_days_total"] = (when.astimezone(dt.UTC).date() - closing).days
    return siren, "archives", _month(when), changes


_HANDLERS = {
    ACT_TRANSMITTED: _act_transmitted, ACT_EXECUTORY: _act_executory, CANDIDATURE_ENRICHED: _candidature,
    CONTRACT_DATA: _contract, INVOICE_RECEIVED: _invoice_received, SUPPLIER_VERIFIED: _supplier_verified,
    INVOICE_CHECKED: _invoice_checked, PAYMENT_RECORDED: _payment, LATE_INTEREST: _late_interest,
    ARCHIVE_STATE: _archive_state,
}
