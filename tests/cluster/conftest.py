"""The three-node cluster of the fault tests: one per session, every node stopped at the end.

The nodes run from the same Maven-resolved jars as the session's single broker (the user cache),
on free ports, their state in a temporary directory. Whatever the tests did (a node killed,
paused, restarted), the teardown resumes and stops every node and checks that no process of the
cluster's directory is left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import signal
import uuid
from collections.abc import Iterator

import pytest

from bus import BusContext, BusSettings, generate_key
from bus._cluster import LocalCluster
from bus._settings import default_cache_dir
from tests.cluster._load import HEADER, Report, Workload, fully_replicated, until
from tests.integration.conftest import kafka_processes_of

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A running three-node cluster (the teardown leaves no process of it)."""
    state_dir = tmp_path_factory.mktemp("cluster")
    local = LocalCluster(BusSettings(bootstrap_servers=None, state_dir=state_dir, cache_dir=default_cache_dir()))
    try:
        local.start(3, timeout=240)
        yield local
    finally:
        local.stop()  # resumes a paused node first
        left = kafka_processes_of(state_dir)
        assert not left, f"Kafka processes {left} of {state_dir} survived the session"


@pytest.fixture(scope="session")
def cluster_settings(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> BusSettings:
    factor, min_isr = cluster.replication
    return BusSettings(bootstrap_servers=cluster.bootstrap, replication_factor=factor, min_insync_replicas=min_isr,
                       state_dir=tmp_path_factory.mktemp("cluster-client"), topic_prefix=f"ft-{uuid.uuid4().hex[:8]}.")


@pytest.fixture(scope="session")
async def cluster_ctx(cluster_settings: BusSettings) -> BusContext:
    context = await BusContext.connect(cluster_settings.model_copy(update={"source": "urn:siren:213105554:test"}))
    key = generate_key("213105554", "Commune de test", valid_from=NOW - dt.timedelta(days=1))
    await context.publish_keys([key])
    context.signer = key
    return context


@pytest.fixture(scope="session")
def fault_table() -> Iterator[list[Report]]:
    reports: list[Report] = []
    yield reports
    print("\n" + "\n".join([HEADER, *(r.row() for r in reports)]))
    target = os.environ.get("BUS_FAULT_REPORT")
    if target:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump([dataclasses.asdict(r) for r in reports], handle, indent=2)


@pytest.fixture
async def whole_cluster(cluster: LocalCluster, cluster_settings: BusSettings, cluster_ctx: BusContext) -> LocalCluster:
    """The cluster with every node running and the workload's topic fully replicated again."""
    for node in cluster.nodes():
        if node.pid is not None:
            os.kill(node.pid, signal.SIGCONT)
    await asyncio.to_thread(cluster.start, 3, 240)
    topic = Workload(cluster_settings, cluster_ctx.wire(), "").topic
    await until(fully_replicated(cluster_settings, topic, 3), f"every partition of {topic} with an ISR of 3")
    return cluster
