"""The archiving profile bank: SEDA RelaxNG profiles by id and version, and the archive services' approvals.

The bank is the compacted topic ``reference.profiles``. Two kinds of record, both signed events:

    kind       schema                                  subject                           signed by
    profile    fr.dcant.reference.ArchivingProfile          profile:<id>:<version>            its publisher
    approval   fr.dcant.reference.ArchivingProfileApproval  approval:<id>:<version>:<SIREN>   a key of that archive service

A profile is usable for the transfers an archive service receives only once that service
approved it, and only the version it approved (bound to the RelaxNG bytes by their SHA-256):
publishing version 2 changes nothing until the service approves version 2. Among the versions a
service approved, the latest approval wins. The RelaxNG is read from the record only: a grammar
with ``include`` or ``externalRef`` is refused when it is published and when it is read
(:func:`adapters._seda_profile.compile_profile`).

The archive service of a collectivity is not in the bank but in the directory
(``fr.dcant.reference.ArchiveServiceAssignment``, :mod:`bus._directory`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from ._errors import ConfigurationError, ForgedApprovalError, UnapprovedProfileError
from ._wire import Event

__all__ = [
    "APPROVAL_SCHEMA",
    "PROFILE_SCHEMA",
    "BankedProfile",
    "ProfileApproval",
    "ProfileBank",
    "approval_event",
    "learn_profile_records",
    "read_profile_bank",
    "profile_event",
]

PROFILE_SCHEMA = "fr.dcant.reference.ArchivingProfile"
APPROVAL_SCHEMA = "fr.dcant.reference.ArchivingProfileApproval"
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SIREN = re.compile(r"[0-9]{9}")


def _token(value: str, what: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ConfigurationError(f"{what} {value!r} is not a profile token",
                                 hint="letters, digits, '.', '_', '-', at most 100 characters (PR-DCANT-ACTE-V1)")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class BankedProfile:
    """One published version of a profile, its grammar compiled."""

    profile_id: str
    version: str
    label: str | None
    relaxng: str
    sha256: str
    published_at: dt.datetime
    grammar: Any = dataclasses.field(compare=False, repr=False)

    @classmethod
    def from_text(cls, profile_id: str, version: str, relaxng: str, *, label: str | None = None,
                  published_at: dt.datetime) -> BankedProfile:
        """Check and compile a profile (UnsafeProfileError for external references or a bad grammar)."""
        from adapters.seda import compile_profile, profile_sha256

        _token(profile_id, "profile id")
        _token(version, "profile version")
        grammar = compile_profile(relaxng, name=f"{profile_id} v{version}")
        return cls(profile_id, version, label, relaxng, profile_sha256(relaxng), published_at, grammar)

    def to_record(self) -> dict[str, Any]:
        return {"profile_id": self.profile_id, "version": self.version, "label": self.label,
                "relaxng": self.relaxng, "sha256": self.sha256, "published_at": self.published_at}


@dataclasses.dataclass(frozen=True, slots=True)
class ProfileApproval:
    profile_id: str
    version: str
    profile_sha256: str
    archive_service: str
    approved_at: dt.datetime

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> ProfileApproval:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def profile_event(profile: BankedProfile) -> Event:
    return Event(type="fr.dcant.reference.ArchivingProfilePublished", subject=f"profile:{profile.profile_id}:"
                 f"{profile.version}", schema=PROFILE_SCHEMA, data=profile.to_record(), time=profile.published_at)


def approval_event(approval: ProfileApproval) -> Event:
    if not _SIREN.fullmatch(approval.archive_service):
        raise ConfigurationError(f"archive service {approval.archive_service!r} is not a SIREN",
                                 hint="approve with a key of the archive service (BUS_SOURCE urn:siren:<SIREN>:...)")
    return Event(type="fr.dcant.reference.ArchivingProfileApproved",
                 subject=f"approval:{approval.profile_id}:{approval.version}:{approval.archive_service}",
                 schema=APPROVAL_SCHEMA, data=approval.to_record(), time=approval.approved_at,
                 source=f"urn:siren:{approval.archive_service}:archives")


class ProfileBank:
    """The fold of the profile topic: published versions and approvals (pure, no I/O)."""

    def __init__(self) -> None:
        self.profiles: dict[tuple[str, str], BankedProfile] = {}
        self.approvals: dict[tuple[str, str, str], ProfileApproval] = {}

    def learn(self, schema: str, data: Mapping[str, Any], signer_siren: str) -> str:
        """Fold one verified record (``signer_siren``: the SIREN of the key that signed it); return its kind."""
        if schema == PROFILE_SCHEMA:
            profile = BankedProfile.from_text(data["profile_id"], data["version"], data["relaxng"],
                                              label=data.get("label"), published_at=data["published_at"])
            if profile.sha256 != data["sha256"]:
                raise ForgedApprovalError(f"profile {profile.profile_id} v{profile.version}: its sha256 is not "
                                          "the digest of its RelaxNG", profile=profile.profile_id)
            self.profiles[(profile.profile_id, profile.version)] = profile
            return "profile"
        if schema == APPROVAL_SCHEMA:
            approval = ProfileApproval.from_record(data)
            if signer_siren != approval.archive_service:
                raise ForgedApprovalError(
                    f"approval of profile {approval.profile_id} v{approval.version} for archive service "
                    f"{approval.archive_service} is signed by a key of {signer_siren}",
                    profile=approval.profile_id, hint="an archive service approves with its own key")
            self.approvals[(approval.profile_id, approval.version, approval.archive_service)] = approval
            return "approval"
        raise ConfigurationError(f"{schema} does not belong on the profile bank", hint="see bus._profiles")

    def approved(self, profile_id: str, archive_service: str) -> BankedProfile:
        """The version of ``profile_id`` that ``archive_service`` approved last (its bytes as approved)."""
        candidates = sorted(
            (a for (pid, _v, service), a in self.approvals.items() if pid == profile_id and service == archive_service),
            key=lambda a: a.approved_at, reverse=True)
        for approval in candidates:
            profile = self.profiles.get((profile_id, approval.version))
            if profile is not None and profile.sha256 == approval.profile_sha256:
                return profile
        published = sorted(v for (pid, v) in self.profiles if pid == profile_id)
        raise UnapprovedProfileError(
            f"profil d'archivage {profile_id}: aucune version approuvée par le service d'archives {archive_service}"
            + (f" (versions publiées : {', '.join(published)})" if published else " (profil non publié)"),
            profile=profile_id, archive_service=archive_service)

    def rows(self) -> list[dict[str, Any]]:
        """One row per published version with the services that approved it (for ``bus profiles list``)."""
        out = []
        for (pid, version), profile in sorted(self.profiles.items()):
            services = sorted(s for (p, v, s), a in self.approvals.items()
                              if (p, v) == (pid, version) and a.profile_sha256 == profile.sha256)
            out.append({"profile_id": pid, "version": version, "label": profile.label, "sha256": profile.sha256,
                        "published_at": profile.published_at, "approved_by": services})
        return out


def learn_profile_records(bank: ProfileBank, ctx: Any, records: Any) -> list[str]:
    """Fold records of the bank topic into ``bank``, each verified with ``ctx`` (a BusContext);
    the refused ones (one line each: offset, error) are returned, never folded."""
    from ._errors import BusError

    wire, refused = ctx.wire(), []
    for record in records:
        try:
            received = wire.open(record)
            bank.learn(received.schema.name, received.data, ctx.directory.get(received.envelope.sigkeyid).siren)
        except BusError as err:
            refused.append(f"@{record.offset}: {type(err).__name__}: {err.message}")
    return refused


async def read_profile_bank(settings: Any) -> tuple[ProfileBank, list[str]]:
    """The bank as the topic holds it, each record verified; also the refusals (one line each)."""
    from ._runtime import BusContext
    from .client import read_topic

    ctx = await BusContext.connect(settings, create_topics=False)
    bank = ProfileBank()
    refused = learn_profile_records(bank, ctx, await read_topic(settings, ctx.topic("reference.profiles")))
    return bank, refused
