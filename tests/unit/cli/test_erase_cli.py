"""``bus erase`` refuses bad input with one line and exit 2, and destroys nothing when it cannot publish.

The broker is really absent (a closed port): the erasure event cannot go out, so the key stays.
The erasure itself against the real broker is tests/integration/test_erasure.py.
"""

from __future__ import annotations

from pathlib import Path

from bus import DossierKeyStore

from .test_failures_cli import HINT, bus, no_broker, one_line  # noqa: F401 - no_broker is a fixture

DOSSIER = "act:213105554:DEL-2026-001"


def _store(env: dict[str, str]) -> DossierKeyStore:
    return DossierKeyStore(Path(env["BUS_STATE_DIR"]) / "keys" / "dossier")


def test_an_unknown_dossier_is_one_line(no_broker):
    line = one_line(bus("erase", DOSSIER, "--basis", "RGPD art. 17", env=no_broker))
    assert line.startswith(f"bus: error: no personal data of {DOSSIER} is encrypted here")


def test_a_missing_or_empty_basis_is_one_line(no_broker):
    _store(no_broker).key_for_sealing(DOSSIER, "acts")
    assert "--basis" in one_line(bus("erase", DOSSIER, env=no_broker))
    assert "--basis is empty" in one_line(bus("erase", DOSSIER, "--basis", "  ", env=no_broker))


def test_no_broker_is_one_line_and_the_key_stays(no_broker):
    store = _store(no_broker)
    key_id, key = store.key_for_sealing(DOSSIER, "acts")
    line = one_line(bus("erase", DOSSIER, "--basis", "RGPD art. 17", env=no_broker))
    assert line == f"bus: error: no broker at {no_broker['BUS_BOOTSTRAP_SERVERS']} — {HINT}"
    assert store.key(DOSSIER, key_id) == key and store.erasure(DOSSIER) is None  # nothing erased, nothing claimed


def test_an_erased_dossier_is_one_line(no_broker):
    import datetime as dt

    store = _store(no_broker)
    store.key_for_sealing(DOSSIER, "acts")
    store.destroy(DOSSIER, basis="RGPD art. 17", at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert "already erased on 2026-12-01" in one_line(bus("erase", DOSSIER, "--basis", "again", env=no_broker))
