"""``bus keys``: generate, show, rotate and publish the signing keys of an administration."""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from bus._errors import ConfigurationError
from bus._keys import Algorithm, generate_key
from bus._runtime import BusContext, encryption_key_store, key_store
from bus._sealed import generate_encryption_key

from ._common import console, run, settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    keys = typer.Typer(help="Signing keys of administrations (Ed25519 by default, ECDSA P-256 supported).",
                       no_args_is_help=True)
    app.add_typer(keys, name="keys")

    @keys.command("generate")
    def generate(
        siren: str = typer.Argument(..., help="SIREN of the administration (9 digits)"),
        owner: str = typer.Option("", help="name of the administration or system"),
        algorithm: str = typer.Option("ED25519", help="ED25519 or ECDSA_P256_SHA256"),
        publish: bool = typer.Option(True, help="publish the public key on the administrations topic"),
        valid_from: str = typer.Option(None, "--valid-from", help="start of validity, ISO 8601 (default: now); "
                                       "a past date lets the key sign events of that period"),
    ) -> None:
        """Create a key pair, store the private key (mode 0600) and publish the public key."""
        s = settings()
        key = generate_key(siren, owner or f"SIREN {siren}", algorithm=_algorithm(algorithm),
                           valid_from=_moment(valid_from) if valid_from else dt.datetime.now(dt.UTC))
        path = key_store(s).save(key)
        console.print(f"key [bold]{key.key_id}[/] ({key.public.algorithm}) stored in {path}")
        if publish:
            run(_publish(s, [key]))
            console.print("public key published on the administrations topic")

    @keys.command("rotate")
    def rotate(
        siren: str = typer.Argument(..., help="SIREN of the administration"),
        algorithm: str = typer.Option("ED25519", help="algorithm of the new key"),
        publish: bool = typer.Option(True, help="publish both records"),
    ) -> None:
        """Retire the current key now and create its successor; old events stay verifiable."""
        s = settings()
        store = key_store(s)
        now = dt.datetime.now(dt.UTC)
        current = store.current(siren, now)
        successor = generate_key(siren, current.public.owner, algorithm=_algorithm(algorithm), valid_from=now)
        retired = current.retire(now)
        store.save(retired)
        store.save(successor)
        console.print(f"retired {retired.key_id}; new key {successor.key_id}")
        if publish:
            run(_publish(s, [retired, successor]))

    @keys.command("encryption")
    def encryption(
        siren: str = typer.Argument(..., help="SIREN of the administration events are addressed to"),
        owner: str = typer.Option("", help="name of the administration"),
        suite: str = typer.Option("X25519", help="X25519, or MLKEM768_X25519 (hybrid post-quantum)"),
        publish: bool = typer.Option(True, help="publish the public key, signed by this SIREN's EVENTS key"),
    ) -> None:
        """Create an encryption key pair (issue 12): the private half in KEYS_DIR/encryption (0600), the public
        half published on the administrations topic; the authority then approves it for ENCRYPTION."""
        s = settings()
        if suite.upper() not in ("X25519", "MLKEM768_X25519"):
            raise typer.BadParameter("use X25519 or MLKEM768_X25519")
        signing = key_store(s).keyring(siren) if publish else None
        if signing is not None and not len(signing):
            raise ConfigurationError(f"no signing key of SIREN {siren} to publish its encryption key with",
                                     hint=f"create one with `bus keys generate {siren}`, or pass --no-publish")
        key = generate_encryption_key(siren, suite=suite.upper(), valid_from=dt.datetime.now(dt.UTC),  # type: ignore[arg-type]
                                      owner=owner or f"SIREN {siren}")
        path = encryption_key_store(s).save(key)
        console.print(f"encryption key [bold]{key.key_id}[/] ({key.public.suite}) stored in {path}")
        if signing is not None:
            run(_publish_encryption(s, key, signing))
            console.print(f"published; ask the registration authority to `bus ra approve {key.key_id}`")

    @keys.command("publish")
    def publish_cmd(siren: str = typer.Argument(None, help="only this SIREN's keys")) -> None:
        """(Re)publish the locally stored public keys on the administrations topic."""
        s = settings()
        run(_publish(s, key_store(s).load_all(siren)))

    @keys.command("show")
    def show(
        siren: str = typer.Argument(None, help="only this SIREN's keys"),
        directory: bool = typer.Option(False, "--directory", help="show the keys published on the bus instead"),
        at: str = typer.Option(None, "--at", help="only the keys of the directory that could sign an event dated "
                               "then (in their period, approved, not revoked)"),
    ) -> None:
        """List keys with their validity periods (never the private part)."""
        s = settings()
        if at is not None:
            if siren is None:
                raise typer.BadParameter("--at needs a SIREN")
            ctx = run(BusContext.connect(s, create_topics=False))
            publics = ctx.directory.valid_keys(siren, _moment(at))
        elif directory:
            ctx = run(BusContext.connect(s))
            publics = [k for k in ctx.directory if siren in (None, k.siren)]
        else:
            publics = [k.public for k in key_store(s).load_all(siren)]
        table = Table("key id", "owner", "algorithm", "purpose", "valid from", "valid until")
        for k in publics:
            table.add_row(k.key_id, k.owner, k.algorithm, k.purpose, k.valid_from.isoformat(timespec="seconds"),
                          k.valid_until.isoformat(timespec="seconds") if k.valid_until else "current")
        console.print(table)


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _algorithm(name: str) -> Algorithm:
    upper = name.upper()
    if upper not in ("ED25519", "ECDSA_P256_SHA256"):
        raise typer.BadParameter("use ED25519 or ECDSA_P256_SHA256")
    return upper  # type: ignore[return-value]


async def _publish_encryption(s, key, signing) -> None:  # type: ignore[no-untyped-def]
    from bus._directory import encryption_key_event
    from bus._wire import Wire
    from bus.client import Publisher

    ctx = await BusContext.connect(s)
    wire = Wire(ctx.catalog, ctx.directory, signing, clock=ctx.clock, max_event_bytes=s.max_event_bytes)
    async with Publisher(s, wire) as publisher:
        await publisher.publish(encryption_key_event(key.public), topic="reference.administrations")


async def _publish(s, keys) -> None:  # type: ignore[no-untyped-def]
    ctx = await BusContext.connect(s)
    await ctx.publish_keys(list(keys))
