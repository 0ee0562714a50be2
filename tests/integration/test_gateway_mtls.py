"""Calling systems authenticated by mutual TLS with the bus's certificates, over real HTTPS, on the real broker.

The site CA, the gateway's server certificate and the callers' certificates are made by the bus's
own authority (:class:`bus._pki.CertificateAuthority`, what ``bus pki`` runs); the gateway is
served by uvicorn exactly as ``bus gateway`` serves it with ``BUS_GATEWAY_TLS_*`` set. The caller
is the certificate's name: a SIREN's certificate acts for that SIREN (its listed policy, else
everything for it), a service's by its listed policy. With an issuer configured too, the client
certificate is optional and a bearer token opens as well.
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path

import httpx
import pytest

from bus import BusSettings
from bus._pki import CertificateAuthority
from bus.gateway import ClientPolicy, GatewayConfig, GatewayTls, Issuer
from tests.integration.conftest import bus_env, free_ports
from tests.integration.gateway_support import (
    COMMUNE, EXAMPLES, ROOT, gateway_process, gateway_settings, running_gateway,
)
from tests.integration.test_gateway_auth import ISSUER, issuer  # noqa: F401 (the local issuer fixture)

pytestmark = pytest.mark.integration

OTHER = "443061841"  # another tenant of the same gateway
UBL = (EXAMPLES / "invoice-ubl.xml").read_bytes()
XML = {"content-type": "application/xml"}


def documents(siren: str) -> str:
    return f"/v1/administrations/{siren}/documents"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site CA with the gateway's server certificate and the callers' certificates under ``issued/``."""
    root = tmp_path_factory.mktemp("gateway-pki")
    ca = CertificateAuthority.init(root / "pki")
    ca.issue_server("gateway", root / "issued" / "gateway", hosts=("127.0.0.1",))
    for name in (COMMUNE, OTHER, "archive-app", "ledger"):
        ca.issue(name, root / "issued" / name)
    CertificateAuthority.init(root / "foreign-pki").issue(COMMUNE, root / "foreign" / COMMUNE)
    return root


CLIENTS = {
    COMMUNE: ClientPolicy(administrations=[COMMUNE], submit=["ubl", "fr.dcant.invoices.*"],
                          read=["fr.dcant.invoices.*"]),
    "archive-app": ClientPolicy(administrations=[COMMUNE], submit=["seda"], read=["fr.dcant.archives.*"]),
}  # OTHER is not listed: its certificate acts for OTHER only; `ledger` is not listed: refused


def gateway_tls(pki: Path) -> GatewayTls:
    server = pki / "issued" / "gateway"
    return GatewayTls(tls_certfile=server / "gateway.crt", tls_keyfile=server / "gateway.key",
                      tls_cafile=pki / "pki" / "ca.crt")


@pytest.fixture
async def gateway(settings: BusSettings, tmp_path: Path, pki: Path):
    own = await gateway_settings(settings, tmp_path / "state", COMMUNE, OTHER)
    async with running_gateway(own, GatewayConfig(administrations=[COMMUNE, OTHER], clients=CLIENTS),
                               tls=gateway_tls(pki)) as url:
        yield url


def caller(url: str, pki: Path, name: str | None, folder: str = "issued") -> httpx.AsyncClient:
    """An HTTPS client trusting the site CA, presenting ``name``'s certificate (none for ``None``)."""
    context = ssl.create_default_context(cafile=pki / "pki" / "ca.crt")
    if name is not None:
        context.load_cert_chain(pki / folder / name / f"{name}.crt", pki / folder / name / f"{name}.key")
    return httpx.AsyncClient(base_url=url, verify=context, timeout=60)


