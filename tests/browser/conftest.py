"""The console served on loopback with a local OpenID Connect provider, and a headless Chromium.

Chromium and its driver come from Debian's packages (``make browser-deps``); without them the
browser tests are skipped with that hint, while the HTTP tests still run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bus.console import ConsoleSettings, build_app

from ._data import MemoryData
from ._issuer import Issuer, Served

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1366,900")


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    provider = Issuer()
    with provider.served:
        yield provider


def serve(issuer: Issuer, data: object, bus_settings: object = None) -> Served:
    port_holder = Served(None)  # reserve the console's URL first: it is its OIDC redirect URI
    settings = ConsoleSettings(oidc_issuer=issuer.url, oidc_client_secret=issuer.client_secret,
                               session_secret="test-session-secret-" + "x" * 16, public_url=port_holder.url)
    app = build_app(bus_settings, settings, data=data)
    port_holder.server.config.app = app
    return port_holder


@pytest.fixture(scope="module")
def data() -> MemoryData:
    return MemoryData()


@pytest.fixture(scope="module")
def console(issuer, data) -> Iterator[Served]:
    with serve(issuer, data) as served:
        yield served


def as_role(issuer: Issuer, *, operator: bool) -> None:
    """The provider's next login is an operator or an auditor."""
    issuer.user = {"sub": "op-1" if operator else "aud-1", "name": "Agent Opérateur" if operator else "Agent Auditeur",
                   "roles": ["operateur"] if operator else ["auditeur"]}


@contextlib.contextmanager
def login(issuer: Issuer, console: Served, *, operator: bool) -> Iterator[httpx.Client]:
    """An HTTP client logged in through the provider as an operator or an auditor."""
    as_role(issuer, operator=operator)
    with httpx.Client(base_url=console.url, follow_redirects=True, timeout=30) as client:
        assert client.get("/").status_code == 200
        yield client


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("BUS_REQUIRE_BROWSER"):  # make test: never a silent skip
            pytest.fail("no Chromium: run `make browser-deps` (apt-get install chromium chromium-driver)")
        pytest.skip("no Chromium: run `make browser-deps` (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
