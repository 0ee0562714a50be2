"""Audit throughput: replay+verify events/s against the bare Ed25519 verify rate, and ledger append cost.

Prints one JSON document. Both rates are measured in the same run on the same machine, one core
each (the pooled replay rate is divided by its worker count), so the ratio says how much of the
replay path is signature verification. ``--bootstrap`` uses an existing cluster; otherwise an
embedded broker is started in a temporary directory and stopped at the end.

    .venv/bin/python bench/bench_audit.py [--events 5000] [--workers 2] [--bootstrap host:port]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bus import BusContext, BusSettings, Event, generate_key
from bus._settings import default_cache_dir
from bus.client import Publisher, admin_client
from bus.ledger._processor import PartitionLog
from bus.ledger._replay import ReplayQuery, read_all, replay


def ed25519_rate(message_size: int, count: int) -> float:
    """Bare verifications per second of ``count`` signatures over ``message_size``-byte messages."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    messages = [os.urandom(message_size) for _ in range(count)]
    signatures = [key.sign(m) for m in messages]
    start = time.perf_counter()
    for m, s in zip(messages, signatures, strict=True):
        public.verify(s, m)
    return count / (time.perf_counter() - start)


def event(n: int) -> Event:
    siret = f"{42082007800000 + n % 97:014d}"
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}",
                 schema="fr.dcant.reference.Company",
                 data={"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret,
                       "name": f"ACME {n} " + "x" * 600, "administrative_state": "ACTIVE",
                       "diffusion_status": "DIFFUSIBLE", "source_format": "sirene-json"})


async def measure(settings: BusSettings, events: int, workers: int) -> dict[str, object]:
    from aiokafka.admin import NewTopic

    ctx = await BusContext.connect(settings)
    key = generate_key("213105554", "Bench", valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    await ctx.publish_keys([key])
    ctx.signer = key
    topic = f"{settings.topic_prefix}bench-audit-{uuid.uuid4().hex[:6]}"
    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    async with Publisher(settings, ctx.wire()) as publisher:
        for i in range(0, events, 1000):
            await publisher.publish_many([event(n) for n in range(i, min(i + 1000, events))], topic=topic)
    records = await read_all(settings, topic)
    value_size = sum(len(r.value or b"") for r in records) // len(records)

    async def replay_rate(n_workers: int) -> float:
        start = time.perf_counter()
        got = [item async for item in replay(settings, ctx.wire(), ReplayQuery(topics=(topic,)), workers=n_workers)]
        elapsed = time.perf_counter() - start
        assert len(got) == events and all(g.ok for g in got)
        return events / elapsed

    baseline = ed25519_rate(value_size + 300, min(events, 5000))
    single = await replay_rate(1)
    pooled = await replay_rate(workers) / workers if workers > 1 else single
    log = PartitionLog(topic, 0)
    start = time.perf_counter()
    for r in records:
        log.append(r)
    append_us = (time.perf_counter() - start) / len(records) * 1e6
    return {
        "replay_verify_vs_ed25519": {
            "value": round(single, 1), "baseline": round(baseline, 1), "ratio": round(single / baseline, 3),
            "unit": "events/s",
            "method": f"{events} signed events (~{value_size} B value) on a 1-partition topic; replay = read from "
                      "Kafka + Wire.open (envelope, Ed25519 verify, Avro decode) + JSON value, one process; "
                      "baseline = bare cryptography Ed25519 verify of same-size messages, same run, one core",
        },
        "replay_verify_pooled_per_core": {
            "value": round(pooled, 1), "baseline": round(baseline, 1), "ratio": round(pooled / baseline, 3),
            "unit": "events/s/core", "method": f"same replay with a {workers}-process verify pool, divided by {workers}",
        },
        "ledger_append_us": {
            "value": round(append_us, 2), "unit": "us/event",
            "method": "PartitionLog.append: record_leaf_bytes + RFC 6962 leaf hash + MerkleLog.append + "
                      "content digest, per record, in memory",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("BUS_BOOTSTRAP_SERVERS"))
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        broker = None
        bootstrap = args.bootstrap
        if not bootstrap:
            from bus._broker import EmbeddedBroker

            ports = []
            for _ in range(2):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    ports.append(sock.getsockname()[1])
            broker = EmbeddedBroker(BusSettings(state_dir=Path(tmp), cache_dir=default_cache_dir(),
                                               broker_port=ports[0], broker_controller_port=ports[1]))
            bootstrap = broker.start(timeout=180)
        try:
            settings = BusSettings(bootstrap_servers=bootstrap, state_dir=Path(tmp) / "bus",
                                   topic_prefix=f"bench-{uuid.uuid4().hex[:6]}.")
            result = asyncio.run(measure(settings, args.events, args.workers))
        finally:
            if broker is not None:
                broker.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
