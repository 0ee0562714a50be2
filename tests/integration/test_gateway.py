"""``bus gateway`` over HTTP against the real broker: submissions, refusals as problem+json, inbox."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bus import BusSettings
from bus._content import LocalContentStore
from bus.gateway import GatewayConfig
from tests.integration.gateway_support import COMMUNE, EXAMPLES, gateway_settings, running_gateway

pytestmark = pytest.mark.integration

UBL = (EXAMPLES / "invoice-ubl.xml").read_bytes()
DOCS = f"/v1/administrations/{COMMUNE}/documents"


@pytest.fixture
async def gateway(settings: BusSettings, tmp_path: Path):
    own = await gateway_settings(settings, tmp_path / "state", COMMUNE)
    config = GatewayConfig(administrations=[COMMUNE], max_upload_bytes=64 * 1024)
    async with running_gateway(own, config) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        client.settings = own  # type: ignore[attr-defined]
        yield client


def stored_objects(settings: BusSettings) -> list[Path]:
    root = LocalContentStore.from_uri(settings.resolved_content_store).root / "objects"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".json") if root.exists() else []


def assert_problem(answer: httpx.Response, status: int, error_class: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status and body["error_class"] == error_class
    assert body["type"] == f"urn:dcant-bus:problem:{error_class}"
    assert body["title"] and body["detail"] and body["hint"]
    assert "Traceback" not in answer.text
    return body


async def test_openapi_lists_every_endpoint(gateway):
    paths = (await gateway.get("/openapi.json")).json()["paths"]
    assert {"/v1/administrations/{siren}/documents", "/v1/administrations/{siren}/events",
            "/v1/submissions/{submission_id}", "/v1/administrations/{siren}/inbox",
            "/v1/administrations/{siren}/inbox/stream", "/v1/administrations/{siren}/inbox/ack",
            "/v1/documents/{sha256}", "/v1/dossiers/{dossier}/trace"} <= set(paths)


async def test_a_raw_submission_is_accepted_and_its_document_served(gateway):
    answer = await gateway.post(DOCS, content=UBL, headers={"content-type": "application/xml"},
                                params={"file_name": "invoice.xml"})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["format"] == "ubl" and body["dossier"] == "invoice:443061841:F-2026-001"
    assert body["status_url"] == f"/v1/submissions/{body['ce_id']}"
    served = await gateway.get(body["document"]["url"])
    assert served.status_code == 200 and served.content == UBL


async def test_a_replayed_idempotency_key_submits_once(gateway):
    headers = {"content-type": "application/xml", "idempotency-key": "retry-1"}
    first = await gateway.post(DOCS, content=UBL, headers=headers)
    again = await gateway.post(DOCS, content=UBL, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = await gateway.post(DOCS, content=UBL.replace(b"F-2026-001", b"F-2026-002"), headers=headers)
    assert_problem(other, 422, "GatewayProblem")


async def test_an_oversize_upload_is_refused_while_streaming_and_nothing_is_stored(gateway):
    async def body():
        for _ in range(200):  # 200 KiB against a 64 KiB limit, sent in chunks
            yield b"<" + b"x" * 1023

    answer = await gateway.post(DOCS, content=body(), headers={"content-type": "application/xml"})
    assert_problem(answer, 413, "DocumentTooLargeError")
    assert stored_objects(gateway.settings) == []
    assert list((gateway.settings.state_dir / "gateway" / "spool").iterdir()) == []


async def test_a_wrong_content_type_is_refused(gateway):
    answer = await gateway.post(DOCS, content=b'{"a": 1}', headers={"content-type": "application/json"})
    assert_problem(answer, 415, "GatewayProblem")


async def test_an_unknown_format_is_refused_and_not_stored(gateway):
    answer = await gateway.post(DOCS, content=b"hello, world\n", headers={"content-type": "text/plain"})
    assert_problem(answer, 415, "UnknownFormatError")
    assert stored_objects(gateway.settings) == []


async def test_a_hostile_xml_is_refused(gateway):
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&lol2;</Invoice>')
    body = assert_problem(await gateway.post(DOCS, content=bomb, headers={"content-type": "application/xml"}),
                          422, "UnsafeDocumentError")
    assert "lol" not in body["detail"].replace("lolz", "")


async def test_a_multipart_submission_is_accepted(gateway):
    answer = await gateway.post(DOCS, files={"file": ("facture.xml", UBL, "application/xml")},
                                data={"format": "ubl"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["format"] == "ubl"


async def test_a_malformed_multipart_is_refused(gateway):
    truncated = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.xml\"\r\n"
                 b"Content-Type: application/xml\r\n\r\n<Invoice/>")
    answer = await gateway.post(DOCS, content=truncated, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert_problem(answer, 400, "GatewayProblem")
    garbage = await gateway.post(DOCS, content=b"not multipart at all",
                                 headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert_problem(garbage, 400, "GatewayProblem")
    assert stored_objects(gateway.settings) == []


async def test_a_pivot_event_is_signed_published_and_reaches_the_inbox(gateway):
    pivot = json.loads((EXAMPLES / "invoice-pivot.json").read_text())
    answer = await gateway.post(f"/v1/administrations/{COMMUNE}/events", json=pivot)
    assert answer.status_code == 202, answer.text
    ce_id = answer.json()["ce_id"]
    inbox = (await gateway.get(f"/v1/administrations/{COMMUNE}/inbox", params={"wait": 30})).json()
    assert [e["id"] for e in inbox["events"]] == [ce_id]
    event = inbox["events"][0]
    assert event["source"] == f"urn:siren:{COMMUNE}:gateway" and event["type"] == pivot["type"]
    status = (await gateway.get(f"/v1/submissions/{ce_id}")).json()
    assert status["status"] == "accepted" and status["pivots"][0]["topic"].endswith("dcant.invoices")
    acked = await gateway.post(f"/v1/administrations/{COMMUNE}/inbox/ack", json={"cursor": inbox["next"]})
    assert acked.status_code == 200
    assert (await gateway.get(f"/v1/administrations/{COMMUNE}/inbox")).json()["events"] == []


async def test_a_pivot_event_of_an_unknown_schema_is_a_problem(gateway):
    answer = await gateway.post(f"/v1/administrations/{COMMUNE}/events",
                                json={"type": "x.Y", "schema": "fr.dcant.nope.Nope", "subject": "s", "data": {}})
    assert_problem(answer, 422, "UnknownSchemaError")


async def test_an_administration_the_gateway_does_not_serve_is_a_problem(gateway):
    answer = await gateway.post("/v1/administrations/999999999/documents", content=UBL,
                                headers={"content-type": "application/xml"})
    assert_problem(answer, 404, "GatewayProblem")


async def next_sse_event(lines) -> dict:
    """The next event of a text/event-stream (comments and keep-alives skipped)."""
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if "data" in fields:
                return fields
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    raise AssertionError("the stream ended")


async def test_the_inbox_stream_sends_events_and_resumes_after_last_event_id(gateway):
    pivot = json.loads((EXAMPLES / "invoice-pivot.json").read_text())
    url = f"/v1/administrations/{COMMUNE}/inbox/stream"
    async with gateway.stream("GET", url) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        first = (await gateway.post(f"/v1/administrations/{COMMUNE}/events", json=pivot)).json()["ce_id"]
        event = await next_sse_event(lines)
    assert json.loads(event["data"])["id"] == first and event["event"] == pivot["type"]
    second = (await gateway.post(f"/v1/administrations/{COMMUNE}/events", json=pivot)).json()["ce_id"]
    async with gateway.stream("GET", url, headers={"last-event-id": event["id"]}) as stream:
        resumed = await next_sse_event(stream.aiter_lines())
    assert json.loads(resumed["data"])["id"] == second


async def test_a_pivot_event_under_a_replayed_idempotency_key_is_published_once(gateway):
    pivot = json.loads((EXAMPLES / "invoice-pivot.json").read_text())
    url = f"/v1/administrations/{COMMUNE}/events"
    first = await gateway.post(url, json=pivot, headers={"idempotency-key": "event-1"})
    again = await gateway.post(url, json=pivot, headers={"idempotency-key": "event-1"})
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    changed = {**pivot, "subject": pivot["subject"] + "-bis"}
    assert_problem(await gateway.post(url, json=changed, headers={"idempotency-key": "event-1"}), 422, "GatewayProblem")
    inbox = (await gateway.get(f"/v1/administrations/{COMMUNE}/inbox", params={"wait": 30})).json()["events"]
    later = await gateway.post(url, json={**pivot, "subject": pivot["subject"] + "-ter"})  # a marker after them
    marker = later.json()["ce_id"]
    for _ in range(10):  # each page waits up to 30 s for new events
        if marker in [e["id"] for e in inbox]:
            break
        page = await gateway.get(f"/v1/administrations/{COMMUNE}/inbox",
                                 params={"wait": 30, "after": inbox[-1]["cursor"] if inbox else "0"})
        inbox += page.json()["events"]
    assert marker in [e["id"] for e in inbox]
    assert [e["id"] for e in inbox].count(first.json()["ce_id"]) == 1


async def test_acknowledged_cursors_survive_a_restart_of_the_gateway(settings: BusSettings, tmp_path: Path):
    own = await gateway_settings(settings, tmp_path / "state", COMMUNE)
    config = GatewayConfig(administrations=[COMMUNE])
    pivot = json.loads((EXAMPLES / "invoice-pivot.json").read_text())
    inbox = f"/v1/administrations/{COMMUNE}/inbox"
    async with running_gateway(own, config) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        first = (await client.post(f"/v1/administrations/{COMMUNE}/events", json=pivot)).json()["ce_id"]
        page = (await client.get(inbox, params={"wait": 30})).json()
        assert [e["id"] for e in page["events"]] == [first]
        assert (await client.post(f"{inbox}/ack", json={"cursor": page["next"]})).status_code == 200
    async with running_gateway(own, config) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        second = (await client.post(f"/v1/administrations/{COMMUNE}/events", json=pivot)).json()["ce_id"]
        page = (await client.get(inbox, params={"wait": 30})).json()
        assert [e["id"] for e in page["events"]] == [second]
        again = (await client.get(inbox, params={"after": ""})).json()  # from the beginning
        assert [e["id"] for e in again["events"]] == [first, second]


async def test_a_forged_cursor_is_a_problem(gateway):
    answer = await gateway.get(f"/v1/administrations/{COMMUNE}/inbox", params={"after": "%%%not-a-cursor"})
    assert_problem(answer, 422, "GatewayProblem")
