"""The ``bus`` command: one Typer application, one module per command group.

Every command turns a :class:`bus.BusError` into exit status 2 and one line on stderr that
names what failed and what to do; a traceback means a bug in the bus itself.
"""

from __future__ import annotations

import sys

import typer

from bus._errors import BusError

from . import _commands

__all__ = ["app", "main"]

app = typer.Typer(
    name="bus",
    help="Inter-administration exchange bus on Apache Kafka: signed CloudEvents + Avro pivot events.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for register in _commands.REGISTRARS:
    register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    try:
        app(args=argv, standalone_mode=False)
    except BusError as err:
        print(f"bus: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("bus: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
