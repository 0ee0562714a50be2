"""Every error of the gateway is RFC 9457 problem+json; a bug is a bare 500, never a stack trace."""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI

from bus import DocumentTooLargeError, UnsafeDocumentError
from bus.gateway import PROBLEM_JSON
from bus.gateway._problems import install_problem_handlers


def app() -> FastAPI:
    made = FastAPI()
    install_problem_handlers(made)

    @made.get("/unsafe")
    async def unsafe() -> None:
        raise UnsafeDocumentError("DOCTYPE refused", document="a.xml", xpath="/")

    @made.get("/large")
    async def large() -> None:
        raise DocumentTooLargeError("too big", document="b.pdf")

    @made.get("/bug")
    async def bug() -> None:
        raise RuntimeError("secret-path /etc/shadow in a bug")

    @made.get("/typed/{n}")
    async def typed(n: int) -> int:
        return n

    return made


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app(), raise_app_exceptions=False), base_url="http://gw")


async def test_a_bus_error_carries_its_class_hint_and_context():
    async with client() as http:
        answer = await http.get("/unsafe")
        large = await http.get("/large")
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM_JSON
    body = answer.json()
    assert body == {"type": "urn:dcant-bus:problem:UnsafeDocumentError", "title": "UnsafeDocumentError",
                    "status": 422, "detail": "DOCTYPE refused", "error_class": "UnsafeDocumentError",
                    "hint": UnsafeDocumentError.default_hint, "context": {"document": "a.xml", "xpath": "/"}}
    assert large.status_code == 413


async def test_a_bug_is_a_bare_500_and_logged_on_the_server(caplog):
    with caplog.at_level(logging.ERROR, logger="bus.gateway"):
        async with client() as http:
            answer = await http.get("/bug")
    assert answer.status_code == 500 and answer.headers["content-type"] == PROBLEM_JSON
    assert "secret-path" not in answer.text and "Traceback" not in answer.text
    assert any("unexpected error" in r.message for r in caplog.records)


async def test_an_invalid_request_and_an_unknown_route_are_problems():
    async with client() as http:
        invalid = await http.get("/typed/abc")
        missing = await http.get("/nowhere")
    assert invalid.status_code == 422 and invalid.json()["type"] == "urn:dcant-bus:problem:InvalidRequest"
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM_JSON
