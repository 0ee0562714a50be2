"""``bus demo``: play the demonstration on the embedded broker (or BUS_BOOTSTRAP_SERVERS)."""

from __future__ import annotations

from pathlib import Path

import typer

from bus._errors import BusError

from ._common import console, run, settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(out: Path = typer.Option(None, "--out", help="write every native document the bus produced here"),
             secure: bool = typer.Option(False, "--secure", envvar="BUS_SECURE",
                                         help="on the secure broker (`bus broker start --secure`): a certificate "
                                              "per party from the site's CA, ACLs applied from the directory"),
             metrics_port: int = typer.Option(None, "--metrics-port", envvar="BUS_DEMO_METRICS_PORT",
                                              help="the demo's worker serves /metrics and /health/* on this port")) -> None:
        """Play a commune's exchanges end to end on the bus and print a summary (start the broker first)."""
        from bus.demo import run_demo

        s = settings()
        summary = run(run_demo(s, out=out, console=console, secure=secure, metrics_port=metrics_port))
        if summary.get("forgeries dead-lettered", 0) < 1 or summary["companies verified"] != summary["companies published"]:
            raise BusError("the demo did not end as expected", hint="see the tables above")
