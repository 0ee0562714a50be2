"""``tls_produce_vs_plaintext``: producing over mutual TLS against producing in plain, same run.

The suite's plain broker is the baseline; a second embedded broker started here with
``--secure`` (its own CA in the bench's temporary directory, the operator's certificate) is the
measured one. The workload is identical on both: the same signed, Avro-encoded events (sealed
once beforehand), sent by an idempotent ``acks=all`` producer with the SDK's batching (linger
5 ms), all sends then all acknowledgements; events/s is the best of several rounds, alternating
brokers so machine noise hits both alike. Target ≥ 0.7.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["run"]


def _records(count: int) -> list[Any]:
    from bus import Event, KeyDirectory, Wire, default_catalog, generate_key

    key = generate_key("219990017", "bench", valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    wire = Wire(default_catalog(), KeyDirectory([key.public]), key)
    out = []
    for n in range(count):
        siret = f"21999001{n:06d}"
        out.append(wire.seal(Event(
            type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}", schema="fr.dcant.reference.Company",
            data={"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret, "name": f"ACME {n}",
                  "administrative_state": "ACTIVE", "diffusion_status": "DIFFUSIBLE", "source_format": "sirene-json"})))
    return out


async def _produce(settings: Any, topic: str, records: list[Any], replication: int = 1) -> float:
    """Events/s of sending ``records`` to a new ``topic`` (min ISR: replication - 1), all acknowledged."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import NewTopic

    from bus.client import admin_client, kafka_args

    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, replication,
                                            topic_configs={"min.insync.replicas": str(max(1, replication - 1))})])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**kafka_args(settings), enable_idempotence=True, acks="all", linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up")  # connections and metadata outside the timing
        start = time.perf_counter()
        futures = [await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers)) for r in records]
        await asyncio.gather(*futures)
        return len(records) / (time.perf_counter() - start)
    finally:
        await producer.stop()


def run(bootstrap: str, tmp: Path, *, quick: bool = False) -> dict[str, dict[str, object]]:
    from bench.suite import free_ports
    from bus._broker import EmbeddedBroker
    from bus._pki import CertificateAuthority
    from bus._settings import BusSettings, default_cache_dir

    count, rounds = (2000, 2) if quick else (10000, 3)
    port, controller_port, sasl_port = free_ports(3)
    secure = BusSettings(bootstrap_servers=None, state_dir=tmp / "secure", cache_dir=default_cache_dir(),
                         broker_port=port, broker_controller_port=controller_port, broker_sasl_port=sasl_port,
                         broker_secure=True, key_passphrase=None)
    ca = CertificateAuthority.init(secure.resolved_pki_dir, site="bench")
    operator = ca.issue("operator", tmp / "operator")
    broker = EmbeddedBroker(secure)
    broker.start(timeout=180)
    try:
        tls = BusSettings(bootstrap_servers=broker.bootstrap, security_protocol="SSL", ssl_cafile=operator.cafile,
                          ssl_certfile=operator.certfile, ssl_keyfile=operator.keyfile, key_passphrase=None)
        plain = BusSettings(bootstrap_servers=bootstrap, key_passphrase=None)
        records = _records(count)
        best = {"plain": 0.0, "tls": 0.0}
        for _ in range(rounds):
            for name, settings in (("plain", plain), ("tls", tls)):
                rate = asyncio.run(_produce(settings, f"bench-tls-{uuid.uuid4().hex[:8]}", records))
                best[name] = max(best[name], rate)
    finally:
        broker.stop()
    return {"tls_produce_vs_plaintext": {
        "value": round(best["tls"], 1), "baseline": round(best["plain"], 1),
        "ratio": round(best["tls"] / best["plain"], 3), "unit": "events/s",
        "method": (f"{count} sealed events (~{len(records[0].value)} B payload + headers), idempotent acks=all "
                   f"producer, linger 5 ms, 3 partitions; best of {rounds} rounds alternating a secure broker "
                   "(mutual TLS, ECDSA P-256, StandardAuthorizer; operator certificate) and the suite's plain broker"),
    }}
