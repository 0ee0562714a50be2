"""``bus config``: the settings in force, where each comes from, secrets masked."""

from __future__ import annotations

import os

import typer
from pydantic import SecretStr
from rich.table import Table

from bus._settings import BusSettings

from ._common import console, settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("config")
    def config() -> None:
        """Show every BUS_* setting in force (secrets masked) and whether it comes from the environment."""
        s = settings()
        table = Table("setting", "value", "from", "meaning")
        for name, field in BusSettings.model_fields.items():
            value = getattr(s, name)
            shown = "**********" if isinstance(value, SecretStr) else ("" if value is None else str(value))
            env = f"BUS_{name.upper()}"
            table.add_row(env, shown, "environment" if env in os.environ else "default", field.description or "")
        console.print(table)
        console.print(f"bootstrap servers in use: [bold]{s.bootstrap}[/] ({'embedded broker' if s.embedded else 'external cluster'})")
