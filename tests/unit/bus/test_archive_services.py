"""The directory's archive service assignments: signed by the collectivity, the latest one wins."""

from __future__ import annotations

import pytest

from bus import ForgedRegistrationError
from bus._directory import archive_service_event

from .test_authority import DAY, SIREN, T0, Bus

SERVICE, MUTUALISED = "130000001", "250000002"


def test_a_collectivity_assigns_its_archive_service_and_the_latest_assignment_wins(catalog, tmp_path):
    bus = Bus(catalog, tmp_path)
    key = bus.register()
    bus.approve(key)
    assert bus.publish(archive_service_event(SIREN, SERVICE, T0 + 2 * DAY), key, T0 + 2 * DAY) == "archive service"
    assert bus.directory.archive_services == {SIREN: SERVICE}
    bus.publish(archive_service_event(SIREN, MUTUALISED, T0 + 3 * DAY), key, T0 + 3 * DAY)  # joins a mutualised one
    assert bus.directory.archive_services == {SIREN: MUTUALISED}


def test_an_assignment_made_by_another_siren_is_refused(catalog, tmp_path, monkeypatch):
    bus = Bus(catalog, tmp_path)
    stranger = bus.register(siren="220200010")
    bus.approve(stranger)
    monkeypatch.setattr("bus._wire._check_source", lambda *a, **k: None)  # a producer with a patched SDK
    with pytest.raises(ForgedRegistrationError, match="not an EVENTS key of that collectivity"):
        bus.publish(archive_service_event(SIREN, MUTUALISED, T0 + 2 * DAY), stranger, T0 + 2 * DAY)
    assert bus.directory.archive_services == {}
