"""A running worker tells its operator what it does: metrics, health, JSON logs, a clean stop.

``bus worker --metrics-port P`` on the real broker, with ``BUS_LOG_FORMAT=json``: the test feeds
the accounting chain a contract, an invoice and a forged record, then scrapes ``/metrics`` and
finds every family, asks ``/health/ready`` until the worker is assigned, recovered and caught up,
reads the dead letter's log line as JSON carrying its ``ce_id``, and stops the worker with SIGTERM.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket

import aiohttp
import pytest

from bus.client import Publisher
from tests.integration.test_processors_e2e import (  # noqa: F401 (the bus fixture)
    ACC,
    COMMUNE_SIREN,
    SUPPLIER_SIREN,
    Tail,
    Worker,
    bus,
    contracts_known,
    eventually,
)
from tests.unit.processors.accounting_factories import decp, invoice

pytestmark = pytest.mark.asyncio(loop_scope="session")

FAMILIES = ("bus_records_total", "bus_dead_letters_total", "bus_verification_failures_total", "bus_outputs_total",
            "bus_step_seconds_bucket", "bus_end_to_end_seconds_bucket", "bus_consumer_lag", "bus_state_entries",
            "bus_payments_due")

#: One sample line of the text exposition format: name, optional {labels}, value.
SAMPLE = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})? (?P<value>\S+)$")


def sample(text: str, family: str, **labels: str) -> float:
    """The sum of the samples of ``family`` carrying every one of ``labels``."""
    total = 0.0
    for line in text.splitlines():
        found = SAMPLE.match(line)
        if found and found["name"] == family and all(f'{k}="{v}"' in (found["labels"] or "") for k, v in labels.items()):
            total += float(found["value"])
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_the_worker_serves_metrics_health_and_json_logs_and_stops_cleanly(bus, tmp_path, monkeypatch):  # noqa: F811
    port = free_port()
    monkeypatch.setenv("BUS_LOG_FORMAT", "json")
    worker = Worker(bus, tmp_path)
    worker.start("--processor", "accounting-chain", "--metrics-port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async def get(path: str) -> tuple[int, str]:
                try:
                    async with http.get(base + path) as response:
                        return response.status, await response.text()
                except aiohttp.ClientError:
                    return 0, ""  # the server is not up yet

            async def ready() -> bool:
                return (await get("/health/ready"))[0] == 200

            await eventually(ready, "the worker's readiness", alive=worker.assert_alive)
            assert (await get("/health/live"))[0] == 200

            commune, supplier = bus.context(COMMUNE_SIREN, "finances"), bus.context(SUPPLIER_SIREN, "facturation")
            async with Publisher(bus.settings, commune.wire()) as as_commune, \
                    Publisher(bus.settings, supplier.wire()) as as_supplier, \
                    Tail(bus, ["accounting"], alive=worker.assert_alive) as tail:
                await as_commune.publish(decp("2026M-OBS", amount="500000.00"))
                await contracts_known(bus, ["2026M-OBS"], worker.assert_alive)
                good = await as_supplier.publish(invoice("F-OBS-001", contract="2026M-OBS"))
                forged = supplier.wire().seal(invoice("F-OBS-002", contract="2026M-OBS"))
                forged = dataclasses.replace(forged, value=forged.value[:-1] + bytes([forged.value[-1] ^ 1]))
                await as_supplier.send_raw(bus.topic("invoices"), forged)
                await tail.until(lambda _: tail.of(ACC + "InvoiceChecked"), "the invoice checked")
                assert good is not None

            async def dead_lettered() -> str | None:
                status, text = await get("/metrics")
                counted = status == 200 and sample(text, "bus_dead_letters_total", error_class="SignatureError")
                return text if counted else None

            text = await eventually(dead_lettered, "the forged invoice counted as a dead letter",
                                    alive=worker.assert_alive)
        for family in FAMILIES:
            assert family in text, family
        assert sample(text, "bus_records_total", processor="accounting-chain", outcome="processed") >= 2
        assert sample(text, "bus_verification_failures_total", processor="accounting-chain",
                      error_class="SignatureError") == 1
        worker.assert_alive()
        assert worker.stop() == 0, worker.log()[-4000:]
    finally:
        if worker.process is not None:
            worker.kill()
    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    forged_id = dict(forged.headers)["ce_id"].decode()
    (dead,) = [line for line in lines if line.get("ce_id") == forged_id]
    assert (dead["level"], dead["processor"], dead["error_class"]) == ("WARNING", "accounting-chain", "SignatureError")
    assert dead["dossier"] == forged.key.decode()
