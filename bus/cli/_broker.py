"""``bus broker start|status|stop|logs``: the embedded Apache Kafka, or a check of the external cluster.

With ``BUS_BOOTSTRAP_SERVERS`` set, nothing is started or stopped: ``start`` and ``status`` check
that the configured cluster answers.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from bus._broker import EmbeddedBroker, wait_until_ready
from bus._errors import BrokerError
from bus._settings import BusSettings

__all__ = ["register"]

broker_app = typer.Typer(
    name="broker",
    help="Run the embedded single-node Apache Kafka (KRaft), or check the cluster of BUS_BOOTSTRAP_SERVERS.",
    no_args_is_help=True,
)


def _external_note(settings: BusSettings) -> str:
    return f"an external cluster is configured (BUS_BOOTSTRAP_SERVERS={settings.bootstrap})"


@broker_app.command("start")
def start(
    timeout: float = typer.Option(120.0, "--timeout", min=1, help="Seconds to wait until the broker answers."),
    secure: bool = typer.Option(False, "--secure", help="Mutual TLS, SCRAM over TLS and ACLs (BUS_BROKER_SECURE)."),
) -> None:
    """Start the embedded broker (idempotent) and print its bootstrap address once it answers.

    The first start resolves the Kafka jars from Maven Central (Java 17 and Maven are needed).
    With --secure (after `bus pki init`) clients need a certificate or a SCRAM password, and
    an ACL for everything they do; User:operator is the super user.
    """
    settings = BusSettings()
    if secure:
        settings = settings.model_copy(update={"broker_secure": True})
    console = Console(stderr=True)
    if not settings.embedded:
        with console.status(f"checking {settings.bootstrap}..."):
            wait_until_ready(settings.bootstrap, timeout, settings=settings)
        console.print(f"{_external_note(settings)}: nothing to start; it answers.")
        typer.echo(settings.bootstrap)
        return
    broker = EmbeddedBroker(settings)
    already = broker.status().pid is not None
    with console.status(f"resolving Apache Kafka {broker.version} jars with Maven..."):
        broker.ensure_jars()
    with console.status(f"starting Apache Kafka {broker.version} on {broker.bootstrap}..."):
        bootstrap = broker.start(timeout)
    verb = "already running" if already else "started"
    mode = f" (secure: mutual TLS, SCRAM on port {settings.broker_sasl_port})" if broker.secure else ""
    console.print(f"Kafka {broker.version} {verb}{mode}; data in {broker.state_dir}")
    typer.echo(bootstrap)


@broker_app.command("status")
def status() -> None:
    """Print the bootstrap address and whether the broker answers; exit 1 when it is down."""
    settings = BusSettings()
    if not settings.embedded:
        try:
            wait_until_ready(settings.bootstrap, 0, settings=settings)  # one attempt
        except BrokerError as err:
            typer.echo(f"down     {settings.bootstrap} (external): {err.message}")
            raise SystemExit(1) from err
        typer.echo(f"running  {settings.bootstrap} (external)")
        return
    state = EmbeddedBroker(settings).status()
    if state.running:
        typer.echo(f"running  {state.bootstrap}  pid {state.pid}  Kafka {state.version}  data {state.state_dir}")
        return
    reason = f"process {state.pid} does not answer" if state.pid else "not running"
    typer.echo(f"down     {state.bootstrap}  ({reason})  Kafka {state.version}  data {state.state_dir}")
    raise SystemExit(1)  # not typer.Exit: its code is lost when click runs with standalone_mode=False


@broker_app.command("stop")
def stop(
    timeout: float = typer.Option(30.0, "--timeout", min=1, help="Seconds of graceful shutdown before SIGKILL."),
) -> None:
    """Stop the embedded broker; nothing of it keeps running. Harmless when it is already stopped."""
    settings = BusSettings()
    if not settings.embedded:
        typer.echo(f"{_external_note(settings)}: nothing to stop.")
        return
    broker = EmbeddedBroker(settings)
    was_running = broker.status().pid is not None
    with Console(stderr=True).status("stopping Kafka..."):
        broker.stop(timeout)
    typer.echo("stopped" if was_running else "not running")


@broker_app.command("logs")
def logs(
    lines: int = typer.Option(50, "-n", "--lines", min=0, help="How many of the last lines to print."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new lines until Ctrl-C."),
) -> None:
    """Print the last lines Kafka wrote to STATE_DIR/kafka/server.log."""
    settings = BusSettings()
    if not settings.embedded:
        typer.echo(f"{_external_note(settings)}: its logs live on its own hosts.", err=True)
        return
    broker = EmbeddedBroker(settings)
    typer.echo(broker.logs(lines), nl=False)
    if follow:
        _follow(broker.log_file)


def _follow(path: Path) -> None:
    """Print what is appended to ``path``; starts again from the top when the file is replaced."""
    position = path.stat().st_size if path.exists() else 0
    inode = path.stat().st_ino if path.exists() else None
    while True:
        if path.exists():
            info = path.stat()
            if info.st_ino != inode or info.st_size < position:  # a new start rotated the log
                inode, position = info.st_ino, 0
            if info.st_size > position:
                with path.open("rb") as handle:
                    handle.seek(position)
                    chunk = handle.read()
                position += len(chunk)
                typer.echo(chunk.decode("utf-8", errors="replace"), nl=False)
        time.sleep(0.5)  # tailing a file: there is no event to wait on


def register(app: typer.Typer) -> None:
    """Add the ``broker`` command group to ``app``."""
    app.add_typer(broker_app, name="broker")
