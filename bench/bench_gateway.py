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
import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIREN = "213105554"


async def run(bootstrap: str, tmp: Path, *, quick: bool) -> dict[str, dict[str, Any]]:
    import httpx
    import uvicorn

    from bus import BusContext, BusSettings, generate_key
    from bus._keys import KeyStore
    from bus.cli._gateway import gateway_app
    from bus.client import Publisher
    from bus.gateway import GatewayConfig
    from processors.ingress import submit

    n = 100 if quick else 500
    settings = BusSettings(bootstrap_servers=bootstrap, state_dir=tmp / "state", source=f"urn:siren:{SIREN}:bench",
                           topic_prefix=f"gwb-{uuid.uuid4().hex[:6]}.")
    KeyStore(settings.resolved_keys_dir).save(
        generate_key(SIREN, "bench", valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)))
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

    (port,) = _free_port()
    server = uvicorn.Server(uvicorn.Config(gateway_app(settings, GatewayConfig(administrations=[SIREN])),
                                           host="127.0.0.1", port=port, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            url = f"/v1/administrations/{SIREN}/documents"
            headers = {"content-type": "application/xml"}
            await client.post(url, content=template, headers=headers)  # warm-up
            started = time.perf_counter()
            for path in paths[n:]:
                answer = await client.post(url, content=path.read_bytes(), headers=headers,
                                           params={"file_name": path.name})
                if answer.status_code != 202:
                    raise RuntimeError(f"gateway answered {answer.status_code}: {answer.text[:200]}")
            gateway_rate = n / (time.perf_counter() - started)
    finally:
        server.should_exit = True
        await task
    return {"gateway_submit_vs_sdk": {
        "value": round(gateway_rate, 1), "baseline": round(sdk_rate, 1), "ratio": round(gateway_rate / sdk_rate, 3),
        "unit": "documents/s",
        "method": f"{n} distinct UBL invoices each way, sequential; value: POST to bus gateway on loopback until "
                  f"202 (spool, adapter check, content store, DocumentSubmitted acked by Kafka); baseline: "
                  f"processors.ingress.submit until acked{' (quick)' if quick else ''}"}}


def _free_port() -> tuple[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return (sock.getsockname()[1],)
