"""Tracing a dossier across families by correlation and causation, and its state at a date."""

from __future__ import annotations

import datetime as dt

from bus.ledger._replay import Opened
from bus.ledger._trace import collect, state_at

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def ev(id_: str, subject: str, type_: str, day: int, *, corr=None, cause=None, ok=True, data=None) -> Opened:
    return Opened("t", 0, day, None, ok, id=id_, type=f"fr.dcant.{type_}", subject=subject,
                  time=(T0 + dt.timedelta(days=day)).isoformat(), correlationid=corr, causationid=cause,
                  data=data or {})


EVENTS = [
    ev("n1", "notice:P1", "procurement.NoticePublished", 0, corr="proc-1"),
    ev("a1", "award:P1", "procurement.Awarded", 5, corr="proc-1", cause="n1"),
    ev("c1", "contract:C1", "procurement.ContractNotified", 6, corr="proc-1", cause="a1"),
    ev("i1", "invoice:S:F1", "invoices.InvoiceReceived", 20, corr="inv-1", cause="c1"),
    ev("i2", "invoice:S:F1", "invoices.InvoiceChecked", 21, corr="inv-1", data={"status": "CHECKED"}),
    ev("m1", "bordereau:B:2026:7", "accounting.MandatIssued", 25, corr="mandat-7", cause="i2"),
    ev("p1", "bordereau:B:2026:7", "accounting.Paid", 40, corr="mandat-7"),
    ev("x1", "invoice:S:F9", "invoices.InvoiceReceived", 22, corr="inv-9"),
    ev("f1", "invoice:S:F1", "invoices.InvoicePaid", 41, corr="inv-1", ok=False),
]


def test_an_invoice_brings_its_contract_procurement_and_mandat():
    timeline = collect("invoice:S:F1", EVENTS)
    assert [e.id for e in timeline] == ["n1", "a1", "c1", "i1", "i2", "m1", "p1"]


def test_unrelated_and_unverified_events_stay_out():
    ids = {e.id for e in collect("invoice:S:F1", EVENTS)}
    assert "x1" not in ids and "f1" not in ids
    assert [e.id for e in collect("invoice:S:F9", EVENTS)] == ["x1"]


def test_state_at_a_date_is_the_last_own_event_up_to_then():
    timeline = collect("invoice:S:F1", EVENTS)
    assert state_at("invoice:S:F1", timeline, T0 + dt.timedelta(days=20, hours=1)).state == "InvoiceReceived"
    later = state_at("invoice:S:F1", timeline, T0 + dt.timedelta(days=30))
    assert later.state == "CHECKED" and later.event.id == "i2"
    assert state_at("invoice:S:F1", timeline, T0).state is None
