"""Who acted, on the real broker (issue 12 item 4): an agent's ID token verified at publication, its actor read back.

A local OpenID Connect issuer (keys made here, discovery and JWKS on loopback) signs the agent's
ID token; the Publisher verifies it and the event carries the signed ``actor``. A Subscriber and
``bus tail`` read the actor; the same record with its actor edited is dead-lettered with its
original bytes; an expired token sends nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Iterator

import pytest

from bus import ExpiredActorTokenError, Wire
from bus.client import Publisher, Subscriber, read_topic

from tests._issuer import Issuer
from tests.integration.conftest import bus_env
from tests.integration.test_cli import bus
from tests.integration.test_client import company, new_topic, signed_context

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = dt.datetime.now(dt.UTC)
AUDIENCE = "dcant-bus-test"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    provider = Issuer(client_id=AUDIENCE)
    with provider.served:
        yield provider


@pytest.fixture(scope="module")
def settings(settings, issuer):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"topic_prefix": f"actor-{uuid.uuid4().hex[:8]}.",
                                       "oidc_issuers": (issuer.url,), "oidc_audience": AUDIENCE})


@pytest.fixture(scope="module")
async def ctx(settings):
    return await signed_context(settings)


async def test_an_agents_token_is_verified_and_its_actor_read_back_and_an_edited_actor_dead_lettered(
        settings, ctx, issuer):
    topic = await new_topic(settings, "actor")
    token = issuer.id_token()
    async with Publisher(settings, ctx.wire()) as publisher:
        stored = await publisher.publish(company("42082007800012", 1), topic=topic, id_token=token, role="maire")
        with pytest.raises(ExpiredActorTokenError):  # refused before sealing: nothing is sent
            await publisher.publish(company("42082007800012", 2), topic=topic,
                                    id_token=issuer.id_token(iat=int(NOW.timestamp()) - 7200, lifetime=-3600))
        headers = dict(stored.headers)
        edited = json.loads(headers["ce_actor"])
        assert edited["role"] == "maire" and edited["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
        edited["role"] = "adjoint"
        forged_actor = json.dumps(edited, sort_keys=True, separators=(",", ":")).encode()
        forged = dataclasses.replace(stored, headers=tuple(
            (k, forged_actor if k == "ce_actor" else v) for k, v in stored.headers))
        await publisher.send_raw(topic, forged)
    raw = b"".join(v for _, v in stored.headers) + (stored.value or b"")
    assert token.encode() not in raw

    dlq_before = len(await read_topic(settings, ctx.topic("deadletter")))
    handled = []

    async def handler(received):  # type: ignore[no-untyped-def]
        handled.append(received)

    reader = Wire(ctx.catalog, ctx.directory, None)
    async with Subscriber(settings, reader, [topic], handler, processor="it-actor",
                          group=f"g-{uuid.uuid4().hex[:6]}") as sub:
        await sub.run(until=lambda: sub.stats["handled"] + sub.stats["dead_lettered"] >= 2)
    assert sub.stats["handled"] == 1 and sub.stats["dead_lettered"] == 1
    (received,) = handled
    assert received.actor is not None and received.actor.role == "maire" and received.actor.iss == issuer.url
    assert received.actor.siret == "21310555400017" and received.actor.amr == ("pwd", "mfa")

    dead = [r for r in (await read_topic(settings, ctx.topic("deadletter")))[dlq_before:]
            if dict(r.headers).get("dlq_source_topic") == topic.encode()]
    (letter,) = dead
    assert letter.value == forged.value and letter.key == forged.key
    assert [h for h in letter.headers if not h[0].startswith("dlq_")] == list(forged.headers)
    assert dict(letter.headers)["dlq_error_class"] == b"SignatureError"

    shown = bus({**os.environ, **bus_env(settings), "COLUMNS": "200"}, "tail", topic)
    (line,) = [json.loads(text) for text in shown.stdout.splitlines()]
    assert line["actor"]["role"] == "maire" and line["actor"]["email"] == "jeanne.martin@mairie-test.fr"
    assert "SignatureError" in shown.stderr and token not in shown.stdout + shown.stderr


async def test_a_gateway_submission_with_the_agents_token_carries_the_actor(settings, issuer, tmp_path):
    """Issue 13 item 3: the agent behind a call passes its ID token (X-Agent-Id-Token); the gateway verifies it."""
    import httpx

    from bus.gateway import GatewayConfig
    from tests.integration.gateway_support import COMMUNE, EXAMPLES, gateway_settings, running_gateway

    own = await gateway_settings(settings, tmp_path / "state", COMMUNE)
    pivot = json.loads((EXAMPLES / "invoice-pivot.json").read_text())
    events = f"/v1/administrations/{COMMUNE}/events"
    token = issuer.id_token()
    async with (running_gateway(own, GatewayConfig(administrations=[COMMUNE])) as url,
                httpx.AsyncClient(base_url=url, timeout=60) as client):
        expired = issuer.id_token(iat=int(NOW.timestamp()) - 7200, lifetime=-3600)
        refused = await client.post(events, json=pivot, headers={"x-agent-id-token": expired})
        assert refused.status_code == 401 and refused.json()["error_class"] == "ExpiredActorTokenError"
        assert expired not in refused.text
        sent = await client.post(events, json=pivot, headers={"x-agent-id-token": token, "x-agent-role": "adjoint"})
        assert sent.status_code == 202, sent.text
        seen = (await client.get(f"/v1/administrations/{COMMUNE}/inbox", params={"wait": 30})).json()["events"]
    (event,) = seen
    assert event["id"] == sent.json()["ce_id"]
    assert event["actor"]["role"] == "adjoint" and event["actor"]["iss"] == issuer.url
    assert event["actor"]["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()


async def test_an_idempotency_key_replayed_by_another_agent_is_refused(settings, issuer, tmp_path):
    """The same Idempotency-Key and body from another agent is another request (422), not the first's answer."""
    import httpx

    from bus.gateway import GatewayConfig
    from tests.integration.gateway_support import COMMUNE, EXAMPLES, gateway_settings, running_gateway

    own = await gateway_settings(settings, tmp_path / "state", COMMUNE)
    pivot = json.loads((EXAMPLES / "invoice-pivot.json").read_text())
    events = f"/v1/administrations/{COMMUNE}/events"
    jeanne = {"idempotency-key": "agent-retry-1", "x-agent-id-token": issuer.id_token()}
    renewed = {**jeanne, "x-agent-id-token": issuer.id_token(lifetime=600)}  # same agent, a fresh token
    paul = {**jeanne, "x-agent-id-token": issuer.id_token(sub="9d8e7f6a-other-agent", uid="9d8e7f6a-other-agent")}
    as_maire = {**jeanne, "x-agent-role": "maire"}
    async with (running_gateway(own, GatewayConfig(administrations=[COMMUNE])) as url,
                httpx.AsyncClient(base_url=url, timeout=60) as client):
        first = await client.post(events, json=pivot, headers=jeanne)
        retried = await client.post(events, json=pivot, headers=renewed)
        by_paul = await client.post(events, json=pivot, headers=paul)
        in_a_role = await client.post(events, json=pivot, headers=as_maire)
    assert first.status_code == 202, first.text
    assert retried.status_code == 202 and retried.headers["idempotent-replayed"] == "true"
    assert retried.json()["ce_id"] == first.json()["ce_id"]
    for refused in (by_paul, in_a_role):
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert "agent" in refused.json()["detail"] and refused.json()["context"]["idempotency_key"] == "agent-retry-1"
