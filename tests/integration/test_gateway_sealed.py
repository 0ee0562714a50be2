"""Addressed (encrypted) events in the gateway's inboxes, on the real broker.

The gateway serves two administrations and holds the decryption key of one (COMMUNE). Four
events of one invoice (one subject, so one partition, read in order) name both administrations
in their subject and payload: one addressed to COMMUNE, one to OTHER, one to a stranger the
gateway does not serve, and a broadcast one last. Each inbox lists the addressed events of its
administration only: decrypted when the gateway holds the key, else verified with ``data`` null.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import httpx
import pytest

from bus import BusContext, BusSettings, generate_encryption_key
from bus._runtime import encryption_key_store
from bus.client import Publisher, read_topic
from bus.cli._gateway import BusIntake
from bus.gateway import GatewayConfig
from tests.integration.gateway_support import COMMUNE, EXAMPLES, gateway_settings, running_gateway

pytestmark = pytest.mark.integration

OTHER = "443061841"  # the invoice's seller, served by the gateway, whose key the gateway does not hold
STRANGER = "130006000"  # not served by this gateway


async def inbox_through(client: httpx.AsyncClient, siren: str, last: str) -> list[dict]:
    """The inbox of ``siren`` from its start up to the event ``last`` (long polling until it is listed)."""
    seen: list[dict] = []
    params: dict[str, object] = {"wait": 30}
    while last not in [e["id"] for e in seen]:
        page = (await client.get(f"/v1/administrations/{siren}/inbox", params=params)).json()
        seen += page["events"]
        params["after"] = page["next"]
    return seen


async def test_an_inbox_shows_the_events_addressed_to_its_administration_only(settings: BusSettings, tmp_path: Path):
    own = await gateway_settings(settings, tmp_path / "state", COMMUNE, OTHER)
    keys = {siren: generate_encryption_key(siren) for siren in (COMMUNE, OTHER, STRANGER)}
    encryption_key_store(own).save(keys[COMMUNE])  # the gateway holds COMMUNE's key only
    invoice = BusIntake(1 << 20).pivot_event(json.loads((EXAMPLES / "invoice-pivot.json").read_text()))
    assert COMMUNE in json.dumps(invoice.data, default=str) and OTHER in invoice.subject

    async with (running_gateway(own, GatewayConfig(administrations=[COMMUNE, OTHER])) as url,
                httpx.AsyncClient(base_url=url, timeout=60) as client):
        wire = (await BusContext.connect(own)).wire()
        wire.encryption_keys = {siren: key.public for siren, key in keys.items()}
        sent = {}
        async with Publisher(own, wire) as publisher:
            for name, recipients in (("commune", (COMMUNE,)), ("other", (OTHER,)), ("stranger", (STRANGER,)),
                                     ("broadcast", None)):
                event = dataclasses.replace(invoice, recipients=recipients)
                sent[name] = (await publisher.publish(event)).headers
        ids = {name: dict(headers)["ce_id"].decode() for name, headers in sent.items()}
        commune = {e["id"]: e for e in await inbox_through(client, COMMUNE, ids["broadcast"])}
        other = {e["id"]: e for e in await inbox_through(client, OTHER, ids["broadcast"])}

    assert set(commune) == {ids["commune"], ids["broadcast"]}
    mine = commune[ids["commune"]]
    assert mine["recipients"] == [COMMUNE] and mine["decrypted"] is True
    assert mine["data"] == commune[ids["broadcast"]]["data"] and mine["data"]["number"]
    assert "recipients" not in commune[ids["broadcast"]]

    assert set(other) == {ids["other"], ids["broadcast"]}  # not COMMUNE's, though it names OTHER
    unreadable = other[ids["other"]]
    assert unreadable["recipients"] == [OTHER] and unreadable["decrypted"] is False and unreadable["data"] is None
    assert unreadable["subject"] == invoice.subject and unreadable["type"] == invoice.type


async def test_an_addressed_upload_is_stored_sealed_and_served_decrypted_to_its_recipient(settings: BusSettings,
                                                                                        tmp_path: Path):
    from bus import DecryptionKeyring, Wire
    from bus._content import LocalContentStore, put_document
    from bus._directory import encryption_key_event
    from bus._sealed import DocumentKey

    own = await gateway_settings(settings, tmp_path / "state", COMMUNE)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    mine, stranger = generate_encryption_key(COMMUNE, valid_from=since), generate_encryption_key(STRANGER)
    encryption_key_store(own).save(mine)  # the gateway holds COMMUNE's key, published in the directory
    ctx = await BusContext.connect(own)
    async with Publisher(own, ctx.wire()) as publisher:
        await publisher.publish(encryption_key_event(mine.public), topic="reference.administrations")
    ubl = (EXAMPLES / "invoice-ubl.xml").read_bytes()
    store = LocalContentStore.from_uri(own.resolved_content_store)
    foreign = put_document(store, b"for a stranger only", key=DocumentKey.fresh([stranger.public]),
                           media_type="text/plain", file_name="foreign.txt")

    async with (running_gateway(own, GatewayConfig(administrations=[COMMUNE])) as url,
                httpx.AsyncClient(base_url=url, timeout=60) as client):
        answer = await client.post(f"/v1/administrations/{COMMUNE}/documents", content=ubl,
                                   headers={"content-type": "application/xml"},
                                   params={"file_name": "invoice.xml", "recipients": COMMUNE})
        assert answer.status_code == 202, answer.text
        document = answer.json()["document"]
        assert b"F-2026-001" not in store.path(document["sha256"]).read_bytes()
        served = await client.get(document["url"])
        assert served.status_code == 200 and served.content == ubl
        assert served.headers["x-stored-digest"] == f"sha-256={document['sha256']}"
        refused = await client.get(f"/v1/documents/{foreign.sha256}")
        assert refused.status_code == 403 and refused.json()["type"].endswith("NotARecipientError"), refused.text
        bad = await client.post(f"/v1/administrations/{COMMUNE}/documents", content=ubl,
                                headers={"content-type": "application/xml"}, params={"recipients": "12"})
        assert bad.status_code == 422

    reader = Wire(ctx.catalog, ctx.directory, None, decryption=DecryptionKeyring([mine]))
    (submitted,) = [reader.open(r) for r in await read_topic(own, ctx.topic("ingress.raw"))]
    assert submitted.envelope.recipient_sirens == (COMMUNE,)
    assert submitted.data["document"]["sha256"] == document["sha256"]
