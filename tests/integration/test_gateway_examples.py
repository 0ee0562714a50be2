"""examples/ run against the real gateway (``bus gateway`` process), ingress worker and broker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bus import BusSettings
from tests.integration.conftest import free_ports
from tests.integration.gateway_support import BUS, COMMUNE, EXAMPLES, ROOT, gateway_process, gateway_settings, stop

pytestmark = pytest.mark.integration


@pytest.fixture
async def stack(settings: BusSettings, tmp_path: Path) -> Iterator[str]:
    """`bus gateway` and `bus worker --processor ingress` as processes on the session's broker."""
    own = await gateway_settings(settings, tmp_path / "state", COMMUNE)
    env = {**os.environ, "BUS_BOOTSTRAP_SERVERS": own.bootstrap, "BUS_TOPIC_PREFIX": own.topic_prefix,
           "BUS_STATE_DIR": str(own.state_dir), "BUS_SOURCE": own.source, "BUS_CONSUMER_GROUP": own.consumer_group,
           "PYTHONPATH": str(ROOT)}
    (port,) = free_ports(1)
    logs = tmp_path / "logs"
    logs.mkdir()
    with (logs / "worker.log").open("wb") as wlog:
        worker = subprocess.Popen([*BUS, "worker", "--processor", "ingress"], env=env, cwd=ROOT, stdout=wlog,
                                  stderr=subprocess.STDOUT)
    try:
        with gateway_process(env, port, logs / "gateway.log") as url:
            yield url
    finally:
        stop(worker)


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_the_curl_session_submits_and_reads_the_inbox(stack: str) -> None:
    done = subprocess.run(["bash", str(EXAMPLES / "curl-session.sh")], env={**os.environ, "GATEWAY": stack,
                          "SIREN": COMMUNE}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert '"status":"accepted"' in out.replace(" ", "")
    assert "fr.dcant.invoices.InvoiceReceived" in out.split("inbox:", 1)[1]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_node_client_submits_and_reads_statuses(stack: str) -> None:
    done = subprocess.run(["node", str(EXAMPLES / "node-client.mjs")], env={**os.environ, "GATEWAY": stack,
                          "SIREN": COMMUNE}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    out = lines(done.stdout)
    assert out[0]["submitted"]["dossier"] == "invoice:443061841:F-2026-001"
    assert out[1]["status"]["status"] == "accepted"
    assert out[1]["status"]["pivots"][0]["type"] == "fr.dcant.invoices.InvoiceReceived"
    assert "fr.dcant.invoices.InvoiceReceived" in [o["inbox"]["type"] for o in out[2:]]


def test_a_bundle_the_ingress_worker_refuses_has_a_refused_status(stack: str, tmp_path: Path) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as bundle:
        info = tarfile.TarInfo("readme.txt")
        info.size = 11
        bundle.addfile(info, io.BytesIO(b"not an act\n"))
    sent = httpx.post(f"{stack}/v1/administrations/{COMMUNE}/documents", content=buffer.getvalue(),
                      headers={"content-type": "application/x-tar"}, timeout=60)
    assert sent.status_code == 202, sent.text
    deadline = time.monotonic() + 120
    while (status := httpx.get(stack + sent.json()["status_url"], timeout=30).json())["status"] == "pending":
        assert time.monotonic() < deadline, "the submission stayed pending"
        time.sleep(0.5)  # polling the status resource, as a client does
    assert status["status"] == "refused"
    assert status["error_class"] == "NonConformantError" and status["processor"] == "ingress"
    assert status["message"] and status["hint"]
