"""Faults on a three-node cluster under idempotent acks=all producers: nothing acknowledged is lost.

Each test runs :class:`~tests.cluster._load.Workload` (three producers, each its own producer id),
injects one fault once records flow, waits for the cluster to get past it (a new leader, a new
controller, the paused broker fenced, the restarted broker back in every ISR) and for records to
flow again, then reads the topic back by ``ce_id``: lost and duplicated records must be 0. The
figures go into the table printed at the end of the session (``pytest -s``) and, with
``BUS_FAULT_REPORT=path``, into a JSON file. Every wait is on something read from the cluster,
with a deadline naming what it waited for.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from bus import BusSettings
from bus._cluster import LocalCluster
from tests.cluster._load import Report, Workload, fully_replicated, listed_brokers, partitions, until

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


def without(settings: BusSettings, cluster: LocalCluster, node_id: int) -> BusSettings:
    """Settings bootstrapping from the other nodes only (a paused node would hold a request)."""
    others = ",".join(n.bootstrap for n in cluster.nodes() if n.node_id != node_id)
    return settings.model_copy(update={"bootstrap_servers": others})


async def leader_of(settings: BusSettings, topic: str, partition: int) -> int:
    return int((await partitions(settings, topic))[partition]["leader"])  # type: ignore[call-overload]


def kill(cluster: LocalCluster, node_id: int, sig: signal.Signals = signal.SIGKILL) -> None:
    pid = cluster.node(node_id).pid
    assert pid is not None, f"node {node_id} has no process to signal"
    os.kill(pid, sig)


def check(report: Report, fault_table: list[Report]) -> None:
    fault_table.append(report)
    assert (report.lost, report.duplicates) == (0, 0), report
    assert report.acknowledged > 0


async def test_leader_of_the_busiest_partition_killed(whole_cluster, cluster_settings, cluster_ctx, fault_table):
    async with Workload(cluster_settings, cluster_ctx.wire(), "leader of the busiest partition SIGKILLed") as load:
        await load.advance(300, "before the fault")
        busiest = load.busiest_partition()
        leader = await leader_of(cluster_settings, load.topic, busiest)
        kill(whole_cluster, leader)
        others = without(cluster_settings, whole_cluster, leader)
        took = await until(lambda: _moved(others, load.topic, busiest, leader),
                           f"partition {busiest} led by another node than {leader}")
        await load.advance(300, f"after node {leader} was killed")
    report = await load.account()
    report.detail = f"node {leader} led partition {busiest}; a new leader in {took:.1f}s"
    check(report, fault_table)


async def _moved(settings: BusSettings, topic: str, partition: int, old: int) -> bool:
    try:
        return await leader_of(settings, topic, partition) not in (old, -1)
    except Exception:  # noqa: BLE001 - metadata during the fault: ask again
        return False


async def test_active_controller_killed(whole_cluster, cluster_settings, cluster_ctx, fault_table):
    async with Workload(cluster_settings, cluster_ctx.wire(), "active controller SIGKILLed") as load:
        await load.advance(300, "before the fault")
        controller = whole_cluster.active_controller()
        assert controller is not None
        kill(whole_cluster, controller)

        async def elected() -> bool:
            return whole_cluster.active_controller() not in (None, controller)

        took = await until(elected, f"a controller other than node {controller}")
        await load.advance(300, f"after controller {controller} was killed")
    report = await load.account()
    report.detail = f"node {controller} was the controller; node {whole_cluster.active_controller()} elected in {took:.1f}s"
    check(report, fault_table)


async def test_broker_paused_past_its_session_then_resumed(whole_cluster, cluster_settings, cluster_ctx, fault_table):
    async with Workload(cluster_settings, cluster_ctx.wire(), "broker SIGSTOPped past its session, SIGCONTed") as load:
        await load.advance(300, "before the fault")
        busiest = load.busiest_partition()
        paused = await leader_of(cluster_settings, load.topic, busiest)
        kill(whole_cluster, paused, signal.SIGSTOP)
        try:
            witness = next(n for n in whole_cluster.nodes() if n.node_id != paused)

            async def fenced() -> bool:
                try:
                    return await asyncio.to_thread(listed_brokers, witness.bootstrap) == 2
                except (OSError, ValueError):
                    return False

            took = await until(fenced, f"node {paused} fenced by the controller (session expired)")
            await load.advance(300, f"while node {paused} is paused")
        finally:
            kill(whole_cluster, paused, signal.SIGCONT)
        back = await until(fully_replicated(cluster_settings, load.topic, 3), f"node {paused} back in every ISR")
        await load.advance(300, f"after node {paused} resumed")
    report = await load.account()
    report.detail = f"node {paused} (leader of partition {busiest}) fenced after {took:.1f}s; back in every ISR {back:.1f}s after SIGCONT"
    check(report, fault_table)


async def test_killed_broker_restarted_catches_up(whole_cluster, cluster_settings, cluster_ctx, fault_table):
    async with Workload(cluster_settings, cluster_ctx.wire(), "broker SIGKILLed, restarted, caught up") as load:
        await load.advance(300, "before the fault")
        victim = await leader_of(cluster_settings, load.topic, load.busiest_partition())
        kill(whole_cluster, victim)
        others = without(cluster_settings, whole_cluster, victim)

        async def shrunk() -> bool:
            try:
                return all(victim not in p["isr"] for p in (await partitions(others, load.topic)).values())
            except Exception:  # noqa: BLE001
                return False

        await until(shrunk, f"node {victim} out of every ISR")
        await load.advance(300, f"while node {victim} is down")
        restarted = time.monotonic()
        await asyncio.to_thread(whole_cluster.node(victim).start, 240)
        await until(fully_replicated(cluster_settings, load.topic, 3), f"node {victim} back in every ISR")
        caught_up = time.monotonic() - restarted
        await load.advance(300, f"after node {victim} caught up")
    report = await load.account()
    report.detail = f"node {victim} down, restarted: ISR back to 3 on every partition {caught_up:.1f}s after the restart"
    check(report, fault_table)
