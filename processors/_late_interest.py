"""Late-payment interest (intérêts moratoires) and the fixed recovery indemnity.

Décret n° 2013-269 du 29 mars 2013, art. 8 (code de la commande publique R. 2192-31): the
interest rate is the rate the European Central Bank applied to its most recent main
refinancing operations, *in force on the first day of the half-year of the calendar year in
which the interest began to run*, plus eight percentage points. Interest runs from the day after
the payment period expired to the day of payment included, pro rata temporis on the amount paid
late (TTC): ``amount × rate × days / 365``. Art. 9 (R. 2192-32): a fixed indemnity for recovery
costs of 40 euros is due on top, once per late payment request.

The ECB rate history is data (``processors/data/ecb_mro_rates.json``): :func:`rate_table`
turns the parsed document into a :class:`RateTable` and is pure; :func:`default_rate_table`
reads the shipped file, for shells and tests. Amounts are :class:`decimal.Decimal` and interest
is rounded to the cent, half up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bus._errors import ConfigurationError

from ._payment_deadline import days_late, interest_start

__all__ = [
    "DAY_COUNT",
    "LateInterest",
    "MARGIN_POINTS",
    "RATES_PATH",
    "RECOVERY_INDEMNITY",
    "RateTable",
    "default_rate_table",
    "half_year_start",
    "late_payment_interest",
    "rate_table",
]

#: Points added to the ECB main refinancing rate (décret 2013-269 art. 8).
MARGIN_POINTS = Decimal("8")
#: Indemnité forfaitaire pour frais de recouvrement, in euros (décret 2013-269 art. 9).
RECOVERY_INDEMNITY = Decimal("40.00")
#: Interest is computed per day on a 365-day year (pro rata temporis).
DAY_COUNT = 365
RATES_PATH = Path(__file__).resolve().parent / "data" / "ecb_mro_rates.json"
_CENT = Decimal("0.01")


@dataclasses.dataclass(frozen=True, slots=True)
class RateTable:
    """ECB main refinancing rate changes (effective date, percent), oldest first.

    ``complete_until`` is the last date for which the table is known to list every change; a
    lookup after it may miss a change and is reported as provisional.
    """

    changes: tuple[tuple[dt.date, Decimal], ...]
    complete_until: dt.date
    source: str = ""

    def rate_on(self, day: dt.date) -> tuple[Decimal, bool]:
        """The rate in force on ``day`` and whether it is provisional (after ``complete_until``)."""
        rate: Decimal | None = None
        for effective, value in self.changes:
            if effective > day:
                break
            rate = value
        if rate is None:
            raise ConfigurationError(
                f"the ECB rate table starts on {self.changes[0][0]}, after {day}",
                hint="add the earlier rate changes to processors/data/ecb_mro_rates.json",
            )
        return rate, day > self.complete_until


def rate_table(document: Mapping[str, Any]) -> RateTable:
    """The :class:`RateTable` of a parsed ``ecb_mro_rates.json`` document (pure)."""
    try:
        changes = tuple(sorted(
            (dt.date.fromisoformat(entry["effective"]), Decimal(entry["rate"]))
            for entry in document["changes"]
        ))
        complete_until = dt.date.fromisoformat(document["complete_until"])
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ConfigurationError(
            f"the ECB rate table is malformed: {exc!r}",
            hint="each change needs 'effective' (YYYY-MM-DD) and 'rate' (decimal string); the table needs 'complete_until'",
        ) from exc
    if not changes:
        raise ConfigurationError("the ECB rate table lists no rate", hint="add the rate changes to the table")
    return RateTable(changes=changes, complete_until=complete_until, source=str(document.get("source", "")))


@functools.cache
def default_rate_table() -> RateTable:
    """The shipped table (``processors/data/ecb_mro_rates.json``), read once."""
    with RATES_PATH.open(encoding="utf-8") as handle:
        return rate_table(json.load(handle))


def half_year_start(day: dt.date) -> dt.date:
    """1 January or 1 July of ``day``'s half-year."""
    return dt.date(day.year, 1 if day.month <= 6 else 7, 1)


@dataclasses.dataclass(frozen=True, slots=True)
class LateInterest:
    """The computation of the interest due on one late payment, with every operand."""

    principal: Decimal
    deadline: dt.date
    paid_on: dt.date
    days_late: int
    rate_reference_date: dt.date
    ecb_rate: Decimal
    rate: Decimal
    interest: Decimal
    indemnity: Decimal
    provisional: bool

    @property
    def total(self) -> Decimal:
        return self.interest + self.indemnity


def late_payment_interest(principal: Decimal, deadline: dt.date, paid_on: dt.date, table: RateTable, *,
                          indemnity_due: bool = True) -> LateInterest | None:
    """Interest and indemnity on ``principal`` paid on ``paid_on`` for a period ending on
    ``deadline``; None when the payment is on time.

    ``indemnity_due`` is False for a second late payment of the same request: the 40 € are due
    once per request.
    """
    late = days_late(deadline, paid_on)
    if late <= 0:
        return None
    reference = half_year_start(interest_start(deadline))
    ecb, provisional = table.rate_on(reference)
    rate = ecb + MARGIN_POINTS
    interest = (principal * rate / 100 * late / DAY_COUNT).quantize(_CENT, rounding=ROUND_HALF_UP)
    return LateInterest(
        principal=principal, deadline=deadline, paid_on=paid_on, days_late=late, rate_reference_date=reference,
        ecb_rate=ecb, rate=rate, interest=interest,
        indemnity=RECOVERY_INDEMNITY if indemnity_due else Decimal("0.00"), provisional=provisional,
    )
