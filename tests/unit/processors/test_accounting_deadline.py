"""The délai global de paiement of the accounting chain: calendar arithmetic, leap years, the
French civil date of reception, suspension and restart (décret 2013-269 art. 10), expiry timer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from processors._late_interest import default_rate_table
from processors._payment_deadline import (
    days_late,
    deadline_for,
    paris_date,
    remaining_days,
    restart_days,
)

from .accounting_factories import HOLDER, Chain, at, decp, invoice, service_fait

SUBJECT = f"invoice:{HOLDER}:F-2026-001"


@pytest.mark.parametrize(("received", "deadline"), [
    ("2028-02-10", "2028-03-11"),  # through 29 February 2028
    ("2027-02-10", "2027-03-12"),  # no 29 February in 2027
    ("2026-12-15", "2027-01-14"),  # across the year end
    ("2026-01-31", "2026-03-02"),
    ("2026-03-07", "2026-04-06"),  # received on a Saturday: weekends are not special
])
def test_thirty_calendar_days(received: str, deadline: str) -> None:
    assert deadline_for(dt.date.fromisoformat(received), 30) == dt.date.fromisoformat(deadline)


def test_a_deadline_on_a_sunday_is_not_moved() -> None:
    deadline = deadline_for(dt.date(2026, 3, 9), 27)
    assert deadline.isoweekday() == 7 and deadline == dt.date(2026, 4, 5)


@pytest.mark.parametrize(("instant", "day"), [
    (dt.datetime(2026, 1, 5, 22, 59, tzinfo=dt.UTC), dt.date(2026, 1, 5)),   # 23:59 CET
    (dt.datetime(2026, 1, 5, 23, 0, tzinfo=dt.UTC), dt.date(2026, 1, 6)),    # midnight CET
    (dt.datetime(2026, 7, 1, 21, 59, tzinfo=dt.UTC), dt.date(2026, 7, 1)),   # 23:59 CEST
    (dt.datetime(2026, 7, 1, 22, 0, tzinfo=dt.UTC), dt.date(2026, 7, 2)),    # midnight CEST
    (dt.datetime(2026, 3, 28, 23, 30, tzinfo=dt.UTC), dt.date(2026, 3, 29)),  # before the switch to summer time
    (dt.datetime(2026, 10, 24, 22, 30, tzinfo=dt.UTC), dt.date(2026, 10, 25)),  # summer time until 01:00 UTC
    (dt.datetime(2026, 10, 25, 22, 30, tzinfo=dt.UTC), dt.date(2026, 10, 25)),  # winter time again
    (dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), dt.date(2027, 1, 1)),
])
def test_reception_date_is_the_civil_date_in_france(instant: dt.datetime, day: dt.date) -> None:
    assert paris_date(instant) == day


def test_suspension_arithmetic() -> None:
    assert remaining_days(dt.date(2026, 4, 1), dt.date(2026, 3, 2)) == 30
    assert remaining_days(dt.date(2026, 4, 1), dt.date(2026, 4, 3)) == 0
    assert restart_days(12) == 30 and restart_days(50) == 50
    assert days_late(dt.date(2026, 4, 1), dt.date(2026, 4, 1)) == 0
    assert days_late(dt.date(2026, 4, 1), dt.date(2026, 4, 2)) == 1


def test_leap_year_deadline_and_its_expiry_announced_once() -> None:
    chain = Chain("2028-02-10")
    chain.pipe(decp())
    chain.pipe(invoice())
    (checked,) = chain.read()
    assert checked.data["payment_deadline"] == dt.date(2028, 3, 11)
    chain.on("2028-03-11", hour=22)  # 23:00 in Paris on the last day: still on time
    assert chain.read() == []
    chain.on("2028-03-12")
    (exceeded,) = chain.read()
    assert (exceeded.type, exceeded.subject) == ("fr.dcant.accounting.PaymentDeadlineExceeded", SUBJECT)
    assert exceeded.envelope.causationid == chain.state()["invoices"][SUBJECT]["cause"]
    assert (exceeded.data["payment_deadline"], exceeded.data["observed_on"], exceeded.data["days_late"]) == (
        dt.date(2028, 3, 11), dt.date(2028, 3, 12), 1)
    assert exceeded.data["outstanding_amount"] == "12000.00"
    assert Decimal(exceeded.data["interest_rate"]) == default_rate_table().rate_on(dt.date(2028, 1, 1))[0] + 8
    chain.on("2028-04-30")
    assert chain.read() == []


def test_reception_late_in_the_evening_counts_from_the_french_date() -> None:
    chain = Chain("2026-12-31")
    chain.pipe(decp())
    chain.pipe(invoice(received=dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)))  # 00:30 on 1 January in Paris
    (checked,) = chain.read()
    assert (checked.data["received_date"], checked.data["payment_deadline"]) == (dt.date(2027, 1, 1), dt.date(2027, 1, 31))


def test_suspended_then_corrected_invoice_restarts_a_full_period() -> None:
    chain = Chain("2026-03-02")
    chain.pipe(decp())
    chain.pipe(invoice(line_total="9000.00"))
    (suspended,) = chain.read()
    assert (suspended.data["outcome"], suspended.data["remaining_days"]) == ("suspended", 30)
    chain.on("2026-04-10")  # past the first deadline (1 April): the clock is stopped
    assert chain.read() == []
    chain.pipe(invoice())  # the same BT-1, corrected
    (accepted,) = chain.read()
    data = accepted.data
    assert (data["outcome"], data["corrects"]) == ("accepted", "F-2026-001")
    assert (data["payment_period_start"], data["payment_period_days"], data["payment_deadline"]) == (
        dt.date(2026, 4, 10), 30, dt.date(2026, 5, 10))
    chain.on("2026-05-10")
    assert chain.read() == []
    chain.on("2026-05-11")
    assert [r.type for r in chain.read()] == ["fr.dcant.accounting.PaymentDeadlineExceeded"]


def test_a_new_invoice_referencing_the_suspended_one_replaces_it() -> None:
    chain = Chain("2026-03-02")
    chain.pipe(decp(amount="10000.00"))
    chain.pipe(invoice(line_total="9000.00"))
    chain.on("2026-03-09")
    chain.pipe(invoice("F-2026-001-C", preceding="F-2026-001"))
    suspended, corrected = chain.read()
    assert suspended.data["outcome"] == "suspended"
    assert (corrected.data["outcome"], corrected.data["corrects"], corrected.data["payment_deadline"]) == (
        "accepted", "F-2026-001", dt.date(2026, 4, 8))
    old = chain.state()["invoices"][SUBJECT]
    assert (old["status"], old["replaced_by"]) == ("replaced", f"invoice:{HOLDER}:F-2026-001-C")
    assert chain.state()["totals"]["invoiced"] == "10000.00"  # the replaced invoice does not count
    chain.pipe(service_fait("F-2026-001"))
    assert chain.read() == []  # the replaced invoice is never mandated


def test_the_period_can_be_suspended_only_once() -> None:
    chain = Chain("2026-03-02")
    chain.pipe(decp())
    chain.pipe(invoice(line_total="9000.00"))
    chain.pipe(invoice(line_total="9500.00"))  # "corrected", still wrong
    _, second = chain.read()
    assert second.data["outcome"] == "rejected"
    assert [f["rule"] for f in second.data["findings"]][-1] == "SUSPENSION-USED"
    assert second.data["lifecycle_status"] == "210"


def test_a_longer_balance_is_kept_after_a_suspension() -> None:
    # A 60-day buyer (entreprise publique) suspends ten days after reception: 50 days remain,
    # more than 30, so the new period is 50 days (décret 2013-269 art. 10).
    chain = Chain("2026-03-12", payment_days=60)
    chain.pipe(decp())
    chain.pipe(invoice(line_total="9000.00", received=at("2026-03-02")))
    (suspended,) = chain.read()
    assert suspended.data["remaining_days"] == 50
    chain.on("2026-03-20")
    chain.pipe(invoice())
    (accepted,) = chain.read()
    assert (accepted.data["payment_period_days"], accepted.data["payment_deadline"]) == (50, dt.date(2026, 5, 9))


def test_a_suspended_or_rejected_invoice_never_expires() -> None:
    chain = Chain("2026-03-02")
    chain.pipe(decp(amount="1.00"))
    chain.pipe(invoice("F-1"))  # rejected: ceiling
    chain.pipe(decp())
    chain.pipe(invoice("F-2", line_total="1.00"))  # suspended
    chain.read()
    chain.on("2026-12-31")
    assert chain.read() == []
