"""``cluster_produce_vs_single``: producing with replication 3 on a three-node cluster against the single broker.

The suite's single broker (topics of replication 1) is the baseline; a three-node KRaft cluster
started here (:class:`bus._cluster.LocalCluster`, each node broker and controller, on the same
machine) is the measured one, its topic of replication 3 with ``min.insync.replicas`` 2. The
workload is :mod:`bench.bench_tls`'s: the same signed, Avro-encoded events (sealed once), sent by
an idempotent ``acks=all`` producer (linger 5 ms), all sends then all acknowledgements; events/s
is the best of several rounds, alternating the two so machine noise hits both alike. The
cluster's three JVMs share the machine's cores with the producer: on one host this measures
the cost of replication and of three JVMs, not the throughput of three machines.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

__all__ = ["run"]


def run(bootstrap: str, tmp: Path, *, quick: bool = False) -> dict[str, dict[str, object]]:
    from bench.bench_tls import _produce, _records
    from bus._cluster import LocalCluster
    from bus._settings import BusSettings, default_cache_dir

    count, rounds = (2000, 2) if quick else (10000, 3)
    cluster = LocalCluster(BusSettings(bootstrap_servers=None, state_dir=tmp / "cluster", cache_dir=default_cache_dir()))
    try:
        three = BusSettings(bootstrap_servers=cluster.start(3, timeout=240), key_passphrase=None)
        single = BusSettings(bootstrap_servers=bootstrap, key_passphrase=None)
        records = _records(count)
        best = {"single": 0.0, "cluster": 0.0}
        for _ in range(rounds):
            for name, settings, replication in (("single", single, 1), ("cluster", three, 3)):
                rate = asyncio.run(_produce(settings, f"bench-rf-{uuid.uuid4().hex[:8]}", records, replication))
                best[name] = max(best[name], rate)
    finally:
        cluster.stop()
    return {"cluster_produce_vs_single": {
        "value": round(best["cluster"], 1), "baseline": round(best["single"], 1),
        "ratio": round(best["cluster"] / best["single"], 3), "unit": "events/s",
        "method": (f"{count} sealed events (~{len(records[0].value)} B payload + headers), idempotent acks=all "
                   f"producer, linger 5 ms, 3 partitions; best of {rounds} rounds alternating a topic of replication 3 "
                   "(min.insync.replicas 2) on a local three-node KRaft cluster and a topic of replication 1 on the "
                   "suite's single broker; all JVMs and the producer on the same machine"),
    }}
