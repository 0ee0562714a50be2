"""The registration authority (RA) and the trust anchor: which keys may sign for a SIREN, and when.

A key registers itself (proof of possession, :mod:`bus._keys`), but that proves only that
someone holds it. The RA countersigns: an :class:`Approval` says key K may sign for SIREN S,
for these purposes, in this period, after the RA checked S against the reference companies;
a :class:`Revocation` ends that from a date. Both are events on the directory topic signed by
an RA key. The RA's first public key is the **trust anchor** (``BUS_TRUST_ANCHOR``: its
SHA-256 fingerprint or a file holding it), handed to every verifier out of band like
X-Road's configuration anchor; each later RA key (rotation) is introduced by a record signed
by its predecessor, whose authority ends where the successor's begins.

:class:`Trust` holds what the directory learned of those decisions and answers, for a key
and an event time, "trusted or which refusal": it is consulted by
:meth:`bus.KeyDirectory.verify`, hence by :meth:`Wire.open`, ``bus verify``, replay, the
workers and evidence bundles. Without an anchor nothing is enforced (the bus as before, with
a warning), and the first self-signed RA key seen is taken on first use.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ._errors import (
    ConfigurationError,
    ForgedApprovalError,
    ForgedRegistrationError,
    RevokedKeyError,
    SignatureError,
    UnapprovedKeyError,
    UntrustedKeyError,
)
from ._keys import CLOCK_SKEW, KeyStore, PublicKey, SigningKey, self_signed

__all__ = [
    "PURPOSES",
    "RA_SIREN",
    "Approval",
    "Authority",
    "AuthorityKey",
    "Revocation",
    "Trust",
    "TrustAnchor",
    "authority_key_id",
    "fingerprint",
]

#: The pseudo-SIREN under which the RA's keys are stored and sign (it is not an administration).
RA_SIREN = "000000000"
PURPOSES = ("EVENTS", "LEDGER", "WITNESS", "ENCRYPTION")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
log = logging.getLogger("bus.trust")
_warned = False
_FINGERPRINT = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


def fingerprint(public_der: bytes) -> str:
    """Hex SHA-256 of a DER public key: what an anchor names."""
    return hashlib.sha256(public_der).hexdigest()


def authority_key_id(public_der: bytes) -> str:
    return f"ra:{fingerprint(public_der)[:16]}"


@dataclasses.dataclass(frozen=True, slots=True)
class TrustAnchor:
    """The RA public key every verifier is configured with: its fingerprint, and the key when given as a file."""

    fingerprint: str
    public_der: bytes | None = None

    @classmethod
    def parse(cls, text: str) -> TrustAnchor:
        """A 64-hex fingerprint (``sha256:`` optional) or the path of a PEM public key file (``bus ra init``)."""
        match = _FINGERPRINT.match(text.strip().lower())
        if match:
            return cls(match.group(1))
        path = Path(text.strip()).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                "BUS_TRUST_ANCHOR is neither a SHA-256 fingerprint nor a readable public key file",
                hint="set it to what `bus ra init` printed, or to the anchor.pem file it wrote")
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except ValueError as exc:
            raise ConfigurationError(f"{path} is not a PEM public key", hint="use the anchor.pem `bus ra init` wrote") from exc
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(fingerprint(der), der)


def _ts(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorityKey:
    """An RA public key on the directory: the anchor (no predecessor) or a successor signed by its predecessor."""

    key_id: str
    public_der: bytes
    valid_from: dt.datetime
    predecessor: str | None = None
    algorithm: str = "ED25519"

    def public(self, valid_until: dt.datetime | None = None) -> PublicKey:
        return PublicKey(self.key_id, RA_SIREN, "registration authority", "ED25519", self.public_der,
                         self.valid_from, valid_until)

    def to_record(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "algorithm": self.algorithm, "public_key": self.public_der,
                "valid_from": self.valid_from, "predecessor": self.predecessor}

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> AuthorityKey:
        return cls(r["key_id"], bytes(r["public_key"]), r["valid_from"], r.get("predecessor"), r["algorithm"])


@dataclasses.dataclass(frozen=True, slots=True)
class Approval:
    """The RA's word that ``key_id`` (exactly the key hashing to ``public_key_sha256``) signs for ``siren``."""

    key_id: str
    siren: str
    public_key_sha256: str
    purposes: tuple[str, ...]
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    approved_at: dt.datetime
    legal_category: str | None = None
    authority: str = ""

    def covers(self, at: dt.datetime, purpose: str, received: dt.datetime | None = None) -> bool:
        """True when the event time is in the approved period (and the broker got it before its end)."""
        if purpose not in self.purposes or at < self.valid_from:
            return False
        if self.valid_until is None:
            return True
        return at < self.valid_until and (received is None or received < self.valid_until + CLOCK_SKEW)

    def to_record(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "siren": self.siren, "public_key_sha256": self.public_key_sha256,
                "purposes": list(self.purposes), "valid_from": self.valid_from, "valid_until": self.valid_until,
                "legal_category": self.legal_category, "approved_at": self.approved_at}

    @classmethod
    def from_record(cls, r: Mapping[str, Any], authority: str = "") -> Approval:
        return cls(r["key_id"], r["siren"], r["public_key_sha256"], tuple(r["purposes"]), r["valid_from"],
                   r.get("valid_until"), r["approved_at"], r.get("legal_category"), authority)


