"""Demo phase 4, invoices and accounting: Factur-X in, checks, service fait, PES mandats, payment.

The contract holder sends two invoices against the contract:

- the first as a Factur-X PDF (CII written by :func:`adapters.cii.from_pivot`, wrapped by the
  supplier's software :func:`bus.demo._facturx.facturx_pdf`) handed to the ingress;
- the second through its invoicing platform as a pivot event whose lines do not add up
  (EN 16931 BR-CO-10): the CII and UBL readers refuse such a document at ingress, but a
  platform speaking pivot can send it, and the accounting chain suspends the payment period;
  the corrected invoice (same BT-1) follows and a new period opens.

The commune certifies the service fait, the accounting chain issues each mandat on a PES
bordereau (written as PES_Aller by :func:`adapters.pes_aller.from_pivot`), the DGFiP
acknowledges the files (PES_ACQUIT) and pays; the second invoice is paid after its deadline,
so the chain computes the late-payment interest and the 40 € indemnity when the payment comes.
The supplier hears each step as the chain's lifecycle statuses (202 Reçue, 204 Prise en charge,
207 Litige for the incoherent invoice, 211 Paiement transmis, 212 Encaissée), printed at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters import cii, pes_aller, ubl
from adapters._base import Pivot
from adapters._en16931 import complete, invoice_subject
from bus._wire import Event, Received
from processors.tell_us_once import tally

from ._data import ADMINISTRATIONS, COMMUNE_SIRET, company_siret
from ._facturx import facturx_pdf
from ._stage import Stage, caused_by, ids_of
from ._worker import DemoWorker

__all__ = ["invoices_phase"]

A = "fr.dcant.accounting."
INVOICE = "fr.dcant.invoices.Invoice"
IBAN = "FR7630001007941234567890185"  # a fictional account of the Banque de France test range
ACCOUNTING_OFFICE = "045999"


@dataclasses.dataclass(frozen=True)
class Bill:
    """One invoice of the demo and how its story goes."""

    suffix: str
    issued: dt.date
    excl: str
    label: str
    paid_after_days: int  # days after the period's start the DGFiP pays


BILLS = (Bill("01", dt.date(2025, 5, 2), "20000.00", "Réfection de voirie, tranche 1 (rue des Tilleuls)", 20),
         Bill("02", dt.date(2025, 6, 2), "28000.00", "Réfection de voirie, tranche 2 (chemin du Moulin)", 59))


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), dt.UTC)


def _vat_number(siren: str) -> str:
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def invoice_data(stage: Stage, contract: str, bill: Bill, *, syntax: str, line_net: str | None = None) -> dict[str, Any]:
    """The EN 16931 pivot of a bill; ``line_net`` other than the total breaks BR-CO-10."""
    seller = company_siret("travaux")
    excl = Decimal(bill.excl)
    vat = (excl * Decimal("0.20")).quantize(Decimal("0.01"))
    data = complete({
        "syntax": syntax, "profile": "urn:cen.eu:en16931:2017", "number": number(stage, bill),
        "issue_date": bill.issued, "type_code": "380", "is_credit_note": False, "currency": "EUR",
        "contract_reference": contract, "purchase_order_reference": None,
        "seller": {"name": ADMINISTRATIONS["travaux"]["name"], "vat_identifier": _vat_number(seller[:9]),
                   "legal_registration": {"id": seller, "scheme": "0009"},
                   "address": {"line1": "7 rue des Artisans", "city": "Saint-Exemple-sur-Loire", "post_code": "45999",
                               "country_code": "FR"}},
        "buyer": {"name": "Commune de Saint-Exemple-sur-Loire", "legal_registration": {"id": COMMUNE_SIRET, "scheme": "0009"},
                  "address": {"line1": "1 place de la Mairie", "city": "Saint-Exemple-sur-Loire", "post_code": "45999",
                              "country_code": "FR"}},
        "payment_instructions": {"means_code": "30", "credit_transfers": [{"account_id": IBAN, "provider_id": "BDFEFRPPXXX"}]},
        "payment_terms": "Paiement à 30 jours par virement",
        "totals": {"line_total": bill.excl, "tax_exclusive": bill.excl, "tax_total": str(vat),
                   "tax_inclusive": str(excl + vat), "payable": str(excl + vat)},
        "vat_breakdown": [{"taxable_amount": bill.excl, "tax_amount": str(vat), "category": "S", "rate": "20.00"}],
        "lines": [{"id": "1", "quantity": "1", "unit_code": "C62", "net_amount": line_net or bill.excl,
                   "price": {"net_price": line_net or bill.excl}, "vat_category": "S", "vat_rate": "20.00",
                   "item": {"name": bill.label}}],
    })
    data["seller_siret"], data["seller_key"], data["buyer_key"] = seller, seller, COMMUNE_SIRET
    return data


def number(stage: Stage, bill: Bill) -> str:
    return f"FA2025-{stage.run}-{bill.suffix}"


def _checked(stage: Stage, subject: str, after: int) -> Received | None:
    """The latest InvoiceChecked of ``subject`` beyond the ``after`` first ones."""
    found = stage.watcher.of("InvoiceChecked", subject=subject)
    return found[-1] if len(found) > after else None


async def invoices_phase(stage: Stage, worker: DemoWorker, contract: str, console: Console) -> dict[str, Any]:
    """Play the invoices of ``contract`` to their payment; returns the phase's figures."""
    console.rule("[bold]4. Invoices and accounting: Factur-X, checks, service fait, PES, payment")
    watcher = stage.watcher
    first, second = BILLS
    supplier = f"urn:siren:{stage.siren('travaux')}:plateforme-factures"
    # 1. The Factur-X invoice goes through the ingress (claim check, adapter, pivot).
    pdf_data = invoice_data(stage, contract, first, syntax="CII")
    xml = cii.from_pivot(Pivot("fr.dcant.invoices.InvoiceReceived", INVOICE, "", pdf_data, cii.FORMAT))
    path = stage.scratch() / f"{number(stage, first)}.pdf"
    path.write_bytes(facturx_pdf(xml))
    # Received the day after its issue, like the second: its payment period runs from then.
    submitted = await stage.submit("travaux", path, declared_format="facturx",
                                   time=_at(first.issued + dt.timedelta(days=1)))
    received = await watcher.expect(lambda: watcher.of("InvoiceReceived", where=caused_by(ids_of([submitted]))),
                                    "the Factur-X invoice's pivot from the ingress")
    first_subject = received[0].subject
    checks = {first_subject: await watcher.expect(lambda: _checked(stage, first_subject, 0), "the invoice check")}
    # 2. The inconsistent pivot, then its correction (same BT-1), from the supplier's platform.
    second_subject = invoice_subject(company_siret("travaux"), number(stage, second))
    wrong = invoice_data(stage, contract, second, syntax="UBL", line_net="27500.00")
    await stage.publish("travaux", [Event(type="fr.dcant.invoices.InvoiceReceived", subject=second_subject, schema=INVOICE,
                                          data=wrong, time=_at(second.issued + dt.timedelta(days=1)), source=supplier)])
    suspended = await watcher.expect(lambda: _checked(stage, second_subject, 0), "the check of the inconsistent invoice")
    corrected_on = second.issued + dt.timedelta(days=15)
    fixed = invoice_data(stage, contract, dataclasses.replace(second, issued=corrected_on), syntax="UBL")
    await stage.publish("travaux", [Event(type="fr.dcant.invoices.InvoiceReceived", subject=second_subject, schema=INVOICE,
                                          data=fixed, time=_at(corrected_on + dt.timedelta(days=1)), source=supplier)])
    checks[second_subject] = await watcher.expect(lambda: _checked(stage, second_subject, 1), "the corrected invoice's check")
    # The corrected invoice as the buyer's systems get it from the bus: UBL 2.1.
    stage.write(f"{number(stage, second)}-ubl.xml", ubl.from_pivot(Pivot(
        "fr.dcant.invoices.InvoiceReceived", INVOICE, second_subject, fixed, ubl.FORMAT)))
    history = {first_subject: [checks[first_subject]], second_subject: [suspended, checks[second_subject]]}
    # 3. Service fait for each accepted invoice: the chain issues a mandat on a PES bordereau.
    bordereaux: dict[str, Received] = {}
    for i, (subject, check) in enumerate(checks.items(), 1):
        if check.data["outcome"] != "accepted":
            continue
        sf = _service_fait(stage, contract, check.data, i)
        (record,) = await stage.publish("commune", [Event(
            type=A + "ServiceFaitRecorded", subject=subject, schema=A + "ServiceFait", data=sf,
            time=_at(sf["service_date"], 16), source=f"urn:siren:{stage.siren('commune')}:finances")])
        issued = await watcher.expect(lambda: watcher.of("BordereauIssued", where=caused_by(ids_of([record]))),
                                      "the mandat's PES bordereau")
        bordereaux[subject] = issued[0]
        pes = issued[0].data
        stage.write(pes["file"]["file_name"], pes_aller.from_pivot(pes))
    # 4. The DGFiP's acquittements, then its payments (the second one late).
    payments = []
    for subject, bordereau in bordereaux.items():
        pes = bordereau.data
        (ack,) = await stage.publish("dgfip", [Event(
            type=A + "AcquittementReceived", subject=bordereau.subject, schema=A + "Acquittement",
            data=_acquittement(pes), time=_at(pes["issue_date"] + dt.timedelta(days=1), 7))])
        await worker.handled(ack, f"the acquittement of {pes['file']['file_name']}")
        check = checks[subject].data
        bill = first if subject == first_subject else second
        # Never a payment dated after today: the contract closes on its last payment, and the
        # archiving profile starts the retention on that day.
        paid_on = min(check["payment_period_start"] + dt.timedelta(days=bill.paid_after_days), stage.ctx.clock().date())
        payments += await stage.publish("dgfip", [Event(
            type=A + "PaymentRecorded", subject=subject, schema=A + "InvoicePayment", data={
                "invoice_number": check["invoice_number"], "seller_id": check["seller_id"], "contract_id": contract,
                "mandat_number": pes["mandats"][0]["id"], "payment_date": paid_on, "amount": check["amount_payable"],
                "reference": f"VIR-{stage.run}-{pes['mandats'][0]['id']}"}, time=_at(paid_on, 17))])
    interest = await watcher.expect(lambda: watcher.of("LatePaymentInterestDue", subject=second_subject),
                                    "the late-payment interest of the invoice paid late")
    settled = await watcher.expect(lambda: watcher.of("ContractPaidInFull", subject=f"contract:{contract}"),
                                   "the contract paid in full")
    # What the supplier hears back (InvoiceStatusChanged on the invoices flow), through to paid.
    statuses = {s: await watcher.expect(lambda s=s: _until_paid(watcher.of("InvoiceStatusChanged", subject=s)),
                                        "the supplier's status 212 Encaissée") for s in checks}
    verified = watcher.of("SupplierVerified", where=lambda e: e.subject in checks)
    _print(console, history, bordereaux, {s: watcher.of("PaymentRecorded", subject=s) for s in checks}, interest)
    for subject, sent in statuses.items():
        console.print(f"Statuts envoyés au fournisseur ({subject.rsplit(':', 1)[-1]}) : "
                      + ", ".join(f"{e.data['status_code']} {e.data['status_label']}" for e in sent))
    counts = tally(verified)
    total = settled[0].data
    console.print(f"contract {contract} paid in full: invoiced {total['invoiced_excl_tax']} € HT, mandated "
                  f"{total['mandated_excl_tax']} € HT, paid {total['paid']} € TTC, late-payment total "
                  f"{total['late_payment_total']} €")
    return {
        "invoices": len(checks), "invoice statuses": {s: [c.data["outcome"] for c in h] for s, h in history.items()},
        "bordereaux issued": len(bordereaux), "mandats": sum(len(b.data["mandats"]) for b in bordereaux.values()),
        "payments": len(payments), "late payment interest": str(interest[0].data["interest_amount"]),
        "late payment indemnity": str(interest[0].data["indemnity"]), "days late": interest[0].data["days_late"],
        "contract paid in full": True, "invoice documents reused": counts["reused"],
        "invoice documents requested": counts["requested"],
        "supplier statuses": " / ".join(" ".join(e.data["status_code"] for e in sent) for sent in statuses.values()),
    }


