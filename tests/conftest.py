"""Session-wide fixtures and the guard that integration tests really ran.

The official corpus is read from ``../shared/corpus`` (or ``BUS_CORPUS_DIR``). Outside CI a
missing corpus skips the tests that need it; under CI (``CI=true``) it is an error, as is an
integration test that was skipped or a run that collected none.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("BUS_CORPUS_DIR", ROOT.parent / "shared" / "corpus"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The root of the official corpus (``../shared/corpus``)."""
    if not CORPUS.is_dir():
        if IN_CI:
            pytest.fail(f"the official corpus is missing at {CORPUS}; CI must have ../shared/corpus")
        pytest.skip(f"official corpus not found at {CORPUS} (set BUS_CORPUS_DIR)")
    return CORPUS


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
        help="fail the run when no integration test ran or one was skipped (default under CI=true)",
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI a green run must include the integration tests against the real broker."""
    if not session.config.getoption("--require-integration"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return

    def integration(reports: list) -> list:  # type: ignore[type-arg]
        return [r for r in reports if "tests/integration/" in r.nodeid.replace("\\", "/")]

    passed = integration(reporter.stats.get("passed", []))
    skipped = integration(reporter.stats.get("skipped", []))
    if skipped:
        reporter.write_line(f"ERROR: {len(skipped)} integration test(s) were skipped; CI must run them all", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif not passed and session.exitstatus == pytest.ExitCode.OK:
        reporter.write_line("ERROR: no integration test ran; CI must run them against the real broker", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
