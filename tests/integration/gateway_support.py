"""A real gateway for the integration tests: uvicorn in the test's event loop, on a free port."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn

from bus import BusContext, BusSettings, generate_key
from bus._keys import KeyStore
from bus.cli._gateway import gateway_app
from bus.gateway import GatewayConfig, GatewayTls
from tests.integration.conftest import free_ports

COMMUNE = "213105554"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


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
