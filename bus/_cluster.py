"""A local Apache Kafka cluster: N KRaft nodes, each broker and controller, as processes of this machine.

:class:`LocalCluster` reuses :class:`~bus._broker.EmbeddedBroker` for everything a node does
(the Maven-resolved jars, formatting, the readiness probe, starting detached and stopping with
nothing left): a :class:`ClusterNode` only renders its own ``server.properties`` (its node id,
the quorum of every node, replication from the cluster size). The layout (cluster id, each
node's ports) is written once to ``STATE_DIR/cluster/cluster.json`` so a restarted node comes
back on the same ports with the same data. ``docker/compose.yaml`` describes the same cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bus._broker import BrokerStatus, EmbeddedBroker, _new_cluster_id, _write_atomic, render_server_properties
from bus._errors import BrokerError, BusError, ConfigurationError
from bus._settings import BusSettings

__all__ = ["ClusterNode", "LocalCluster", "cluster_properties", "replication_for"]

MAX_NODES = 9
# Quicker failure detection than Kafka's defaults (9 s session, 30 s ISR lag): a local cluster's
# faults show in seconds, and the fault tests stay short.
_FAILURE_DETECTION = {
    "broker.heartbeat.interval.ms": "1000",
    "broker.session.timeout.ms": "6000",
    "replica.lag.time.max.ms": "10000",
    "unclean.leader.election.enable": "false",
}


def replication_for(size: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) of a cluster of ``size`` nodes: 3 and 2 from three nodes."""
    factor = min(size, 3)
    return factor, max(1, factor - 1)


def cluster_properties(*, node_id: int, port: int, controller_port: int, voters: str, size: int,
                       data_dir: Path) -> dict[str, str]:
    """The ``server.properties`` of one node of a ``size``-node KRaft cluster, as a dictionary."""
    single = render_server_properties(port=port, controller_port=controller_port, data_dir=data_dir)
    settings = dict(line.split("=", 1) for line in single.splitlines() if line and not line.startswith("#"))
    factor, min_isr = replication_for(size)
    settings |= {
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "num.partitions": "6",
        "default.replication.factor": str(factor),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(factor),
        "transaction.state.log.replication.factor": str(factor),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(factor),
        "share.coordinator.state.topic.min.isr": str(min_isr),
    }
    return settings | (_FAILURE_DETECTION if size > 1 else {})


class ClusterNode(EmbeddedBroker):
    """One node of a :class:`LocalCluster`: an embedded broker rendering the cluster's properties."""

    def __init__(self, settings: BusSettings, node_id: int, voters: str, size: int) -> None:
        super().__init__(settings)
        self.node_id, self.voters, self.size = node_id, voters, size

    def _server_properties(self, security: dict[str, str] | None) -> str:
        settings = cluster_properties(node_id=self.node_id, port=self.port, controller_port=self.controller_port,
                                      voters=self.voters, size=self.size, data_dir=self.data_dir)
        lines = ["# Written by the bus (bus cluster start) at every start: edit BUS_* settings instead."]
        return "\n".join([*lines, *(f"{key}={value}" for key, value in (settings | (security or {})).items())]) + "\n"

    @property
    def pid(self) -> int | None:
        """The live Kafka process of this node, if any."""
        return self._live_pid()

    def quorum_state(self) -> dict[str, object]:
        """What this node last wrote of the KRaft quorum (leader id and epoch); empty before the first start."""
        path = self.data_dir / "__cluster_metadata-0" / "quorum-state"
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(path.read_text()))
        return {}


@dataclass(frozen=True)
class ClusterStatus:
    """What ``bus cluster status`` reports: each node's state and the cluster's bootstrap."""

    bootstrap: str
    nodes: list[tuple[int, BrokerStatus]]

    @property
    def running(self) -> bool:
        return bool(self.nodes) and all(state.running for _, state in self.nodes)


