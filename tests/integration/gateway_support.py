"""A real gateway for the integration tests: uvicorn in the test's event loop, on a free port."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bus import BusContext, BusSettings, generate_key
from bus._keys import KeyStore
from bus.cli._gateway import gateway_app
from bus.gateway import GatewayConfig, GatewayTls
from tests.integration.conftest import free_ports

COMMUNE = "213105554"
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BUS = [sys.executable, "-c", "from bus.cli import main; main()"]


async def gateway_settings(settings: BusSettings, state: Path, *sirens: str) -> BusSettings:
    """Own topics and state; a signing key for each SIREN, published on the bus."""
    own = settings.model_copy(update={"state_dir": state, "topic_prefix": f"gw-{uuid.uuid4().hex[:8]}.",
                                      "consumer_group": f"gw-{uuid.uuid4().hex[:6]}",
                                      "source": f"urn:siren:{sirens[0]}:gateway"})
    store = KeyStore(own.resolved_keys_dir)
    keys = [generate_key(s, f"administration {s}", valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
            for s in sirens]
    for key in keys:
        store.save(key)
    ctx = await BusContext.connect(own)
    await ctx.publish_keys(keys)
    return own


@asynccontextmanager
async def running_gateway(settings: BusSettings, config: GatewayConfig, *, tls: GatewayTls | None = None,
                          **options: Any) -> AsyncIterator[str]:
    """Serve the gateway until the block ends; yields its base URL (``options``: ``gateway_app``'s).

    ``tls``: served over HTTPS with client certificates, exactly as ``bus gateway`` serves it.
    """
    (port,) = free_ports(1)
    served = (tls or GatewayTls()).server_config(gateway_app(settings, config, **options), "127.0.0.1", port,
                                                 require_certificate=config.issuer is None, access_log=False,
                                                 lifespan="on")
    server = uvicorn.Server(served)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the gateway stopped before it started")
        await asyncio.sleep(0.05)  # polling uvicorn's own started flag: it offers no event
    try:
        yield f"{'https' if tls is not None else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@contextmanager
def gateway_process(env: dict[str, str], port: int, log: Path, *args: str,
                    client: httpx.Client | None = None) -> Iterator[str]:
    """``bus gateway --port PORT ARGS`` as a process until the block ends; yields its URL once /healthz answers.

    ``client``: how to reach it (an HTTPS client with its certificate); plain HTTP without one.
    """
    scheme = "https" if client is not None else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen([*BUS, "gateway", "--port", str(port), *args], env=env, cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if (client or httpx).get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the gateway did not answer /healthz"
            time.sleep(0.2)  # polling a process we do not share a loop with
        yield url
    finally:
        stop(process)