def _until_paid(statuses: list[Received]) -> list[Received] | None:
    """The statuses of an invoice once its 212 Encaissée is among them (duplicates of a redelivery dropped)."""
    unique = list({e.id: e for e in statuses}.values())
    return unique if any(e.data["status_code"] == "212" for e in unique) else None


def _service_fait(stage: Stage, contract: str, check: dict[str, Any], index: int) -> dict[str, Any]:
    bordereau = stage.run_number * 10 + index  # numbered by the commune's finance software
    return {
        "invoice_number": check["invoice_number"], "seller_id": check["seller_id"], "contract_id": contract,
        "service_date": max(check["received_date"], dt.date(2025, 1, 1)) + dt.timedelta(days=3),
        "certified_amount_excl_tax": check["amount_excl_tax"], "agent": "services.techniques@mairie.saint-exemple.test",
        "exercise": 2025, "bordereau_number": str(bordereau), "mandat_number": str(bordereau * 10 + 1),
        "mandat_nature": "01", "service_code": "VOIRIE", "creditor_legal_nature": "03",
        "budget": {"accounting_office": ACCOUNTING_OFFICE, "accounting_office_name": "SAINT-EXEMPLE MUNICIPALE",
                   "collectivity_id": COMMUNE_SIRET, "collectivity_code": "001", "budget_code": "01",
                   "budget_label": "BUDGET PRINCIPAL"},
        "imputation": {"nature": "2151", "function": "822", "operation": None},
    }