@dataclasses.dataclass(frozen=True, slots=True)
class Revocation:
    """The RA's word that ``key_id`` signs nothing for its SIREN from ``revoked_from`` on."""

    key_id: str
    siren: str
    revoked_from: dt.datetime
    reason: str
    revoked_at: dt.datetime
    authority: str = ""

    def hits(self, at: dt.datetime, received: dt.datetime | None) -> bool:
        # A record the broker got after the revocation is refused whatever date it claims: a
        # stolen key cannot back-date its way under the revocation.
        return at >= self.revoked_from or (received is not None and received >= self.revoked_from + CLOCK_SKEW)

    def to_record(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "siren": self.siren, "revoked_from": self.revoked_from,
                "reason": self.reason, "revoked_at": self.revoked_at}

    @classmethod
    def from_record(cls, r: Mapping[str, Any], authority: str = "") -> Revocation:
        return cls(r["key_id"], r["siren"], r["revoked_from"], r["reason"], r["revoked_at"], authority)


SigCheck = Callable[[PublicKey], None]


class Trust:
    """The authority's decisions as learned from the directory, checked against the anchor.

    Nothing is ever replaced: approvals and revocations accumulate per key id, so the answer
    for an old event does not change when a newer decision arrives. ``forged`` remembers the
    claims that failed (a registration or an approval that does not verify), so an event
    signed by such a key is refused with that reason rather than a bare "unknown".
    """

    def __init__(self, anchor: TrustAnchor | None = None) -> None:
        self.anchor = anchor
        self.authorities: dict[str, PublicKey] = {}
        self.approvals: dict[str, list[Approval]] = {}
        self.revocations: dict[str, list[Revocation]] = {}
        self.forged: dict[str, tuple[type[UntrustedKeyError], str]] = {}
        if anchor is not None and anchor.public_der is not None:
            root = AuthorityKey(authority_key_id(anchor.public_der), anchor.public_der, _EPOCH)
            self.authorities[root.key_id] = root.public()

    @property
    def enforced(self) -> bool:
        return self.anchor is not None

    def forge(self, key_id: str, kind: type[UntrustedKeyError], message: str) -> UntrustedKeyError:
        """Remember a refused claim about ``key_id``; return the error to raise."""
        self.forged.setdefault(key_id, (kind, message))
        return kind(message, key_id=key_id)

    def authority(self, key_id: str, at: dt.datetime, received: dt.datetime | None = None) -> PublicKey:
        """The RA key ``key_id`` if it chains to the anchor and held the authority at ``at``."""
        key = self.authorities.get(key_id)
        if key is None:
            raise ForgedApprovalError(f"{key_id} is not a registration authority key chaining to the trust anchor",
                                      key_id=key_id)
        late = received is not None and key.valid_until is not None and received >= key.valid_until + CLOCK_SKEW
        if not key.valid_at(at) or late:
            raise ForgedApprovalError(f"authority key {key_id} was not the authority at {at.isoformat()} "
                                      f"(succeeded at {key.valid_until.isoformat() if key.valid_until else '?'})",
                                      key_id=key_id)
        return key

    def add_authority(self, record: AuthorityKey, signer: str, check: SigCheck, at: dt.datetime,
                      received: dt.datetime | None = None) -> None:
        """Learn an RA key: the anchor itself (self-signed), or a successor signed by the current RA key."""
        if record.key_id != authority_key_id(record.public_der):
            raise ForgedApprovalError(f"authority key id {record.key_id} does not match its public key",
                                      key_id=record.key_id)
        if record.key_id in self.authorities and record.predecessor is None:
            check(self.authorities[record.key_id])  # the anchor file's key republished on the topic
            return
        anchored = self.anchor is not None and fingerprint(record.public_der) == self.anchor.fingerprint
        if record.predecessor is None or (anchored and record.key_id not in self.authorities):
            if not anchored and (self.anchor is not None or self.authorities):
                raise ForgedApprovalError(f"authority key {record.key_id} is not the trust anchor "
                                          f"{self.anchor.fingerprint[:16] if self.anchor else '(first seen)'}",
                                          key_id=record.key_id)
            if record.predecessor is None:
                if signer != record.key_id:
                    raise ForgedApprovalError("the anchor's record must be signed by the anchor", key_id=record.key_id)
                self._check(check, record.public(), record.key_id)
            self.authorities[record.key_id] = record.public()
            return
        previous = self.authority(record.predecessor, at, received)
        if signer != previous.key_id or previous.valid_until is not None:
            raise ForgedApprovalError(f"authority key {record.key_id} is not introduced by the current authority key",
                                      key_id=record.key_id)
        self._check(check, previous, record.key_id)
        self.authorities[previous.key_id] = dataclasses.replace(previous, valid_until=record.valid_from)
        self.authorities[record.key_id] = record.public()

    def _check(self, check: SigCheck, key: PublicKey, target: str) -> None:
        try:
            check(key)
        except SignatureError as err:
            raise self.forge(target, ForgedApprovalError,
                             f"a directory record about {target} is not signed by authority key {key.key_id}") from err

    def _decided_by(self, target: str, signer: str, check: SigCheck, at: dt.datetime,
                    received: dt.datetime | None) -> None:
        try:
            key = self.authority(signer, at, received)
        except ForgedApprovalError as err:
            raise self.forge(target, ForgedApprovalError, f"an approval or revocation of {target} is forged: "
                                                          f"{err.message}") from None
        self._check(check, key, target)

    def add_approval(self, approval: Approval, signer: str, check: SigCheck, at: dt.datetime,
                     received: dt.datetime | None = None) -> None:
        self._decided_by(approval.key_id, signer, check, at, received)
        self.approvals.setdefault(approval.key_id, []).append(dataclasses.replace(approval, authority=signer))

    def add_revocation(self, revocation: Revocation, signer: str, check: SigCheck, at: dt.datetime,
                       received: dt.datetime | None = None) -> None:
        self._decided_by(revocation.key_id, signer, check, at, received)
        self.revocations.setdefault(revocation.key_id, []).append(dataclasses.replace(revocation, authority=signer))

    def check(self, key: PublicKey, at: dt.datetime, received: dt.datetime | None = None) -> None:
        """Raise the :class:`UntrustedKeyError` that applies to ``key`` signing at ``at``; return if trusted."""
        if not self.enforced:
            _warn_unanchored()
            return
        if key.key_id in self.authorities:
            return
        kid = key.key_id
        for revocation in self.revocations.get(kid, ()):
            if revocation.hits(at, received):
                raise RevokedKeyError(f"key {kid} was revoked from {revocation.revoked_from.isoformat()} "
                                      f"({revocation.reason}); the event is dated {at.isoformat()}", key_id=kid)
        digest = fingerprint(key.public_der)
        approvals = self.approvals.get(kid, [])
        if any(a.public_key_sha256 == digest and a.covers(at, key.purpose, received) for a in approvals):
            return
        if approvals and all(a.public_key_sha256 != digest for a in approvals):
            raise ForgedRegistrationError(f"the registration of key {kid} is not the key the authority approved",
                                          key_id=kid)
        if kid in self.forged:
            kind, message = self.forged[kid]
            raise kind(message, key_id=kid)
        if approvals:
            periods = ", ".join(f"{'+'.join(a.purposes)} {a.valid_from.date()}.."
                                f"{a.valid_until.date() if a.valid_until else ''}" for a in approvals)
            raise UnapprovedKeyError(f"no approval of key {kid} covers {key.purpose} at {at.isoformat()} "
                                     f"(approved: {periods})", key_id=kid)
        raise UnapprovedKeyError(f"key {kid} of SIREN {key.siren} is self-registered: the registration authority "
                                 "never approved it", key_id=kid)