class LocalCluster:
    """``size`` KRaft nodes under ``STATE_DIR/cluster/node-<id>``, ports fixed at the first start."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self.root = Path(settings.state_dir).expanduser().resolve() / "cluster"
        self.layout_file = self.root / "cluster.json"

    # layout ------------------------------------------------------------------------------------

    def layout(self) -> dict[str, object] | None:
        """The cluster's id and node ports, or None before the first start."""
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(self.layout_file.read_text()))
        return None

    def plan(self, size: int, base_port: int | None = None) -> dict[str, object]:
        """The layout of this state directory, created for ``size`` nodes when there is none yet."""
        if not 1 <= size <= MAX_NODES:
            raise ConfigurationError(f"a local cluster has 1 to {MAX_NODES} nodes, not {size}",
                                     hint="use --brokers 3 (a quorum of three tolerates the loss of one node)")
        layout = self.layout()
        if layout is not None:
            if len(layout["nodes"]) != size:  # type: ignore[arg-type]
                raise ConfigurationError(
                    f"the cluster of {self.root} has {len(layout['nodes'])} nodes, not {size}",  # type: ignore[arg-type]
                    hint="run `bus cluster stop`, then remove that directory or set BUS_STATE_DIR to another one",
                )
            entries: list[dict[str, int]] = layout["nodes"]  # type: ignore[assignment]
            if not self.settings.broker_secure or all("sasl_port" in n for n in entries):
                return layout
            for node, port in zip(entries, _free_ports(size)):  # first secure start of a plain cluster
                node["sasl_port"] = port
        else:
            per_node = 3 if self.settings.broker_secure else 2  # broker, controller (and SASL) ports
            ports = (list(range(base_port, base_port + per_node * size)) if base_port
                     else _free_ports(per_node * size))
            nodes = []
            for i in range(size):
                mine = ports[per_node * i: per_node * (i + 1)]
                nodes.append({"id": i + 1, "port": mine[0], "controller_port": mine[1]}
                             | ({"sasl_port": mine[2]} if per_node == 3 else {}))
            layout = {"cluster_id": _new_cluster_id(), "version": self.settings.kafka_version, "nodes": nodes}
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.layout_file, json.dumps(layout, indent=2) + "\n")
        return layout

    def nodes(self) -> list[ClusterNode]:
        """The nodes of the layout (none before the first start)."""
        layout = self.layout()
        if layout is None:
            return []
        entries: list[dict[str, int]] = layout["nodes"]  # type: ignore[assignment]
        voters = ",".join(f"{n['id']}@127.0.0.1:{n['controller_port']}" for n in entries)
        out = []
        for entry in entries:
            node_settings = self.settings.model_copy(update={
                "state_dir": self.root / f"node-{entry['id']}", "broker_port": entry["port"],
                "broker_controller_port": entry["controller_port"],
                "broker_sasl_port": entry.get("sasl_port", self.settings.broker_sasl_port),
            })
            node = ClusterNode(node_settings, entry["id"], voters, len(entries))
            node.home.mkdir(parents=True, exist_ok=True)
            if node.secure:
                self._share_authority(node_settings.resolved_pki_dir)
            cluster_id = node.home / "cluster.id"  # EmbeddedBroker formats with this id: the same on every node
            if not cluster_id.is_file():
                _write_atomic(cluster_id, f"{layout['cluster_id']}\n")
            out.append(node)
        return out

    def _share_authority(self, pki_dir: Path) -> None:
        """A node's pki folder: the site's CA (linked), and there its own broker certificate, issued on first start."""
        site = self.settings.resolved_pki_dir
        if not ((site / "ca.crt").is_file() and (site / "ca.key").is_file()):
            raise ConfigurationError(f"no certificate authority in {site} for a secure cluster",
                                     hint="create it with `bus pki init` (same BUS_STATE_DIR), then start again")
        pki_dir.mkdir(parents=True, exist_ok=True)
        for name in ("ca.crt", "ca.key"):
            link = pki_dir / name
            if not link.is_symlink():
                link.symlink_to(site / name)

    def node(self, node_id: int) -> ClusterNode:
        for node in self.nodes():
            if node.node_id == node_id:
                return node
        raise ConfigurationError(f"the cluster of {self.root} has no node {node_id}",
                                 hint="`bus cluster status` lists its nodes")

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes())

    @property
    def secure(self) -> bool:
        """Whether the cluster's nodes run (or last ran) secure."""
        return any(node.secure_marker.is_file() for node in self.nodes())

    @property
    def sasl_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{node.settings.broker_sasl_port}" for node in self.nodes())

    @property
    def replication(self) -> tuple[int, int]:
        return replication_for(len(self.nodes()))

    # lifecycle ---------------------------------------------------------------------------------

    def start(self, size: int = 3, timeout: float = 180, base_port: int | None = None) -> str:
        """Start every node not running (all at once: none answers before a quorum is up); the bootstrap."""
        self.plan(size, base_port)
        nodes = self.nodes()
        nodes[0].ensure_jars()  # once, before the nodes race for it
        failures = _each(nodes, lambda node: node.start(timeout))
        if failures:
            with contextlib.suppress(BrokerError):
                self.stop()
            first = failures[0]
            raise BrokerError(f"node {first[0]} of the cluster did not start: {first[1]}",
                              hint="read `bus cluster logs --node N`", state_dir=self.root)
        return self.bootstrap

    def stop(self, timeout: float = 30) -> None:
        """Stop every node at once (a lone node waits for a quorum that is gone); nothing is left running.

        A paused node (SIGSTOP) is resumed first, so that it can stop gracefully too.
        """
        for node in self.nodes():
            pid = node.pid
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGCONT)
        failures = _each(self.nodes(), lambda node: node.stop(timeout))
        if failures:
            raise BrokerError("; ".join(f"node {n}: {text}" for n, text in failures),
                              hint="check them with `ps` and kill them by hand", state_dir=self.root)

    def status(self) -> ClusterStatus:
        return ClusterStatus(self.bootstrap, [(node.node_id, node.status()) for node in self.nodes()])

    def active_controller(self) -> int | None:
        """The id of the quorum's leader as the live nodes last wrote it (highest epoch wins)."""
        best: tuple[int, int] | None = None
        for node in self.nodes():
            if node.pid is None:
                continue
            state = node.quorum_state()
            leader, epoch = state.get("leaderId", -1), state.get("leaderEpoch", -1)
            if isinstance(leader, int) and isinstance(epoch, int) and leader > 0 and (best is None or epoch > best[1]):
                best = (leader, epoch)
        return best[0] if best else None


def _each(nodes: list[ClusterNode], action: Callable[[ClusterNode], object]) -> list[tuple[int, str]]:
    """Run ``action`` on every node in parallel threads; the (node id, message) of each failure."""
    failures: list[tuple[int, str]] = []

    def run(node: ClusterNode) -> None:
        try:
            action(node)
        except BusError as err:
            failures.append((node.node_id, err.message))

    threads = [threading.Thread(target=run, args=(node,), name=f"bus-node-{node.node_id}") for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(failures)


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
