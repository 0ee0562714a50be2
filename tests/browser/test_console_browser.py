"""The console in a real headless Chromium (Debian's package, driven by Selenium and chromium-driver).

Few tests, each bounded by the driver's page-load timeout: every page opened and screenshotted
(tests/artifacts/screenshots, kept by CI), a dossier followed to an event to its evidence bundle,
a dead letter re-driven by an operator, the re-drive form absent for an auditor (the POST is
refused with 403 in test_console_http), and a hostile field shown as text.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from ._data import DOSSIER, HOSTILE
from .conftest import SCREENSHOTS, as_role, serve

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def session(browser, issuer, data):
    """A fresh console (its own sessions) with the browser logged in as an operator."""
    as_role(issuer, operator=True)
    with serve(issuer, data) as console:
        browser.delete_all_cookies()
        browser.get(console.url + "/")
        assert "Agent Opérateur" in browser.find_element(By.TAG_NAME, "header").text
        yield browser, console


def shot(browser, name: str) -> None:
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_every_page_opens_in_french(session):
    browser, console = session
    for path, name, heading in [("/", "accueil", "Console des auditeurs"), ("/verification", "verification",
                                "État de la vérification"), ("/lettres-mortes", "lettres-mortes", "Lettres mortes"),
                                ("/barometre", "barometre", "Baromètre"), (f"/dossiers/{DOSSIER}", "dossier",
                                "Dossier"), ("/dossiers/inconnu:1", "introuvable", "Page introuvable")]:
        browser.get(console.url + path)
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
        assert heading in browser.find_element(By.TAG_NAME, "h1").text
        shot(browser, name)
    browser.get(console.url + "/barometre")
    titles = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "svg .title")]
    assert any("Délai global de paiement moyen (jours)" in t for t in titles), titles
    assert "2025-07" in browser.find_element(By.CSS_SELECTOR, ".charts").text


def test_follow_a_dossier_to_an_event_to_its_evidence(session):
    browser, console = session
    browser.get(console.url + "/")
    field = browser.find_element(By.ID, "dossier-id")  # its <label for> names it
    field.send_keys(DOSSIER, Keys.ENTER)  # keyboard only
    assert browser.find_element(By.ID, "etat").text == "LatePaymentInterestDue"
    browser.find_element(By.ID, "date").send_keys("06012025")  # typed into the date field
    browser.find_element(By.ID, "date").submit()
    assert browser.find_element(By.ID, "etat").text == "MISE_EN_PAIEMENT"
    browser.find_element(By.LINK_TEXT, "InvoiceReceived").click()
    shot(browser, "evenement")
    assert browser.find_element(By.ID, "donnees").text.count(HOSTILE) == 1  # shown as text
    assert browser.title.startswith("Événement") and "pwned" not in browser.title
    assert browser.find_elements(By.CSS_SELECTOR, "#donnees script, #donnees b") == []
    link = browser.find_element(By.PARTIAL_LINK_TEXT, "paquet de preuves")
    bundle = browser.execute_async_script(
        "const done = arguments[1]; fetch(arguments[0]).then(r => r.arrayBuffer()).then("
        "b => done([...new Uint8Array(b).slice(0, 4)]));", link.get_attribute("href"))
    assert bytes(bundle) == b"PK\x03\x04"  # a zip


def test_operator_redrives_and_auditor_cannot(session, issuer, data):
    browser, console = session
    browser.get(console.url + "/lettres-mortes")
    browser.find_element(By.CSS_SELECTOR, "button[aria-label^='Renvoyer 0@7']").click()
    assert "Renvoyé vers" in browser.find_element(By.ID, "renvoi").text
    assert data.redriven == [(0, 7)]
    shot(browser, "lettres-mortes-renvoi")
    as_role(issuer, operator=False)
    browser.delete_all_cookies()
    browser.get(console.url + "/lettres-mortes")
    assert "Agent Auditeur" in browser.find_element(By.TAG_NAME, "header").text
    assert "1@8" in browser.find_element(By.TAG_NAME, "table").text  # the letter is shown...
    assert browser.find_elements(By.XPATH, "//button[starts-with(@aria-label, 'Renvoyer')]") == []  # ...not its action
