"""``bus cluster start|status|env|stop|logs``: a local Apache Kafka cluster of N KRaft nodes.

Each node is broker and controller; the cluster lives under ``STATE_DIR/cluster``. Point the
bus at it with the lines ``bus cluster env`` prints (bootstrap, replication 3, min ISR 2).
"""

from __future__ import annotations

import typer
from rich.console import Console

from bus._cluster import LocalCluster
from bus._settings import BusSettings
from bus.cli._broker import _follow

__all__ = ["register"]

cluster_app = typer.Typer(
    name="cluster",
    help="Run a local Apache Kafka cluster: N KRaft nodes, each broker and controller (STATE_DIR/cluster).",
    no_args_is_help=True,
)


@cluster_app.command("start")
def start(
    brokers: int = typer.Option(3, "--brokers", min=1, max=9, help="Number of nodes (a quorum of all of them)."),
    timeout: float = typer.Option(180.0, "--timeout", min=1, help="Seconds to wait until every node answers."),
    base_port: int = typer.Option(0, "--base-port", min=0, max=65000,
                                  help="First of 2N consecutive ports (broker, controller per node); 0 picks free ports."),
    secure: bool = typer.Option(False, "--secure", help="Mutual TLS, SCRAM over TLS and ACLs, as `bus broker start --secure`."),
) -> None:
    """Start every node (idempotent) and print the bootstrap addresses once all answer.

    Ports are chosen at the first start and kept (STATE_DIR/cluster/cluster.json). With --secure
    (after `bus pki init`) each node gets its own broker certificate from the site's CA; clients
    need a certificate (`bus pki issue`) or a SCRAM password, and ACLs, as with the single broker.
    """
    settings = BusSettings()
    if secure:
        settings = settings.model_copy(update={"broker_secure": True})
    cluster = LocalCluster(settings)
    console = Console(stderr=True)
    with console.status(f"starting a {brokers}-node Apache Kafka {settings.kafka_version} cluster..."):
        bootstrap = cluster.start(brokers, timeout, base_port or None)
    factor, min_isr = cluster.replication
    console.print(f"{brokers} nodes running; data in {cluster.root}. Point the bus at it with: "
                  f"eval \"$(bus cluster env)\" (replication {factor}, min.insync.replicas {min_isr})")
    typer.echo(bootstrap)


@cluster_app.command("status")
def status() -> None:
    """Print the bootstrap addresses and each node's state; exit 1 unless every node answers."""
    cluster = LocalCluster(BusSettings())
    state = cluster.status()
    if not state.nodes:
        typer.echo(f"down     no cluster in {cluster.root} (start one with `bus cluster start --brokers 3`)")
        raise SystemExit(1)
    controller = cluster.active_controller()
    typer.echo(f"{'running' if state.running else 'degraded' if any(s.running for _, s in state.nodes) else 'down':8} "
               f"{state.bootstrap}")
    for node_id, node in state.nodes:
        role = "  active controller" if node_id == controller else ""
        pid = f"pid {node.pid}" if node.pid else "no process"
        typer.echo(f"  node {node_id}  {'up  ' if node.running else 'down'}  {node.bootstrap}  {pid}{role}")
    if cluster.secure:
        typer.echo(f"  secure: mutual TLS on the addresses above, SCRAM over TLS on {cluster.sasl_bootstrap}")
    if not state.running:
        raise SystemExit(1)


@cluster_app.command("env")
def env() -> None:
    """Print the shell lines pointing the bus at this cluster (for eval)."""
    cluster = LocalCluster(BusSettings())
    if not cluster.nodes():
        typer.echo(f"no cluster in {cluster.root}: start one with `bus cluster start --brokers 3`", err=True)
        raise SystemExit(2)
    factor, min_isr = cluster.replication
    typer.echo(f"export BUS_BOOTSTRAP_SERVERS={cluster.bootstrap}")
    typer.echo(f"export BUS_REPLICATION_FACTOR={factor}")
    typer.echo(f"export BUS_MIN_INSYNC_REPLICAS={min_isr}")
    if cluster.secure:
        typer.echo("export BUS_SECURITY_PROTOCOL=SSL")
        typer.echo(f"export BUS_SSL_CAFILE={cluster.settings.resolved_pki_dir / 'ca.crt'}")
        typer.echo("# and BUS_SSL_CERTFILE, BUS_SSL_KEYFILE of a certificate from `bus pki issue NAME`", err=True)


@cluster_app.command("stop")
def stop(
    timeout: float = typer.Option(30.0, "--timeout", min=1, help="Seconds of graceful shutdown before SIGKILL."),
) -> None:
    """Stop every node; no process of the cluster keeps running. Harmless when it is stopped."""
    cluster = LocalCluster(BusSettings())
    was_running = any(node.pid for node in cluster.nodes())
    with Console(stderr=True).status("stopping the cluster..."):
        cluster.stop(timeout)
    typer.echo("stopped" if was_running else "not running")


@cluster_app.command("logs")
def logs(
    node: int = typer.Option(1, "--node", min=1, help="Which node's log."),
    lines: int = typer.Option(50, "-n", "--lines", min=0, help="How many of the last lines to print."),
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new lines until Ctrl-C."),
) -> None:
    """Print the last lines a node wrote to STATE_DIR/cluster/node-N/kafka/server.log."""
    member = LocalCluster(BusSettings()).node(node)
    typer.echo(member.logs(lines), nl=False)
    if follow:
        _follow(member.log_file)


def register(app: typer.Typer) -> None:
    """Add the ``cluster`` command group to ``app``."""
    app.add_typer(cluster_app, name="cluster")
