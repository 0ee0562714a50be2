"""The ledger and the gateway tell their operator what they do: ``--metrics-port`` on the real broker.

``bus ledger run --metrics-port``: after a refused checkpoint and real records, ``/metrics`` shows
checkpoints published and their age per topic-partition, the records pending and the refusal
as a verification failure; one more record publishes one more checkpoint. The gateway with
a metrics port: requests by route and status, submissions accepted and refused, the inbox
latency of an event submitted and read back, the feed's lag, and ``/health/ready``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import httpx
import pytest

from bus._wire import Record
from bus.client import Publisher
from bus.gateway import GatewayConfig
from tests.integration.gateway_support import COMMUNE, EXAMPLES, gateway_settings, running_gateway
from tests.integration.test_processors_e2e import COMMUNE_SIREN, ROOT, bus, eventually  # noqa: F401 (the fixture)
from tests.integration.test_worker_observability import free_port, sample
from tests.unit.processors.accounting_factories import decp

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def get(http: aiohttp.ClientSession, port: int, path: str) -> tuple[int, str]:
    try:
        async with http.get(f"http://127.0.0.1:{port}{path}") as response:
            return response.status, await response.text()
    except aiohttp.ClientError:
        return 0, ""  # not serving yet


def samples(text: str, family: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(family + "{")]


async def test_the_ledger_serves_its_checkpoints_age_pending_records_and_refusals(bus, tmp_path):  # noqa: F811
    port = free_port()
    s = bus.settings
    env = {**os.environ, "BUS_BOOTSTRAP_SERVERS": s.bootstrap, "BUS_TOPIC_PREFIX": s.topic_prefix,
           "BUS_STATE_DIR": str(s.state_dir), "BUS_SOURCE": s.source, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "from bus.cli import main; main()"]
    made = subprocess.run([*command, "ledger", "keygen"], env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    commune = bus.context(COMMUNE_SIREN, "finances")
    procurement = bus.topic("procurement")
    async with Publisher(bus.settings, commune.wire()) as as_commune:
        await as_commune.publish(decp("2026M-LEDGER-1", amount="1000.00"))
        # Not a checkpoint at all: the ledger must refuse to resume from it, and count it.
        await as_commune.send_raw(bus.topic("ledger.checkpoints"), Record(f"{procurement}/0".encode(), b"forged", ()))
    log_path = tmp_path / "ledger.log"
    with log_path.open("wb") as log:
        # --every-seconds 1 with one record, then none: the time cadence must fire on an idle topic
        # (the reverted attempt waited for a record that never came: no round ran without input).
        ledger = subprocess.Popen([*command, "ledger", "run", "--every-seconds", "1", "--metrics-port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)

    def alive() -> None:
        assert ledger.poll() is None, log_path.read_text()[-3000:]

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async def published(at_least: float) -> str | None:
                status, text = await get(http, port, "/metrics")
                return text if status == 200 and sample(text, "bus_checkpoints_published_total",
                                                        topic=procurement) >= at_least else None

            text = await eventually(lambda: published(1), "a checkpoint of the procurement topic", alive=alive)
            (age,) = [line for line in samples(text, "bus_checkpoint_age_seconds") if procurement in line]
            assert float(age.rsplit(" ", 1)[1]) >= 0
            assert sample(text, "bus_verification_failures_total", processor="ledger", error_class="CheckpointError") == 1
            assert sample(text, "bus_ledger_pending_records", topic=procurement) == 0
            assert (await get(http, port, "/health/live"))[0] == 200
            assert (await get(http, port, "/health/ready"))[0] == 200
            first = sample(text, "bus_checkpoints_published_total", topic=procurement)

            async with Publisher(bus.settings, commune.wire()) as as_commune:
                await as_commune.publish(decp("2026M-LEDGER-2", amount="2000.00"))
            await eventually(lambda: published(first + 1), "a second checkpoint after a second record", alive=alive)
        ledger.send_signal(signal.SIGTERM)
        assert ledger.wait(timeout=120) == 0, log_path.read_text()[-3000:]
    finally:
        if ledger.poll() is None:
            ledger.kill()
            ledger.wait(timeout=30)


async def test_the_gateway_serves_requests_submissions_inbox_latency_lag_and_readiness(settings, tmp_path: Path):
    port = free_port()
    own = await gateway_settings(settings, tmp_path / "state", COMMUNE)
    config = GatewayConfig(administrations=[COMMUNE])
    events = f"/v1/administrations/{COMMUNE}/events"

    async with running_gateway(own, config, metrics_port=port) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as client, \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async def ready() -> bool:
            return (await get(http, port, "/health/ready"))[0] == 200

        await eventually(ready, "the gateway's readiness", alive=lambda: None)
        assert (await get(http, port, "/health/live"))[0] == 200
        pivot = json.loads((EXAMPLES / "invoice-pivot.json").read_text())
        answer = await client.post(events, json=pivot)
        assert answer.status_code == 202, answer.text
        refused = await client.post(events, json={"type": "x.Y", "schema": "fr.dcant.nope.Nope", "subject": "s",
                                                  "data": {}})
        assert refused.status_code == 422, refused.text
        inbox = (await client.get(f"/v1/administrations/{COMMUNE}/inbox", params={"wait": 30})).json()
        assert [e["id"] for e in inbox["events"]] == [answer.json()["ce_id"]]

        status, text = await get(http, port, "/metrics")
    assert status == 200
    assert sample(text, "bus_gateway_requests_total", route="/v1/administrations/{siren}/events", method="POST",
                  status="202") == 1
    assert sample(text, "bus_gateway_requests_total", route="/v1/administrations/{siren}/events",
                  status="422") == 1
    assert sample(text, "bus_gateway_requests_total", route="/v1/administrations/{siren}/inbox", status="200") == 1
    assert sample(text, "bus_gateway_request_seconds_count", route="/v1/administrations/{siren}/inbox") == 1
    assert sample(text, "bus_gateway_submissions_total", kind="event", outcome="accepted") == 1
    assert sample(text, "bus_gateway_submissions_total", kind="event", outcome="refused",
                  error_class="UnknownSchemaError") == 1
    assert sample(text, "bus_gateway_inbox_latency_seconds_count") == 1
    lags = samples(text, "bus_consumer_lag")
    assert any(own.topic_prefix in line and ".invoices" in line for line in lags), lags
