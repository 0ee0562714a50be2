"""Small factories for the accounting chain tests: the pivots it consumes, and a driver.

Every event is a real pivot of its schema: the driver seals and opens it through the Avro
codec and the signatures, so a factory that drifts from a schema fails at the first hop.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from adapters._en16931 import complete
from bus import Event, Received, Record
from bus.testing import FakeClock, TopologyTestDriver
from processors.accounting import AccountingChain

CONTRACT = "2026M0042"
HOLDER = "44306184100047"  # SIRET of the contract holder
SUBCONTRACTOR = "52208345600021"  # SIRET of a declared subcontractor (acte de sous-traitance)
STRANGER = "81234567800015"  # SIRET of a company with no part in the contract
BUYER = "21310555400017"  # SIRET of the commune
IBAN = "FR7630004000031234567890143"


def at(day: str, hour: int = 9) -> dt.datetime:
    """A UTC instant on ``day`` (YYYY-MM-DD): 10:00 or 11:00 in Paris, the same civil date."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), dt.UTC)


def decp(contract_id: str = CONTRACT, *, amount: str = "100000.00", holders: tuple[str, ...] = (HOLDER,),
         subcontractors: tuple[tuple[str, str | None], ...] = ((SUBCONTRACTOR, "20000.00"),),
         modifications: list[dict[str, Any]] | None = None) -> Event:
    """A DECP ContractDataPublished: holders, acts of subcontracting, amount (HT)."""
    data = {
        "id": contract_id, "kind": "marche", "buyer_id": BUYER, "subject": "Entretien de la voirie communale",
        "amount": amount, "holders": [{"id_type": "SIRET", "id": h} for h in holders],
        "subcontracting_declared": bool(subcontractors),
        "subcontracting_acts": [{"id": i + 1, "subcontractor_id_type": "SIRET", "subcontractor_id": s, "amount": a}
                                for i, (s, a) in enumerate(subcontractors)],
        "modifications": modifications,
    }
    return Event(type="fr.dcant.procurement.ContractDataPublished", subject=f"contract:{contract_id}",
                 schema="fr.dcant.procurement.ContractData", data=data)


def _org(org_id: str, name: str, siret: str) -> dict[str, Any]:
    return {"organization_id": org_id, "name": name, "company_id": siret, "french_id_type": "SIRET", "french_id": siret,
            "country": "FRA"}


def award(contract_id: str = CONTRACT, *, value: str = "50000.00", subcontractor: str | None = SUBCONTRACTOR,
          contracts: int = 1) -> Event:
    """An eForms AwardPublished settling one contract (BT-150 ``contract_id``) won by HOLDER."""
    winners = [{"lot_id": "LOT-0001", "tender_id": "TEN-0001", "contract_id": "CON-0001", "role": "tenderer",
                "value": value, "value_currency": "EUR", "organization": _org("ORG-0002", "ROUTES SA", HOLDER)}]
    if subcontractor:
        winners.append({"lot_id": "LOT-0001", "tender_id": "TEN-0001", "contract_id": "CON-0001", "role": "subcontractor",
                        "value": value, "value_currency": "EUR",
                        "organization": _org("ORG-0003", "SIGNALISATION SARL", subcontractor)})
    settled = [{"contract_id": f"CON-000{i + 1}", "contract_reference": contract_id if i == 0 else f"{contract_id}-{i}",
                "title": "Voirie", "tender_ids": ["TEN-0001"]} for i in range(contracts)]
    data = {
        "notice_id": "a5f0c3c2-1f4e-4a4b-9c51-2c1a7e1c0b01", "notice_version": "01", "procedure_id": "PROC-2026-7",
        "notice_subtype": "29", "dispatch_date": dt.date(2026, 1, 2),
        "buyers": [_org("ORG-0001", "COMMUNE DE TEST", BUYER)], "contracts": settled, "winners": winners,
    }
    return Event(type="fr.dcant.procurement.AwardPublished", subject="notice:PROC-2026-7",
                 schema="fr.dcant.procurement.Award", data=data)


