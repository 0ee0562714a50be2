"""The gateway's caller from a verified client certificate: its name, its listed policy, or a SIREN's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus._pki import CertificateAuthority
from bus.gateway import ClientPolicy, GatewayProblem
from bus.gateway._auth import certificate_caller

SIREN = "213105554"
CLIENTS = {"finance-app": ClientPolicy(administrations=[SIREN], submit=["ubl"], read=["fr.dcant.invoices.*"])}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.init(tmp_path_factory.mktemp("pki"))


def scope_of(certfile: Path) -> dict:
    """A request's scope as the HTTPS server hands it over after verifying ``certfile`` (bus._https)."""
    return {"type": "http", "extensions": {"tls": {"client_cert_chain": [certfile.read_text()]}}}


def test_a_listed_service_gets_its_policy(ca, tmp_path):
    caller = certificate_caller(scope_of(ca.issue("finance-app", tmp_path).certfile), CLIENTS)
    assert caller is not None and caller.client_id == "finance-app" and caller.policy == CLIENTS["finance-app"]


def test_an_unlisted_sirens_certificate_acts_for_that_siren_only(ca, tmp_path):
    caller = certificate_caller(scope_of(ca.issue(SIREN, tmp_path).certfile), CLIENTS)
    assert caller is not None and caller.policy == ClientPolicy(administrations=[SIREN], submit=["*"], read=["*"])
    assert caller.policy.may_submit("seda") and not caller.policy.may_act_for("443061841")


def test_an_unlisted_service_or_a_servers_certificate_is_refused(ca, tmp_path):
    with pytest.raises(GatewayProblem, match="'ledger' has no policy") as unknown:
        certificate_caller(scope_of(ca.issue("ledger", tmp_path / "ledger").certfile), CLIENTS)
    server = ca.issue_server("console", tmp_path / "console", hosts=("127.0.0.1",))
    with pytest.raises(GatewayProblem, match="not a calling system's") as not_client:
        certificate_caller(scope_of(server.certfile), CLIENTS)
    assert unknown.value.status == 403 and not_client.value.status == 403


def test_no_certificate_is_no_caller():
    assert certificate_caller({"type": "http"}, CLIENTS) is None
