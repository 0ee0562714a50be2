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
