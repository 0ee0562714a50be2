"""``bus demo``: a commune's exchanges played on a real broker, end to end, with fictional data.

Phase 1 (the spine): companies from SIRENE signed, published, read back verified, and a forged
record dead-lettered with its original bytes. Later phases play the processors' flows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bus._runtime import BusContext
from bus._settings import BusSettings

from ._keys import demo_keys
from ._reference import reference_phase

__all__ = ["run_demo"]


async def run_demo(settings: BusSettings, *, out: Path | None = None, console: Console | None = None) -> dict[str, Any]:
    """Play the demo on the cluster of ``settings``; returns the summary figures."""
    console = console or Console()
    ctx = await BusContext.connect(settings)
    console.print(f"bus on [bold]{settings.bootstrap}[/], {len(ctx.catalog)} pivot schemas in the catalog")
    keys = await demo_keys(ctx)
    summary: dict[str, Any] = {}
    summary.update(await reference_phase(ctx, keys, console))
    table = Table("figure", "value", title="demo summary")
    for name, value in summary.items():
        table.add_row(name, str(value))
    console.rule("[bold]Summary")
    console.print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    return summary
