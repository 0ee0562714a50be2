"""Small factories for the core tests: a catalog, keys, a wire, a company event."""

from __future__ import annotations

import datetime as dt

import pytest

from bus import Catalog, Event, KeyDirectory, Wire, default_catalog, generate_key

T0 = dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog()


@pytest.fixture
def key():
    return generate_key("213105554", "Commune test", valid_from=T0 - dt.timedelta(days=30))


@pytest.fixture
def directory(key) -> KeyDirectory:
    return KeyDirectory([key.public])


@pytest.fixture
def wire(catalog, directory, key) -> Wire:
    return Wire(catalog, directory, key, source="urn:siren:213105554:test", clock=lambda: T0)


def company_event(siret: str = "42082007800012", **overrides) -> Event:
    data = {"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret, "name": "ACME",
            "administrative_state": "ACTIVE", "diffusion_status": "DIFFUSIBLE", "source_format": "sirene-json"}
    data.update(overrides)
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}",
                 schema="fr.dcant.reference.Company", data=data)
