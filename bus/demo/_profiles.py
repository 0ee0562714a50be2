"""The demo's archiving profile bank: the archives service's SEDA profiles, approved, and the commune's service.

Before the demo's worker starts (it runs with ``BUS_ARCHIVE_PROFILE_BANK``), the archives
service publishes a RelaxNG profile for each dossier type the worker archives (the JSON
profile's ``archival_profile``, version :data:`VERSION`) and approves it with its own key, and
the commune declares on the directory that the archives service receives its transfers: what
``bus profiles publish``, ``approve`` and ``archive-service`` do. Each demo transfer is then
checked against the approved version and addressed to that service, or refused.

The profiles fix what the archives service agreed with the commune: the ArchivalAgreement of the
dossier type and the service itself as ArchivalAgency; anything else is left free. A second demo on the same broker finds them published, approved and assigned, and
publishes nothing again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console

from bus._directory import archive_service_event
from bus._errors import UnapprovedProfileError
from bus._profiles import BankedProfile, ProfileApproval, ProfileBank, approval_event, learn_profile_records, profile_event
from bus.client import read_topic
from processors.archiving import ArchivingProfile, packaged_profiles

from ._data import ADMINISTRATIONS
from ._stage import Stage

__all__ = ["VERSION", "demo_profiles", "profile_bank_phase", "read_bank"]

#: The version of every demo profile on the bank.
VERSION = "1"
#: Who declares the archives service as theirs on the directory: the commune, whose acts and contract
#: are archived (the archiving core takes a contract's collectivity from its buyer).
_ASSIGNING = ("commune",)
_SEDA_NS = "fr:gouv:culture:archivesdefrance:seda:v{}"


def _fixed(name: str, value: str) -> str:
    return f'<element name="{name}"><value>{value}</value></element>'


def demo_grammar(profile: ArchivingProfile, archive_service: str) -> str:
    """The RelaxNG of ``profile`` as the archives service ``archive_service`` exports it (self-contained)."""
    fixed = {"ArchivalAgreement": _fixed("ArchivalAgreement", profile.archival_agreement),
             "ArchivalAgency": f'<element name="ArchivalAgency">{_fixed("Identifier", archive_service)}</element>'}
    others = "".join(f"<name>{name}</name>" for name in fixed)
    return f'''<grammar xmlns="http://relaxng.org/ns/structure/1.0" ns="{_SEDA_NS.format(profile.seda_version)}">
 <start><element name="ArchiveTransfer"><ref name="attributes"/><interleave>{"".join(fixed.values())}
  <zeroOrMore><element><anyName><except>{others}</except></anyName><ref name="anything"/></element></zeroOrMore>
 </interleave></element></start>
 <define name="attributes"><zeroOrMore><attribute><anyName/></attribute></zeroOrMore></define>
 <define name="anything"><zeroOrMore><choice><attribute><anyName/></attribute><text/>
  <element><anyName/><ref name="anything"/></element></choice></zeroOrMore></define>
</grammar>'''


def demo_profiles(archive_service: str, at: dt.datetime) -> list[BankedProfile]:
    """The archives service's profiles, one per dossier type the worker archives (shipped JSON profiles)."""
    return [BankedProfile.from_text(p.archival_profile, VERSION, demo_grammar(p, archive_service), label=p.label,
                                    published_at=at)
            for p in packaged_profiles().values()]


async def read_bank(stage: Stage) -> ProfileBank:
    """The bank as the topic holds it, each record verified (a refused record is not folded)."""
    bank = ProfileBank()
    learn_profile_records(bank, stage.ctx, await read_topic(stage.ctx.settings, stage.ctx.topic("reference.profiles")))
    return bank


async def profile_bank_phase(stage: Stage, console: Console) -> dict[str, Any]:
    """Publish and approve the demo's profiles and assign the commune's archive service, where not done yet."""
    service, commune = ADMINISTRATIONS["archives"]["siren"], ADMINISTRATIONS["commune"]["siren"]
    now = dt.datetime.now(dt.UTC)
    bank, published, approved = await read_bank(stage), 0, 0
    for profile in demo_profiles(service, now):
        held = bank.profiles.get((profile.profile_id, profile.version))
        if held is None or held.sha256 != profile.sha256:
            await stage.publish("archives", [profile_event(profile)])
            published += 1
        try:
            current = bank.approved(profile.profile_id, service).sha256 == profile.sha256
        except UnapprovedProfileError:  # no version approved by this service yet
            current = False
        if not current:
            approval = ProfileApproval(profile.profile_id, profile.version, profile.sha256, service, now)
            await stage.publish("archives", [approval_event(approval)])
            approved += 1
        console.print(f"profil d'archivage {profile.profile_id} v{profile.version} ({profile.label}) : "
                      + ("déjà approuvé" if current else "approuvé") + f" par le service d'archives {service}")
    for role in _ASSIGNING:
        siren = ADMINISTRATIONS[role]["siren"]
        assigned = stage.ctx.directory.archive_services.get(siren) != service
        if assigned:
            await stage.publish(role, [archive_service_event(siren, service, now)])
        console.print(f"{ADMINISTRATIONS[role]['name']} ({siren}) : versements adressés au service d'archives "
                      f"{service}" + ("" if assigned else " (déjà déclaré)"))
    return {"archiving profiles published": published, "archiving profiles approved": approved}
