"""The signer picks, for each event, the key its verifiers will accept: the one valid at ``ce_time``."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from bus import (
    BusContext,
    BusSettings,
    KeyDirectory,
    Keyring,
    KeyNotValidError,
    KeyStore,
    NoValidKeyError,
    SecurityError,
    Wire,
    generate_key,
)

from .conftest import company_event

SIREN = "219990017"
Y2025 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
Y2026 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(moment: dt.datetime):  # type: ignore[no-untyped-def]
    return dataclasses.replace(company_event(), time=moment)


def sigkeyid(record) -> str:  # type: ignore[no-untyped-def]
    return dict(record.headers)["ce_sigkeyid"].decode()


@pytest.fixture
def rotated():
    """A key of 2025 retired at the start of 2026, and its successor valid from then."""
    old = generate_key(SIREN, "Commune", valid_from=Y2025).retire(Y2026)
    new = generate_key(SIREN, "Commune", valid_from=Y2026)
    return old, new


def test_each_event_is_signed_with_the_key_of_its_period(catalog, rotated):
    old, new = rotated
    directory = KeyDirectory([old.public, new.public])
    wire = Wire(catalog, directory, Keyring([new, old]), source=f"urn:siren:{SIREN}:finance")
    in_2025 = wire.seal(at(dt.datetime(2025, 6, 1, tzinfo=dt.UTC)))
    in_2026 = wire.seal(at(dt.datetime(2026, 6, 1, tzinfo=dt.UTC)))
    assert sigkeyid(in_2025) == old.key_id
    assert sigkeyid(in_2026) == new.key_id
    reader = Wire(catalog, directory)
    assert reader.open(in_2025).envelope.sigkeyid == old.key_id
    assert reader.open(in_2026).envelope.sigkeyid == new.key_id


def test_a_back_filled_year_keeps_its_old_key_after_a_new_one_is_made(catalog):
    """The demo then the README's first session: a 2025 key, then a key valid from today."""
    demo = generate_key(SIREN, "Commune", valid_from=Y2025)
    today = generate_key(SIREN, "Commune", valid_from=dt.datetime(2026, 11, 30, tzinfo=dt.UTC))
    directory = KeyDirectory([demo.public, today.public])
    wire = Wire(catalog, directory, Keyring([demo, today]), source=f"urn:siren:{SIREN}:webdelib")
    assert sigkeyid(wire.seal(at(dt.datetime(2025, 3, 20, tzinfo=dt.UTC)))) == demo.key_id
    assert sigkeyid(wire.seal(at(dt.datetime(2026, 12, 1, tzinfo=dt.UTC)))) == today.key_id  # the newest


def test_no_key_valid_at_the_event_time_refuses_to_seal(catalog, rotated):
    old, new = rotated
    wire = Wire(catalog, KeyDirectory([old.public, new.public]), Keyring([old, new]),
                source=f"urn:siren:{SIREN}:finance")
    with pytest.raises(NoValidKeyError) as caught:
        wire.seal(at(dt.datetime(2024, 12, 31, tzinfo=dt.UTC)))
    err = caught.value
    assert isinstance(err, SecurityError)
    assert SIREN in err.message and "2024-12-31" in err.message
    assert f"bus keys generate {SIREN} --valid-from 2024-12-31" in err.hint


def test_a_single_key_never_seals_what_its_verifier_refuses(catalog):
    key = generate_key(SIREN, "Commune", valid_from=Y2026)
    directory = KeyDirectory([key.public])
    with pytest.raises(NoValidKeyError):
        Wire(catalog, directory, key).seal(at(dt.datetime(2025, 6, 1, tzinfo=dt.UTC)))
    # The same event, had it been signed, is what the verifier refuses.
    unchecked = Wire(catalog, directory, key, clock=lambda: Y2026).seal(company_event())
    forged_time = dataclasses.replace(unchecked, headers=tuple(
        (k, b"2025-06-01T00:00:00.000000Z" if k == "ce_time" else v) for k, v in unchecked.headers))
    with pytest.raises(KeyNotValidError):  # validity is checked before the signature
        Wire(catalog, directory).open(forged_time)


def test_the_ring_signs_with_the_key_of_the_source_siren(catalog):
    commune = generate_key(SIREN, "Commune", valid_from=Y2025)
    prefecture = generate_key("130009990", "Préfecture", valid_from=Y2026)  # newer, valid too
    ring = Keyring([commune, prefecture])
    wire = Wire(catalog, KeyDirectory([commune.public, prefecture.public]), ring)
    moment = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    as_commune = dataclasses.replace(at(moment), source=f"urn:siren:{SIREN}:webdelib")
    as_prefecture = dataclasses.replace(at(moment), source="urn:siren:130009990:actes")
    assert sigkeyid(wire.seal(as_commune)) == commune.key_id
    assert sigkeyid(wire.seal(as_prefecture)) == prefecture.key_id


def test_the_context_wire_signs_with_the_stored_key_of_the_event_time(catalog, tmp_path):
    settings = BusSettings(state_dir=tmp_path, source=f"urn:siren:{SIREN}:webdelib")
    store = KeyStore(settings.resolved_keys_dir)
    demo = generate_key(SIREN, "Commune", valid_from=Y2025)
    today = generate_key(SIREN, "Commune", valid_from=Y2026)
    ledger = generate_key(SIREN, "Commune ledger", valid_from=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
                          purpose="LEDGER")
    for key in (demo, today, ledger):
        store.save(key)
    ctx = BusContext.offline(settings, clock=lambda: dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    assert ctx.signer is not None and ctx.signer.key_id == today.key_id
    wire = ctx.wire()
    assert sigkeyid(wire.seal(at(dt.datetime(2025, 3, 20, tzinfo=dt.UTC)))) == demo.key_id
    assert sigkeyid(wire.seal(company_event())) == today.key_id  # dated by the clock
    with pytest.raises(NoValidKeyError):  # the LEDGER key never signs events
        wire.seal(at(dt.datetime(2024, 6, 1, tzinfo=dt.UTC)))
