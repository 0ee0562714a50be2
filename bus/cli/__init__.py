"""The ``bus`` command: one Typer application, one module per command group.

Every command turns a :class:`bus.BusError` (no broker answering included), a usage error or a
missing or unreadable file into exit status 2 and one line on stderr that names what failed and
what to do; a traceback means a bug in the bus itself. SIGTERM and SIGHUP (a service manager, a
CI timeout, a closed terminal) interrupt a command as Ctrl-C does, so it stops what it started (the
demo its worker) before exiting with status 130; commands that serve until stopped (worker, gateway,
ledger, console) install their own handlers.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

import pydantic
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


def _configure_logging() -> None:
    """Our warnings on stderr; aiokafka's transient retry chatter only with BUS_LOG_LEVEL=DEBUG."""
    level = os.environ.get("BUS_LOG_LEVEL", "WARNING").upper()
    if os.environ.get("BUS_LOG_FORMAT", "text").lower() == "json":
        # One JSON object a line, with the record's extras (ce_id, dossier, processor) as fields:
        # one dossier's path can be followed across processes with a JSON log tool.
        from pythonjsonlogger.json import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"levelname": "level", "name": "logger"}))
        logging.basicConfig(level=level, handlers=[handler])
    else:
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        # aiokafka logs every retried request (leader elections, metadata refresh) at ERROR;
        # real failures reach the user as typed DeliveryErrors instead. A broker that cannot be
        # reached is said in one line per period (bus._quiet), not ten a second.
        from bus._quiet import BrokerChatter

        logging.getLogger("aiokafka").setLevel(logging.ERROR)
        chatter = BrokerChatter()
        for handler in logging.getLogger().handlers:
            handler.addFilter(chatter)
        logging.getLogger("confluent_kafka").setLevel(logging.CRITICAL)
    # pypdf warns about every repairable oddity of a PDF; the adapter reports what matters.
    logging.getLogger("pypdf").setLevel(logging.ERROR)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    _configure_logging()
    if threading.current_thread() is threading.main_thread():  # (signal handlers are the main thread's)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _interrupt)
    try:
        code = app(args=argv, standalone_mode=False)
        if code == 130:  # typer's answer to a KeyboardInterrupt (Ctrl-C, or SIGTERM/SIGHUP above)
            print("bus: interrupted", file=sys.stderr)
        if isinstance(code, int) and code:
            sys.exit(code)
    except BusError as err:
        _fail(str(err))
    except KeyboardInterrupt:
        print("bus: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        _fail(f"{exc.filename or exc}: {exc.strerror or exc} — check the path and its permissions")
    except pydantic.ValidationError as exc:  # a BUS_* setting that does not parse
        _fail(_setting_error(exc))
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        from bus._settings import BusSettings
        from bus._tls import refusal

        # a handshake or ACL refusal met by a reader that does not translate errors itself
        refused = refusal(exc, BusSettings(), action="run this command") if _is_kafka_error(exc) else None
        if refused is not None:
            _fail(str(refused))
        if isinstance(exc, typer.Abort):
            sys.exit(1)
        if not _is_usage_error(exc):
            raise
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "bus"
        _fail(f"{exc.format_message()} — see `{where} --help`")  # type: ignore[attr-defined]


def _setting_error(exc: pydantic.ValidationError) -> str:
    """``BUS_X: what is wrong (got 'value')`` for the first invalid setting, secrets never echoed."""
    first = exc.errors(include_url=False)[0]
    name = "_".join(str(p) for p in first.get("loc", ())) or "setting"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    secret = any(w in name for w in ("password", "secret", "passphrase", "token"))
    given = "" if secret or "input" not in first else f" (got {str(first['input'])[:80]!r})"
    return f"BUS_{name.upper()}: {message}{given} — fix that setting (see the README's settings table)"


def _is_kafka_error(exc: BaseException) -> bool:
    from aiokafka.errors import KafkaError

    return isinstance(exc, KafkaError)


def _is_usage_error(exc: Exception) -> bool:
    """A click exception (typer may vendor its own click, so the class is not importable reliably)."""
    return callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int)


def _fail(line: str) -> None:
    """Exit 2 with one line on stderr (newlines inside the message are folded)."""
    print("bus: error: " + " ".join(line.split()), file=sys.stderr)
    sys.exit(2)
