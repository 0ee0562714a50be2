"""The real Kafka of the integration tests: one per session, or the cluster of BUS_BOOTSTRAP_SERVERS.

Without ``BUS_BOOTSTRAP_SERVERS`` the session starts an :class:`EmbeddedBroker` on free ports with
its state in a temporary directory (the jars come from the normal user cache, so a machine
resolves them once) and stops it at the end, checking that no Kafka process is left.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus._broker import EmbeddedBroker, wait_until_ready
from bus._settings import BusSettings, default_cache_dir


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (held open together while chosen)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def kafka_processes_of(state_dir: Path) -> list[int]:
    """Pids of live processes whose command line names ``state_dir`` (scanned in /proc)."""
    marker = str(state_dir.resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state not in {"Z", "X"}:
            found.append(int(entry.name))
    return found


def embedded_settings(state_dir: Path, **overrides: object) -> BusSettings:
    """Settings of an embedded broker in ``state_dir`` on fresh free ports, jars in the user cache."""
    port, controller_port = free_ports(2)
    values: dict[str, object] = {
        "bootstrap_servers": None,
        "state_dir": state_dir,
        "cache_dir": default_cache_dir(),
        "broker_port": port,
        "broker_controller_port": controller_port,
    }
    values.update(overrides)
    return BusSettings(**values)


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap servers of the session's Kafka: started here, or the external cluster."""
    external = os.environ.get("BUS_BOOTSTRAP_SERVERS")
    if external:
        wait_until_ready(external, 120, settings=BusSettings())
        yield external
        return
    state_dir = tmp_path_factory.mktemp("session-broker")
    broker = EmbeddedBroker(embedded_settings(state_dir))
    try:
        yield broker.start(timeout=180)
    finally:
        broker.stop()
        left = kafka_processes_of(state_dir)
        assert not left, f"Kafka processes {left} of {state_dir} survived the session"


@pytest.fixture
def make_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EmbeddedBroker]]:
    """A factory of extra embedded brokers (own state dir, own ports), all stopped after the test."""
    made: list[EmbeddedBroker] = []

    def make(**overrides: object) -> EmbeddedBroker:
        broker = EmbeddedBroker(embedded_settings(tmp_path_factory.mktemp("broker"), **overrides))
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()


@pytest.fixture(scope="session")
def processes_of() -> Callable[[Path], list[int]]:
    """``processes_of(state_dir)``: pids of live processes naming that directory."""
    return kafka_processes_of


@pytest.fixture(scope="session")
def settings(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> BusSettings:
    """BusSettings aimed at the session's Kafka, with a topic prefix unique to this session."""
    return BusSettings(
        bootstrap_servers=bootstrap,
        state_dir=tmp_path_factory.mktemp("bus-state"),
        topic_prefix=f"it-{uuid.uuid4().hex[:8]}.",
    )
