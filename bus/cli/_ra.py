"""``bus ra``: the registration authority: create its key (the trust anchor), approve, revoke, rotate."""

from __future__ import annotations

import datetime as dt

import typer

from bus._authority import Authority
from bus._runtime import BusContext
from bus._settings import BusSettings

from ._common import console, run, settings
from ._keys import _moment

__all__ = ["register"]


def _authority(s: BusSettings) -> Authority:
    passphrase = s.key_passphrase.get_secret_value().encode() if s.key_passphrase else None
    return Authority(s.resolved_ra_dir, passphrase)


def register(app: typer.Typer) -> None:
    ra = typer.Typer(help="Registration authority: its key is the trust anchor (BUS_TRUST_ANCHOR) of every verifier.",
                     no_args_is_help=True)
    app.add_typer(ra, name="ra")

    @ra.command("init")
    def init() -> None:
        """Create the authority's key (0600, encrypted with BUS_KEY_PASSPHRASE), publish it, print the anchor."""
        from bus._registration import init_authority

        s = settings()

        async def go() -> tuple[str, str]:
            ctx = await BusContext.connect(s)
            return await init_authority(ctx, _authority(s), dt.datetime.now(dt.UTC))

        fp, path = run(go())
        console.print(f"trust anchor (SHA-256 of the authority's public key): [bold]{fp}[/]")
        console.print(f"public key: {path}")
        console.print("give it to every verifier out of band: BUS_TRUST_ANCHOR=<fingerprint or that file>")

    @ra.command("approve")
    def approve_cmd(
        key_id: str = typer.Argument(..., help="a key published with `bus keys generate`"),
        purpose: list[str] = typer.Option([], "--purpose", help="EVENTS, LEDGER, WITNESS, ENCRYPTION "
                                          "(repeatable; default: the key's own)"),
        valid_from: str = typer.Option(None, "--from", help="start of the approval (default: the key's)"),
        until: str = typer.Option(None, "--until", help="end of the approval (default: the key's)"),
        supplier: bool = typer.Option(False, "--supplier", help="a company (any active SIREN), not a public body"),
        no_check: bool = typer.Option(False, "--no-reference-check",
                                      help="skip the SIRENE check (the operator's own service keys only)"),
    ) -> None:
        """Countersign a published registration after checking its SIREN against the reference companies."""
        from bus._registration import approve, companies_of
        from bus.client import read_topic

        s = settings()

        async def go() -> None:
            ctx = await BusContext.connect(s, create_topics=False)
            companies = None if no_check else companies_of(ctx, await read_topic(s, ctx.topic("reference.companies")))
            await approve(ctx, _authority(s), key_id, at=dt.datetime.now(dt.UTC), companies=companies,
                          supplier=supplier, purposes=purpose, valid_from=_moment(valid_from) if valid_from else None,
                          valid_until=_moment(until) if until else None)

        run(go())
        console.print(f"approved {key_id}")

    @ra.command("revoke")
    def revoke_cmd(
        key_id: str = typer.Argument(..., help="the key to revoke"),
        reason: str = typer.Option(..., "--reason", help="why (compromise, departure...)"),
        from_: str = typer.Option(None, "--from", help="revoked from this date (default: now); earlier events stay valid"),
    ) -> None:
        """Revoke a key from a date: what it signs dated then or later, or received after, is refused."""
        from bus._registration import revoke

        s = settings()

        async def go() -> None:
            ctx = await BusContext.connect(s, create_topics=False)
            await revoke(ctx, _authority(s), key_id, reason=reason, at=dt.datetime.now(dt.UTC),
                         revoked_from=_moment(from_) if from_ else None)

        run(go())
        console.print(f"revoked {key_id}")

    @ra.command("rotate")
    def rotate_cmd() -> None:
        """Replace the authority's key: the current key introduces its successor; the anchor stays the same."""
        from bus._registration import rotate_authority

        s = settings()

        async def go() -> str:
            ctx = await BusContext.connect(s, create_topics=False)
            return await rotate_authority(ctx, _authority(s), dt.datetime.now(dt.UTC))

        console.print(f"new authority key {run(go())}")
