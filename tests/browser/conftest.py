"""The console served on loopback with a local OpenID Connect provider, and a headless Chromium.

Two consoles: one on the data the real demo produced (``demo``: :func:`bus.demo.run_demo` played
once per session on the session's broker, under its own topic prefix, read by the console's own
:class:`~bus.console._data.BusData`), and one on a hostile in-memory dossier (``data``) that the
escaping tests need. Chromium and its driver come from Debian's packages (``make browser-deps``);
without them the browser tests are skipped with that hint, while the HTTP tests still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bus._settings import BusSettings
from bus.console import ConsoleSettings, build_app

from tests._issuer import Issuer, Served

from ._data import MemoryData

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


@dataclasses.dataclass(frozen=True)
class Demo:
    """The demo played on the session's broker: its settings (own topic prefix) and summary figures."""

    settings: BusSettings
    summary: dict[str, object]

    @property
    def contract(self) -> str:
        """The dossier that crosses families: the contract, its invoices, payments and archive transfer."""
        return f"contract:{self.summary['contract']}"


def require_chromium() -> None:
    """Skip (fail under ``make test``) without Debian's Chromium and chromium-driver."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("BUS_REQUIRE_BROWSER"):  # make test: never a silent skip
            pytest.fail("no Chromium: run `make browser-deps` (apt-get install chromium chromium-driver)")
        pytest.skip("no Chromium: run `make browser-deps` (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="session")
def chromium() -> None:
    require_chromium()


@pytest.fixture(scope="session")
def demo(chromium: None, bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """``bus demo``'s year of a commune, played once on the session's broker (the worker is stopped after).

    Only the browser tests read it: without Chromium they skip before a broker is started or the demo played.
    """
    from rich.console import Console

    from bus.demo import run_demo

    settings = BusSettings(bootstrap_servers=bootstrap, topic_prefix=f"console-{uuid.uuid4().hex[:6]}.",
                           state_dir=tmp_path_factory.mktemp("console-demo"), source="urn:siren:219990017:webdelib")
    out = io.StringIO()
    try:
        summary = asyncio.run(run_demo(settings, console=Console(file=out, width=200)))
    except BaseException:
        print(out.getvalue()[-6000:])  # shown by pytest with the failure
        raise
    assert summary["forgeries dead-lettered"] >= 1, out.getvalue()[-3000:]
    return Demo(settings, summary)


@pytest.fixture(scope="module")
def demo_console(issuer: Issuer, demo: Demo) -> Iterator[Served]:
    """``bus console`` on the demo's broker and topics."""
    with serve(issuer, None, demo.settings) as served:
        yield served


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
    require_chromium()
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
