"""``bus demo --metrics-port P``: while the demo plays, the worker's ``/metrics`` shows every family.

The demo runs as the command does (a subprocess starting ``bus worker`` itself); the test
scrapes the worker's endpoint every half second until the demo ends. Every family of the
worker must be declared (records in, outputs, dead letters, verification failures, step and
end-to-end latency, consumer lag, state sizes, payments due), and every family the demo's
traffic through the worker moves must carry samples. The demo's forged record is read and
dead-lettered by the demo's own subscriber, not by the worker: the worker's dead-letter and
verification-failure families are declared without samples in the demo (their values under a
forged record are tested in test_worker_observability.py). The age of the checkpoints is the
ledger's family: a ``bus ledger run --metrics-port`` follows the demo's topics meanwhile, and its
endpoint must show checkpoints published and their age.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid

import aiohttp
import pytest

from tests.integration.test_demo import BUS, ROOT
from tests.integration.test_worker_observability import FAMILIES, SAMPLE, free_port, sample

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_workers_metrics_show_every_family_while_the_demo_plays(settings, tmp_path):
    port = free_port()
    env = {**os.environ, "BUS_BOOTSTRAP_SERVERS": settings.bootstrap, "BUS_TOPIC_PREFIX": f"demo-{uuid.uuid4().hex[:6]}.",
           "BUS_STATE_DIR": str(tmp_path / "state"), "BUS_SOURCE": "urn:siren:219990017:webdelib",
           "COLUMNS": "200", "PYTHONPATH": str(ROOT)}
    ledger_env = {**env, "BUS_SOURCE": "urn:siren:219990017:ledger"}
    made = subprocess.run([*BUS, "ledger", "keygen"], env=ledger_env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert made.returncode == 0, made.stderr
    ledger_port = free_port()
    log_path, ledger_log = tmp_path / "demo.log", tmp_path / "ledger.log"
    with ledger_log.open("wb") as log:
        ledger = subprocess.Popen([*BUS, "ledger", "run", "--every-seconds", "1", "--metrics-port", str(ledger_port)],
                                  env=ledger_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    with log_path.open("wb") as log:
        demo = subprocess.Popen([*BUS, "demo", "--out", str(tmp_path / "out"), "--metrics-port", str(port)],
                                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    declared: set[str] = set()
    sampled: dict[str, float] = {}  # family -> its largest total seen
    ledger_text = ""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 900
            while demo.poll() is None and loop.time() < deadline:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                        text = await response.text() if response.status == 200 else ""
                except aiohttp.ClientError:
                    text = ""  # the worker is not up yet, or already stopped
                declared |= {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
                for family in FAMILIES:
                    if any((found := SAMPLE.match(line)) and found["name"] == family for line in text.splitlines()):
                        sampled[family] = max(sampled.get(family, 0.0), sample(text, family))
                try:
                    async with http.get(f"http://127.0.0.1:{ledger_port}/metrics") as response:
                        ledger_text = await response.text() if response.status == 200 else ledger_text
                except aiohttp.ClientError:
                    pass  # the ledger is still resuming
                assert ledger.poll() is None, ledger_log.read_text()[-3000:]
                await asyncio.sleep(0.5)  # the scrape interval while the demo plays
        assert demo.wait(timeout=60) == 0, log_path.read_text()[-6000:]
        ledger.send_signal(signal.SIGTERM)
        assert ledger.wait(timeout=120) == 0, ledger_log.read_text()[-3000:]
    finally:
        for process in (demo, ledger):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=120)
    acts = env["BUS_TOPIC_PREFIX"] + "dcant.acts"
    assert sample(ledger_text, "bus_checkpoints_published_total", topic=acts) >= 1, ledger_text[-3000:]
    assert any(line.startswith("bus_checkpoint_age_seconds{") and acts in line for line in ledger_text.splitlines())
    missing = [f for f in FAMILIES if f not in declared and f.removesuffix("_bucket") not in declared]
    assert missing == [], (missing, log_path.read_text()[-3000:])
    moved = set(FAMILIES) - {"bus_dead_letters_total", "bus_verification_failures_total"}
    assert sorted(moved - set(sampled)) == [], sampled
    for counted in ("bus_records_total", "bus_outputs_total", "bus_step_seconds_bucket",
                    "bus_end_to_end_seconds_bucket", "bus_state_entries"):
        assert sampled[counted] > 0, (counted, sampled)
