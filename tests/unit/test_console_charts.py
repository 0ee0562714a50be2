"""The console's barometer charts (server-side SVG): a month without the figure draws no bar."""

from __future__ import annotations

import re

from bus.console._charts import chart


def bars(svg: str) -> int:
    return len(re.findall(r'class="rect reactive tooltip-trigger"', svg))


def test_a_month_without_the_figure_has_no_bar_not_a_bar_at_zero():
    cells = [{"flow": "invoices", "month": "2025-05", "payment_delay_days": 40},
             {"flow": "invoices", "month": "2025-06", "payment_delay_days": None},
             {"flow": "invoices", "month": "2025-07", "payment_delay_days": 0}]
    svg = chart(cells, "invoices", "payment_delay_days", "délai de paiement", "jours")
    assert "2025-06" in svg  # the month is on the axis
    assert bars(svg) == 2  # May (40) and July (a real 0), nothing for June
