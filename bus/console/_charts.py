"""The barometer's charts as server-side SVG (pygal): titled, with units, one bar per month."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

__all__ = ["CHARTS", "chart"]

#: (flow, figure, title, unit) of each chart on the barometer page.
CHARTS = (
    ("procurement", "documents_reused", "Pièces réutilisées et demandées aux entreprises", "pièces"),
    ("invoices", "payment_delay_days_average", "Délai global de paiement moyen", "jours"),
    ("invoices", "late_interest", "Intérêts moratoires versés", "euros"),
    ("acts", "transmission_to_executory_days_average", "Délai de la transmission au caractère exécutoire", "jours"),
)


#: An average across administrations is the ratio of the summed totals, not the sum of their averages.
AVERAGES = {"payment_delay_days_average": ("payment_delay_days_total", "payments"),
            "transmission_to_executory_days_average": ("transmission_to_executory_days_total", "acts_executory")}


def _pygal() -> Any:
    """pygal, without the legacy ``sys.meta_path`` finder it adds on import (for its map plugins,
    unused here): that finder makes every later failed import in the process raise ImportWarning."""
    import sys

    import pygal

    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]
    return pygal


def chart(cells: list[dict[str, Any]], flow: str, figure: str, title: str, unit: str) -> str:
    """An SVG bar chart of ``figure`` per month (summed over administrations), as text to inline."""
    pygal = _pygal()
    from pygal.style import Style

    style = Style(background="white", plot_background="white", foreground="#1e1e1e", foreground_strong="#000",
                  foreground_subtle="#3a3a3a", colors=("#000091", "#c9191e"), font_family="sans-serif")
    series: dict[str, dict[str, Decimal]] = defaultdict(dict)
    figures = [figure, "documents_requested"] if figure == "documents_reused" else [figure]
    months = sorted({c["month"] for c in cells if c["flow"] == flow})
    for cell in cells:
        if cell["flow"] != flow:
            continue
        for name in figures:
            value = cell.get(AVERAGES[name][0] if name in AVERAGES else name)
            if value is not None:
                series[name][cell["month"]] = series[name].get(cell["month"], Decimal(0)) + Decimal(str(value))
    if figure in AVERAGES:
        counts: dict[str, Decimal] = defaultdict(Decimal)
        for cell in cells:
            if cell["flow"] == flow and cell.get(AVERAGES[figure][1]):
                counts[cell["month"]] += Decimal(str(cell[AVERAGES[figure][1]]))
        series[figure] = {m: (total / counts[m]).quantize(Decimal("0.1")) for m, total in series[figure].items()
                          if counts.get(m)}
    bar = pygal.Bar(style=style, title=f"{title} ({unit})", x_title="mois", y_title=unit, width=640, height=320,
                    disable_xml_declaration=True, show_legend=len(figures) > 1, legend_at_bottom=True,
                    js=[], print_values=True)
    bar.x_labels = months
    labels = {"documents_reused": "réutilisées", "documents_requested": "demandées"}
    for name in figures:
        # a month without the figure (no payment that month) has no bar, not a bar at 0
        bar.add(labels.get(name, title), [float(v) if (v := series[name].get(m)) is not None else None for m in months])
    return str(bar.render(is_unicode=True))
