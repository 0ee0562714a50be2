"""Session-wide fixtures and the guard that integration tests really ran.

The official corpus is read from ``../shared/corpus`` (or ``BUS_CORPUS_DIR``). Outside CI a
missing corpus skips the tests that need it, and the run ends with one line saying how many and
what is missing; under CI (``CI=true``) it is an error, as is any skipped test, an integration
test that xfailed or xpassed, or a run with no integration test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("BUS_CORPUS_DIR", ROOT.parent / "shared" / "corpus"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CORPUS_MISSING = "official corpus not found"


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM (a CI timeout, ``timeout``, a closed terminal) interrupts the session like Ctrl-C.

    pytest then tears the session's fixtures down, which stops the brokers they started; killed
    by the default SIGTERM action, the session left its Kafka JVMs running.
    """
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}: stopping the test session and its brokers")

    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The root of the official corpus (``../shared/corpus``)."""
    if not CORPUS.is_dir():
        if IN_CI:
            pytest.fail(f"the official corpus is missing at {CORPUS}; CI must have ../shared/corpus")
        pytest.skip(f"{CORPUS_MISSING} at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def official_packages() -> Path:
    """The official EN 16931 and eForms rules and the UBL/CII/eForms XSDs, resolved from Maven Central like the Kafka jars.

    ``make venv`` resolves them into the cache; a session that finds them missing resolves them once.
    """
    from bus._errors import BusError
    from bus._packages import ensure_official_packages
    from bus._settings import BusSettings

    try:
        return ensure_official_packages(BusSettings())
    except BusError as exc:
        pytest.fail(f"the official packages cannot be resolved: {exc}")


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap servers of the session's Kafka: started here, or the external cluster.

    Shared by the integration and the browser tests (one broker per session, whichever runs).
    """
    from bus._broker import EmbeddedBroker, wait_until_ready
    from bus._settings import BusSettings
    from tests.integration.conftest import embedded_settings, kafka_processes_of

    external = os.environ.get("BUS_BOOTSTRAP_SERVERS")
    if external:
        wait_until_ready(external, 120, settings=BusSettings())
        yield external
        return
    state_dir = tmp_path_factory.mktemp("session-broker")
    broker = EmbeddedBroker(embedded_settings(state_dir))
    try:
        yield broker.start(timeout=180)
    finally:
        broker.stop()
        left = kafka_processes_of(state_dir)
        assert not left, f"Kafka processes {left} of {state_dir} survived the session"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "conformance" in parts:
            item.add_marker(pytest.mark.conformance)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-integration", action="store_true", default=IN_CI,
        help="fail the run when no integration test ran, a test was skipped or an integration test xfailed or "
             "xpassed (default under CI=true)",
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a green run has no skip and includes the integration tests against the real broker."""
    if not session.config.getoption("--require-integration"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return

    def integration(reports: list) -> list:  # type: ignore[type-arg]
        return [r for r in reports if "tests/integration/" in r.nodeid.replace("\\", "/")]

    passed = integration(reporter.stats.get("passed", []))
    # Any skip, and an integration test's xfail or xpass (a known defect or a stale marker), is not green.
    unsettled = {"skipped": list(reporter.stats.get("skipped", [])),
                 **{kind: integration(reporter.stats.get(kind, [])) for kind in ("xfailed", "xpassed")}}
    if any(unsettled.values()):
        counts = ", ".join(f"{len(found)} {kind}" for kind, found in unsettled.items() if found)
        reporter.write_line(f"ERROR: tests not plainly passed ({counts}); CI must run them all", red=True)
        for report in (r for found in unsettled.values() for r in found):
            reporter.write_line(f"  {report.nodeid}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif not passed and session.exitstatus == pytest.ExitCode.OK:
        reporter.write_line("ERROR: no integration test ran; CI must run them against the real broker", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """One line for every test the missing corpus skipped, instead of one reason per test."""
    missing = [r for r in terminalreporter.stats.get("skipped", []) if CORPUS_MISSING in _skip_reason(r)]
    if missing:
        terminalreporter.write_line(
            f"{len(missing)} tests skipped: {CORPUS_MISSING} at {CORPUS}; "
            "set BUS_CORPUS_DIR or place it at ../shared/corpus", yellow=True)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
