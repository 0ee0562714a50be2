"""``bus bench``: run the benchmark suite (``bench/`` of a checkout) and print its figures.

Every figure is a ratio to a baseline measured in the same run on the same machine and data;
the suite starts its own embedded broker on free ports unless ``BUS_BOOTSTRAP_SERVERS`` is set.
Progress goes to stderr; stdout gets one JSON object (``--json``) or a table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from bus._errors import ConfigurationError

from ._common import console, err_console

__all__ = ["register"]

CHECKOUT = Path(__file__).resolve().parents[2]


def _suite() -> Any:
    """The suite module, from the checkout the bus runs from (benchmarks are not installed)."""
    if not (CHECKOUT / "bench" / "suite.py").is_file():
        raise ConfigurationError("the benchmarks are not here: `bus bench` runs from a checkout of the bus",
                                 hint=f"run it from a clone (bench/ next to {CHECKOUT / 'bus'})")
    if str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))
    from bench import suite

    return suite


def _table(result: dict[str, dict[str, Any]]) -> Table:
    table = Table("benchmark", "value", "baseline", "ratio", "unit", title="bus bench (ratios to baselines of this run)")
    for name, e in result.items():
        table.add_row(name, *("—" if e.get(k) is None else str(e[k]) for k in ("value", "baseline", "ratio", "unit")))
    return table


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        quick: bool = typer.Option(False, "--quick", help="smaller runs, under 3 minutes (method says so)"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object on stdout"),
        only: list[str] = typer.Option(None, "--only", help="an entry (ingest_vs_bare) or group (processors); repeatable"),
        corpus: Path = typer.Option(None, help="the official corpus (default: ../shared/corpus of the checkout)"),
    ) -> None:
        """Run every benchmark on the embedded broker; print value, baseline, ratio, unit, method."""
        suite = _suite()
        try:
            suite.select(only or [])
        except ValueError as exc:
            raise ConfigurationError(str(exc), hint="see `python -m bench --help`") from exc
        with err_console.status("bus bench: starting") as status:
            def progress(message: str) -> None:
                status.update(f"bus bench: {message}")
                err_console.log(message)

            result = suite.run(quick=quick, only=only or [], corpus=corpus or suite.DEFAULT_CORPUS, progress=progress)
        if as_json:
            sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return
        console.print(_table(result))
        for name, e in result.items():
            console.print(f"[bold]{name}[/]: {e.get('method')}")
