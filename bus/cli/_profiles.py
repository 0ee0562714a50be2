"""``bus profiles``: the archiving profile bank (SEDA RelaxNG), its approvals, and a collectivity's archive service."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.table import Table

from bus._directory import archive_service_event
from bus._errors import BusError, ConfigurationError
from bus._profiles import BankedProfile, ProfileApproval, approval_event, profile_event, read_profile_bank
from bus._runtime import BusContext
from bus._wire import Event
from bus.client import Publisher

from ._common import console, err_console, run, settings

__all__ = ["register"]


async def _send(event: Event) -> str:
    """Sign ``event`` with BUS_SOURCE's key and send it; returns where it is stored."""
    s = settings()
    ctx = await BusContext.connect(s)
    if ctx.signer is None:
        raise BusError(f"no signing key for {s.source}",
                       hint="create one with `bus keys generate <SIREN>` and set BUS_SOURCE")
    async with Publisher(s, ctx.wire()) as publisher:
        record = await publisher.publish(event)
    return f"{record.topic}[{record.partition}]@{record.offset}"


async def _signer_siren() -> str:
    s = settings()
    ctx = await BusContext.connect(s, create_topics=False)
    if ctx.signer is None:
        raise BusError(f"no signing key for {s.source}",
                       hint="create one with `bus keys generate <SIREN>` and set BUS_SOURCE")
    return ctx.signer.public.siren


def register(app: typer.Typer) -> None:
    profiles = typer.Typer(help="Banque de profils d'archivage SEDA (RelaxNG): publication, approbation par un "
                                "service d'archives, service d'archives d'une collectivité.")
    app.add_typer(profiles, name="profiles")

    @profiles.command("publish")
    def publish(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="profil RelaxNG (.rng)"),
                profile_id: str = typer.Option(..., "--id", help="identifiant du profil (SEDA ArchivalProfile)"),
                version: str = typer.Option(..., "--version", help="version du profil"),
                label: str = typer.Option(None, "--label", help="intitulé du profil")) -> None:
        """Publier une version d'un profil RelaxNG (autonome: ni include ni externalRef)."""
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigurationError(f"{file} is not UTF-8 text", hint="export the profile as UTF-8 RelaxNG") from exc
        profile = BankedProfile.from_text(profile_id, version, text, label=label,
                                          published_at=dt.datetime.now(dt.UTC))
        where = run(_send(profile_event(profile)))
        console.print(f"profil {profile_id} version {version} publié ({where}), sha256 {profile.sha256}")
        console.print("utilisable une fois approuvé par le service d'archives: "
                      f"`bus profiles approve {profile_id} {version}`")

    @profiles.command("approve")
    def approve(profile_id: str = typer.Argument(..., help="identifiant du profil"),
                version: str = typer.Argument(..., help="version approuvée")) -> None:
        """Approuver une version publiée, au nom du service d'archives de BUS_SOURCE (signé par sa clé)."""
        async def go() -> tuple[str, str]:
            bank, _refused = await read_profile_bank(settings())
            profile = bank.profiles.get((profile_id, version))
            if profile is None:
                published = sorted(v for (p, v) in bank.profiles if p == profile_id)
                raise ConfigurationError(f"profile {profile_id} version {version} is not published"
                                         + (f" (published: {', '.join(published)})" if published else ""),
                                         hint="publish it first with `bus profiles publish FILE --id ID --version V`")
            service = await _signer_siren()
            approval = ProfileApproval(profile_id, version, profile.sha256, service, dt.datetime.now(dt.UTC))
            return service, await _send(approval_event(approval))

        service, where = run(go())
        console.print(f"profil {profile_id} version {version} approuvé par le service d'archives {service} ({where})")

    @profiles.command("list")
    def list_cmd() -> None:
        """Les profils publiés, par version, avec les services d'archives qui les ont approuvés."""
        bank, refused = run(read_profile_bank(settings()))
        for line in refused:
            err_console.print(f"[red]refusé {line}[/]")
        rows = bank.rows()
        if not rows:
            console.print("Aucun profil publié (`bus profiles publish FILE --id ID --version V`)")
            return
        table = Table("Profil", "Version", "Intitulé", "Publié le", "Approuvé par", "SHA-256",
                      title="Banque de profils d'archivage")
        for row in rows:
            table.add_row(row["profile_id"], row["version"], row["label"] or "—",
                          row["published_at"].strftime("%Y-%m-%d %H:%M"),
                          ", ".join(row["approved_by"]) or "non approuvé", row["sha256"][:16] + "…")
        console.print(table)

    @profiles.command("archive-service")
    def archive_service(service: str = typer.Argument(..., help="SIREN du service d'archives")) -> None:
        """Affecter à la collectivité de BUS_SOURCE le service d'archives (propre ou mutualisé) qui reçoit ses versements."""
        if not (len(service) == 9 and service.isdigit()):
            raise ConfigurationError(f"{service!r} is not a SIREN", hint="nine digits, e.g. 130000001")

        async def go() -> tuple[str, str]:
            collectivity = await _signer_siren()
            return collectivity, await _send(archive_service_event(collectivity, service, dt.datetime.now(dt.UTC)))

        collectivity, where = run(go())
        console.print(f"collectivité {collectivity}: versements adressés au service d'archives {service} ({where})")
