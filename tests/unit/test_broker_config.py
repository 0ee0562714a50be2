"""The parts of the embedded broker that need no Java: configuration, pid files, clear errors."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bus._broker import EmbeddedBroker, _new_cluster_id, render_server_properties, wait_until_ready
from bus._errors import BrokerError, ConfigurationError
from bus._settings import BusSettings
from bus.cli import _broker as broker_cli


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def broker(tmp_path: Path) -> EmbeddedBroker:
    port, controller_port = _free_ports(2)
    return EmbeddedBroker(
        BusSettings(
            bootstrap_servers=None, state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
            broker_port=port, broker_controller_port=controller_port,
        )
    )


def _parse(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return {key: value for key, value in pairs}


def test_server_properties_describe_one_combined_kraft_node(tmp_path: Path) -> None:
    props = _parse(render_server_properties(port=19092, controller_port=19093, data_dir=tmp_path / "data"))

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data")
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr", "default.replication.factor", "min.insync.replicas"):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == "3"


def test_the_broker_keeps_its_files_under_the_state_dir_and_jars_under_the_cache(broker: EmbeddedBroker) -> None:
    assert broker.properties.is_relative_to(broker.state_dir / "kafka")
    assert broker.data_dir.is_relative_to(broker.state_dir / "kafka")
    assert broker.libs == Path(broker.settings.cache_dir).resolve() / "kafka-4.1.1" / "libs"
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"


def test_cluster_ids_look_like_kafka_ones() -> None:
    ids = {_new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


@pytest.mark.parametrize("version", ["3.9.0", "latest", "4.1", "4.1.1; rm -rf /"])
def test_only_kafka_4_releases_are_accepted(tmp_path: Path, version: str) -> None:
    with pytest.raises(ConfigurationError, match="BUS_KAFKA_VERSION"):
        EmbeddedBroker(BusSettings(state_dir=tmp_path, kafka_version=version))


def test_broker_and_controller_ports_must_differ(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="BUS_BROKER_CONTROLLER_PORT"):
        EmbeddedBroker(BusSettings(state_dir=tmp_path, broker_port=20000, broker_controller_port=20000))


def test_a_pid_file_naming_another_process_is_stale_and_that_process_is_left_alone(broker: EmbeddedBroker) -> None:
    broker.home.mkdir(parents=True)
    broker.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not this state dir's Kafka

    status = broker.status()
    assert (status.running, status.pid) == (False, None)

    broker.stop()  # must not signal the test process

    assert not broker.pid_file.exists()


def test_a_pid_file_of_a_dead_process_is_stale(broker: EmbeddedBroker) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    broker.home.mkdir(parents=True)
    broker.pid_file.write_text(f"{dead.pid}\n")

    assert broker.status().pid is None
    broker.stop()
    assert not broker.pid_file.exists()


def test_a_garbled_pid_file_is_ignored(broker: EmbeddedBroker) -> None:
    broker.home.mkdir(parents=True)
    broker.pid_file.write_text("not a pid")
    assert broker.status().running is False
    broker.stop()
    assert not broker.pid_file.exists()


def test_missing_maven_is_a_clear_error(broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match="Maven") as caught:
        broker.ensure_jars()
    assert "BUS_BOOTSTRAP_SERVERS" in caught.value.hint


def test_resolved_jars_are_not_resolved_again(broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broker.libs.mkdir(parents=True)
    (broker.dist / ".resolved").write_text("4.1.1\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn: it must not be needed
    assert broker.ensure_jars() == broker.libs


def test_missing_java_is_a_clear_error(broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(BrokerError, match="Java") as caught:
        broker.start(timeout=5)
    assert "Java 17" in caught.value.hint or "openjdk" in caught.value.hint


def test_a_port_taken_by_another_program_is_a_clear_error(broker: EmbeddedBroker) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", broker.port))
        squatter.listen()
        with pytest.raises(BrokerError, match=f"127.0.0.1:{broker.port} is already used by another process") as caught:
            broker.start(timeout=5)
    assert "BUS_BROKER_PORT" in caught.value.hint
    assert not broker.pid_file.exists()


def test_nothing_listening_means_not_ready() -> None:
    (port,) = _free_ports(1)
    with pytest.raises(BrokerError, match=f"127.0.0.1:{port}") as caught:
        wait_until_ready(f"127.0.0.1:{port}", 0)
    assert "bus broker start" in caught.value.hint


def test_a_server_that_is_not_kafka_is_not_ready() -> None:
    answered = threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def answer_like_a_web_server() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(64)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            answered.set()

        thread = threading.Thread(target=answer_like_a_web_server, daemon=True)
        thread.start()
        with pytest.raises(BrokerError, match="no Kafka broker answered"):
            wait_until_ready(f"127.0.0.1:{server.getsockname()[1]}", 0)
        thread.join(10)
    assert answered.is_set()


@pytest.mark.parametrize("bootstrap", ["", "kafka", "kafka:port", ","])
def test_a_malformed_bootstrap_is_a_configuration_error(bootstrap: str) -> None:
    with pytest.raises(ConfigurationError):
        wait_until_ready(bootstrap, 0)


def test_broker_logs_are_the_tail_of_the_server_log(broker: EmbeddedBroker) -> None:
    assert broker.logs() == ""
    broker.home.mkdir(parents=True)
    broker.log_file.write_text("".join(f"line {n}\n" for n in range(100)))
    assert broker.logs(3) == "line 97\nline 98\nline 99\n"


def _cli() -> typer.Typer:
    app = typer.Typer()
    broker_cli.register(app)
    return app


def test_cli_status_of_a_stopped_broker_exits_1(broker: EmbeddedBroker) -> None:
    env = {"BUS_BOOTSTRAP_SERVERS": "", "BUS_STATE_DIR": str(broker.state_dir), "BUS_BROKER_PORT": str(broker.port),
           "BUS_BROKER_CONTROLLER_PORT": str(broker.controller_port)}
    result = CliRunner().invoke(_cli(), ["broker", "status"], env=env)
    assert result.exit_code == 1
    assert "down" in result.stdout and f"127.0.0.1:{broker.port}" in result.stdout
    stopped = CliRunner().invoke(_cli(), ["broker", "stop"], env=env)
    assert stopped.exit_code == 0 and "not running" in stopped.stdout


def test_cli_with_an_external_cluster_never_stops_it() -> None:
    (port,) = _free_ports(1)
    env = {"BUS_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
    stopped = CliRunner().invoke(_cli(), ["broker", "stop"], env=env)
    assert stopped.exit_code == 0 and "external cluster" in stopped.stdout
    down = CliRunner().invoke(_cli(), ["broker", "status"], env=env)
    assert down.exit_code == 1 and "down" in down.stdout and "external" in down.stdout


def test_cli_help_names_every_command() -> None:
    result = CliRunner().invoke(_cli(), ["broker", "--help"])
    assert result.exit_code == 0
    for command in ("start", "status", "stop", "logs"):
        assert command in result.stdout