def _acquittement(pes: dict[str, Any]) -> dict[str, Any]:
    return {"file_name": pes["file"]["file_name"], "file_type": "PES_Aller", "version": None, "sender_acronym": "DGFIP",
            "structure_date": pes["issue_date"] + dt.timedelta(days=1), "accounting_office": ACCOUNTING_OFFICE,
            "collectivity_id": COMMUNE_SIRET, "collectivity_code": "001", "budget_code": "01",
            "budget_label": "BUDGET PRINCIPAL", "acquit_version": None, "accepted": True,
            "elements": [{"domain": "5", "domain_label": "Dépense", "accepted": True,
                          "bordereau_number": pes["number"], "bordereau_exercise": pes["exercise"], "market_id": None,
                          "unique_id": None}], "errors": []}


def _print(console: Console, history: dict[str, list[Received]], bordereaux: dict[str, Received],
           payments: dict[str, list[Received]], interest: list[Received]) -> None:
    table = Table("invoice", "received", "outcome", "status", "findings", "period", "deadline",
                  title="invoices checked by the accounting chain")
    for subject, checks in history.items():
        for check in checks:
            d = check.data
            findings = "; ".join(f"{f['rule']} ({f.get('source_rule') or f['location']})" for f in d["findings"]) or "-"
            table.add_row(d["invoice_number"] + (f" (corrects {d['corrects']})" if d.get("corrects") else ""),
                          str(d["received_date"]), d["outcome"], f"{d['lifecycle_status']} {d['lifecycle_label']}",
                          findings, f"{d['payment_period_days']} d" if d["payment_period_days"] else "suspended",
                          str(d["payment_deadline"] or "-"))
    console.print(table)
    table = Table("PES file (bordereau)", "mandat", "HT", "TVA", "creditor SIRET", "paid on", "amount",
                  title="mandats on PES bordereaux, acknowledged and paid")
    for subject, bordereau in bordereaux.items():
        pes = bordereau.data
        mandat = pes["mandats"][0]
        paid = payments.get(subject) or []
        table.add_row(pes["file"]["file_name"], mandat["id"], mandat["amount_excl_tax"], mandat["vat_amount"],
                      mandat["creditor"]["id"] or "-", ", ".join(str(p.data["payment_date"]) for p in paid) or "-",
                      ", ".join(str(p.data["amount"]) for p in paid) or "-")
    console.print(table)
    for event in interest:
        d = event.data
        console.print(f"late payment of {d['invoice_number']}: deadline {d['payment_deadline']}, paid "
                      f"{d['payment_date']} ({d['days_late']} days late) at {d['interest_rate']} % (ECB "
                      f"{d['ecb_rate']} % + 8) on {d['principal']} € → interest [bold]{d['interest_amount']} €[/] + "
                      f"indemnity {d['indemnity']} € = {d['total_due']} €")
