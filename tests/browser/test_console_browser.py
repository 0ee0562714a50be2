"""The console in a real headless Chromium (Debian's package, driven by Selenium and chromium-driver).

On the data the real demo produced (fixture ``demo``): every page opened and screenshotted
(tests/artifacts/screenshots, kept by CI; the README's views also to ``BUS_README_SCREENSHOTS``,
see ``make screenshots``), the contract's dossier followed to an event to its evidence bundle, the
demo's forged company record re-driven by an operator, and refused (403) to an auditor. On a
hostile in-memory dossier (fixture ``data``): markup in event data shown as text. Each test logs
in itself; each step is bounded by the driver's page-load timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait

from bus.client import read_topic
from bus.ledger._evidence import verify_bundle

from ._data import DOSSIER, HOSTILE
from .conftest import SCREENSHOTS, as_role, serve

pytestmark = pytest.mark.browser

#: Pages whose screenshot the README shows (docs/console-<name>.png), made from the demo's data.
README_VIEWS = {"dossier", "evenement", "verification", "lettres-mortes", "barometre"}


def shot(browser, name: str) -> None:
    path = SCREENSHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    readme = os.environ.get("BUS_README_SCREENSHOTS")
    if readme and name in README_VIEWS:
        Path(readme).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(readme) / f"console-{name}.png")


def log_in(browser, issuer, console, *, operator: bool) -> None:
    """A fresh browser session on ``console``, logged in through the provider."""
    as_role(issuer, operator=operator)
    browser.delete_all_cookies()
    browser.get(console.url + "/")
    who = "Agent Opérateur" if operator else "Agent Auditeur"
    assert who in browser.find_element(By.TAG_NAME, "header").text


def arrived(browser, condition) -> None:
    """Wait (the page-load timeout at most) for the navigation a click or a key started to show ``condition``."""
    WebDriverWait(browser, 30, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(
        condition)


def heading(browser, text: str) -> None:
    """Wait for a page whose <h1> holds ``text``."""
    arrived(browser, lambda b: text in b.find_element(By.TAG_NAME, "h1").text)


def opened(browser, url: str, heading: str) -> str:
    """Open ``url``: a French page whose <h1> holds ``heading``; returns the page's main text."""
    browser.get(url)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
    assert heading in browser.find_element(By.TAG_NAME, "h1").text
    return browser.find_element(By.TAG_NAME, "main").text


def fetch(browser, url: str, method: str = "GET", form: dict[str, str] | None = None) -> tuple[int, bytes]:
    """``url`` fetched by the page itself (the browser's cookies): status and body."""
    status, body = browser.execute_async_script(
        "const [url, method, form, done] = arguments;"
        "fetch(url, {method, body: form ? new URLSearchParams(form) : undefined})"
        ".then(r => r.arrayBuffer().then(b => done([r.status, [...new Uint8Array(b)]])));", url, method, form)
    return status, bytes(body)


def test_every_page_opens_on_the_demos_data(browser, issuer, demo, demo_console):
    log_in(browser, issuer, demo_console, operator=True)
    url, prefix = demo_console.url, demo.settings.topic_prefix
    assert "Console des auditeurs" in opened(browser, url + "/", "Console des auditeurs")
    shot(browser, "accueil")

    timeline = opened(browser, f"{url}/dossiers/{demo.contract}", "Dossier")
    assert "ContractDataPublished" in timeline and "LatePaymentInterestDue" in timeline
    assert "ArchiveTransferReplied" in timeline
    shot(browser, "dossier")
    browser.find_element(By.LINK_TEXT, "LatePaymentInterestDue").click()
    heading(browser, "LatePaymentInterestDue")
    shot(browser, "evenement")

    status = opened(browser, url + "/verification", "État de la vérification")
    for family in ("acts", "procurement", "invoices", "accounting", "archives"):
        assert f"{prefix}dcant.{family}" in status
    shot(browser, "verification")

    letters = opened(browser, url + "/lettres-mortes", "Lettres mortes")
    assert demo.summary["forged record"] in letters and "SignatureError" in letters
    shot(browser, "lettres-mortes")

    opened(browser, url + "/barometre", "Baromètre")
    titles = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "svg .title")]
    assert any("Intérêts moratoires versés (euros)" in t for t in titles), titles
    assert any("Pièces réutilisées et demandées aux entreprises (pièces)" in t for t in titles), titles
    assert "2025-08" in browser.find_element(By.CSS_SELECTOR, ".charts").text  # the late payment's month
    shot(browser, "barometre")

    assert "Aucun événement pour le dossier" in opened(browser, url + "/dossiers/contract:inconnu", "Page introuvable")
    shot(browser, "introuvable")
    assert "Aucun événement « inconnu »" in opened(browser, f"{url}/dossiers/{demo.contract}/evenements/inconnu",
                                                  "Page introuvable")


