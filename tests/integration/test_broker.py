"""The embedded Kafka is a real Apache Kafka: lifecycle of a private broker, and the session's one.

Lifecycle tests run their own :class:`EmbeddedBroker` (own state directory and ports) so the
session broker stays untouched.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from typer.testing import CliRunner

from bus._broker import EmbeddedBroker
from bus._settings import BusSettings
from bus.cli import _broker as broker_cli

MakeBroker = Callable[..., EmbeddedBroker]


def _kafka_servers(processes_of: Callable[[Path], list[int]], broker: EmbeddedBroker) -> list[int]:
    return [pid for pid in processes_of(broker.state_dir) if b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_start_twice_keeps_one_broker(make_broker: MakeBroker, processes_of: Callable[[Path], list[int]]) -> None:
    broker = make_broker()
    first = broker.start()
    pid = broker.status().pid
    assert pid is not None

    again = EmbeddedBroker(broker.settings).start()  # a second command, e.g. `bus broker start` run twice

    assert again == first == f"127.0.0.1:{broker.port}"
    assert broker.status().pid == pid
    assert _kafka_servers(processes_of, broker) == [pid]


def test_status_logs_and_stop(make_broker: MakeBroker, processes_of: Callable[[Path], list[int]]) -> None:
    broker = make_broker()
    assert broker.status().running is False
    broker.start()

    up = broker.status()
    assert up.running is True
    assert up.bootstrap == f"127.0.0.1:{broker.port}"
    assert up.state_dir == broker.state_dir
    assert up.version == broker.settings.kafka_version
    assert "Kafka Server started" in broker.logs(500)
    assert len(broker.logs(1).splitlines()) == 1

    broker.stop()

    down = broker.status()
    assert (down.running, down.pid) == (False, None)
    assert processes_of(broker.state_dir) == []
    assert not broker.pid_file.exists()
    broker.stop()  # stopping a stopped broker is harmless


def test_a_killed_broker_is_down_and_starts_again(
    make_broker: MakeBroker, processes_of: Callable[[Path], list[int]]
) -> None:
    broker = make_broker()
    broker.start()
    pid = broker.status().pid
    assert pid is not None

    os.killpg(pid, signal.SIGKILL)
    broker.stop()  # reaps the killed process; the pid file it left is stale

    assert broker.status().running is False
    broker.start()  # same data directory: formatted once, reused
    new_pid = broker.status().pid
    assert new_pid is not None and new_pid != pid
    assert broker.status().running is True
    broker.stop()
    assert processes_of(broker.state_dir) == []


def test_cli_drives_the_embedded_broker(make_broker: MakeBroker) -> None:
    broker = make_broker()
    env = {
        "BUS_BOOTSTRAP_SERVERS": "",
        "BUS_STATE_DIR": str(broker.state_dir),
        "BUS_CACHE_DIR": str(broker.settings.cache_dir),
        "BUS_BROKER_PORT": str(broker.port),
        "BUS_BROKER_CONTROLLER_PORT": str(broker.controller_port),
    }
    app = typer.Typer()
    broker_cli.register(app)
    runner = CliRunner()

    assert runner.invoke(app, ["broker", "status"], env=env).exit_code == 1
    started = runner.invoke(app, ["broker", "start"], env=env)
    assert started.exit_code == 0, started.output
    assert f"127.0.0.1:{broker.port}" in started.stdout
    status = runner.invoke(app, ["broker", "status"], env=env)
    assert status.exit_code == 0 and "running" in status.stdout
    logs = runner.invoke(app, ["broker", "logs", "-n", "500"], env=env)
    assert "Kafka Server started" in logs.stdout
    stopped = runner.invoke(app, ["broker", "stop"], env=env)
    assert stopped.exit_code == 0 and "stopped" in stopped.stdout
    down = runner.invoke(app, ["broker", "status"], env=env)
    assert down.exit_code == 1 and "down" in down.stdout


def test_cli_with_an_external_cluster_starts_and_stops_nothing(bootstrap: str) -> None:
    app = typer.Typer()
    broker_cli.register(app)
    runner = CliRunner()
    env = {"BUS_BOOTSTRAP_SERVERS": bootstrap}

    started = runner.invoke(app, ["broker", "start"], env=env)
    assert started.exit_code == 0 and bootstrap in started.stdout
    assert runner.invoke(app, ["broker", "status"], env=env).exit_code == 0
    stopped = runner.invoke(app, ["broker", "stop"], env=env)
    assert stopped.exit_code == 0 and "nothing to stop" in stopped.stdout
    assert runner.invoke(app, ["broker", "status"], env=env).exit_code == 0  # still up


async def test_round_trip_through_the_session_broker(settings: BusSettings) -> None:
    topic = f"{settings.topic_prefix}broker-roundtrip"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=settings.replication_factor)])
    finally:
        await admin.close()

    sent = [(f"dossier:{n % 2}".encode(), f"event {n}".encode()) for n in range(6)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in sent:
            await producer.send_and_wait(topic, value, key=key, headers=[("ce_type", b"fr.dcant.test.Ping")])
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap, auto_offset_reset="earliest",
        group_id=f"{settings.topic_prefix}roundtrip", enable_auto_commit=False,
    )
    await consumer.start()
    received = []
    try:
        while len(received) < len(sent):
            batches = await consumer.getmany(timeout_ms=30_000)
            assert batches, "no record came back within 30 s"
            received += [record for records in batches.values() for record in records]
    finally:
        await consumer.stop()

    assert sorted((r.key, r.value) for r in received) == sorted(sent)
    assert all(dict(r.headers)["ce_type"] == b"fr.dcant.test.Ping" for r in received)
    by_key: dict[bytes, set[int]] = {}
    for record in received:
        by_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(partitions) == 1 for partitions in by_key.values())  # one key, one partition
