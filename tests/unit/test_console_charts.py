"""The console's barometer charts (server-side SVG): a month without the figure draws no bar."""

from __future__ import annotations

import re

from bus.console._charts import chart


def bars(svg: str) -> int:
    return len(re.findall(r'class="rect reactive tooltip-trigger"', svg))


def test_a_month_without_the_figure_has_no_bar_not_a_bar_at_zero():
    cells = [{"flow": "invoices", "month": "2025-05", "late_interest": 40},
             {"flow": "invoices", "month": "2025-06", "late_interest": None},
             {"flow": "invoices", "month": "2025-07", "late_interest": 0}]
    svg = chart(cells, "invoices", "late_interest", "intérêts moratoires", "euros")
    assert "2025-06" in svg  # the month is on the axis
    assert bars(svg) == 2  # May (40) and July (a real 0), nothing for June


def test_an_average_over_administrations_weighs_each_by_its_count():
    # commune A: 1 payment, 60 days; commune B: 3 payments, 20 days each → (60 + 60) / 4 = 30 days
    cells = [{"flow": "invoices", "month": "2025-05", "administration": "A", "payments": 1,
              "payment_delay_days_total": 60, "payment_delay_days_average": "60.0"},
             {"flow": "invoices", "month": "2025-05", "administration": "B", "payments": 3,
              "payment_delay_days_total": 60, "payment_delay_days_average": "20.0"},
             {"flow": "invoices", "month": "2025-06", "administration": "A", "payments": 0,
              "payment_delay_days_total": 0, "payment_delay_days_average": None}]
    svg = chart(cells, "invoices", "payment_delay_days_average", "délai de paiement moyen", "jours")
    assert bars(svg) == 1  # June: no payment, no bar
    assert re.search(r">30(\.0)?<", svg), "the weighted average, not 60 + 20"
