"""Webhooks over HTTP: Standard Webhooks signatures, retries past a 500 and a timeout, dead letters."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus import BusSettings
from bus.gateway import GatewayConfig, Webhook
from tests.integration.conftest import free_ports
from tests.integration.gateway_support import COMMUNE, EXAMPLES, gateway_settings, running_gateway

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Receiver:
    """Answers 500 to the first call, hangs on the second (the gateway times out), 204 after."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[dict[str, str], bytes]]] = {"/hook": [], "/always-500": []}
        self.release = asyncio.Event()  # never set: the hanging call ends by the client's timeout
        self.healed = False  # then /always-500 answers 204 (a receiver fixed, for redelivery)

    async def endpoint(self, request: Request) -> Response:
        calls = self.calls[request.url.path]
        calls.append((dict(request.headers), await request.body()))
        if request.url.path == "/always-500":
            return Response(status_code=204 if self.healed else 500)
        if len(calls) == 1:
            return Response(status_code=500)
        if len(calls) == 2:
            await self.release.wait()
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.endpoint, methods=["POST"]),
                                 Route("/always-500", self.endpoint, methods=["POST"])])


def expected_signature(msg_id: str, stamp: str, body: bytes) -> str:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    return "v1," + base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()).decode()


async def until(check, what: str, timeout: float = 90) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)  # polling the receiver's record of calls, bounded by the deadline


@pytest.fixture
async def receiver():
    made = Receiver()
    (port,) = free_ports(1)
    server = uvicorn.Server(uvicorn.Config(made.app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)  # uvicorn's started flag has no event to await
    made.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield made
    made.release.set()
    server.should_exit = True
    await task


async def test_a_delivery_is_signed_retried_past_500_and_timeout_then_delivered(settings: BusSettings, tmp_path: Path,
                                                                               receiver: Receiver):
    own = await gateway_settings(settings, tmp_path / "state", COMMUNE)
    hooks = [Webhook(administration=COMMUNE, url=receiver.url + "/hook", secret=SECRET, max_attempts=5,  # type: ignore[attr-defined]
                     timeout_seconds=1.0, backoff_seconds=0.2),
             Webhook(administration=COMMUNE, url=receiver.url + "/always-500", secret=SECRET, max_attempts=2,  # type: ignore[attr-defined]
                     timeout_seconds=1.0, backoff_seconds=0.2)]
    pivot = json.loads((EXAMPLES / "invoice-pivot.json").read_text())
    async with running_gateway(own, GatewayConfig(administrations=[COMMUNE], webhooks=hooks)) as url, \
            httpx.AsyncClient(base_url=url, timeout=60) as client:
        sent = await client.post(f"/v1/administrations/{COMMUNE}/events", json=pivot)
        assert sent.status_code == 202, sent.text
        ce_id = sent.json()["ce_id"]
        await until(lambda: len(receiver.calls["/hook"]) == 3, "three attempts at /hook")
        await until(lambda: (own.state_dir / "gateway" / "webhooks-deadletter.jsonl").is_file(), "the dead letter")
        dead = (await client.get("/v1/webhooks/deadletter")).json()["deliveries"]
        receiver.healed = True
        again = await client.post(f"/v1/webhooks/deadletter/{ce_id}/redeliver")
        assert again.status_code == 202 and again.json()["requeued"] == 1
        await until(lambda: len(receiver.calls["/always-500"]) == 3, "the redelivery")
        assert (await client.get("/v1/webhooks/deadletter")).json()["deliveries"] == []
        missing = await client.post(f"/v1/webhooks/deadletter/{ce_id}/redeliver")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert [(d["webhook"].rsplit("/", 1)[-1], d["webhook_id"], d["attempts"], d["last_error"]) for d in dead] == \
        [("always-500", ce_id, 2, "HTTP 500")]
    assert len(receiver.calls["/always-500"]) == 3
    for headers, body in receiver.calls["/hook"] + receiver.calls["/always-500"]:
        assert headers["webhook-signature"] == expected_signature(ce_id, headers["webhook-timestamp"], body)
        assert json.loads(body)["id"] == ce_id
