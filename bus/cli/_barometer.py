"""``bus barometer``: the barometer of digital public services in the terminal, and as open data."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.table import Table

from bus._catalog import default_catalog
from bus._errors import ConfigurationError
from bus._opendata import FLOW_FIELDS, FLOW_LABELS, LABELS, read_barometer, select, write_open_data

from ._common import console, run, settings

__all__ = ["register"]

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _shown(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(f"{r['reason']} ({r['count']})" for r in value) or "—"  # type: ignore[index]
    return "—" if value is None else str(value)


def register(app: typer.Typer) -> None:
    barometer = typer.Typer(help="Baromètre des services publics numériques: indicateurs par administration, "
                                 "flux et mois.", invoke_without_command=True)
    app.add_typer(barometer, name="barometer")

    @barometer.callback()
    def show(ctx: typer.Context,
             month: str = typer.Option(None, "--month", help="un mois, AAAA-MM"),
             siren: str = typer.Option(None, "--siren", help="une administration (SIREN)")) -> None:
        """Les indicateurs du baromètre, un tableau par administration, flux et mois."""
        if ctx.invoked_subcommand is not None:
            return
        if month is not None and not _MONTH.match(month):
            raise ConfigurationError(f"--month {month!r} is not a month", hint="write it AAAA-MM, e.g. 2025-06")
        cells = select(run(read_barometer(settings())), month=month, siren=siren)
        if not cells:
            console.print("Aucun indicateur (le processeur barometer a-t-il tourné ? `bus worker`)")
            return
        for cell in cells:
            table = Table("Indicateur", "Valeur", title=f"{cell['administration']} · "
                                                       f"{FLOW_LABELS[cell['flow']]} · {cell['month']}")
            for name in FLOW_FIELDS[cell["flow"]]:
                table.add_row(LABELS[name], _shown(cell[name]))
            console.print(table)

    @barometer.command("export")
    def export(out: Path = typer.Option(Path("."), "--out", help="dossier de sortie (défaut: le dossier courant)"),
               month: str = typer.Option(None, "--month", help="un mois, AAAA-MM"),
               siren: str = typer.Option(None, "--siren", help="une administration (SIREN)")) -> None:
        """Écrire le baromètre en données ouvertes: barometre.csv, barometre.json, datapackage.json."""
        cells = select(run(read_barometer(settings())), month=month, siren=siren)
        for path in write_open_data(cells, out, default_catalog()):
            console.print(f"écrit {path}")
        console.print(f"{len(cells)} ligne(s)")