def invoice(number: str = "F-2026-001", *, seller: str = HOLDER, contract: str | None = CONTRACT,
            order: str | None = None, excl: str = "10000.00", vat: str = "2000.00", received: dt.datetime | None = None,
            preceding: str | None = None, line_total: str | None = None, credit_note: bool = False) -> Event:
    """An EN 16931 InvoiceReceived pivot with one line; ``line_total`` breaks BR-CO-10 when it differs."""
    incl = str(Decimal(excl) + Decimal(vat))
    data = complete({
        "syntax": "UBL", "profile": "urn:cen.eu:en16931:2017", "number": number, "issue_date": dt.date(2026, 1, 2),
        "type_code": "381" if credit_note else "380", "is_credit_note": credit_note, "currency": "EUR",
        "contract_reference": contract, "purchase_order_reference": order,
        "preceding_invoices": [{"number": preceding}] if preceding else [],
        "seller_siret": seller, "seller_key": seller, "buyer_key": BUYER,
        "seller": {"name": "ROUTES SA", "legal_registration": {"id": seller, "scheme": "0009"},
                   "address": {"line1": "1 rue du Pont", "city": "Toulouse", "post_code": "31000", "country_code": "FR"}},
        "buyer": {"name": "COMMUNE DE TEST", "legal_registration": {"id": BUYER, "scheme": "0009"},
                  "address": {"city": "Toulouse", "post_code": "31000", "country_code": "FR"}},
        "payment_instructions": {"means_code": "30", "credit_transfers": [{"account_id": IBAN, "provider_id": "BNPAFRPPXXX"}]},
        "totals": {"line_total": line_total or excl, "tax_exclusive": excl, "tax_total": vat, "tax_inclusive": incl,
                   "payable": incl},
        "vat_breakdown": [{"taxable_amount": excl, "tax_amount": vat, "category": "S", "rate": "20.00"}],
        "lines": [{"id": "1", "quantity": "1", "unit_code": "C62", "net_amount": excl, "price": {"net_price": excl},
                   "vat_category": "S", "vat_rate": "20.00", "item": {"name": "Travaux"}}],
    })
    return Event(type="fr.dcant.invoices.InvoiceReceived", subject=f"invoice:{seller}:{number}",
                 schema="fr.dcant.invoices.Invoice", data=data, time=received)


def service_fait(number: str = "F-2026-001", *, seller: str = HOLDER, contract: str = CONTRACT,
                 certified: str = "10000.00", bordereau: str = "42", mandat: str = "1042", exercise: int = 2026) -> Event:
    data = {
        "invoice_number": number, "seller_id": seller, "contract_id": contract, "service_date": dt.date(2026, 1, 20),
        "certified_amount_excl_tax": certified, "agent": "j.martin@commune-test.fr", "exercise": exercise,
        "bordereau_number": bordereau, "mandat_number": mandat, "mandat_nature": "01", "service_code": "VOIRIE",
        "creditor_legal_nature": "03",
        "budget": {"accounting_office": "031000", "accounting_office_name": "TOULOUSE MUNICIPALE",
                   "collectivity_id": BUYER, "collectivity_code": "001", "budget_code": "01",
                   "budget_label": "BUDGET PRINCIPAL"},
        "imputation": {"nature": "615231", "function": "822", "operation": None},
    }
    return Event(type="fr.dcant.accounting.ServiceFaitRecorded", subject=f"invoice:{seller}:{number}",
                 schema="fr.dcant.accounting.ServiceFait", data=data)


def acquittement(file_name: str, *, accepted: bool = True, bordereau: str = "42", exercise: int = 2026) -> Event:
    errors = [] if accepted else [{"element_index": 0, "piece_number": "1042", "line_number": None, "code": "61",
                                   "label": "Coordonnées bancaires du tiers invalides",
                                   "location": "/PES_ACQUIT/ACQUIT/ElementACQUIT[1]/DetailPiece[1]/Erreur[1]"}]
    data = {
        "file_name": file_name, "structure_date": dt.date(2026, 1, 22), "accounting_office": "031000",
        "collectivity_id": BUYER, "accepted": accepted,
        "elements": [{"domain": "5", "accepted": accepted, "bordereau_number": bordereau, "bordereau_exercise": exercise}],
        "errors": errors,
    }
    return Event(type="fr.dcant.accounting.AcquittementReceived", subject=f"bordereau:{BUYER}:{exercise}:{bordereau}",
                 schema="fr.dcant.accounting.Acquittement", data=data)


def payment(number: str = "F-2026-001", *, amount: str = "12000.00", paid_on: dt.date = dt.date(2026, 1, 30),
            seller: str = HOLDER, contract: str = CONTRACT, mandat: str | None = "1042") -> Event:
    data = {"invoice_number": number, "seller_id": seller, "contract_id": contract, "mandat_number": mandat,
            "payment_date": paid_on, "amount": amount, "reference": None}
    return Event(type="fr.dcant.accounting.PaymentRecorded", subject=f"invoice:{seller}:{number}",
                 schema="fr.dcant.accounting.InvoicePayment", data=data)