def test_follow_a_demo_dossier_to_an_event_to_its_evidence(browser, issuer, demo, demo_console):
    log_in(browser, issuer, demo_console, operator=False)
    browser.find_element(By.ID, "dossier-id").send_keys(demo.contract, Keys.ENTER)  # keyboard only, by its label
    heading(browser, demo.contract)
    total = len(browser.find_elements(By.CSS_SELECTOR, "tbody tr"))
    browser.find_element(By.ID, "date").send_keys("05012025")  # 2025-05-01 typed into the date field
    browser.find_element(By.ID, "date").submit()
    arrived(browser, lambda b: "date=2025-05-01" in b.current_url and b.find_element(By.ID, "etat"))
    # the contract before its invoices: notified, its DECP data, then modified (its term extended)
    assert f"(3 événement(s) sur {total})" in browser.find_element(By.TAG_NAME, "main").text
    assert browser.find_element(By.ID, "etat").text == "ContractModified"

    browser.find_element(By.LINK_TEXT, "LatePaymentInterestDue").click()
    heading(browser, "LatePaymentInterestDue")
    data = json.loads(browser.find_element(By.ID, "donnees").text)
    assert data["interest_amount"] == demo.summary["late payment interest"]
    assert data["days_late"] == demo.summary["days late"]
    event_id = browser.find_element(By.CSS_SELECTOR, "dd code").text

    link = browser.find_element(By.PARTIAL_LINK_TEXT, "paquet de preuves")
    status, body = fetch(browser, link.get_attribute("href"))
    assert status == 200
    report = verify_bundle(body)  # as `bus evidence verify` checks it, offline
    assert report.dossier == demo.contract and event_id in [o.id for o in report.events]


def forged_and_redriven(demo, position: str) -> tuple[bytes | None, bytes | None]:
    """The values of the forged record and of the record at ``position`` (``topic[p]@o``) on the broker."""
    forged = re.fullmatch(r"(.+)\[(\d+)\]@(\d+)", demo.summary["forged record"])
    where = re.fullmatch(r"(.+)\[(\d+)\]@(\d+)", position)
    assert forged and where and where[1] == forged[1], position
    records = asyncio.run(read_topic(demo.settings, forged[1]))
    at = {(r.partition, r.offset): r.value for r in records}
    return at.get((int(forged[2]), int(forged[3]))), at.get((int(where[2]), int(where[3])))


def test_an_operator_redrives_the_demos_forged_record(browser, issuer, demo, demo_console):
    log_in(browser, issuer, demo_console, operator=True)
    browser.get(demo_console.url + "/lettres-mortes")
    row = browser.find_element(By.XPATH, f"//tr[td[text()='{demo.summary['forged record']}']]")
    row.find_element(By.XPATH, ".//button[starts-with(@aria-label, 'Renvoyer')]").click()
    arrived(browser, lambda b: b.find_element(By.ID, "renvoi"))
    done = browser.find_element(By.ID, "renvoi").text
    shot(browser, "lettres-mortes-renvoi")
    position = re.fullmatch(r"Renvoyé vers (\S+)\.", done)
    assert position, done
    original, redriven = forged_and_redriven(demo, position[1])
    assert original is not None and redriven == original  # the dead letter's bytes, back on its topic


def test_an_auditor_is_refused_the_redrive(browser, issuer, demo, demo_console):
    log_in(browser, issuer, demo_console, operator=False)
    letters = opened(browser, demo_console.url + "/lettres-mortes", "Lettres mortes")
    assert demo.summary["forged record"] in letters  # the letter is shown...
    assert browser.find_elements(By.XPATH, "//button[starts-with(@aria-label, 'Renvoyer')]") == []  # ...not its action
    partition, offset = re.search(r"^(\d+)@(\d+) " + re.escape(demo.summary["forged record"]), letters, re.M).groups()
    token = browser.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")  # the auditor's own
    browser.execute_script(  # the operator's form, forged in the auditor's page and submitted
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "const t = document.createElement('input'); t.name = 'csrf'; t.value = arguments[1]; f.append(t);"
        "document.body.append(f); f.submit();", f"/lettres-mortes/{partition}/{offset}/renvoyer", token)
    heading(browser, "Accès refusé")
    assert "réservée aux opérateurs" in browser.find_element(By.TAG_NAME, "main").text
    shot(browser, "refus-auditeur")
    status, _ = fetch(browser, f"/lettres-mortes/{partition}/{offset}/renvoyer", "POST", {"csrf": token})
    assert status == 403


def test_hostile_event_data_shows_as_text(browser, issuer, data):
    with serve(issuer, data) as console:
        log_in(browser, issuer, console, operator=False)
        browser.find_element(By.ID, "dossier-id").send_keys(DOSSIER, Keys.ENTER)
        heading(browser, DOSSIER)
        assert browser.find_element(By.ID, "etat").text == "LatePaymentInterestDue"
        browser.find_element(By.LINK_TEXT, "InvoiceReceived").click()
        arrived(browser, lambda b: b.find_element(By.ID, "donnees"))
        shot(browser, "evenement-hostile")
        assert browser.find_element(By.ID, "donnees").text.count(HOSTILE) == 1  # shown as text
        assert browser.title.startswith("Événement") and "pwned" not in browser.title
        assert browser.find_elements(By.CSS_SELECTOR, "#donnees script, #donnees b") == []
