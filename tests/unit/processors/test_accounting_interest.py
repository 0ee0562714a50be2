"""Late-payment interest and the 40 € indemnity (décret 2013-269 art. 8-9), through the driver,
checked against hand computations with the rates of the ECB table."""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal

import pytest

from bus import ConfigurationError
from processors._late_interest import (
    RATES_PATH,
    default_rate_table,
    half_year_start,
    late_payment_interest,
    rate_table,
)

from .accounting_factories import HOLDER, Chain, decp, invoice, payment, service_fait

SUBJECT = f"invoice:{HOLDER}:F-2026-001"


def _hand(principal: str, percent: str, days: int) -> Decimal:
    return (Decimal(principal) * Decimal(percent) / 100 * days / 365).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.mark.parametrize(("half_year", "ecb"), [
    ("2022-01-01", "0.00"), ("2022-07-01", "0.00"),  # the 27 July 2022 rise came after 1 July
    ("2023-01-01", "2.50"), ("2023-07-01", "4.00"),
    ("2024-01-01", "4.50"), ("2024-07-01", "4.25"),
    ("2025-01-01", "3.15"), ("2025-07-01", "2.15"),
])
def test_rate_in_force_on_the_first_day_of_each_half_year(half_year: str, ecb: str) -> None:
    rate, provisional = default_rate_table().rate_on(dt.date.fromisoformat(half_year))
    assert (rate, provisional) == (Decimal(ecb), False)


def test_the_shipped_table_is_sorted_and_documented() -> None:
    document = json.loads(RATES_PATH.read_text(encoding="utf-8"))
    assert "ecb.europa.eu" in document["source"]
    dates = [c["effective"] for c in document["changes"]]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    assert dt.date.fromisoformat(document["complete_until"]) >= dt.date(2025, 12, 31)


def test_late_payment_interest_and_indemnity() -> None:
    chain = Chain("2024-05-02")
    chain.pipe(decp())
    chain.pipe(invoice())  # 10 000 € HT, 12 000 € TTC, received 2 May 2024: deadline 1 June
    chain.pipe(service_fait())
    chain.read()
    chain.on("2024-06-02")
    (exceeded,) = chain.read()
    assert exceeded.data["interest_rate"] == "12.50"  # ECB 4.50 on 1 January 2024 + 8
    chain.on("2024-07-15")
    chain.pipe(payment(amount="12000.00", paid_on=dt.date(2024, 7, 15)))
    (due,) = chain.read()
    assert (due.type, due.subject) == ("fr.dcant.accounting.LatePaymentInterestDue", SUBJECT)
    data = due.data
    assert (data["payment_deadline"], data["payment_date"], data["days_late"]) == (
        dt.date(2024, 6, 1), dt.date(2024, 7, 15), 44)
    assert (data["rate_reference_date"], data["ecb_rate"], data["interest_rate"]) == (dt.date(2024, 1, 1), "4.50", "12.50")
    hand = _hand("12000.00", "12.50", 44)  # 12 000 × 12.5 % × 44 / 365 = 180.82
    assert hand == Decimal("180.82")
    assert (Decimal(data["interest_amount"]), data["indemnity"], Decimal(data["total_due"])) == (
        hand, "40.00", hand + 40)
    assert (data["mandat_number"], data["currency"], data["rate_provisional"]) == ("1042", "EUR", False)
    assert chain.state()["totals"]["late_payment"] == "220.82"


def test_interest_starting_on_1_july_takes_the_second_half_year_rate() -> None:
    chain = Chain("2024-05-31")
    chain.pipe(decp())
    chain.pipe(invoice(excl="1000.00", vat="200.00"))  # deadline 30 June: interest runs from 1 July
    chain.on("2024-07-10")
    chain.pipe(payment(amount="1200.00", paid_on=dt.date(2024, 7, 10)))
    (due,) = chain.read("LatePaymentInterestDue")
    assert (due.data["rate_reference_date"], due.data["interest_rate"], due.data["days_late"]) == (
        dt.date(2024, 7, 1), "12.25", 10)
    assert Decimal(due.data["interest_amount"]) == _hand("1200.00", "12.25", 10) == Decimal("4.03")


def test_partial_late_payments_owe_the_indemnity_once_and_a_duplicate_nothing() -> None:
    chain = Chain("2024-05-02")
    chain.pipe(decp())
    chain.pipe(invoice())
    chain.on("2024-07-15")
    first = chain.pipe(payment(amount="6000.00", paid_on=dt.date(2024, 7, 15)))
    chain.replay(first)
    chain.on("2024-08-14")
    chain.pipe(payment(amount="6000.00", paid_on=dt.date(2024, 8, 14)))
    one, two = chain.read("LatePaymentInterestDue")
    assert (one.data["days_late"], one.data["indemnity"]) == (44, "40.00")
    assert (two.data["days_late"], two.data["indemnity"]) == (74, "0.00")
    assert Decimal(two.data["interest_amount"]) == _hand("6000.00", "12.50", 74)
    entry = chain.state()["invoices"][SUBJECT]
    assert (entry["status"], entry["paid"]) == ("paid", "12000.00")


def test_payment_on_the_deadline_owes_nothing() -> None:
    chain = Chain("2024-05-02")
    chain.pipe(decp())
    chain.pipe(invoice())
    chain.pipe(payment(amount="12000.00", paid_on=dt.date(2024, 6, 1)))
    assert chain.read("LatePaymentInterestDue") == []


def test_the_rate_table_is_data_passed_to_the_chain() -> None:
    table = rate_table({"complete_until": "2024-03-31", "changes": [
        {"effective": "2023-09-20", "rate": "4.50"}, {"effective": "2024-06-12", "rate": "1.00"}]})
    chain = Chain("2024-05-31", rates=table)
    chain.pipe(decp())
    chain.pipe(invoice(excl="1000.00", vat="200.00"))
    chain.pipe(payment(amount="1200.00", paid_on=dt.date(2024, 7, 10)))
    (due,) = chain.read("LatePaymentInterestDue")
    assert (due.data["interest_rate"], due.data["rate_provisional"]) == ("9.00", True)


def test_pure_interest_function() -> None:
    table = default_rate_table()
    assert late_payment_interest(Decimal("100"), dt.date(2025, 1, 10), dt.date(2025, 1, 10), table) is None
    late = late_payment_interest(Decimal("36500.00"), dt.date(2024, 12, 31), dt.date(2025, 1, 1), table,
                                 indemnity_due=False)
    assert late is not None
    assert (late.rate_reference_date, late.rate, late.interest, late.indemnity) == (
        dt.date(2025, 1, 1), Decimal("11.15"), Decimal("11.15"), Decimal("0.00"))
    assert half_year_start(dt.date(2028, 6, 30)) == dt.date(2028, 1, 1)
    assert half_year_start(dt.date(2028, 7, 1)) == dt.date(2028, 7, 1)


def test_malformed_or_short_tables_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="malformed"):
        rate_table({"complete_until": "2025-12-31", "changes": [{"effective": "2025-13-01", "rate": "1"}]})
    with pytest.raises(ConfigurationError, match="no rate"):
        rate_table({"complete_until": "2025-12-31", "changes": []})
    with pytest.raises(ConfigurationError, match="starts on"):
        default_rate_table().rate_on(dt.date(2010, 1, 1))
