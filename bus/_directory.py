"""The key directory topic: what is on it, how a verifier folds it, how the authority writes to it.

The directory topic (``reference.administrations``) holds four kinds of record, each an event
whose subject names the key it is about:

    kind            schema                          subject           signed by
    registration    fr.dcant.reference.AdministrationKey  key:<key id>       the key itself (proof of possession)
    approval        fr.dcant.reference.KeyApproval        approval:<key id>  an RA key chaining to the anchor
    revocation      fr.dcant.reference.KeyRevocation      revocation:<key id> an RA key chaining to the anchor
    authority       fr.dcant.reference.AuthorityKey       authority:<key id> itself (anchor) or its predecessor
    encryption key  fr.dcant.reference.EncryptionKey      enckey:<key id>    an EVENTS key of the same SIREN
    archive service fr.dcant.reference.ArchiveServiceAssignment archiving:<SIREN> an EVENTS key of that collectivity

An encryption key (X25519 or ML-KEM-768 + X25519, :mod:`bus._sealed`) cannot sign its own
registration, so its SIREN's signing key vouches for it; under a trust anchor a producer
addresses events to it only once the authority approved it for the purpose ``ENCRYPTION``.

An archive service assignment says which archive service receives a collectivity's archive
transfers (its own, a departmental or a mutualised one); the collectivity signs it, the latest
one wins (:attr:`KeyDirectory.archive_services`), and the archiving core routes by it.

The topic is append-only (``cleanup.policy=delete``, kept forever), not compacted: compaction
would keep one record per key (a retirement would erase the registration it replaces, a
tombstone would erase an approval) and would punch holes in the Merkle log the ledger keeps
of the topic. A directory is small (a few records per key), so every verifier reads it whole
at start; the view (latest registration per key, all decisions) is this fold. The ledger
covers the topic like a family topic, so two verifiers shown different directories (a split
view) see different signed roots.
"""

from __future__ import annotations

import datetime as dt

from ._catalog import Catalog
from ._codec import decode
from ._envelope import Envelope
from ._errors import ForgedRegistrationError, SignatureError, UntrustedKeyError
from ._authority import RA_SIREN, Approval, AuthorityKey, Revocation, fingerprint
from ._keys import KeyDirectory, PublicKey, SigningKey
from ._sealed import RecipientKey
from ._wire import Event, Record, Wire

__all__ = [
    "APPROVAL_SCHEMA",
    "ASSIGNMENT_SCHEMA",
    "AUTHORITY_SCHEMA",
    "ENCRYPTION_SCHEMA",
    "KEY_SCHEMA",
    "REVOCATION_SCHEMA",
    "approval_event",
    "approval_for",
    "archive_service_event",
    "authority_event",
    "encryption_approval",
    "encryption_key_event",
    "learn_record",
    "registration_event",
    "revocation_event",
]

KEY_SCHEMA = "fr.dcant.reference.AdministrationKey"
APPROVAL_SCHEMA = "fr.dcant.reference.KeyApproval"
REVOCATION_SCHEMA = "fr.dcant.reference.KeyRevocation"
AUTHORITY_SCHEMA = "fr.dcant.reference.AuthorityKey"
ENCRYPTION_SCHEMA = "fr.dcant.reference.EncryptionKey"
ASSIGNMENT_SCHEMA = "fr.dcant.reference.ArchiveServiceAssignment"
_RA_SOURCE = f"urn:siren:{RA_SIREN}:ra"


def registration_event(key: SigningKey) -> Event:
    return Event(type="fr.dcant.reference.AdministrationKeyPublished", subject=f"key:{key.key_id}", schema=KEY_SCHEMA,
                 data=key.public.to_record(), source=f"urn:siren:{key.public.siren}:keys", time=key.public.valid_from)


def encryption_key_event(key: RecipientKey) -> Event:
    """The publication of an encryption key, to be sealed by an EVENTS key of ``key.siren``."""
    return Event(type="fr.dcant.reference.EncryptionKeyPublished", subject=f"enckey:{key.key_id}",
                 schema=ENCRYPTION_SCHEMA, data=key.to_record(), source=f"urn:siren:{key.siren}:keys",
                 time=key.valid_from)


def encryption_approval(key: RecipientKey, *, at: dt.datetime, legal_category: str | None = None) -> Approval:
    """The authority's approval of an encryption key for the purpose ENCRYPTION, over the key's own period."""
    assert key.valid_from is not None
    return Approval(key.key_id, key.siren, fingerprint(key.public), ("ENCRYPTION",), key.valid_from,
                    key.valid_until, at, legal_category)