def _warn_unanchored() -> None:
    # Once per process, and only when a key is actually relied on: a command that fails
    # before verifying anything still prints exactly one line.
    global _warned
    if not _warned:
        _warned = True
        log.warning("no BUS_TRUST_ANCHOR: self-registered keys are trusted, anyone may sign for any SIREN "
                    "(set it to the registration authority's fingerprint, see `bus ra init`)")


class Authority:
    """The RA's private keys on disk (``<dir>/000000000/ra_*.pem``, 0600, encrypted with BUS_KEY_PASSPHRASE)."""

    def __init__(self, root: Path, passphrase: bytes | None = None) -> None:
        self.root = root
        self.store = KeyStore(root, passphrase)

    def keys(self) -> list[SigningKey]:
        return self.store.load_all(RA_SIREN)

    def create(self, at: dt.datetime) -> SigningKey:
        """A new RA key valid from ``at`` (not yet stored)."""
        private = ed25519.Ed25519PrivateKey.generate()
        der = private.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        public = PublicKey(authority_key_id(der), RA_SIREN, "registration authority", "ED25519", der, at)
        return self_signed(public, private)

    def save(self, key: SigningKey) -> Path:
        self.store.save(key)
        anchor = self.root / f"{key.key_id.replace(':', '_')}.pub.pem"
        pem = serialization.load_der_public_key(key.public.public_der).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        anchor.write_bytes(pem)
        return anchor

    def current(self, at: dt.datetime) -> SigningKey:
        """The RA key holding the authority at ``at`` (the newest valid one)."""
        valid = [k for k in self.keys() if k.public.valid_at(at)]
        if not valid:
            raise ConfigurationError(f"no registration authority key in {self.root}",
                                     hint="run `bus ra init` on the authority's machine (BUS_RA_DIR)")
        return valid[-1]
