"""The console over HTTP: login through OpenID Connect, roles, CSRF, escaping, French errors."""

from __future__ import annotations

import re

import httpx

from bus._settings import BusSettings
from bus.console._data import BusData

from tests._issuer import free_port

from ._data import DOSSIER, HOSTILE
from .conftest import login, serve


def csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match[1]


def test_pages_need_a_login(console):
    response = httpx.get(f"{console.url}/barometre", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/connexion"


def test_a_forged_state_is_refused(issuer, console):
    with httpx.Client(base_url=console.url, timeout=30) as client:
        assert client.get("/connexion").status_code == 303
        response = client.get("/connexion/retour?code=x&state=forged")
    assert response.status_code == 502 and "state mismatch" in response.text and "Traceback" not in response.text


def test_event_data_is_escaped(issuer, console):
    with login(issuer, console, operator=False) as client:
        page = client.get("/dossiers/" + DOSSIER + "/evenements/0193-a").text
    assert HOSTILE not in page
    assert "&lt;script&gt;document.title=" in page


def test_unknown_dossier_and_event_give_a_french_404(issuer, console):
    with login(issuer, console, operator=False) as client:
        missing = client.get("/dossiers/invoice:nope:1")
        event = client.get(f"/dossiers/{DOSSIER}/evenements/nope")
        nowhere = client.get("/nulle-part")
    assert missing.status_code == 404 and "Aucun événement pour le dossier" in missing.text
    assert event.status_code == 404 and "Aucun événement « nope »" in event.text
    assert nowhere.status_code == 404 and "Page introuvable" in nowhere.text


def test_redrive_is_refused_to_an_auditor_and_without_csrf(issuer, console, data):
    with login(issuer, console, operator=False) as auditor:
        assert "Renvoyer" not in auditor.get("/lettres-mortes").text
        refused = auditor.post("/lettres-mortes/0/7/renvoyer", data={"csrf": csrf(auditor.get("/").text)})
    assert refused.status_code == 403 and "réservée aux opérateurs" in refused.text
    with login(issuer, console, operator=True) as operator:
        forged = operator.post("/lettres-mortes/0/7/renvoyer", data={"csrf": "forged"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert data.redriven == []


def test_a_down_broker_gives_a_page_that_says_so(issuer):
    down = BusSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    with serve(issuer, BusData(down)) as console:
        with login(issuer, console, operator=False) as client:
            response = client.get("/lettres-mortes")
    assert response.status_code == 503
    assert "Le bus est injoignable" in response.text and "Traceback" not in response.text
