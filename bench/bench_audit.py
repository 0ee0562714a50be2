"""Audit throughput: ``bus replay --verify`` events/s against the bare Ed25519 verify rate, and ledger append cost.

Prints one JSON document. :func:`run` is the entry point of the suite (``_audit``). Every figure
comes from the same run on the same machine and data. The replay is what ``bus replay --verify``
does for each record (:func:`bus.ledger._replay.replay` with ``refused_only``): read it from
Kafka, check the envelope, verify the Ed25519 signature with the producer's key valid at the
event time, decode the payload with its writer schema from the catalog, count it. The baseline
is the bare ``cryptography`` verify of messages of the size the producer signed, on one core.
The machine is shared and noisy: each rate is the best of ``rounds`` runs, taken in turns.

    .venv/bin/python -m bench.bench_audit [--quick] [--workers 2] [--bootstrap host:port]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bus import BusContext, BusSettings, Event, Wire, generate_key
from bus._envelope import Envelope
from bus.client import Publisher, admin_client
from bus.ledger._processor import PartitionLog
from bus.ledger._replay import ReplayPool, ReplayQuery, ReplayStats, read_all, replay


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


async def best(rounds: int, *measures: Callable[[], Awaitable[float]]) -> list[float]:
    """The best rate of each measure over ``rounds`` rounds, the measures taken in turns."""
    found = [0.0] * len(measures)
    for _ in range(rounds):
        for i, measure in enumerate(measures):
            found[i] = max(found[i], await measure())
    return found


async def measure(settings: BusSettings, events: int, workers: int, rounds: int = 2) -> dict[str, dict[str, object]]:
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
    signed_size = sum(len(Envelope.from_headers(r.headers).signing_bytes(r.value or b"")) for r in records[:200]) // 200
    wire: Wire = ctx.wire()
    query = ReplayQuery(topics=(topic,))

    async def verify_rate(**options: object) -> float:
        stats = ReplayStats()
        start = time.perf_counter()
        refused = [item async for item in replay(settings, wire, query, refused_only=True, stats=stats, **options)]
        elapsed = time.perf_counter() - start
        assert not refused and stats.opened == events, (refused[:1], stats)
        return events / elapsed

    async def full_rate() -> float:
        start = time.perf_counter()
        got = [item async for item in replay(settings, wire, query)]
        elapsed = time.perf_counter() - start
        assert len(got) == events and all(g.ok for g in got)
        return events / elapsed

    async def baseline() -> float:
        return ed25519_rate(signed_size, min(events, 5000))

    load_before = os.getloadavg()[0]
    base, single, two = await best(rounds, baseline, verify_rate, lambda: verify_rate(workers=workers))
    started = time.perf_counter()
    async with ReplayPool(settings, workers - 1) as pool:  # started, and waited for, outside the window
        while len(pool.helpers.ready) < workers - 1:
            await asyncio.sleep(0.01)
        startup = time.perf_counter() - started
        [warm] = await best(rounds, lambda: verify_rate(pool=pool))
    [full] = await best(1, full_rate)
    log = PartitionLog(topic, 0)
    start = time.perf_counter()
    for r in records:
        log.append(r)
    append_us = (time.perf_counter() - start) / len(records) * 1e6
    cores, load = os.cpu_count(), f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    what = (f"{events} signed events (~{value_size} B value, {signed_size} B signed) on a 1-partition topic; "
            "`bus replay --verify` per record: read from Kafka (aiokafka), envelope checks, Ed25519 verify with the "
            "producer's key valid at the event time, Avro decode with the writer schema from the catalog")
    return {
        "replay_verify_vs_ed25519": {
            "value": round(single, 1), "baseline": round(base, 1), "ratio": round(single / base, 3),
            "unit": "events/s",
            "method": f"{what}; one process; baseline = bare cryptography Ed25519 verify of {signed_size}-byte "
                      f"messages, one core; each the best of {rounds} runs taken in turns (shared machine). "
                      f"Yielding every record decoded to JSON instead (`bus replay` without --verify): "
                      f"{full:.0f} events/s",
        },
        "replay_two_procs_vs_one": {
            "value": round(two, 1), "baseline": round(single, 1), "ratio": round(two / single, 3),
            "unit": "events/s",
            "method": f"the same replay with {workers} processes (events/s in total: this one and a helper spawned "
                      f"when the replay starts, inside the timed window: its start-up, {startup:.2f} s to ready here "
                      f"(spawn, importing the bus, a Kafka consumer), is amortised over the run, this process working "
                      f"meanwhile) vs one process (replay_verify_vs_ed25519's value); each process reads its own "
                      f"slices of the partition from Kafka, only counts and refusals come back; best of {rounds}; "
                      f"{cores} cores shared with the broker ({load}). With the helper started and ready before the "
                      f"window (a ReplayPool, as `bus replay` starts it before connecting): {warm:.0f} events/s, "
                      f"ratio {warm / single:.3f}",
        },
        "replay_verify_pooled_per_core": {
            "value": round(two / workers, 1), "baseline": round(base, 1), "ratio": round(two / workers / base, 3),
            "unit": "events/s/core", "method": f"replay_two_procs_vs_one's value divided by {workers}",
        },
        "ledger_append_us": {
            "value": round(append_us, 2), "unit": "us/event",
            "method": "PartitionLog.append: record_leaf_bytes + RFC 6962 leaf hash + MerkleLog.append + "
                      "content digest, per record, in memory",
        },
    }


def run(bootstrap: str, tmp: Path, *, quick: bool = False, workers: int = 2) -> dict[str, dict[str, object]]:
    """The audit figures on the broker at ``bootstrap`` (a fresh topic), state under ``tmp``."""
    settings = BusSettings(bootstrap_servers=bootstrap, state_dir=tmp / "audit",
                           topic_prefix=f"bench-audit-{uuid.uuid4().hex[:6]}.")
    found = asyncio.run(measure(settings, 2000 if quick else 10000, workers))
    if quick:
        for entry in found.values():
            entry["method"] = f"--quick: {entry['method']}"
    return found


def main() -> None:
    from bench.suite import broker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("BUS_BOOTSTRAP_SERVERS"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.bootstrap:
        os.environ["BUS_BOOTSTRAP_SERVERS"] = args.bootstrap
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp, broker(Path(tmp)) as bootstrap:
        result = run(bootstrap, Path(tmp), quick=args.quick, workers=args.workers)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
