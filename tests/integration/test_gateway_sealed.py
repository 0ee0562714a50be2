"""Addressed (encrypted) events in the gateway's inboxes, on the real broker.

The gateway serves two administrations and holds the decryption key of one (COMMUNE). Four
events of one invoice (one subject, so one partition, read in order) name both administrations
in their subject and payload: one addressed to COMMUNE, one to OTHER, one to a stranger the
gateway does not serve, and a broadcast one last. Each inbox lists the addressed events of its
administration only: decrypted when the gateway holds the key, else verified with ``data`` null.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from bus import BusContext, BusSettings, generate_encryption_key
from bus._runtime import encryption_key_store
from bus.client import Publisher
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
