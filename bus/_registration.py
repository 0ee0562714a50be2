"""What the registration authority does: create its key, approve, revoke, rotate (``bus ra``).

Each operation builds its directory events (:mod:`bus._directory`), signs them with the RA
key holding the authority now, publishes them on the directory topic and folds them into
the context's directory. :func:`check_siren` is the reference check an approval rests on: a
public body has a SIRENE legal category 7xxx, a supplier is an active legal unit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from ._authority import PURPOSES, Authority, AuthorityKey, Revocation, fingerprint
from ._directory import approval_event, approval_for, authority_event, encryption_approval, revocation_event
from ._errors import ConfigurationError, RegistrationRefusedError, UnknownKeyError
from ._runtime import BusContext
from ._wire import Record

__all__ = ["approve", "check_siren", "companies_of", "init_authority", "revoke", "rotate_authority"]


def check_siren(companies: Iterable[Mapping[str, Any]], siren: str, *, supplier: bool = False,
                key_id: str | None = None) -> str | None:
    """The SIRENE legal category of ``siren`` if it may hold a key; raise :class:`RegistrationRefusedError`."""
    units = [c for c in companies if c.get("siren") == siren and c.get("kind") == "LEGAL_UNIT"]
    if not units:
        raise RegistrationRefusedError(f"SIREN {siren} is not in the reference companies", siren=siren, key_id=key_id)
    unit = units[-1]
    category = unit.get("legal_form")
    if supplier:
        if unit.get("administrative_state") != "ACTIVE":
            raise RegistrationRefusedError(f"SIREN {siren} is not an active company "
                                           f"({unit.get('administrative_state')})", siren=siren, key_id=key_id)
    elif not (category or "").startswith("7"):
        raise RegistrationRefusedError(f"SIREN {siren} is not a public body (SIRENE legal category {category}, "
                                       "7xxx expected); pass --supplier for a company", siren=siren, key_id=key_id)
    return category


def companies_of(ctx: BusContext, records: Iterable[Record]) -> list[dict[str, Any]]:
    """The company records that verify (under the context's trust rules); others are not evidence."""
    wire = ctx.wire()
    out = []
    for record in records:
        if record.value is None:
            continue
        try:
            out.append(wire.open(record).data)
        except Exception:  # noqa: BLE001 - an unverifiable record is simply not a reference
            continue
    return out


def _purposes(purposes: Iterable[str]) -> tuple[str, ...]:
    out = tuple(p.upper() for p in purposes)
    bad = [p for p in out if p not in PURPOSES]
    if bad:
        raise ConfigurationError(f"unknown purpose {bad[0]}", hint=f"use {', '.join(PURPOSES)}")
    return out


async def init_authority(ctx: BusContext, authority: Authority, at: dt.datetime) -> tuple[str, str]:
    """Create the RA key, publish its self-signed record; return (fingerprint, anchor PEM path)."""
    if authority.keys():
        raise ConfigurationError(f"a registration authority key already exists in {authority.root}",
                                 hint="use `bus ra rotate` to replace it")
    key = authority.create(at)
    path = authority.save(key)
    record = AuthorityKey(key.key_id, key.public.public_der, at)
    await ctx.publish_directory([authority_event(record, at)], key)
    return fingerprint(key.public.public_der), str(path)


async def rotate_authority(ctx: BusContext, authority: Authority, at: dt.datetime) -> str:
    """A new RA key, introduced by the current one, whose authority ends at ``at``; return the new key id."""
    old = authority.current(at)
    new = authority.create(at)
    await ctx.publish_directory([authority_event(AuthorityKey(new.key_id, new.public.public_der, at, old.key_id), at)],
                                old)
    authority.save(old.retire(at))
    authority.save(new)
    return new.key_id


async def approve(ctx: BusContext, authority: Authority, key_id: str, *, at: dt.datetime,
                  companies: Iterable[Mapping[str, Any]] | None, supplier: bool = False,
                  purposes: Iterable[str] = (), valid_from: dt.datetime | None = None,
                  valid_until: dt.datetime | None = None) -> None:
    """Countersign the published registration ``key_id``; ``companies`` None skips the reference check.

    An encryption key (``<siren>:enc:<hash>``) is approved for ``ENCRYPTION`` over its own period.
    """
    if ":enc:" in key_id:
        enc = next((k for k in ctx.directory.encryption_keys.get(key_id.split(":", 1)[0], []) if k.key_id == key_id),
                   None)
        if enc is None:
            raise UnknownKeyError(f"no encryption key {key_id} in the directory", key_id=key_id,
                                  hint="publish it first with `bus keys encryption SIREN`")
        category = None if companies is None else check_siren(companies, enc.siren, supplier=supplier, key_id=key_id)
        approval = encryption_approval(enc, at=at, legal_category=category if companies is not None else "unchecked")
        await ctx.publish_directory([approval_event(approval)], authority.current(at))
        return
    key = ctx.directory.get(key_id)
    category = None if companies is None else check_siren(companies, key.siren, supplier=supplier, key_id=key_id)
    approval = approval_for(key, purposes=_purposes(purposes), valid_from=valid_from, valid_until=valid_until,
                            legal_category=category if companies is not None else "unchecked", at=at)
    await ctx.publish_directory([approval_event(approval)], authority.current(at))


async def revoke(ctx: BusContext, authority: Authority, key_id: str, *, reason: str, at: dt.datetime,
                 revoked_from: dt.datetime | None = None) -> None:
    """Revoke ``key_id`` from ``revoked_from`` (default: now)."""
    key = ctx.directory.get(key_id)
    revocation = Revocation(key.key_id, key.siren, revoked_from or at, reason, at)
    await ctx.publish_directory([revocation_event(revocation)], authority.current(at))
