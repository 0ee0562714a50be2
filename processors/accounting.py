"""The accounting chain: commande publique → facture → service fait → mandat → paiement.

:class:`AccountingChain` is a pure processor core (see :mod:`bus._processor`) whose state is
one contract (or engagement): its terms (holders, declared subcontractors, amount), and every
invoice against it with its check, délai global de paiement, mandats and payments; totals
awarded / invoiced / mandated / paid are kept in ``state["totals"]``.

State key convention: ``contract:<id>``, the id being the DECP ``marche/id`` (the subject of
``ContractDataPublished``) or the eForms BT-150 of an award notice's single settled contract.

==========================================  =====================================================  ===============
input                                       routed to ``contract:<id>`` by                         supplier hears
==========================================  =====================================================  ===============
procurement.ContractDataPublished (DECP)    ``id``                                                 held invoices:
                                                                                                   204, 207, 210
procurement.AwardPublished (eForms)         BT-150 of its one settled contract (else ignored)      same
procurement.ContractModified                ``contract_id`` (DECP id or eForms BT-150): a new      -
                                            ceiling / holders for the invoices that follow
invoices.InvoiceReceived                    BT-12 Contract reference, else BT-13 Purchase order    202, then 204,
                                            reference; an invoice naming neither gets its own      207, 208 or
                                            ``unrouted:<invoice subject>`` state: rejected         210
accounting.ServiceFaitRecorded              ``contract_id`` (echoed from InvoiceChecked)           -
accounting.PaymentRecorded                  ``contract_id``                                        212
accounting.AcquittementReceived             the contract id written in the acknowledged PES file   211 (accepted)
                                            name (``PESALR2_<IdColl>_<Exer>_<IdBord>_<id>.xml``)
accounting.PesRetourReceived                the IdMarche of its mandat lines when they name one    212 (paid)
                                            contract (else ignored: split it upstream)
==========================================  =====================================================  ===============

Outputs about an invoice carry the invoice's subject (``invoice:<seller>:<BT-1>``) so they are
ordered with it; the bordereau carries ``bordereau:<IdColl>:<Exer>:<IdBord>`` like the PES
adapters; ``ContractPaidInFull`` carries ``contract:<id>``. The supplier hears each step (last column) as an
``invoices.InvoiceStatusChanged`` on the invoices topic, on the invoice's subject: lifecycle codes
of the French e-invoicing reform with their BR-FR-CDV-CL-09 reasons and, on 212, the MEN amounts
paid, addressed to the seller and the buyer when the invoice came addressed (the table of steps,
codes and choices is in :mod:`processors._accounting_status`). Business outcomes are events, never
exceptions; events of other types (including the chain's own outputs) are ignored. The same
input twice (same ``ce_id``) changes nothing; a second service fait for an invoice whose mandat
is issued or accepted issues no second mandat (one after an anomaly re-issues it).

What comes early is held, not dropped (state helpers in :mod:`processors._accounting_hold`):

* an invoice whose contract's data has not come is ``suspended``, rule CONTRACT-AWAITED (one
  naming no contract is still rejected CONTRACT-UNKNOWN), like any suspension (décret 2013-269
  art. 10: the balance left on the day of the check is kept). When the data comes (DECP or award
  notice) each held invoice, oldest first, gets an InvoiceChecked caused by it, in the invoice's
  correlation: accepted, a new period opens on the contract event's date (not before the
  suspension; 30 days or the longer balance); holder or ceiling faults reject it; its own EN 16931
  faults keep it under the same single suspension until corrected. A correction sent while the
  contract is awaited stays held and uses no suspension;
* a service fait for an invoice not accepted yet waits on its suspended or rejected entry
  (``service_fait_held``), or in ``state["pending_service_fait"]`` (``<seller>:<BT-1>``) while the
  invoice is unknown, and moves to the invoice sent again or correcting it (BT-25). The mandat is
  issued once the invoice is accepted, caused by the event that accepted it, in the service
  fait's correlation. The first held wins; credit notes are never mandated, zero or negative
  amounts refused; a service fait naming a replaced or paid invoice is not held.

``state["held"]`` lists what waits (``invoices_awaiting_contract``,
``service_fait_awaiting_acceptance``) after every event; an older state loads holding nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from adapters._pes_common import canonical_number
from bus._processor import Context, follow_up
from bus._wire import Event, Received

from . import _accounting_events as ev
from . import _accounting_hold as hold
from . import _accounting_status as lifecycle
from ._accounting_totals import ACTIVE, ZERO, contract_key, settlement, total, update_totals
from ._contract_checks import (
    RULE_OUTCOME,
    Outcome,
    award_contract_id,
    check_invoice,
    decimal_of,
    effective_terms,
    outcome_of,
    seller_role,
    terms_from_award,
    terms_from_decp,
    terms_from_modification,
)
from ._late_interest import MARGIN_POINTS, RateTable, default_rate_table, half_year_start, late_payment_interest
from ._payment_deadline import (
    LOCAL_AUTHORITY_DAYS,
    interest_start,
    open_period,
    paris_date,
    reopen_period,
    restart_days,
    suspend_period,
)
from ._pes_bordereau import build_bordereau, contract_of_file_name, creditor_of, mandat_amounts

__all__ = ["AccountingChain", "contract_key", "invoice_contract_id"]

#: PES_Retour InfoPiece/EtatPce of a mandat the accountant rejected.
_RETOUR_REJECTED = "04"

Handler = Callable[[dict[str, Any], Received, Context], list[Event]]


def invoice_contract_id(invoice: Mapping[str, Any]) -> str | None:
    """The contract an invoice is checked against: BT-12, else BT-13 (the engagement)."""
    for field in ("contract_reference", "purchase_order_reference"):
        value = (invoice.get(field) or "").strip()
        if value:
            return value
    return None


def _retour_contract_id(retour: Mapping[str, Any]) -> str | None:
    ids = {line.get("contract_id") for b in retour.get("bordereaux") or [] for m in b.get("mandats") or []
           for line in m.get("lines") or []}
    return ids.pop() if len(ids) == 1 and None not in ids else None


class AccountingChain:
    """Per-contract state from the award to the payment: checks invoices, issues mandats on
    PES bordereaux, follows acquittements and payments, and the délai global de paiement."""

    name = "accounting-chain"
    inputs: tuple[str, ...] = ("procurement", "invoices", "accounting")
    tables: tuple[str, ...] = ()

    def __init__(self, *, rates: RateTable | None = None, payment_days: int = LOCAL_AUTHORITY_DAYS) -> None:
        """``rates``: the ECB rate table (default: the shipped one); ``payment_days``: the buyer's
        délai global de paiement."""
        self.rates = rates if rates is not None else default_rate_table()
        self.payment_days = payment_days
        self._handlers: dict[str, Handler] = {
            ev.CONTRACT_DATA_PUBLISHED: self._on_contract_data,
            ev.AWARD_PUBLISHED: self._on_award,
            ev.CONTRACT_MODIFIED: self._on_contract_modified,
            ev.INVOICE_RECEIVED: self._on_invoice,
            ev.SERVICE_FAIT_RECORDED: self._on_service_fait,
            ev.ACQUITTEMENT_RECEIVED: self._on_acquittement,
            ev.PES_RETOUR_RECEIVED: self._on_pes_retour,
            ev.PAYMENT_RECORDED: self._on_payment,
        }
        self.types = frozenset(self._handlers)

    # -- the processor contract -----------------------------------------------------------------

    def key(self, event: Received, ctx: Context) -> str | None:
        """``contract:<id>`` of the event (see the module docstring); None for other events."""
        data = event.data
        contract_id: str | None = None
        if event.type == ev.CONTRACT_DATA_PUBLISHED:
            contract_id = data["id"]
        elif event.type == ev.AWARD_PUBLISHED:
            contract_id = award_contract_id(data)
        elif event.type == ev.CONTRACT_MODIFIED:
            contract_id = data["contract_id"]
        elif event.type == ev.INVOICE_RECEIVED:
            contract_id = invoice_contract_id(data)
            if contract_id is None:
                return f"unrouted:{event.subject}"
        elif event.type in (ev.SERVICE_FAIT_RECORDED, ev.PAYMENT_RECORDED):
            contract_id = data["contract_id"]
        elif event.type == ev.ACQUITTEMENT_RECEIVED:
            contract_id = contract_of_file_name(data.get("file_name"))
        elif event.type == ev.PES_RETOUR_RECEIVED:
            contract_id = _retour_contract_id(data)
        return contract_key(contract_id) if contract_id else None

    def initial_state(self) -> dict[str, Any]:
        return {
            "contract_id": None,
            "contract": {"decp": None, "eforms": None},
            "invoices": {},
            "totals": {"awarded": None, "invoiced": "0", "mandated": "0", "paid": "0", "late_payment": "0"},
            "settled": False,
            "pending_service_fait": {},
            "held": {"invoices_awaiting_contract": [], "service_fait_awaiting_acceptance": []},
        }

    def process(self, state: dict[str, Any], event: Received, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        handler = self._handlers.get(event.type)
        if handler is None:
            return state, []
        hold.ensure_hold_keys(state)
        events = handler(state, event, ctx)
        update_totals(state)
        hold.refresh_held(state)
        if event.type in (ev.PAYMENT_RECORDED, ev.PES_RETOUR_RECEIVED):
            events += settlement(state, event)
        # The supplier's statuses come last, so the other outputs keep the ranks (derived ids) they had.
        return state, [*(e for e in events if e.type != ev.INVOICE_STATUS_CHANGED),
                       *(e for e in events if e.type == ev.INVOICE_STATUS_CHANGED)]

    def deadlines_within(self, state: Mapping[str, Any], today: dt.date, days: int) -> int:
        """How many accepted, unpaid invoices of this state have their payment deadline within ``days``."""
        due = 0
        for entry in state.get("invoices", {}).values():
            dgp = entry.get("dgp")
            if entry.get("status") in ("accepted", "mandated") and dgp:
                left = (dt.date.fromisoformat(dgp["deadline"]) - today).days
                due += 0 <= left <= days
        return due

    def on_time(self, state: dict[str, Any], key: str, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        """Announce once each unpaid accepted invoice whose payment period has expired."""
        today = paris_date(ctx.now)
        events = []
        for subject in sorted(state["invoices"]):
            entry = state["invoices"][subject]
            dgp = entry.get("dgp")
            if entry["status"] not in ("accepted", "mandated") or not dgp or entry["deadline_announced"]:
                continue
            deadline = dt.date.fromisoformat(dgp["deadline"])
            if today <= deadline:
                continue
            entry["deadline_announced"] = True
            rate = self.rates.rate_on(half_year_start(interest_start(deadline)))[0] + MARGIN_POINTS
            data = ev.deadline_data(entry, contract_id=state["contract_id"], today=today,
                                    days_late=(today - deadline).days, rate=rate,
                                    outstanding=Decimal(entry["amount_payable"]) - Decimal(entry["paid"]))
            events.append(Event(type=ev.PAYMENT_DEADLINE_EXCEEDED, subject=subject, schema=ev.PAYMENT_DEADLINE,
                                data=data, correlationid=entry["correlation"], causationid=entry["cause"]))
        return state, events

    # -- contract -------------------------------------------------------------------------------

    def _on_contract_data(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        state["contract"]["decp"] = terms_from_decp(event.data)
        state["contract_id"] = event.data["id"]
        return self._release_awaiting(state, event, ctx)

    def _on_award(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        terms = terms_from_award(event.data)
        state["contract"]["eforms"] = terms
        state["contract_id"] = terms["id"]
        return self._release_awaiting(state, event, ctx)

    def _release_awaiting(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        """Check again, oldest first, the invoices held until this contract's terms came."""
        terms = effective_terms(state["contract"])
        if terms is None:
            return []
        events: list[Event] = []
        for entry in hold.awaiting_contract(state):
            siret = entry["creditor"]["siret"]
            invoiced, by_seller = self._invoiced(state, entry["subject"], siret)
            findings = hold.recheck(entry, terms, invoiced=invoiced, invoiced_by_seller=by_seller)
            outcome = outcome_of(findings)
            entry["status"], entry["role"] = outcome, seller_role(terms, siret)[0]
            if outcome == "accepted" and not entry["credit_note"]:
                entry["dgp"] = reopen_period(entry["suspension"], paris_date(event.time))
            events.append(self._checked(state, entry, outcome, findings, terms, invoiced, event.id))
            events += self._release_service_fait(state, entry, entry.get("service_fait_held"), event.id, ctx)
            events += lifecycle.check_status(entry, outcome, findings, event)
        return events

    # -- invoices -------------------------------------------------------------------------------

    def _on_invoice(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        data, subject = event.data, event.subject
        contract_id = invoice_contract_id(data)
        if contract_id is not None:
            state["contract_id"] = contract_id
        previous = state["invoices"].get(subject)
        if previous is not None and previous["status"] not in ("suspended", "rejected"):
            return []  # the same invoice again while it is being processed: a duplicate
        corrected = previous if previous is not None and previous["status"] == "suspended" else None
        if corrected is None:
            corrected = self._suspended_predecessor(state, data)
        entry = self._new_entry(event, data, received=paris_date(event.time))
        terms = effective_terms(state["contract"]) if contract_id is not None else None
        invoiced, by_seller = self._invoiced(state, subject, data.get("seller_siret"))
        findings = check_invoice(terms, data, amount_excl_tax=Decimal(entry["amount_excl_tax"]), invoiced=invoiced,
                                 invoiced_by_seller=by_seller)
        outcome = outcome_of(findings)
        entry["awaiting_contract"] = hold.awaiting_of(findings)
        if corrected is not None:
            entry["corrects"] = corrected["number"]
            entry["suspension"] = corrected["suspension"]
            # While the contract is awaited the invoice is held under the suspension it has.
            if outcome == "suspended" and entry["awaiting_contract"] is None:
                findings.append({"rule": "SUSPENSION-USED", "location": "BT-1", "source_rule": None,
                                 "message": f"invoice {corrected['number']} was already suspended once; the délai de "
                                            "paiement cannot be suspended twice (décret 2013-269 art. 10)"})
                outcome = RULE_OUTCOME["SUSPENSION-USED"]
            if corrected is not previous:
                corrected["status"], corrected["replaced_by"] = "replaced", subject
        entry["role"] = seller_role(terms, data.get("seller_siret"))[0] if terms else None
        self._start_period(entry, outcome, corrected, ctx)
        record = hold.take_service_fait(state, entry, previous, corrected)
        state["invoices"][subject] = entry
        return [self._checked(state, entry, outcome, findings, terms, invoiced, event.id),
                *self._release_service_fait(state, entry, record, event.id, ctx),
                *lifecycle.status(entry, lifecycle.RECEIVED, event), *lifecycle.check_status(entry, outcome, findings, event)]

    @staticmethod
    def _invoiced(state: Mapping[str, Any], subject: str, seller_siret: str | None) -> tuple[Decimal, Decimal]:
        """What the contract accepted without VAT besides invoice ``subject``: in all, and by that seller."""
        active = [e for s, e in state["invoices"].items() if s != subject and e["status"] in ACTIVE]
        return (total(e["amount_excl_tax"] for e in active),
                total(e["amount_excl_tax"] for e in active if e["creditor"]["siret"] == seller_siret))

    @staticmethod
    def _checked(state: Mapping[str, Any], entry: Mapping[str, Any], outcome: Outcome, findings: list[dict[str, Any]],
                 terms: Mapping[str, Any] | None, invoiced: Decimal, cause: str) -> Event:
        """The InvoiceChecked of ``entry``, caused by ``cause``, in the invoice's correlation."""
        total = invoiced + (Decimal(entry["amount_excl_tax"]) if outcome == "accepted" else ZERO)
        data = ev.check_data(entry, outcome, findings, contract_id=state["contract_id"],
                             ceiling=terms.get("ceiling") if terms else None, invoiced=total)
        return Event(type=ev.INVOICE_CHECKED, subject=entry["subject"], schema=ev.INVOICE_CHECK, data=data,
                     correlationid=entry["correlation"], causationid=cause)

    def _new_entry(self, event: Received, data: Mapping[str, Any], *, received: dt.date) -> dict[str, Any]:
        totals = data.get("totals") or {}
        credit_note = bool(data.get("is_credit_note")) or data.get("type_code") == "381"
        excl = decimal_of(totals.get("tax_exclusive")) or ZERO
        payable = decimal_of(totals.get("payable")) or decimal_of(totals.get("tax_inclusive")) or excl
        vat = decimal_of(totals.get("tax_total")) or ZERO
        sign = -1 if credit_note else 1
        return {
            "subject": event.subject, "number": data["number"], "seller_id": data.get("seller_key") or "unknown",
            "order_reference": data.get("purchase_order_reference"), "currency": data["currency"],
            "credit_note": credit_note, "status": "received", "role": None,
            "amount_excl_tax": str(sign * abs(excl)), "vat_amount": str(sign * abs(vat)),
            "amount_payable": str(sign * abs(payable)), "received_on": received.isoformat(),
            "creditor": creditor_of(data), "dgp": None, "suspension": None, "corrects": None, "replaced_by": None,
            "awaiting_contract": None, "mandats": [], "service_fait": None, "service_fait_held": None, "paid": "0",
            "payments": [], "last_payment": None, "indemnity_claimed": False, "late_payment": "0",
            "deadline_announced": False, "correlation": event.envelope.correlationid or event.id, "cause": event.id,
            **lifecycle.invoice_facts(event),
        }

    def _start_period(self, entry: dict[str, Any], outcome: str, corrected: Mapping[str, Any] | None,
                      ctx: Context) -> None:
        """The délai global de paiement of a checked invoice (décret 2013-269 art. 2 and 10)."""
        received = dt.date.fromisoformat(entry["received_on"])
        entry["status"] = outcome
        if outcome == "accepted" and not entry["credit_note"]:
            days = restart_days(corrected["suspension"]["remaining"]) if corrected else self.payment_days
            entry["dgp"] = open_period(received, days)
        elif outcome == "suspended" and corrected is None:
            # The period ran from reception until the suspension is notified, i.e. now.
            entry["suspension"] = suspend_period(received, paris_date(ctx.now), self.payment_days)

    def _suspended_predecessor(self, state: dict[str, Any], data: Mapping[str, Any]) -> dict[str, Any] | None:
        """The suspended invoice of the same seller this one names as BT-25 preceding invoice."""
        numbers = {p["number"] for p in data.get("preceding_invoices") or []}
        seller = data.get("seller_key") or "unknown"
        for entry in state["invoices"].values():
            if entry["status"] == "suspended" and entry["seller_id"] == seller and entry["number"] in numbers:
                return entry
        return None

    @staticmethod
    def _find(state: Mapping[str, Any], seller_id: str, number: str) -> dict[str, Any] | None:
        for entry in state["invoices"].values():
            if entry["seller_id"] == seller_id and entry["number"] == number and entry["status"] != "replaced":
                return entry
        return None

    # -- service fait and mandat ----------------------------------------------------------------

    def _on_service_fait(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        data = event.data
        certified = decimal_of(data["certified_amount_excl_tax"])
        if certified is None or certified <= 0:
            return []
        entry = self._find(state, data["seller_id"], data["invoice_number"])
        record = hold.service_fait_record(event, certified)
        if entry is None or entry["status"] not in ("accepted", "mandated"):
            hold.hold_service_fait(state, entry, record)
            return []
        if entry["credit_note"] or (entry["mandats"] and entry["mandats"][-1]["status"] != "anomaly"):
            return []  # one mandat per invoice: it is issued already
        return [self._issue_mandat(state, entry, record, event.id, ctx)]

    def _release_service_fait(self, state: dict[str, Any], entry: dict[str, Any], record: dict[str, Any] | None,
                              cause: str, ctx: Context) -> list[Event]:
        """The mandat of a just checked invoice's service fait, caused by ``cause``; else it waits."""
        if record is None or entry["credit_note"]:
            return []
        if entry["status"] != "accepted":
            entry["service_fait_held"] = record
            return []
        return [self._issue_mandat(state, entry, record, cause, ctx)]

    def _issue_mandat(self, state: dict[str, Any], entry: dict[str, Any], record: Mapping[str, Any], cause: str,
                      ctx: Context) -> Event:
        """BordereauIssued with the mandat of ``entry`` for a held service fait ``record``."""
        data, certified = record["data"], Decimal(record["certified"])
        excl, vat = mandat_amounts(Decimal(entry["amount_excl_tax"]), Decimal(entry["vat_amount"]), certified)
        subject, bordereau = build_bordereau(invoice=entry, service_fait=data, contract_id=state["contract_id"],
                                             issue_date=paris_date(ctx.now), amount_excl_tax=excl, vat_amount=vat)
        entry["service_fait"] = {"date": data["service_date"], "agent": data["agent"], "certified": str(certified),
                                 "event": record["event"]}
        entry["service_fait_held"] = None
        entry["mandats"].append({
            "bordereau": subject, "exercise": data["exercise"], "number": data["bordereau_number"],
            "id": data["mandat_number"], "file_name": bordereau["file"]["file_name"], "status": "issued",
            "amount_excl_tax": str(excl), "vat_amount": str(vat), "paid_by_retour": "0",
        })
        entry["status"] = "mandated"
        return Event(type=ev.BORDEREAU_ISSUED, subject=subject, schema=ev.BORDEREAU, data=bordereau,
                     correlationid=record["correlation"], causationid=cause)

    def _on_acquittement(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        data = event.data
        events = []
        for entry, mandat in self._mandats(state):
            if mandat["file_name"] != data["file_name"] or mandat["status"] != "issued":
                continue
            if data["accepted"]:
                mandat["status"] = "accepted"
                events += lifecycle.status(entry, lifecycle.ACCEPTED_MANDAT, event)
                continue
            mandat["status"] = "anomaly"
            errors = [{"code": e.get("code"), "label": e.get("label"), "location": e["location"]}
                      for e in data.get("errors") or []]
            events.append(self._anomaly(event, entry, mandat, state, data["file_name"], errors))
        return events

    def _anomaly(self, event: Received, entry: Mapping[str, Any], mandat: Mapping[str, Any], state: Mapping[str, Any],
                 file_name: str, errors: list[dict[str, Any]]) -> Event:
        data = ev.anomaly_data(entry, mandat, contract_id=state["contract_id"], file_name=file_name, errors=errors)
        return follow_up(event, type=ev.MANDAT_IN_ANOMALY, schema=ev.MANDAT_ANOMALY, data=data, subject=entry["subject"])

    @staticmethod
    def _mandats(state: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(entry, mandat) for _, entry in sorted(state["invoices"].items()) for mandat in entry["mandats"]]

    # -- payments -------------------------------------------------------------------------------

    def _on_payment(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        data = event.data
        entry = self._find(state, data["seller_id"], data["invoice_number"])
        amount = decimal_of(data["amount"])
        if entry is None or amount is None or amount <= 0:
            return []
        return self._pay(state, entry, amount, data["payment_date"], data.get("mandat_number"), event)

    def _on_pes_retour(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        events: list[Event] = []
        mandats = {(m["exercise"], canonical_number(m["number"]), canonical_number(m["id"])): (entry, m)
                   for entry, m in self._mandats(state)}
        for bordereau in event.data["bordereaux"]:
            for piece in bordereau["mandats"]:
                found = mandats.get((bordereau["exercise"], canonical_number(bordereau["number"]), canonical_number(piece["id"])))
                if found is None:
                    continue
                entry, mandat = found
                if piece["state"] == _RETOUR_REJECTED and mandat["status"] != "anomaly":
                    mandat["status"] = "anomaly"
                    errors = [{"code": piece.get("observation"), "label": piece.get("comment"),
                               "location": f"PES_Retour/PES_DepenseRetour/Bordereau[IdBord={bordereau['number']}]/Piece[IdPce={piece['id']}]"}]
                    events.append(self._anomaly(event, entry, mandat, state, event.data["file_name"], errors))
                    continue
                paid = decimal_of(piece.get("paid_amount"))
                if paid is None or piece.get("last_payment_date") is None:
                    continue
                delta = paid - Decimal(mandat["paid_by_retour"])
                if delta > 0:
                    mandat["paid_by_retour"] = str(paid)
                    events += self._pay(state, entry, delta, piece["last_payment_date"], mandat["id"], event)
        return events

    def _pay(self, state: dict[str, Any], entry: dict[str, Any], amount: Decimal, paid_on: dt.date,
             mandat_number: str | None, event: Received) -> list[Event]:
        """Record a payment; the interest and indemnity when it is late (décret 2013-269 art. 8-9)."""
        if entry["dgp"] is None or entry["status"] not in ("accepted", "mandated", "paid"):
            return []
        entry["paid"] = str(Decimal(entry["paid"]) + amount)
        entry["payments"].append({"date": paid_on.isoformat(), "amount": str(amount), "event": event.id})
        entry["last_payment"] = max(entry["last_payment"] or "", paid_on.isoformat())
        if Decimal(entry["paid"]) >= Decimal(entry["amount_payable"]):
            entry["status"] = "paid"
        paid = lifecycle.status(entry, lifecycle.PAID, event, paid=amount)
        interest = late_payment_interest(amount, dt.date.fromisoformat(entry["dgp"]["deadline"]), paid_on, self.rates,
                                         indemnity_due=not entry["indemnity_claimed"])
        if interest is None:
            return paid
        entry["indemnity_claimed"] = True
        entry["late_payment"] = str(Decimal(entry["late_payment"]) + interest.total)
        data = ev.interest_data(entry, interest, contract_id=state["contract_id"], mandat_number=mandat_number)
        return [follow_up(event, type=ev.LATE_PAYMENT_INTEREST_DUE, schema=ev.LATE_PAYMENT_INTEREST, data=data,
                          subject=entry["subject"]), *paid]

    # -- contract totals ------------------------------------------------------------------------

    # -- contract modifications -----------------------------------------------------------------

    def _on_contract_modified(self, state: dict[str, Any], event: Received, ctx: Context) -> list[Event]:
        """Keep a ContractModified with the contract's sources: :func:`effective_terms` applies it
        to every later check and to the totals. Invoices already checked keep their outcome; one
        refused over the old ceiling is sent again. The same modification again replaces itself."""
        data = event.data
        modifications = state["contract"].setdefault("modifications", {})
        modifications[f"{data['source']}:{data['modification_id']}"] = terms_from_modification(data)
        state["contract_id"] = data["contract_id"]
        return []
