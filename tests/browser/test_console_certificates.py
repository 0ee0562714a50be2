"""``bus console`` over HTTPS with the bus's certificates: the role comes from the client certificate.

The site CA, the console's server certificate and the clients' certificates are made by ``bus pki``
(``init``, ``issue-server``, ``issue``) in a temporary state directory; the console is served by
uvicorn exactly as the command serves it (:func:`bus.console._serve.server_config`), without an
OpenID Connect provider, so a client certificate is required. Requests are real HTTPS (httpx).
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from bus._pki import CertificateAuthority
from bus.cli import app as cli
from bus.console import ConsoleSettings, build_app
from bus.console._serve import server_config

from tests._issuer import Served

from ._data import MemoryData

SECRET = "test-session-secret-" + "x" * 16


def bus_pki(state: Path, *args: str) -> str:
    done = CliRunner().invoke(cli, ["pki", *args], env={"BUS_STATE_DIR": str(state), "COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    return done.output


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """STATE_DIR/pki with the site CA, ``console``'s server certificate and four client certificates."""
    state = tmp_path_factory.mktemp("console-pki")
    bus_pki(state, "init")
    bus_pki(state, "issue-server", "console", "--host", "127.0.0.1")
    for name in ("operator", "ledger", "219990017", "worker"):
        bus_pki(state, "issue", name)
    return state / "pki"


@pytest.fixture(scope="module")
def console(pki: Path, data: MemoryData) -> Iterator[Served]:
    issued = pki / "issued" / "console"
    settings = ConsoleSettings(session_secret=SECRET, tls_certfile=issued / "console.crt",
                               tls_keyfile=issued / "console.key", tls_cafile=pki / "ca.crt",
                               operators="operator", auditors="ledger, 219990017")  # type: ignore[arg-type]
    with Served(build_app(None, settings, data=data),
                lambda app, port: server_config(app, settings, "127.0.0.1", port)) as served:
        yield served


def client(console: Served, pki: Path, name: str | None, folder: Path | None = None) -> httpx.Client:
    """An HTTPS client trusting the site CA, presenting ``name``'s certificate (none for ``None``)."""
    context = ssl.create_default_context(cafile=pki / "ca.crt")
    if name is not None:
        where = (folder or pki / "issued") / name
        context.load_cert_chain(where / f"{name}.crt", where / f"{name}.key")
    return httpx.Client(base_url=console.url, verify=context, timeout=30)


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match[1]


def test_an_operator_certificate_redrives(console, pki, data):
    with client(console, pki, "operator") as operator:
        home = operator.get("/")
        letters = operator.get("/lettres-mortes")
        done = operator.post("/lettres-mortes/0/7/renvoyer", data={"csrf": csrf(letters.text)})
        forged = operator.post("/lettres-mortes/1/8/renvoyer", data={"csrf": "forged"})
    assert home.status_code == 200 and "operator (opérateur)" in home.text
    assert "Renvoyer" in letters.text
    assert done.status_code == 303 and done.headers["location"].startswith("/lettres-mortes?renvoye=")
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert data.redriven == [(0, 7)]


@pytest.mark.parametrize("name", ["ledger", "219990017"])
def test_an_auditor_certificate_reads_and_is_refused_the_redrive(console, pki, data, name):
    with client(console, pki, name) as auditor:
        letters = auditor.get("/lettres-mortes")
        refused = auditor.post("/lettres-mortes/1/8/renvoyer", data={"csrf": csrf(letters.text)})
    assert letters.status_code == 200 and f"{name} (auditeur)" in letters.text and "1@8" in letters.text
    assert "Renvoyer" not in letters.text
    assert refused.status_code == 403 and "réservée aux opérateurs" in refused.text
    assert (1, 8) not in data.redriven


def test_a_certificate_not_mapped_to_a_role_is_refused(console, pki):
    with client(console, pki, "worker") as worker:
        response = worker.get("/")
    assert response.status_code == 403 and "Le certificat « worker » n&#39;ouvre pas la console" in response.text


def test_no_certificate_or_one_of_another_ca_gets_no_connection(console, pki, tmp_path):
    other = CertificateAuthority.init(tmp_path / "other-pki")
    other.issue("operator", tmp_path / "other" / "operator")
    for name, folder in ((None, None), ("operator", tmp_path / "other")):
        with client(console, pki, name, folder) as stranger, pytest.raises(httpx.TransportError):
            stranger.get("/")


def test_the_command_needs_a_way_to_log_in():
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUS_CONSOLE_")}
    done = subprocess.run([sys.executable, "-c", "from bus.cli import main; main()", "console"], capture_output=True,
                          text=True, timeout=60, env={**env, "BUS_CONSOLE_SESSION_SECRET": SECRET})
    assert done.returncode == 2 and "no way to log in" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and SECRET not in done.stderr