def pes_retour(*, contract: str = CONTRACT, bordereau: str = "0000042", mandat: str = "1042", state: str = "05",
               paid: str | None = "12000.00", paid_on: dt.date | None = dt.date(2026, 2, 3)) -> Event:
    payments = [{"origin": "01", "date": paid_on, "amount": paid}] if paid and paid_on else []
    line = {"id": "1", "state": state, "amount_excl_tax": "10000.00", "vat_amount": "2000.00", "contract_id": contract,
            "payments": payments}
    piece = {"id": mandat, "type": "01", "nature": "01", "state": state, "amount_excl_tax": "10000.00",
             "vat_amount": "2000.00", "paid_amount": paid, "last_payment_date": paid_on, "lines": [line],
             "observation": "R12" if state == "04" else None, "comment": "Pièce justificative manquante" if state == "04" else None}
    data = {"file_name": "PESRETOUR_DEP_2026_0001.xml", "structure_date": dt.date(2026, 2, 4), "accounting_office": "031000",
            "collectivity_id": BUYER, "bordereaux": [{"exercise": 2026, "number": bordereau, "type": "01", "mandats": [piece]}]}
    return Event(type="fr.dcant.accounting.PesRetourReceived", subject=f"bordereau:{BUYER}:2026:42",
                 schema="fr.dcant.accounting.PesRetour", data=data)


class Chain:
    """The accounting chain under a driver, with one reader of what it emits."""

    def __init__(self, day: str, **options: Any) -> None:
        self.clock = FakeClock(at(day))
        self.driver = TopologyTestDriver(AccountingChain(**options), clock=self.clock)
        self._out = self.driver.output_topic("accounting")
        self._statuses = self.driver.output_topic("invoices")

    def pipe(self, event: Event) -> Record:
        """Send ``event`` on the topic of its family, as its producer would."""
        topic = event.schema.split(".")[2]
        return self.driver.input_topic(topic).pipe(event)

    def replay(self, record: Record) -> None:
        """Deliver the very same record again (same ce_id)."""
        self.driver.input_topic(record.topic or "").pipe_record(record)

    def on(self, day: str, hour: int = 9) -> None:
        """Move the clock to ``day`` and fire the timers."""
        self.driver.advance(at(day, hour) - self.clock.now)

    def read(self, type_suffix: str | None = None) -> list[Received]:
        """What the chain emitted since the last read (optionally only one event type)."""
        found = self._out.read_all()
        return [r for r in found if type_suffix is None or r.type.endswith("." + type_suffix)]

    def statuses(self) -> list[Received]:
        """The lifecycle statuses (InvoiceStatusChanged, on the invoices topic) emitted since the last call."""
        return self._statuses.read_all()

    def emitted(self, type_suffix: str) -> list[Received]:
        """Every event of one type emitted so far."""
        return [self.driver.wire.open(r) for r in self.driver.outputs["accounting"]
                if dict(r.headers)["ce_type"].decode().endswith("." + type_suffix)]

    def state(self, contract: str = CONTRACT) -> dict[str, Any]:
        return self.driver.state(f"contract:{contract}")


def invoice_life(chain: Chain) -> list[Received]:
    """Award, invoice, service fait, acquittement, PES_Retour paying it: every status the supplier heard, in order."""
    chain.pipe(award(value="10000.00"))
    chain.pipe(invoice())
    chain.on("2026-01-20")
    chain.pipe(service_fait())
    (issued,) = chain.read("BordereauIssued")
    chain.pipe(acquittement(issued.data["file"]["file_name"]))
    chain.pipe(pes_retour(paid="12000.00", paid_on=dt.date(2026, 2, 3)))
    return chain.statuses()


def every_status() -> list[Received]:
    """The statuses of a whole invoice life (202, 204, 211, 212), then of invoices refused (210 for each
    reason), disputed (207) and suspended (208): one of each kind the accounting chain emits."""
    statuses = invoice_life(Chain("2026-01-05"))
    others = Chain("2026-01-05")
    others.pipe(award(value="100000.00"))
    for number, options in (("F-2026-002", {"seller": STRANGER}), ("F-2026-003", {"line_total": "1.00"}),
                            ("F-2026-004", {"contract": "2026M0099"}), ("F-2026-005", {"contract": None}),
                            ("F-2026-006", {"excl": "200000.00", "vat": "40000.00"})):
        others.pipe(invoice(number, **options))
    return statuses + others.statuses()

