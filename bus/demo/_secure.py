"""The demo on the secure broker (``bus demo --secure``): a certificate per party, approved keys, ACLs applied.

The site's certificate authority (``bus pki init``, in ``STATE_DIR/pki``; ``bus broker start
--secure`` creates it) issues a client certificate to each demo administration (principal
``User:<SIREN>``), to the worker (``User:worker``), to the ledger (``User:ledger``) and to the
operator (``User:operator``, the broker's super user), once: later runs reuse them. The demo
runs its own reads and the reference data as the operator, the processors as the worker, the
ledger's checkpoints as the ledger, and each party publishes with its own certificate, so the broker checks every write against the ACLs ``bus acl apply``
computes from the directory. When a trust anchor is configured and the registration
authority's key is in ``STATE_DIR/ra`` (``bus ra init``), the demo's keys, signing and encryption, are
approved by it.
"""

from __future__ import annotations

import datetime as dt

from rich.console import Console

from bus._acl import bus_directory, plan
from bus._admin import create_acls, delete_acls, describe_acls
from bus._authority import Authority
from bus._errors import ConfigurationError
from bus._pki import CertificateAuthority
from bus._registration import approve
from bus._runtime import BusContext
from bus._settings import BusSettings

from ._data import ADMINISTRATIONS

__all__ = ["SERVICES", "apply_acls", "approve_demo_keys", "identities"]

SERVICES = ("operator", "worker", "ledger")


def identities(settings: BusSettings) -> dict[str, BusSettings]:
    """The settings of each principal of the demo (services by name, administrations by SIREN)."""
    secret = settings.ssl_key_password or settings.key_passphrase
    passphrase = settings.key_passphrase.get_secret_value().encode() if settings.key_passphrase else None
    ca_dir = settings.resolved_pki_dir
    if not (ca_dir / "ca.crt").is_file():
        raise ConfigurationError(f"no certificate authority in {ca_dir}",
                                 hint="start the broker with `bus broker start --secure` (or run `bus pki init`)")
    ca = CertificateAuthority(ca_dir, passphrase=passphrase)
    out: dict[str, BusSettings] = {}
    for name in (*SERVICES, *sorted({a["siren"] for a in ADMINISTRATIONS.values()})):
        folder = ca_dir / "issued" / name
        certfile, keyfile = folder / f"{name}.crt", folder / f"{name}.key"
        if not certfile.is_file() or not keyfile.is_file():
            issued = ca.issue(name, folder, passphrase=secret.get_secret_value().encode() if secret else None)
            certfile, keyfile = issued.certfile, issued.keyfile
        out[name] = settings.model_copy(update={
            "security_protocol": "SSL", "ssl_cafile": ca.cafile, "ssl_certfile": certfile, "ssl_keyfile": keyfile,
            "ssl_key_password": secret})
    return out


async def approve_demo_keys(ctx: BusContext, console: Console) -> int:
    """With a trust anchor, have the RA approve every demo key it has not approved yet; how many it approved."""
    trust = ctx.directory.trust
    if not trust.enforced:
        return 0
    s = ctx.settings
    authority = Authority(s.resolved_ra_dir, s.key_passphrase.get_secret_value().encode() if s.key_passphrase else None)
    if not authority.keys():
        raise ConfigurationError("a trust anchor is set but the registration authority's key is not here",
                                 hint=f"run `bus ra init` with this BUS_STATE_DIR ({s.state_dir}) or unset BUS_TRUST_ANCHOR")
    sirens = {a["siren"] for a in ADMINISTRATIONS.values()}
    pending = [k.key_id for k in ctx.directory if k.siren in sirens and not trust.approvals.get(k.key_id)]
    # Their encryption keys too (purpose ENCRYPTION): a producer addresses events only to approved ones.
    pending += [k.key_id for siren in sorted(sirens) for k in ctx.directory.encryption_keys.get(siren, [])
                if not trust.approvals.get(k.key_id)]
    for key_id in pending:
        # The demo's parties are fictional: they are not in the SIRENE reference, so no reference check.
        await approve(ctx, authority, key_id, at=dt.datetime.now(dt.UTC), companies=None)
    if pending:
        console.print(f"the registration authority approved {len(pending)} keys of the demo's parties")
    return len(pending)


async def apply_acls(operator: BusSettings, console: Console) -> None:
    """``bus acl apply`` for the directory as it stands (run as the operator)."""
    difference = plan(operator, await bus_directory(operator), describe_acls(operator))
    create_acls(operator, difference.add)
    delete_acls(operator, difference.remove)
    console.print(f"ACLs from the directory: {len(difference.add)} created, {len(difference.remove)} deleted")
