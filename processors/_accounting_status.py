"""What the supplier hears back: the lifecycle statuses the accounting chain emits.

Each step of the chain the bus observes becomes a ``fr.dcant.invoices.InvoiceStatusChanged``
(source ``BUS``) on the invoice's dossier ``invoice:<seller>:<BT-1>``, in the invoice's
correlation, with the codes of the French e-invoicing reform (BR-FR-CDV-CL-06) and, where
BR-FR-CDV-15 requires one, a BR-FR-CDV-CL-09 reason mapped from the chain's rule
(:data:`processors._contract_checks.RULE_REASON`). Every status can be written as a CDAR
message valid against the D22B XSD and the BR-FR-CDV rules (``bus export cdar``).

==================================  =======================  ======  ========================
step the chain observes             status                   issuer  reason (CL-09)
==================================  =======================  ======  ========================
invoices.InvoiceReceived            202 Reçue                WK      -
its check: accepted                 204 Prise en charge      BY      -
suspended, contract awaited         208 Suspendue            BY      REF_ERR
suspended, EN 16931 arithmetic      207 Litige               BY      CALCUL_ERR
rejected                            210 Refusée              BY      of the deciding rule
DECP or award notice releasing an   204, 207 or 210          BY      as above
invoice held for its contract
accounting.AcquittementReceived     211 Paiement transmis    BY      -
accepting the mandat's file
PaymentRecorded, or PesRetourRec.   212 Encaissée            BY      -, MEN amounts per VAT
paying (part of) the invoice                                         rate (BR-FR-CDV-14)
==================================  =======================  ======  ========================

Choices, and what is not emitted:

* 202, not 200: 200 Déposée is set by the supplier's platform when the invoice is deposited,
  before the bus; the chain sees the invoice arrive at the buyer's side, which is 202 Reçue
  (a platform status, phase 305). A corrected invoice is received again (202 then its check).
* 211 when the accountant's acquittement accepts the PES file carrying the mandat: the order
  to pay is then with the payer. A mandat merely issued can still be refused (anomaly), so it
  is not yet "transmitted".
* 207, not 208, for an incoherent invoice: the chain waits for a corrective invoice, which is
  the reform's Litige, and BR-FR-CDV-CL-09 allows CALCUL_ERR for 207 but not for 208 (whose
  reasons are missing documents and references). InvoiceChecked still reports 208, the
  suspension of the délai de paiement (décret 2013-269 art. 10).
* 212 is issued by the buyer's side (issuer role BY, allowed in phase 23) as it observes the
  payment; its MEN amounts are the amount paid (TTC) split over the invoice's VAT rates.
* 213 Rejetée is a platform's rejection at reception (REJ_* reasons): a mandat the accountant
  refuses (MandatInAnomaly) is between ordonnateur and comptable, and the invoice stays
  accepted until it is mandated again, so the supplier hears nothing new. 220 Annulée (the
  supplier's cancellation) and 221 Erreur de routage (a platform's) are never observed by
  the chain, so never emitted.

The same status is not sent twice in a row for an invoice (a held invoice checked again and
still suspended for the same reason); 211 and 212 are sent for each mandat and payment.
An invoice entry stored before statuses existed has no BT-2 kept: its later statuses are
emitted, but writing them as CDAR is refused (BR-FR-CDV-11 needs the invoice's issue date).
Labels are the schematron's (:data:`adapters.invoice_status.STATUS_LABELS`); it names no label
for 202, 204 and 211, which carry the reform's names.

Addressing: a status follows the invoice's confidentiality. When the invoice came addressed
(sealed to its recipients), the status is addressed to the seller's SIREN and the buyer's
(BT-30 and BT-46/47 when they are French SIRET/SIREN); otherwise it is broadcast like the
chain's other outputs, as sealing needs an encryption key for every recipient and a missing
one would dead-letter the invoice itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from adapters.invoice_status import EVENT_TYPE, SCHEMA, STATUS_LABELS, status_event
from bus import Event, Received

from ._contract_checks import RULE_OUTCOME, RULE_REASON, Outcome, decimal_of

__all__ = [
    "ACCEPTED_MANDAT",
    "PAID",
    "RECEIVED",
    "check_status",
    "french_id",
    "invoice_facts",
    "status",
]

RECEIVED, ACCEPTED, SUSPENDED, IN_DISPUTE, REFUSED, ACCEPTED_MANDAT, PAID = "202", "204", "208", "207", "210", "211", "212"
#: The reform's names of the statuses the schematron gives no label.
_LABELS = {**STATUS_LABELS, "202": "Reçue", "204": "Prise en charge", "211": "Paiement transmis"}
#: Statuses sent again each time (one per mandat accepted, one per payment).
_REPEATED = frozenset({ACCEPTED_MANDAT, PAID})
_CENT = Decimal("0.01")


def french_id(identifier: str | None) -> tuple[str | None, str | None]:
    """(id, ISO 6523 scheme) of a SIRET (0009) or SIREN (0002); (None, None) for anything else."""
    digits = "".join((identifier or "").split())
    if digits.isdigit() and len(digits) in (9, 14):
        return digits, "0009" if len(digits) == 14 else "0002"
    return None, None


def _vat_rates(invoice: Mapping[str, Any]) -> list[dict[str, str]]:
    """The invoice's amounts with VAT per VAT rate (BG-23), to split a payment into MEN amounts."""
    by_rate: dict[str, Decimal] = {}
    for line in invoice.get("vat_breakdown") or []:
        rate = str((decimal_of(line.get("rate")) or Decimal(0)).quantize(_CENT))
        amount = (decimal_of(line.get("taxable_amount")) or Decimal(0)) + (decimal_of(line.get("tax_amount")) or Decimal(0))
        by_rate[rate] = by_rate.get(rate, Decimal(0)) + amount
    return [{"rate": rate, "amount": str(amount)} for rate, amount in sorted(by_rate.items(), key=lambda i: Decimal(i[0]))]


