"""The accounting chain end to end through the driver: award → invoice → service fait →
bordereau (a PES_Aller valid against the XSD) → acquittement → payment → contract paid in full."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from adapters import pes_aller
from bus import Event

from .accounting_factories import (
    BUYER,
    CONTRACT,
    HOLDER,
    Chain,
    acquittement,
    award,
    invoice,
    payment,
    pes_retour,
    service_fait,
)


def _accepted_and_certified(chain: Chain, **award_options) -> None:
    chain.pipe(award(**award_options))
    chain.pipe(invoice())
    chain.pipe(service_fait())


def test_award_to_payment_on_time(corpus: Path) -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="10000.00"))
    sent = chain.pipe(invoice())
    (checked,) = chain.read()
    assert checked.type == "fr.dcant.accounting.InvoiceChecked"
    assert checked.subject == f"invoice:{HOLDER}:F-2026-001"
    assert checked.envelope.causationid == dict(sent.headers)["ce_id"].decode()
    assert (checked.data["outcome"], checked.data["lifecycle_status"], checked.data["chorus_status"]) == (
        "accepted", "204", "MISE_A_DISPOSITION")
    assert checked.data["findings"] == []
    assert (checked.data["payment_period_start"], checked.data["payment_deadline"]) == (
        dt.date(2026, 1, 5), dt.date(2026, 2, 4))

    chain.on("2026-01-20")
    chain.pipe(service_fait())
    (issued,) = chain.read()
    assert (issued.type, issued.subject) == ("fr.dcant.accounting.BordereauIssued", f"bordereau:{BUYER}:2026:42")
    (mandat,) = issued.data["mandats"]
    assert mandat["invoices"][0]["number"] == "F-2026-001"
    assert (mandat["amount_excl_tax"], mandat["vat_amount"], mandat["amount_incl_tax"]) == ("10000.00", "2000.00", "12000.00")
    assert mandat["lignes"][0]["contract_id"] == CONTRACT
    assert mandat["payment_delay"]["end_date"] == dt.date(2026, 2, 4)
    assert mandat["creditor"]["bank_account"]["iban"] == "FR7630004000031234567890143"
    written = pes_aller.from_pivot(issued.data, schema_dir=corpus)
    assert pes_aller.validate(written, schema_dir=corpus, name="issued") == []
    assert pes_aller.to_pivot(written).subject == issued.subject

    chain.pipe(acquittement(issued.data["file"]["file_name"], accepted=True))
    assert chain.read() == []
    assert chain.state()["invoices"][f"invoice:{HOLDER}:F-2026-001"]["mandats"][0]["status"] == "accepted"

    chain.on("2026-02-03")
    assert chain.read() == []  # the deadline (4 February) has not passed
    chain.pipe(payment(amount="12000.00", paid_on=dt.date(2026, 2, 3)))
    (settled,) = chain.read()  # on time: no interest; the only invoice settles the contract
    assert (settled.type, settled.subject) == ("fr.dcant.accounting.ContractPaidInFull", f"contract:{CONTRACT}")
    assert (settled.data["awarded_amount"], settled.data["invoiced_excl_tax"], settled.data["paid"]) == (
        "10000.00", "10000.00", "12000.00")
    assert settled.data["late_payment_total"] == "0"
    assert chain.state()["totals"] == {"awarded": "10000.00", "invoiced": "10000.00", "mandated": "10000.00",
                                       "paid": "12000.00", "late_payment": "0"}
    chain.on("2026-03-01")
    assert chain.read() == []  # paid: the expiry is never announced
    assert json.loads(json.dumps(chain.state())) == chain.state()  # the state is plain JSON (faust table value)


def test_a_duplicated_service_fait_never_issues_a_second_mandat() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award())
    chain.pipe(invoice())
    record = chain.pipe(service_fait())
    chain.replay(record)  # the very same record (same ce_id)
    chain.pipe(service_fait(bordereau="43", mandat="1043"))  # the line-of-business system sent it twice
    assert len(chain.emitted("BordereauIssued")) == 1
    assert len(chain.state()["invoices"][f"invoice:{HOLDER}:F-2026-001"]["mandats"]) == 1


def test_a_duplicated_invoice_is_checked_once() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award())
    record = chain.pipe(invoice())
    chain.replay(record)
    chain.pipe(invoice())  # the same invoice sent again as a new event
    assert len(chain.emitted("InvoiceChecked")) == 1
    assert chain.state()["totals"]["invoiced"] == "10000.00"


def test_acquittement_in_anomaly_flags_the_mandat_and_a_new_service_fait_reissues_it(corpus: Path) -> None:
    chain = Chain("2026-01-05")
    _accepted_and_certified(chain)
    first = chain.read("BordereauIssued")[0]
    record = chain.pipe(acquittement(first.data["file"]["file_name"], accepted=False))
    chain.replay(record)
    (anomaly,) = chain.read()
    assert (anomaly.type, anomaly.subject) == ("fr.dcant.accounting.MandatInAnomaly", f"invoice:{HOLDER}:F-2026-001")
    assert (anomaly.data["bordereau"], anomaly.data["mandat_number"]) == (first.subject, "1042")
    assert anomaly.data["errors"][0]["code"] == "61"
    entry = chain.state()["invoices"][f"invoice:{HOLDER}:F-2026-001"]
    assert entry["mandats"][0]["status"] == "anomaly"
    assert chain.state()["totals"]["mandated"] == "0"

    chain.pipe(service_fait(bordereau="43", mandat="1043"))
    (again,) = chain.read()
    assert again.type == "fr.dcant.accounting.BordereauIssued" and again.subject == f"bordereau:{BUYER}:2026:43"
    assert pes_aller.validate(pes_aller.from_pivot(again.data), schema_dir=corpus, name="reissued") == []
    chain.pipe(acquittement(again.data["file"]["file_name"], accepted=True, bordereau="43"))
    assert [m["status"] for m in chain.state()["invoices"][f"invoice:{HOLDER}:F-2026-001"]["mandats"]] == [
        "anomaly", "accepted"]
    chain.pipe(service_fait(bordereau="44", mandat="1044"))
    assert chain.read() == []  # accepted now: no third mandat


def test_pes_retour_pays_the_mandat_once() -> None:
    chain = Chain("2026-01-05")
    _accepted_and_certified(chain, value="10000.00")
    chain.read()
    record = chain.pipe(pes_retour(paid="12000.00", paid_on=dt.date(2026, 2, 3)))
    chain.replay(record)
    chain.pipe(pes_retour(paid="12000.00", paid_on=dt.date(2026, 2, 3)))  # the same return read twice
    (settled,) = chain.read()
    assert settled.type == "fr.dcant.accounting.ContractPaidInFull"
    assert chain.state()["totals"]["paid"] == "12000.00"


def test_pes_retour_rejecting_the_mandat_raises_an_anomaly() -> None:
    chain = Chain("2026-01-05")
    _accepted_and_certified(chain)
    chain.read()
    chain.pipe(pes_retour(state="04", paid=None, paid_on=None))
    (anomaly,) = chain.read()
    assert anomaly.type == "fr.dcant.accounting.MandatInAnomaly"
    assert (anomaly.data["errors"][0]["code"], anomaly.data["file_name"]) == ("R12", "PESRETOUR_DEP_2026_0001.xml")


def test_acquittement_of_another_file_is_ignored() -> None:
    chain = Chain("2026-01-05")
    _accepted_and_certified(chain)
    chain.read()
    chain.pipe(acquittement("PESALR2_21310555400017_2026_99_2026M0042.xml", accepted=False, bordereau="99"))
    chain.pipe(acquittement("HELIOS_SIMU_ALR2_1496987735.xml", accepted=False))
    assert chain.read() == []
    assert chain.state()["invoices"][f"invoice:{HOLDER}:F-2026-001"]["mandats"][0]["status"] == "issued"


def test_partial_service_fait_mandates_the_certified_part() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award())
    chain.pipe(invoice())
    chain.pipe(service_fait(certified="2500.00"))
    (issued,) = chain.read("BordereauIssued")
    (mandat,) = issued.data["mandats"]
    assert (mandat["amount_excl_tax"], mandat["vat_amount"]) == ("2500.00", "500.00")
    assert mandat["invoices"][0]["amount_excl_tax"] == "10000.00"  # MtFactHT: the invoice differs from MtHT
    assert chain.state()["totals"]["mandated"] == "2500.00"


def test_service_fait_for_an_unknown_or_rejected_invoice_issues_nothing() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="5000.00"))
    chain.pipe(invoice())  # rejected: above the ceiling
    chain.pipe(service_fait())
    chain.pipe(service_fait(number="F-UNKNOWN"))
    assert chain.emitted("BordereauIssued") == []


def test_own_outputs_and_foreign_events_are_ignored() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award())
    chain.pipe(invoice())
    (checked,) = chain.read()
    before = chain.state()
    chain.pipe(Event(type=checked.type, subject=checked.subject, schema=checked.schema.name, data=checked.data))
    assert chain.read() == []
    assert chain.state() == before


def test_an_award_settling_several_contracts_opens_none() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(contracts=2))
    assert chain.driver.states == {}
    chain.pipe(invoice())
    (checked,) = chain.read()
    assert checked.data["outcome"] == "suspended"  # held until the contract's own data arrives
    assert [f["rule"] for f in checked.data["findings"]] == ["CONTRACT-AWAITED"]
