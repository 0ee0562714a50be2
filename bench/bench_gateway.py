"""``gateway_submit_vs_sdk``: submitting through ``bus gateway`` over HTTP against the SDK's ``submit``.

Same documents, same run, same broker: N UBL invoices (the example invoice with N numbers) are
submitted one after the other, (a) with :func:`processors.ingress.submit` (content store, then
a signed ``DocumentSubmitted`` on ``ingress.raw``, acknowledged by Kafka) and (b) by POSTing
each to a gateway served by uvicorn on loopback (HTTP, spooling, the adapter's up-front check,
content store, the same event, acknowledged by Kafka before the 202). The value is (b)'s rate,
the baseline (a)'s; the ratio (b)/(a) says what the access point costs (target ≥ 0.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIREN = "213105554"


def _settings(bootstrap: str, state: Path, prefix: str) -> Any:
    """Settings with their own topics and a signing key of SIREN in the local store."""
    from bus import BusSettings, generate_key
    from bus._keys import KeyStore

    settings = BusSettings(bootstrap_servers=bootstrap, state_dir=state, source=f"urn:siren:{SIREN}:bench",
                           topic_prefix=f"{prefix}-{uuid.uuid4().hex[:6]}.")
    KeyStore(settings.resolved_keys_dir).save(
        generate_key(SIREN, "bench", valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)))
    return settings


@contextlib.asynccontextmanager
async def _gateway(settings: Any) -> AsyncIterator[str]:
    """A gateway acting for SIREN, served by uvicorn on a free loopback port; yields its URL."""
    import socket

    import uvicorn

    from bus.cli._gateway import gateway_app
    from bus.gateway import GatewayConfig

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(gateway_app(settings, GatewayConfig(administrations=[SIREN])),
                                           host="127.0.0.1", port=port, log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def run(bootstrap: str, tmp: Path, *, quick: bool) -> dict[str, dict[str, Any]]:
    import httpx

    from bus import BusContext
    from bus.client import Publisher
    from processors.ingress import submit

    n = 100 if quick else 500
    settings = _settings(bootstrap, tmp / "state", "gwb")
    template = (ROOT / "examples" / "invoice-ubl.xml").read_bytes()
    docs = tmp / "docs"
    docs.mkdir()
    paths = []
    for i in range(2 * n):  # distinct bytes for each path: no run benefits from the store's dedup
        path = docs / f"invoice-{i}.xml"
        path.write_bytes(template.replace(b"F-2026-001", f"B-{i:06d}".encode()))
        paths.append(path)

    ctx = await BusContext.connect(settings)
    async with Publisher(settings, ctx.wire()) as publisher:
        await submit(ctx, publisher, paths[-1])  # warm-up: connections, metadata
        started = time.perf_counter()
        for path in paths[:n]:
            await submit(ctx, publisher, path)
        sdk_rate = n / (time.perf_counter() - started)

    async with _gateway(settings) as base, httpx.AsyncClient(base_url=base, timeout=60) as client:
        url = f"/v1/administrations/{SIREN}/documents"
        headers = {"content-type": "application/xml"}
        await client.post(url, content=template, headers=headers)  # warm-up
        started = time.perf_counter()
        for path in paths[n:]:
            answer = await client.post(url, content=path.read_bytes(), headers=headers, params={"file_name": path.name})
            if answer.status_code != 202:
                raise RuntimeError(f"gateway answered {answer.status_code}: {answer.text[:200]}")
        gateway_rate = n / (time.perf_counter() - started)
    return {"gateway_submit_vs_sdk": {
        "value": round(gateway_rate, 1), "baseline": round(sdk_rate, 1), "ratio": round(gateway_rate / sdk_rate, 3),
        "unit": "documents/s",
        "method": f"{n} distinct UBL invoices each way, sequential; value: POST to bus gateway on loopback until "
                  f"202 (spool, adapter check, content store, DocumentSubmitted acked by Kafka); baseline: "
                  f"processors.ingress.submit until acked{' (quick)' if quick else ''}"}}




async def inbox_latency(bootstrap: str, tmp: Path, *, quick: bool, rate: int = 200) -> dict[str, dict[str, Any]]:
    """``gateway_inbox_p99_ms``: events at ``rate``/s, read by long polling the gateway's inbox.

    The baseline is a bare aiokafka consumer (no group) reading the same topic in the same run:
    the ratio says what the gateway's verification, index and HTTP round trips add at the tail.
    """
    import json

    import httpx
    from aiokafka import AIOKafkaConsumer

    from bus import BusContext, Event
    from bus._catalog import default_catalog, from_json_value
    from bus._wire import uuid7
    from bus.client import Publisher, kafka_args

    seconds = 10 if quick else 30
    settings = _settings(bootstrap, tmp / "inbox", "gwi")
    pivot = json.loads((ROOT / "examples" / "invoice-pivot.json").read_text())
    data = from_json_value(default_catalog().latest(pivot["schema"]).parsed, pivot["data"])
    ctx = await BusContext.connect(settings)
    sent: dict[str, float] = {}
    via_gateway: dict[str, float] = {}
    direct: dict[str, float] = {}
    total = rate * seconds
    consumer = AIOKafkaConsumer(ctx.topic("invoices"), **kafka_args(settings), group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()

    async def read_direct() -> None:
        while len(direct) < total:
            for messages in (await consumer.getmany(timeout_ms=100)).values():
                now = time.perf_counter()
                for m in messages:
                    ce_id = dict(m.headers)["ce_id"].decode()
                    direct.setdefault(ce_id, now)

    async def read_gateway(client: httpx.AsyncClient) -> None:
        params: dict[str, Any] = {"wait": 5, "limit": 1000}  # no cursor yet: from the start (nothing acknowledged)
        while len(via_gateway) < total:
            answer = (await client.get(f"/v1/administrations/{SIREN}/inbox", params=params)).json()
            now = time.perf_counter()
            for event in answer["events"]:
                via_gateway.setdefault(event["id"], now)
            params["after"] = answer["next"]

    try:
        async with _gateway(settings) as base, Publisher(settings, ctx.wire()) as publisher, \
                httpx.AsyncClient(base_url=base, timeout=60) as client:
            readers = [asyncio.create_task(read_direct()), asyncio.create_task(read_gateway(client))]
            start = time.perf_counter()
            acks = []
            for i in range(total):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))  # pacing at `rate`
                ce_id = uuid7()
                sent[ce_id] = time.perf_counter()
                # not awaited one by one: a producer paced at `rate` does not wait for each ack before the next
                acks.append(asyncio.ensure_future(publisher.publish(Event(
                    type=pivot["type"], schema=pivot["schema"], data=data, id=ce_id, subject=f"{pivot['subject']}-{i}"))))
            achieved = total / (time.perf_counter() - start)
            await asyncio.gather(*acks)
            await asyncio.wait_for(asyncio.gather(*readers), 120)
    finally:
        await consumer.stop()

    def p99(seen: dict[str, float]) -> float:
        latencies = sorted(seen[k] - sent[k] for k in sent)
        return latencies[int(0.99 * (len(latencies) - 1))] * 1000

    value, baseline = p99(via_gateway), p99(direct)
    return {"gateway_inbox_p99_ms": {
        "value": round(value, 1), "baseline": round(baseline, 1), "ratio": round(value / baseline, 2), "unit": "ms",
        "method": f"{total} events paced at {rate}/s (achieved {achieved:.0f}/s), acks awaited in the background; "
                  f"value: p99 of publish start→seen by a client long polling the gateway inbox; baseline: "
                  f"p99 of the same to a bare aiokafka consumer in the same run{' (quick)' if quick else ''}"}}