def problem(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.json()


async def test_an_administrations_certificate_submits_and_reads_its_inbox_by_its_policy(gateway, pki):
    pivot = json.loads((EXAMPLES / "invoice-pivot.json").read_text())
    async with caller(gateway, pki, COMMUNE) as commune, caller(gateway, pki, "archive-app") as archive:
        document = await commune.post(documents(COMMUNE), content=UBL, headers=XML)
        sent = await commune.post(f"/v1/administrations/{COMMUNE}/events", json=pivot)
        inbox = f"/v1/administrations/{COMMUNE}/inbox"
        seen = (await commune.get(inbox, params={"wait": 30})).json()["events"]
        hidden = (await archive.get(inbox)).json()["events"]
    assert document.status_code == 202 and document.json()["format"] == "ubl", document.text
    assert sent.status_code == 202, sent.text
    assert sent.json()["ce_id"] in [e["id"] for e in seen]
    assert hidden == []  # archive-app may read only archive events


async def test_a_certificate_is_held_to_the_flows_of_its_policy(gateway, pki):
    async with caller(gateway, pki, "archive-app") as archive:
        body = problem(await archive.post(documents(COMMUNE), content=UBL, headers=XML), 403)
    assert body["title"] == "forbidden" and "'archive-app' may not submit ubl" in body["detail"]


async def test_another_tenants_certificate_acts_for_its_own_siren_only(gateway, pki):
    async with caller(gateway, pki, OTHER) as other:
        own = await other.post(documents(OTHER), content=UBL, headers=XML)
        body = problem(await other.post(documents(COMMUNE), content=UBL, headers=XML), 403)
        inbox = problem(await other.get(f"/v1/administrations/{COMMUNE}/inbox"), 403)
    assert own.status_code == 202, own.text
    assert f"may not act for SIREN {COMMUNE}" in body["detail"] and body["context"]["client"] == OTHER
    assert inbox["title"] == "forbidden"


async def test_a_services_certificate_without_a_policy_is_refused(gateway, pki):
    async with caller(gateway, pki, "ledger") as ledger:
        body = problem(await ledger.post(documents(COMMUNE), content=UBL, headers=XML), 403)
    assert body["title"] == "unknown client" and "'ledger'" in body["detail"]


async def test_no_certificate_or_one_of_another_ca_gets_no_connection(gateway, pki):
    for name, folder in ((None, "issued"), (COMMUNE, "foreign")):
        async with caller(gateway, pki, name, folder) as stranger:
            with pytest.raises(httpx.TransportError):
                await stranger.post(documents(COMMUNE), content=UBL, headers=XML)


async def test_with_an_issuer_too_a_token_or_a_certificate_opens_and_nothing_is_a_401(settings, tmp_path, pki,
                                                                                       issuer):  # noqa: F811
    own = await gateway_settings(settings, tmp_path / "state", COMMUNE, OTHER)
    config = GatewayConfig(administrations=[COMMUNE, OTHER], issuer=Issuer(issuer=ISSUER, jwks_uri=issuer.jwks_uri),
                           clients={**CLIENTS, "finance-app": CLIENTS[COMMUNE]})
    token = {"authorization": f"Bearer {issuer.token('finance-app')}", **XML}
    async with (running_gateway(own, config, tls=gateway_tls(pki)) as url,
                caller(url, pki, None) as anonymous, caller(url, pki, COMMUNE) as commune):
        by_token = await anonymous.post(documents(COMMUNE), content=UBL, headers=token)
        by_certificate = await commune.post(documents(COMMUNE), content=UBL, headers=XML)
        body = problem(await anonymous.post(documents(COMMUNE), content=UBL, headers=XML), 401)
    assert by_token.status_code == 202, by_token.text
    assert by_certificate.status_code == 202, by_certificate.text
    assert "Bearer" in body["detail"]


async def test_bus_gateway_serves_https_with_client_certificates_on_every_interface(settings, tmp_path, pki):
    """The command: BUS_GATEWAY_TLS_* make client certificates its authentication (no issuer, not loopback)."""
    own = await gateway_settings(settings, tmp_path / "state", COMMUNE)
    server = pki / "issued" / "gateway"
    env = {**os.environ, **bus_env(own), "BUS_SOURCE": own.source, "PYTHONPATH": str(ROOT),
           "BUS_GATEWAY_TLS_CERTFILE": str(server / "gateway.crt"),
           "BUS_GATEWAY_TLS_KEYFILE": str(server / "gateway.key"),
           "BUS_GATEWAY_TLS_CAFILE": str(pki / "pki" / "ca.crt")}
    context = ssl.create_default_context(cafile=pki / "pki" / "ca.crt")
    context.load_cert_chain(pki / "issued" / COMMUNE / f"{COMMUNE}.crt", pki / "issued" / COMMUNE / f"{COMMUNE}.key")
    (port,) = free_ports(1)
    with (httpx.Client(verify=context, timeout=60) as client,
          gateway_process(env, port, tmp_path / "gateway.log", "--host", "0.0.0.0", client=client) as url):
        sent = client.post(url + documents(COMMUNE), content=UBL, headers=XML)
        with pytest.raises(httpx.TransportError):
            httpx.get(url + "/healthz", verify=ssl.create_default_context(cafile=pki / "pki" / "ca.crt"), timeout=30)
    assert url.startswith("https://") and sent.status_code == 202, sent.text
