"""Phase 5b of the demo: the barometer has measured this run's exchanges."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from bus._opendata import FLOW_FIELDS, FLOW_LABELS, LABELS

from ._stage import Stage

__all__ = ["barometer_phase"]

#: Events whose figures the summary reports; the phase waits until the barometer counted each.
#: (Archive states count only once the archives service replied: ARCHIVED or REOPENED.)
MEASURED = ("CandidatureEnriched", "LatePaymentInterestDue", "ActBecameExecutory", "ArchiveStateChanged")
_COUNTED_STATES = ("ARCHIVED", "REOPENED")


async def barometer_phase(stage: Stage, console: Console) -> dict[str, Any]:
    """Wait for the barometer's update caused by each measured event of this run; print the cells."""
    console.rule("[bold]5b. Barometer of digital public services")
    watcher = stage.watcher
    causes = {e.id for name in MEASURED for e in watcher.of(name)
              if not e.type.endswith("ArchiveStateChanged") or e.data["state"] in _COUNTED_STATES}

    def measured() -> list[Any] | None:
        updates = watcher.of("BarometerUpdated", where=lambda e: e.envelope.causationid in causes)
        return updates if {u.envelope.causationid for u in updates} >= causes else None

    updates = await watcher.expect(measured, "barometer figures for this run's events")
    latest = {u.subject: u.data for u in watcher.of("BarometerUpdated")}
    for subject in sorted({u.subject for u in updates}):
        cell = latest[subject]
        table = Table("indicateur", "valeur", title=f"{cell['administration']} · {FLOW_LABELS[cell['flow']]} · "
                                                    f"{cell['month']}")
        for name in FLOW_FIELDS[cell["flow"]]:
            table.add_row(LABELS[name], str(cell[name]))
        console.print(table)
    return {"barometer cells updated": len({u.subject for u in updates})}
