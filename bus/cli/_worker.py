"""``bus worker``: run processor cores in a faust worker until SIGINT or SIGTERM.

``--processor`` names a core of :func:`processors.all_cores` (default: all of them) or
``module:attribute``, a core class (instantiated without arguments) or a factory taking the
settings. Workers started with the same ``BUS_CONSUMER_GROUP`` and ``BUS_TOPIC_PREFIX`` share
the partitions; a stopped worker's partitions, and their states, move to the others.
``--workers N`` starts N worker processes of this command and waits for them.

A first SIGINT/SIGTERM lets the batch in flight finish and stops the worker cleanly (faust
commits and leaves the group). If that takes longer than ``--stop-grace`` seconds (the broker is
gone, say) or a second signal comes, the process exits at once: what it had not committed is
redelivered to the next worker, and the states' processed ids absorb it, as after a crash.
``--metrics-port`` serves Prometheus metrics and the health endpoints (``/health/live``,
``/health/ready``); ``BUS_LOG_FORMAT=json`` writes the logs as JSON lines.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import inspect
import os
import signal
import subprocess
import sys
from typing import Any

import typer

from bus._errors import ConfigurationError
from bus._settings import BusSettings
from bus.client import probe_broker

from ._common import err_console, run, settings

__all__ = ["load_cores", "register"]


def load_cores(names: list[str], settings: BusSettings) -> list[Any]:
    """The cores (or bindings) named on the command line; every registered core when none is."""
    from processors import all_cores

    cores = all_cores()
    out = []
    for name in names or sorted(cores):
        if name in cores:
            try:
                out.append(cores[name](settings))
            except ConfigurationError as err:
                if names:  # asked for by name: its configuration must be there
                    raise
                # The default set runs what is configured and says what it leaves out.
                err_console.print(f"[yellow]not running {name}[/]: {err.message} — {err.hint}")
            continue
        module_name, _, attribute = name.partition(":")
        if not attribute:
            raise ConfigurationError(f"unknown processor {name!r}",
                                     hint=f"use one of {', '.join(sorted(cores))} or module:Class")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(f"cannot load processor {name!r}: {exc}",
                                     hint="give an importable module:Class or module:factory") from exc
        out.append(factory() if inspect.isclass(factory) else factory(settings))
    return out


def on_stop_signal(stop: asyncio.Event, loop: asyncio.AbstractEventLoop, grace: float) -> None:
    """First signal: stop cleanly, within ``grace`` seconds. Second signal, or grace over: exit now."""
    if stop.is_set():
        abandon("a second stop signal")
        return
    stop.set()
    err_console.print(f"worker: stopping: the batch in flight finishes (at most {grace:g} s), then the worker "
                      "commits and leaves its group; a second signal exits at once")
    sys.stderr.flush()
    loop.call_later(grace + 5, abandon, f"still stopping after {grace:g} s")


def abandon(why: str) -> None:
    err_console.print(f"worker: {why}: exiting without a clean stop; the input it had not committed goes "
                      "to the next worker (processed ids absorb the repeats: nothing is lost)")
    sys.stderr.flush()
    os._exit(1)


async def _serve(s: BusSettings, cores: list[Any], *, stop_grace: float = 30.0, **options: Any) -> None:
    from processors.app import run_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_stop_signal, stop, loop, stop_grace)
    try:
        await run_worker(s, cores, stop=stop, **options)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _fan_out(count: int) -> int:
    """Run ``count`` copies of this command with ``--workers 1``; forward signals; worst exit status."""
    argv = list(sys.argv[1:])
    for i, arg in enumerate(argv):
        if arg == "--workers":
            argv[i + 1] = "1"
        elif arg.startswith("--workers="):
            argv[i] = "--workers=1"
    command = [sys.argv[0], *argv] if sys.argv[0].endswith("bus") else [sys.executable, "-m", "bus.cli._worker", *argv]
    children = [subprocess.Popen(command) for _ in range(count)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return max(child.wait() for child in children)


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        processor: list[str] = typer.Option(None, "--processor", "-p",
                                            help="core to run (name in processors.CORES, or module:Class); repeatable"),
        workers: int = typer.Option(1, "--workers", min=1, help="worker processes to start in this group"),
        timer_interval: float = typer.Option(60.0, help="seconds between on_time calls (0: no timer)"),
        web_port: int = typer.Option(None, help="enable faust's web server on this port"),
        clock: str = typer.Option("processing", "--clock",
                                  help="processing: timers on the wall clock; event: on the stream's time "
                                       "(a replayed year meets each deadline on its day)"),
        lateness: float = typer.Option(3600.0, "--lateness",
                                       help="with --clock event: seconds an event may lag behind its partition"),
        idle: float = typer.Option(300.0, "--idle",
                                   help="with --clock event: seconds of silence, every input read, after which "
                                        "time follows the wall clock (0: never)"),
        metrics_port: int = typer.Option(None, "--metrics-port",
                                         help="serve /metrics, /health/live and /health/ready on this port"),
        metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="address of the metrics server"),
        ready_lag: int = typer.Option(1000, "--ready-lag", min=0,
                                      help="/health/ready: most records an owned partition may be behind"),
        stop_grace: float = typer.Option(30.0, "--stop-grace", min=0,
                                         help="seconds a clean stop may take before the worker exits anyway "
                                              "(a second signal exits at once)"),
    ) -> None:
        """Run processor cores (faust) until SIGINT/SIGTERM; states recover from their changelogs."""
        s = settings()
        run(probe_broker(s))  # no broker: one line and exit 2, before any worker starts
        if workers > 1:
            raise typer.Exit(_fan_out(workers))
        cores = load_cores(processor or [], s)
        names = ", ".join(getattr(c, "core", c).name for c in cores)
        err_console.print(f"worker {s.topic_prefix}{s.consumer_group} running: {names}")
        if clock not in ("processing", "event"):
            raise ConfigurationError(f"unknown clock {clock!r}", hint="use --clock processing or --clock event")
        run(_serve(s, cores, stop_grace=stop_grace, metrics_port=metrics_port, metrics_host=metrics_host,
                   ready_lag=ready_lag,
                   timer_interval=timer_interval, web_port=web_port, clock=clock,
                   lateness=dt.timedelta(seconds=lateness), idle=idle))


def main(argv: list[str] | None = None) -> None:
    """``python -m bus.cli._worker worker ...``: the command before it is listed in ``bus``."""
    from bus.cli import _configure_logging

    _configure_logging()
    standalone = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @standalone.callback()
    def _group() -> None:
        """Processor workers."""

    register(standalone)
    from bus._errors import BusError

    try:
        standalone(args=argv, standalone_mode=False)
    except BusError as err:
        print(f"bus: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
