"""The key directory topic: what is on it, how a verifier folds it, how the authority writes to it.

The directory topic (``reference.administrations``) holds four kinds of record, each an event
whose subject names the key it is about:

    kind            schema                          subject           signed by
    registration    fr.dcant.reference.AdministrationKey  key:<key id>       the key itself (proof of possession)
    approval        fr.dcant.reference.KeyApproval        approval:<key id>  an RA key chaining to the anchor
    revocation      fr.dcant.reference.KeyRevocation      revocation:<key id> an RA key chaining to the anchor
    authority       fr.dcant.reference.AuthorityKey       authority:<key id> itself (anchor) or its predecessor

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
from ._wire import Event, Record, Wire

__all__ = [
    "APPROVAL_SCHEMA",
    "AUTHORITY_SCHEMA",
    "KEY_SCHEMA",
    "REVOCATION_SCHEMA",
    "approval_event",
    "approval_for",
    "authority_event",
    "learn_record",
    "registration_event",
    "revocation_event",
]

KEY_SCHEMA = "fr.dcant.reference.AdministrationKey"
APPROVAL_SCHEMA = "fr.dcant.reference.KeyApproval"
REVOCATION_SCHEMA = "fr.dcant.reference.KeyRevocation"
AUTHORITY_SCHEMA = "fr.dcant.reference.AuthorityKey"
_RA_SOURCE = f"urn:siren:{RA_SIREN}:ra"


def registration_event(key: SigningKey) -> Event:
    return Event(type="fr.dcant.reference.AdministrationKeyPublished", subject=f"key:{key.key_id}", schema=KEY_SCHEMA,
                 data=key.public.to_record(), source=f"urn:siren:{key.public.siren}:keys", time=key.public.valid_from)


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
    if schema.name == AUTHORITY_SCHEMA:
        trust.add_authority(AuthorityKey.from_record(data), envelope.sigkeyid, check, at, received)
        return "authority"
    raise UntrustedKeyError(f"{schema.name} does not belong on the directory topic", offset=record.offset)


def approval_for(key: PublicKey, *, purposes: tuple[str, ...], valid_from: dt.datetime | None,
                 valid_until: dt.datetime | None, legal_category: str | None, at: dt.datetime) -> Approval:
    """The approval of ``key`` (default period: the key's own)."""
    return Approval(key.key_id, key.siren, fingerprint(key.public_der), purposes or (key.purpose,),
                    valid_from or key.valid_from, valid_until or key.valid_until, at, legal_category)

