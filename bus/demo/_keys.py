"""Signing keys of the demo's administrations: created once in the key store, then reused.

The demo's events are dated from :data:`KEYS_VALID_FROM` on, so each administration needs a key
valid then. The key store may also hold keys made since (the README's first session creates one
for the commune, valid from its own day): the demo's signers are key rings
(:meth:`bus.KeyStore.keyring`) that sign each event with the key valid at its time, and every
stored key of the demo's SIRENs is published, so whichever key signs, the directory knows it.

Each administration also gets an encryption key (:func:`demo_encryption_keys`), valid from the
same day, its private half in ``KEYS_DIR/encryption`` (where the demo's worker, sharing the keys
directory, finds the keys of every administration it serves) and its public half published on the
directory topic, signed by the administration's own signing keys: the events the demo addresses
are sealed to these keys.
"""

from __future__ import annotations

import datetime as dt

from bus._directory import encryption_key_event
from bus._keys import Keyring, SigningKey, generate_key
from bus._runtime import BusContext, encryption_key_store
from bus._sealed import DecryptionKey, generate_encryption_key
from bus._wire import Wire
from bus.client import Publisher

from ._data import ADMINISTRATIONS

__all__ = ["KEYS_VALID_FROM", "demo_encryption_keys", "demo_keys", "keyring_of"]

#: The demo plays events dated from this day on, so its keys are valid from then.
KEYS_VALID_FROM = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


async def demo_keys(ctx: BusContext) -> dict[str, SigningKey]:
    """A key per demo administration (role → its key valid from 2025), stored and published on the bus."""
    store = ctx.keystore
    keys: dict[str, SigningKey] = {}
    for role, admin in ADMINISTRATIONS.items():
        existing = [k for k in store.load_all(admin["siren"])
                    if k.public.purpose == "EVENTS" and k.public.valid_until is None
                    and k.public.valid_from <= KEYS_VALID_FROM]
        if existing:
            keys[role] = existing[-1]
            continue
        key = generate_key(admin["siren"], admin["name"], valid_from=KEYS_VALID_FROM)
        store.save(key)
        keys[role] = key
    # Publishing is idempotent for the directory (same record, compacted topic); always
    # republish so a demo against a fresh broker with an old key store still works.
    sirens = {admin["siren"] for admin in ADMINISTRATIONS.values()}
    await ctx.publish_keys([k for siren in sorted(sirens) for k in store.load_all(siren)])
    return keys


def keyring_of(ctx: BusContext, key: SigningKey) -> Keyring:
    """Every stored signing key of ``key``'s SIREN (``key`` included): what a demo party signs with."""
    return Keyring([*ctx.keystore.keyring(key.public.siren).keys, key])


async def demo_encryption_keys(ctx: BusContext, keys: dict[str, SigningKey]) -> dict[str, DecryptionKey]:
    """An encryption key per demo administration (role → its key valid from 2025), stored once, published.

    ``keys``: the signing keys of :func:`demo_keys`; each administration's encryption key is published
    signed by its own keys, and only when the directory does not hold it yet (a fresh broker gets it again).
    """
    store = encryption_key_store(ctx.settings)
    held = store.load_all()
    out: dict[str, DecryptionKey] = {}
    for role, admin in ADMINISTRATIONS.items():
        existing = [k for k in held if k.public.siren == admin["siren"] and k.public.valid_from is not None
                    and k.public.valid_from <= KEYS_VALID_FROM]
        if existing:
            out[role] = existing[-1]
            continue
        key = generate_encryption_key(admin["siren"], valid_from=KEYS_VALID_FROM, owner=admin["name"])
        store.save(key)
        out[role] = key
    for role, key in out.items():
        published = {k.key_id for k in ctx.directory.encryption_keys.get(key.public.siren, [])}
        if key.key_id in published:
            continue
        wire = Wire(ctx.catalog, ctx.directory, keyring_of(ctx, keys[role]), clock=ctx.clock,
                    max_event_bytes=ctx.settings.max_event_bytes)
        async with Publisher(ctx.settings, wire) as publisher:
            record = await publisher.publish(encryption_key_event(key.public), topic="reference.administrations")
        ctx.learn_key(wire, record)
    return out
