"""A broker SIGKILLed under a running worker on the three-node cluster: no business effect lost or doubled.

The trial of the issue-10 fault harness (:mod:`tests.faults._trial`: a ``bus worker``, two
publishing administrations, four flows with one expected effect per business key), run on the
cluster with replication 3; its fault is the node leading the most of the trial's partitions
SIGKILLed once the trigger's effects are seen, then restarted. The accounting is the harness's:
every input has its effect (or a dead letter) and no business key has two effects.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from bus._cluster import LocalCluster
from tests.cluster._load import Report, busiest_leader, listed_brokers, until
from tests.faults._trial import TRIAL_TIMEOUT, Trial, TrialWorker
from tests.faults._workload import Workload, progress

pytestmark = [pytest.mark.cluster, pytest.mark.asyncio(loop_scope="session")]


class ReplicatedWorker(TrialWorker):
    """The trial's worker creating what it creates (changelogs) with the cluster's replication."""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update({"BUS_REPLICATION_FACTOR": str(self.settings.replication_factor),
                    "BUS_MIN_INSYNC_REPLICAS": str(self.settings.min_insync_replicas)})
        return env


class ClusterTrial(Trial):
    def __init__(self, cluster: LocalCluster, root: Path) -> None:
        super().__init__(1, 15, None, root, cluster.bootstrap)  # type: ignore[arg-type]  # no single broker here
        factor, min_isr = cluster.replication
        self.settings = self.settings.model_copy(update={"replication_factor": factor, "min_insync_replicas": min_isr})
        self.cluster, self.fault = cluster, "leader"
        self.inputs = 0

    def worker(self) -> TrialWorker:
        n = len(self.workers) + 1
        own = self.settings.model_copy(update={"state_dir": self.root / f"worker-{n}"})
        made = ReplicatedWorker(own, source=self.settings.source, log_path=self.root / f"worker-{n}.log")
        self.workers.append(made)
        return made

    async def _inject(self, watcher, workload: Workload, result) -> None:  # type: ignore[no-untyped-def]
        self.inputs = len(workload.wave1) + len(workload.wave2)
        if not await watcher.until(lambda: progress(watcher.events, workload) >= result.trigger, timeout=TRIAL_TIMEOUT):
            self.notes.append(f"fault not injected: {result.trigger} effects never seen")
            return
        at = progress(watcher.events, workload)
        victim = await busiest_leader(self.settings)
        node = self.cluster.node(victim)
        assert node.pid is not None
        os.kill(node.pid, signal.SIGKILL)
        witness = next(n for n in self.cluster.nodes() if n.node_id != victim)

        async def fenced() -> bool:  # restarted before, it registers while its old session lives
            try:
                return await asyncio.to_thread(listed_brokers, witness.bootstrap) == len(self.cluster.nodes()) - 1
            except (OSError, ValueError):
                return False

        took = await until(fenced, f"node {victim} fenced by the controller")
        self.notes.append(f"node {victim} (leading the most partitions) SIGKILLed at {at} effects, fenced after "
                          f"{took:.1f}s, restarted")
        await asyncio.to_thread(node.start, 240)
        result.injected = True


async def test_broker_killed_under_a_worker_loses_and_doubles_no_effect(whole_cluster, tmp_path, fault_table):
    trial = ClusterTrial(whole_cluster, tmp_path)
    result = await trial.run()
    report = Report("node leading the most partitions SIGKILLed under a worker, restarted (business effects)",
                    acknowledged=trial.inputs, lost=result.lost, duplicates=result.duplicates,
                    longest_stall_s=None, seconds=result.seconds, detail="; ".join(result.notes))
    fault_table.append(report)
    assert result.error is None, (result.error, result.notes, [str(p) for p in result.logs])
    assert result.injected, result.notes
    assert (result.lost, result.duplicates) == (0, 0), (result.accounting, result.notes)
