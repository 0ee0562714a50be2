"""Calling systems authenticated: client-credentials tokens of a local issuer, per-client policies."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from bus import BusSettings
from bus.gateway import ClientPolicy, GatewayConfig, Issuer
from tests.integration.conftest import free_ports
from tests.integration.gateway_support import COMMUNE, EXAMPLES, gateway_settings, running_gateway

pytestmark = pytest.mark.integration

ISSUER = "http://127.0.0.1/test-issuer"
OTHER = "443061841"
DOCS = f"/v1/administrations/{COMMUNE}/documents"
UBL = (EXAMPLES / "invoice-ubl.xml").read_bytes()


class LocalIssuer:
    """An OAuth2 issuer's signing key and JWKS, served on loopback."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": "issuer-1"})
        self.foreign = ECKey.generate_key("P-256", parameters={"kid": "issuer-1"})  # same kid, other key

    def token(self, client_id: str, *, key: ECKey | None = None, expires_in: int = 300, aud: str = "dcant-bus-gateway",
              iss: str = ISSUER) -> str:
        now = int(time.time())
        claims = {"iss": iss, "aud": aud, "client_id": client_id, "sub": client_id, "iat": now, "exp": now + expires_in}
        return jwt.encode({"alg": "ES256", "kid": "issuer-1"}, claims, key or self.key)

    def app(self) -> Starlette:
        jwks = {"keys": [self.key.as_dict(private=False)]}
        return Starlette(routes=[Route("/jwks.json", lambda request: JSONResponse(jwks))])


@pytest.fixture
async def issuer():
    made = LocalIssuer()
    (port,) = free_ports(1)
    server = uvicorn.Server(uvicorn.Config(made.app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)  # uvicorn's started flag has no event to await
    made.jwks_uri = f"http://127.0.0.1:{port}/jwks.json"  # type: ignore[attr-defined]
    yield made
    server.should_exit = True
    await task


@pytest.fixture
async def gateway(settings: BusSettings, tmp_path: Path, issuer: LocalIssuer):
    own = await gateway_settings(settings, tmp_path / "state", COMMUNE, OTHER)
    config = GatewayConfig(
        administrations=[COMMUNE, OTHER],
        issuer=Issuer(issuer=ISSUER, jwks_uri=issuer.jwks_uri),  # type: ignore[attr-defined]
        clients={
            "finance-app": ClientPolicy(administrations=[COMMUNE], submit=["ubl", "fr.dcant.invoices.*"],
                                        read=["fr.dcant.invoices.*"]),
            "archive-app": ClientPolicy(administrations=[COMMUNE], submit=["seda"], read=["fr.dcant.archives.*"]),
        })
    async with running_gateway(own, config) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        yield client


def problem(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.json()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/xml"}


async def test_a_call_without_a_token_is_unauthorized(gateway):
    body = problem(await gateway.post(DOCS, content=UBL, headers={"content-type": "application/xml"}), 401)
    assert body["error_class"] == "GatewayProblem" and "Bearer" in body["detail"]


async def test_a_valid_token_of_an_allowed_client_submits(gateway, issuer):
    answer = await gateway.post(DOCS, content=UBL, headers=bearer(issuer.token("finance-app")))
    assert answer.status_code == 202, answer.text


async def test_an_expired_token_is_refused(gateway, issuer):
    body = problem(await gateway.post(DOCS, content=UBL, headers=bearer(issuer.token("finance-app", expires_in=-600))),
                   401)
    assert "exp" in body["detail"] or "expired" in body["detail"]


async def test_a_token_signed_by_a_foreign_key_is_refused(gateway, issuer):
    problem(await gateway.post(DOCS, content=UBL, headers=bearer(issuer.token("finance-app", key=issuer.foreign))),
            401)


async def test_a_token_for_another_audience_or_issuer_is_refused(gateway, issuer):
    problem(await gateway.post(DOCS, content=UBL, headers=bearer(issuer.token("finance-app", aud="other"))), 401)
    problem(await gateway.post(DOCS, content=UBL, headers=bearer(issuer.token("finance-app", iss="https://evil"))), 401)


async def test_a_client_outside_its_policy_is_forbidden(gateway, issuer):
    problem(await gateway.post(DOCS, content=UBL, headers=bearer(issuer.token("archive-app"))), 403)  # ubl not allowed
    other = f"/v1/administrations/{OTHER}/documents"
    problem(await gateway.post(other, content=UBL, headers=bearer(issuer.token("finance-app"))), 403)
    problem(await gateway.post(DOCS, content=UBL, headers=bearer(issuer.token("unknown-app"))), 403)


async def test_the_inbox_shows_a_client_only_the_types_it_may_read(gateway, issuer):
    pivot = json.loads((EXAMPLES / "invoice-pivot.json").read_text())
    finance = {"authorization": f"Bearer {issuer.token('finance-app')}"}
    archive = {"authorization": f"Bearer {issuer.token('archive-app')}"}
    sent = await gateway.post(f"/v1/administrations/{COMMUNE}/events", json=pivot, headers=finance)
    assert sent.status_code == 202, sent.text
    inbox = f"/v1/administrations/{COMMUNE}/inbox"
    seen = (await gateway.get(inbox, params={"wait": 30}, headers=finance)).json()["events"]
    assert [e["id"] for e in seen] == [sent.json()["ce_id"]]
    assert (await gateway.get(inbox, headers=archive)).json()["events"] == []