def archive_service_event(collectivity: str, archive_service: str, at: dt.datetime) -> Event:
    """The assignment of ``archive_service`` to ``collectivity``, to be signed by a key of the collectivity."""
    return Event(type="fr.dcant.reference.ArchiveServiceAssigned", subject=f"archiving:{collectivity}",
                 schema=ASSIGNMENT_SCHEMA, source=f"urn:siren:{collectivity}:archives", time=at,
                 data={"collectivity": collectivity, "archive_service": archive_service, "assigned_at": at})


def approval_event(approval: Approval) -> Event:
    return Event(type="fr.dcant.reference.KeyApproved", subject=f"approval:{approval.key_id}", schema=APPROVAL_SCHEMA,
                 data=approval.to_record(), source=_RA_SOURCE, time=approval.approved_at)


def revocation_event(revocation: Revocation) -> Event:
    return Event(type="fr.dcant.reference.KeyRevoked", subject=f"revocation:{revocation.key_id}",
                 schema=REVOCATION_SCHEMA, data=revocation.to_record(), source=_RA_SOURCE, time=revocation.revoked_at)


def authority_event(key: AuthorityKey, at: dt.datetime) -> Event:
    return Event(type="fr.dcant.reference.AuthorityKeyPublished", subject=f"authority:{key.key_id}",
                 schema=AUTHORITY_SCHEMA, data=key.to_record(), source=_RA_SOURCE, time=at)


def learn_record(directory: KeyDirectory, catalog: Catalog, record: Record, wire: Wire | None = None) -> str:
    """Fold one directory record into ``directory``; return its kind, or raise why it is refused.

    A refused registration or decision is remembered (:attr:`Trust.forged`) so that events
    signed by the key it names are refused with that reason.
    """
    value = record.value or b""
    envelope = Envelope.from_headers(record.headers)
    schema, data = decode(catalog, value)
    at = envelope.timestamp
    received = (dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)
                if record.timestamp_ms is not None else None)
    signed, signature = envelope.signing_bytes(value), envelope.sig or b""

    def check(key: PublicKey) -> None:
        key.verify_raw(signed, signature)

    trust = directory.trust
    if schema.name == KEY_SCHEMA:
        key = PublicKey.from_record(data)
        known = key.key_id in directory
        try:
            if envelope.sigkeyid == key.key_id:
                check(key)
                directory.add(key)  # checks id and proof of possession
            else:  # signed by another (already trusted) key of the directory
                (wire or Wire(catalog, directory)).open(record)
                directory.add(key)
        except SignatureError as err:
            if known:
                raise
            raise trust.forge(key.key_id, ForgedRegistrationError,
                              f"the registration of key {key.key_id} does not verify: {err.message}") from err
        return "registration"
    if schema.name == APPROVAL_SCHEMA:
        trust.add_approval(Approval.from_record(data), envelope.sigkeyid, check, at, received)
        return "approval"
    if schema.name == REVOCATION_SCHEMA:
        trust.add_revocation(Revocation.from_record(data), envelope.sigkeyid, check, at, received)
        return "revocation"
    if schema.name == ENCRYPTION_SCHEMA:
        enc = RecipientKey.from_record(data)
        opened = (wire or Wire(catalog, directory)).open(record)  # signature, key validity, trust of the signer
        signer = directory.get(opened.envelope.sigkeyid)
        if signer.siren != enc.siren or signer.purpose != "EVENTS":
            raise ForgedRegistrationError(f"encryption key {enc.key_id} of SIREN {enc.siren} is published by "
                                          f"{signer.key_id}, not an EVENTS key of that SIREN", key_id=enc.key_id)
        directory.add_encryption_key(enc)
        return "encryption key"
    if schema.name == ASSIGNMENT_SCHEMA:
        opened = (wire or Wire(catalog, directory)).open(record)  # signature, key validity, trust of the signer
        signer = directory.get(opened.envelope.sigkeyid)
        if signer.siren != data["collectivity"] or signer.purpose != "EVENTS":
            raise ForgedRegistrationError(f"the archive service of {data['collectivity']} is assigned by "
                                          f"{signer.key_id}, not an EVENTS key of that collectivity",
                                          key_id=signer.key_id)
        directory.archive_services[data["collectivity"]] = data["archive_service"]
        return "archive service"
    if schema.name == AUTHORITY_SCHEMA:
        trust.add_authority(AuthorityKey.from_record(data), envelope.sigkeyid, check, at, received)
        return "authority"
    raise UntrustedKeyError(f"{schema.name} does not belong on the directory topic", offset=record.offset)


def approval_for(key: PublicKey, *, purposes: tuple[str, ...], valid_from: dt.datetime | None,
                 valid_until: dt.datetime | None, legal_category: str | None, at: dt.datetime) -> Approval:
    """The approval of ``key`` (default period: the key's own)."""
    return Approval(key.key_id, key.siren, fingerprint(key.public_der), purposes or (key.purpose,),
                    valid_from or key.valid_from, valid_until or key.valid_until, at, legal_category)

