"""Signing keys of the demo's administrations: created once in the key store, then reused."""

from __future__ import annotations

import datetime as dt

from bus._keys import SigningKey, generate_key
from bus._runtime import BusContext

from ._data import ADMINISTRATIONS

__all__ = ["demo_keys"]

#: The demo plays events dated from this day on, so its keys are valid from then.
KEYS_VALID_FROM = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


async def demo_keys(ctx: BusContext) -> dict[str, SigningKey]:
    """A key per demo administration (role → key), stored and published on the bus."""
    store = ctx.keystore
    keys: dict[str, SigningKey] = {}
    fresh = []
    for role, admin in ADMINISTRATIONS.items():
        existing = [k for k in store.load_all(admin["siren"]) if k.public.valid_until is None]
        if existing:
            keys[role] = existing[-1]
            continue
        key = generate_key(admin["siren"], admin["name"], valid_from=KEYS_VALID_FROM)
        store.save(key)
        keys[role] = key
        fresh.append(key)
    # Publishing is idempotent for the directory (same record, compacted topic); always
    # republish so a demo against a fresh broker with an old key store still works.
    await ctx.publish_keys(list(keys.values()))
    return keys
