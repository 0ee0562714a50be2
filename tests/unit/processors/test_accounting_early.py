"""What the accounting chain holds instead of dropping, through the driver: a service fait
before its invoice is accepted, an invoice before its contract's data (décret 2013-269 art. 10)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from bus import Record

from .accounting_factories import (
    BUYER,
    CONTRACT,
    HOLDER,
    STRANGER,
    Chain,
    at,
    award,
    decp,
    invoice,
    payment,
    service_fait,
)

SUBJECT = f"invoice:{HOLDER}:F-2026-001"
NOTHING_HELD = {"invoices_awaiting_contract": [], "service_fait_awaiting_acceptance": []}


def _id(record: Record) -> str:
    return dict(record.headers)["ce_id"].decode()


def _rules(data: dict) -> list[tuple[str, str]]:
    return [(f["rule"], f["location"]) for f in data["findings"]]


# -- a service fait before its invoice is accepted ---------------------------------------------


def test_a_service_fait_for_an_unknown_invoice_is_mandated_when_the_invoice_arrives_accepted() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award())
    certified = chain.pipe(service_fait())
    assert chain.read() == []
    assert chain.state()["pending_service_fait"][f"{HOLDER}:F-2026-001"]["event"] == _id(certified)
    assert chain.state()["held"]["service_fait_awaiting_acceptance"] == [f"{HOLDER}:F-2026-001"]
    assert json.loads(json.dumps(chain.state())) == chain.state()  # the held service fait is plain JSON

    sent = chain.pipe(invoice())
    checked, issued = chain.read()
    assert checked.data["outcome"] == "accepted"
    assert (issued.type, issued.subject) == ("fr.dcant.accounting.BordereauIssued", f"bordereau:{BUYER}:2026:42")
    assert issued.envelope.causationid == _id(sent)  # issued because the invoice was accepted
    assert issued.envelope.correlationid == _id(certified)  # in the service fait's correlation, as ever
    (mandat,) = issued.data["mandats"]
    assert (mandat["id"], mandat["invoices"][0]["number"], mandat["amount_excl_tax"]) == ("1042", "F-2026-001", "10000.00")
    assert mandat["payment_delay"]["end_date"] == checked.data["payment_deadline"] == dt.date(2026, 2, 4)
    entry = chain.state()["invoices"][SUBJECT]
    assert entry["status"] == "mandated"
    assert (entry["service_fait"]["date"], entry["service_fait"]["event"]) == ("2026-01-20", _id(certified))
    assert chain.state()["pending_service_fait"] == {} and chain.state()["held"] == NOTHING_HELD


def test_a_service_fait_before_acceptance_is_mandated_on_acceptance() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(invoice())  # the contract's data has not come yet: held
    chain.pipe(service_fait())
    (held,) = chain.read()
    assert held.data["outcome"] == "suspended"
    assert chain.state()["invoices"][SUBJECT]["service_fait_held"]["data"]["mandat_number"] == "1042"
    assert chain.state()["held"] == {"invoices_awaiting_contract": [SUBJECT],
                                     "service_fait_awaiting_acceptance": [f"{HOLDER}:F-2026-001"]}
    chain.on("2026-01-12")
    notice = chain.pipe(award(value="50000.00"))
    checked, issued = chain.read()
    assert checked.envelope.causationid == issued.envelope.causationid == _id(notice)
    assert (checked.data["outcome"], checked.data["contract_ceiling"]) == ("accepted", "50000.00")
    assert (checked.data["payment_period_start"], checked.data["payment_deadline"]) == (
        dt.date(2026, 1, 12), dt.date(2026, 2, 11))
    assert issued.type == "fr.dcant.accounting.BordereauIssued"
    assert issued.data["issue_date"] == dt.date(2026, 1, 12)
    assert chain.state()["totals"]["mandated"] == "10000.00" and chain.state()["held"] == NOTHING_HELD


@pytest.mark.parametrize("corrected_number", ["F-2026-001", "F-2026-001-C"], ids=["same-BT-1", "BT-25-preceding"])
def test_a_service_fait_for_a_suspended_invoice_is_mandated_when_its_correction_is_accepted(corrected_number: str) -> None:
    chain = Chain("2026-03-02")
    chain.pipe(decp())
    chain.pipe(invoice(line_total="9000.00"))  # BR-CO-10: suspended
    chain.pipe(service_fait())
    (suspended,) = chain.read()
    assert suspended.data["outcome"] == "suspended"
    chain.on("2026-03-09")
    sent = chain.pipe(invoice(corrected_number, preceding="F-2026-001" if corrected_number != "F-2026-001" else None))
    checked, issued = chain.read()
    assert (checked.data["outcome"], checked.data["corrects"]) == ("accepted", "F-2026-001")
    assert (checked.data["payment_period_start"], checked.data["payment_deadline"]) == (
        dt.date(2026, 3, 9), dt.date(2026, 4, 8))
    assert issued.envelope.causationid == _id(sent)
    assert issued.data["mandats"][0]["invoices"][0]["number"] == corrected_number
    assert chain.state()["held"] == NOTHING_HELD
    chain.pipe(service_fait(corrected_number, bordereau="43", mandat="1043"))
    chain.pipe(service_fait("F-2026-001", bordereau="44", mandat="1044"))  # names the replaced invoice, if any
    assert chain.read() == []  # one mandat per invoice
    assert chain.state()["pending_service_fait"] == {}


def test_a_service_fait_duplicated_while_held_issues_one_mandat() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp())
    record = chain.pipe(service_fait())  # the invoice is not known yet
    chain.replay(record)  # the very same record
    chain.pipe(service_fait(bordereau="43", mandat="1043"))  # the finance system sent it twice
    chain.pipe(invoice(line_total="9000.00"))  # suspended
    chain.pipe(service_fait(bordereau="44", mandat="1044"))  # and again while the invoice is suspended
    chain.pipe(invoice())  # the correction is accepted
    chain.pipe(service_fait(bordereau="45", mandat="1045"))
    (issued,) = chain.emitted("BordereauIssued")
    assert (issued.subject, issued.data["mandats"][0]["id"]) == (f"bordereau:{BUYER}:2026:42", "1042")  # the first
    assert len(chain.state()["invoices"][SUBJECT]["mandats"]) == 1
    assert chain.state()["held"] == NOTHING_HELD


def test_a_held_service_fait_follows_a_rejected_invoice_sent_again_and_accepted() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp(amount="5000.00"))
    chain.pipe(invoice())  # rejected: above the ceiling
    chain.pipe(service_fait())
    assert chain.emitted("BordereauIssued") == []
    assert chain.state()["held"]["service_fait_awaiting_acceptance"] == [f"{HOLDER}:F-2026-001"]
    chain.pipe(decp(amount="5000.00", modifications=[{"id": 1, "amount": "20000.00"}]))
    chain.pipe(invoice())
    assert [r.data["outcome"] for r in chain.emitted("InvoiceChecked")] == ["rejected", "accepted"]
    assert len(chain.emitted("BordereauIssued")) == 1


def test_held_service_faits_never_mandate_a_credit_note_nor_a_zero_amount() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp())
    chain.pipe(service_fait(certified="0.00"))
    assert chain.state()["pending_service_fait"] == {}  # refused, not held
    chain.pipe(service_fait("A-1"))
    chain.pipe(invoice("A-1", excl="1000.00", vat="200.00", credit_note=True))
    assert chain.emitted("BordereauIssued") == []
    assert chain.state()["held"] == NOTHING_HELD and chain.state()["pending_service_fait"] == {}


# -- an invoice before its contract's data -----------------------------------------------------


def test_an_invoice_before_its_contract_is_held_then_accepted_when_the_decp_arrives() -> None:
    chain = Chain("2026-01-05")
    sent = chain.pipe(invoice())
    (held,) = chain.read()
    data = held.data
    assert (data["outcome"], data["lifecycle_status"], data["lifecycle_label"], data["chorus_status"]) == (
        "suspended", "208", "Suspendue", "SUSPENDUE")
    assert _rules(data) == [("CONTRACT-AWAITED", "BT-12")]
    assert (data["remaining_days"], data["payment_deadline"], data["contract_ceiling"]) == (30, None, None)
    chain.pipe(service_fait())
    assert chain.read() == []
    chain.on("2026-01-26")
    assert chain.read() == []  # no expiry is announced while the invoice is held
    contract = chain.pipe(decp())
    checked, issued = chain.read()
    assert (checked.type, checked.subject) == ("fr.dcant.accounting.InvoiceChecked", SUBJECT)
    assert (checked.envelope.causationid, checked.envelope.correlationid) == (_id(contract), _id(sent))
    assert (checked.data["outcome"], checked.data["findings"]) == ("accepted", [])
    assert (checked.data["contract_ceiling"], checked.data["contract_invoiced"]) == ("100000.00", "10000.00")
    assert (checked.data["payment_period_start"], checked.data["payment_deadline"]) == (
        dt.date(2026, 1, 26), dt.date(2026, 2, 25))
    assert issued.type == "fr.dcant.accounting.BordereauIssued"
    assert issued.data["mandats"][0]["payment_delay"]["start_date"] == dt.date(2026, 1, 26)
    assert chain.state()["totals"]["invoiced"] == chain.state()["totals"]["mandated"] == "10000.00"
    assert chain.state()["invoices"][SUBJECT]["role"] == "holder"
    assert chain.state()["held"] == NOTHING_HELD
    assert json.loads(json.dumps(chain.state())) == chain.state()
    chain.pipe(decp())  # the same contract published again: nothing is checked twice
    assert chain.read() == []


def test_invoices_held_before_a_contract_they_do_not_fit_are_rejected() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(invoice("F-1", excl="6000.00", vat="1200.00"))
    chain.pipe(invoice("F-2", excl="5000.00", vat="1000.00"))
    chain.pipe(invoice("F-3", seller=STRANGER, excl="100.00", vat="20.00"))
    chain.pipe(service_fait("F-2"))
    assert [r.data["outcome"] for r in chain.read()] == ["suspended"] * 3
    chain.pipe(decp(amount="10000.00"))
    checks = {r.data["invoice_number"]: r.data for r in chain.read("InvoiceChecked")}
    assert [n for n in checks] == ["F-1", "F-2", "F-3"]  # oldest first
    assert checks["F-1"]["outcome"] == "accepted"
    assert (checks["F-2"]["outcome"], checks["F-2"]["lifecycle_status"], _rules(checks["F-2"])) == (
        "rejected", "210", [("CONTRACT-CEILING", "BT-109")])
    assert "6000.00 already invoiced + 5000.00" in checks["F-2"]["findings"][0]["message"]
    assert checks["F-2"]["payment_deadline"] is None
    assert (checks["F-3"]["outcome"], _rules(checks["F-3"])) == ("rejected", [("CONTRACT-HOLDER", "BT-30")])
    assert chain.emitted("BordereauIssued") == []
    assert chain.state()["totals"]["invoiced"] == "6000.00"
    assert chain.state()["held"] == {"invoices_awaiting_contract": [],
                                     "service_fait_awaiting_acceptance": [f"{HOLDER}:F-2"]}  # visible, not mandated


def test_a_held_invoice_with_its_own_faults_stays_under_the_same_suspension() -> None:
    chain = Chain("2026-03-02")
    chain.pipe(invoice(line_total="9000.00"))
    (first,) = chain.read()
    assert {f["rule"] for f in first.data["findings"]} == {"CONTRACT-AWAITED", "EN16931-ARITHMETIC"}
    chain.on("2026-03-10")
    chain.pipe(decp())
    (again,) = chain.read()  # the contract is fine, the invoice still is not
    assert (again.data["outcome"], again.data["remaining_days"]) == ("suspended", 30)
    assert {f["rule"] for f in again.data["findings"]} == {"EN16931-ARITHMETIC"}
    chain.on("2026-03-20")
    chain.pipe(invoice())  # its correction
    (accepted,) = chain.read()
    assert (accepted.data["outcome"], accepted.data["corrects"]) == ("accepted", "F-2026-001")
    assert (accepted.data["payment_period_start"], accepted.data["payment_deadline"]) == (
        dt.date(2026, 3, 20), dt.date(2026, 4, 19))


def test_a_correction_sent_while_the_contract_is_awaited_stays_held_without_using_the_suspension() -> None:
    chain = Chain("2026-03-02")
    chain.pipe(invoice(line_total="9000.00"))
    chain.on("2026-03-05")
    chain.pipe(invoice())  # corrected, but the contract is still unknown: not the supplier's fault
    _, second = chain.read()
    assert (second.data["outcome"], _rules(second.data)) == ("suspended", [("CONTRACT-AWAITED", "BT-12")])
    assert second.data["remaining_days"] == 30  # the suspension notified on 2 March, kept
    chain.on("2026-03-16")
    chain.pipe(decp())
    (accepted,) = chain.read()
    assert (accepted.data["outcome"], accepted.data["payment_deadline"]) == ("accepted", dt.date(2026, 4, 15))


# -- the délai global de paiement of an invoice held for its contract --------------------------


def test_the_period_held_for_the_contract_reopens_for_30_days_when_it_arrives() -> None:
    # Received on 2 March (30 days: 1 April) and suspended the same day, 30 days remain. The DECP
    # arrives on 10 April, after the first deadline: the period was stopped, a new 30-day one
    # runs from 10 April (21 days of April left, then 9 of May: 10 May).
    chain = Chain("2026-03-02")
    chain.pipe(invoice())
    (held,) = chain.read()
    assert held.data["remaining_days"] == 30
    assert chain.state()["invoices"][SUBJECT]["suspension"] == {
        "on": "2026-03-02", "deadline_before": "2026-04-01", "remaining": 30}
    chain.on("2026-04-10")
    assert chain.read() == []
    chain.pipe(decp())
    (accepted,) = chain.read()
    assert (accepted.data["payment_period_start"], accepted.data["payment_period_days"],
            accepted.data["payment_deadline"]) == (dt.date(2026, 4, 10), 30, dt.date(2026, 5, 10))
    chain.on("2026-05-10")
    assert chain.read() == []
    chain.on("2026-05-11")
    (exceeded,) = chain.read()
    assert (exceeded.type, exceeded.data["days_late"]) == ("fr.dcant.accounting.PaymentDeadlineExceeded", 1)
    chain.pipe(payment(paid_on=dt.date(2026, 5, 20), mandat=None))
    (interest,) = chain.read()
    assert (interest.data["payment_deadline"], interest.data["days_late"]) == (dt.date(2026, 5, 10), 10)


@pytest.mark.parametrize(("published", "start", "deadline"), [
    # Published on 20 March: 50 days from 20 March (11 left in March, 30 in April, 9 in May).
    ("2026-03-20", dt.date(2026, 3, 20), dt.date(2026, 5, 9)),
    # Dated 1 March but read after the check: a period never reopens before its suspension
    # (12 March), so the balance runs to the first deadline, 1 May.
    ("2026-03-01", dt.date(2026, 3, 12), dt.date(2026, 5, 1)),
])
def test_a_longer_balance_is_kept_while_the_contract_is_awaited(published: str, start: dt.date,
                                                                 deadline: dt.date) -> None:
    # A 60-day buyer receives the invoice on 2 March (deadline 1 May) and checks it on 12 March:
    # 50 days remain (19 in March, 30 in April, 1 in May), more than 30, so they are kept (art. 10).
    chain = Chain("2026-03-12", payment_days=60)
    chain.pipe(invoice(received=at("2026-03-02")))
    (held,) = chain.read()
    assert held.data["remaining_days"] == 50
    chain.on("2026-03-20")
    chain.pipe(dataclasses.replace(decp(), time=at(published)))
    (accepted,) = chain.read()
    assert (accepted.data["payment_period_start"], accepted.data["payment_period_days"],
            accepted.data["payment_deadline"]) == (start, 50, deadline)


def test_an_invoice_naming_no_contract_is_still_rejected() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(invoice(contract=None))
    chain.pipe(decp())
    (checked,) = chain.read()
    assert (checked.data["outcome"], _rules(checked.data)) == ("rejected", [("CONTRACT-UNKNOWN", "BT-13")])
    assert chain.state(CONTRACT)["invoices"] == {}