def invoice_facts(event: Received) -> dict[str, Any]:
    """What an invoice entry keeps to write its statuses: BT-2, BT-3, the buyer, VAT rates, addressing."""
    data = event.data
    return {"issue_date": data["issue_date"].isoformat() if data.get("issue_date") else None,
            "type_code": data.get("type_code"), "buyer_id": data.get("buyer_key"), "vat_rates": _vat_rates(data),
            "addressed": event.envelope.recipients is not None, "lifecycle": []}


def _men(entry: Mapping[str, Any], paid: Decimal) -> list[dict[str, Any]]:
    """The MEN amounts of a payment: split over the invoice's VAT rates pro rata, the last takes the rest."""
    rates = entry.get("vat_rates") or []
    if not rates:  # an entry stored before the rates were kept: its overall rate
        excl, vat = Decimal(entry["amount_excl_tax"]), Decimal(entry["vat_amount"])
        rate = (vat * 100 / excl).quantize(_CENT) if excl else Decimal("0.00")
        rates = [{"rate": str(rate), "amount": entry["amount_payable"]}]
    total = sum((Decimal(r["amount"]) for r in rates), Decimal(0))
    items, left = [], paid
    for i, r in enumerate(rates):
        share = left if i == len(rates) - 1 or not total else (paid * Decimal(r["amount"]) / total).quantize(
            _CENT, ROUND_HALF_UP)
        left -= share
        items.append({"type_code": "MEN", "amount": str(share), "currency": entry["currency"], "vat_rate": r["rate"]})
    return items


def _recipients(entry: Mapping[str, Any]) -> tuple[str, ...] | None:
    if not entry.get("addressed"):
        return None
    sirens = {ident[:9] for ident in (french_id(entry["creditor"]["siret"])[0], french_id(entry.get("buyer_id"))[0])
              if ident}
    return tuple(sorted(sirens)) or None


def status(entry: dict[str, Any], code: str, cause: Received, *, reason: tuple[str, str] | None = None,
           paid: Decimal | None = None) -> list[Event]:
    """The InvoiceStatusChanged ``code`` of ``entry`` caused by ``cause`` (none when it repeats the last one).

    ``reason``: (CL-09 code, text); ``paid``: the amount of a 212's payment.
    """
    sent = entry.setdefault("lifecycle", [])
    if code not in _REPEATED and sent and sent[-1] == code:
        return []
    sent.append(code)
    seller, seller_scheme = french_id(entry["creditor"]["siret"])
    buyer, buyer_scheme = french_id(entry.get("buyer_id"))
    issue = entry.get("issue_date")
    pivot = status_event(
        invoice_number=entry["number"], status_code=code, status_label=_LABELS.get(code), status_time=cause.time,
        seller_id=seller or entry["seller_id"], seller_id_scheme=seller_scheme, buyer_id=buyer,
        buyer_id_scheme=buyer_scheme, invoice_issue_date=None if issue is None else dt.date.fromisoformat(issue),
        invoice_type_code=entry.get("type_code"), reason_code=reason[0] if reason else None,
        reason_text=reason[1] if reason else None, amounts=_men(entry, paid) if paid is not None else (),
        source="BUS", issuer_role="WK" if code == RECEIVED else "BY", phase="305" if code == RECEIVED else "23",
    )
    return [Event(type=EVENT_TYPE, subject=entry["subject"], schema=SCHEMA, data=pivot.data,
                  correlationid=entry["correlation"], causationid=cause.id, recipients=_recipients(entry))]


def check_status(entry: dict[str, Any], outcome: Outcome, findings: Iterable[Mapping[str, Any]],
                 cause: Received) -> list[Event]:
    """The status of a checked invoice: 204, or 208 / 207 / 210 with the reason of the deciding finding."""
    if outcome == "accepted":
        return status(entry, ACCEPTED, cause)
    deciding = [f["rule"] for f in findings if RULE_OUTCOME[f["rule"]] == outcome and f["rule"] in RULE_REASON]
    others = [f["rule"] for f in findings if f["rule"] in RULE_REASON]
    rule = (deciding or others or [None])[0]
    if outcome == "suspended":
        code = IN_DISPUTE if rule == "EN16931-ARITHMETIC" else SUSPENDED
    else:
        code = REFUSED
    return status(entry, code, cause, reason=RULE_REASON[rule] if rule else None)
