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
from bus.gateway import GatewayConfig
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
async def running_gateway(settings: BusSettings, config: GatewayConfig, **options: Any) -> AsyncIterator[str]:
    """Serve the gateway until the block ends; yields its base URL (``options``: ``gateway_app``'s)."""
    (port,) = free_ports(1)
    server = uvicorn.Server(uvicorn.Config(gateway_app(settings, config, **options), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the gateway stopped before it started")
        await asyncio.sleep(0.05)  # polling uvicorn's own started flag: it offers no event
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
