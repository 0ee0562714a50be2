"""Keys: generation, the on-disk store, proofs of possession, the directory."""

from __future__ import annotations

import dataclasses
import datetime as dt
import stat

import pytest

from bus import ConfigurationError, KeyDirectory, KeyStore, SignatureError, UnknownKeyError, generate_key

from .conftest import T0


def test_key_id_names_the_siren_and_the_key():
    key = generate_key("213105554", "Toulouse", valid_from=T0)
    siren, digest = key.key_id.split(":")
    assert siren == "213105554" and len(digest) == 16
    assert key.key_id != generate_key("213105554", "Toulouse", valid_from=T0).key_id


def test_repr_never_shows_the_private_key():
    key = generate_key("213105554", "Toulouse", valid_from=T0)
    assert "PRIVATE" not in repr(key) and "_private" not in repr(key)


@pytest.mark.parametrize("siren", ["12345678", "abcdefghi", ""])
def test_bad_siren(siren):
    with pytest.raises(ConfigurationError):
        generate_key(siren, "x", valid_from=T0)


def test_store_round_trip_with_passphrase(tmp_path):
    key = generate_key("213105554", "Toulouse", algorithm="ECDSA_P256_SHA256", valid_from=T0)
    store = KeyStore(tmp_path, passphrase=b"correct horse")
    pem = store.save(key)
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert b"ENCRYPTED" in pem.read_bytes()
    loaded = store.current("213105554", T0 + dt.timedelta(days=1))
    assert loaded.public == key.public
    assert loaded.public.verify_raw(b"m", loaded.sign(b"m")) is None
    with pytest.raises(ConfigurationError, match="BUS_KEY_PASSPHRASE"):
        KeyStore(tmp_path, passphrase=b"wrong").load_all()


def test_current_picks_the_key_valid_now(tmp_path):
    store = KeyStore(tmp_path)
    old = generate_key("213105554", "T", valid_from=T0)
    new = generate_key("213105554", "T", valid_from=T0 + dt.timedelta(days=30))
    store.save(old.retire(T0 + dt.timedelta(days=30)))
    store.save(new)
    assert store.current("213105554", T0 + dt.timedelta(days=1)).key_id == old.key_id
    assert store.current("213105554", T0 + dt.timedelta(days=31)).key_id == new.key_id
    with pytest.raises(ConfigurationError, match="bus keys generate"):
        store.current("213105554", T0 - dt.timedelta(days=1))


def test_directory_refuses_a_forged_registration():
    key = generate_key("213105554", "T", valid_from=T0)
    other = generate_key("213105554", "T", valid_from=T0)
    with pytest.raises(SignatureError):  # someone else's public key under this key's id
        KeyDirectory([dataclasses.replace(key.public, public_der=other.public.public_der)])
    with pytest.raises(SignatureError):  # validity extended without the key's signature
        KeyDirectory([dataclasses.replace(key.public, owner="Mairie pirate")])


def test_unknown_key():
    with pytest.raises(UnknownKeyError):
        KeyDirectory().get("213105554:0000000000000000")
