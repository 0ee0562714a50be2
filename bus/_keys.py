"""Signing keys of administrations: generation, storage, the public key directory, rotation.

Ed25519 is the default, ECDSA P-256 with SHA-256 is supported (some HSMs and RGS
certificates only offer it). A key signs events whose time falls in its validity period
``[valid_from, valid_until)``; once retired it still verifies what it signed in its own time,
but nothing newer. Public keys travel as ``fr.dcant.reference.AdministrationKey`` records on
the compacted administrations topic, each self-signed (proof of possession).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ._errors import ConfigurationError, KeyNotValidError, NoValidKeyError, SignatureError, UnknownKeyError

if TYPE_CHECKING:
    from ._authority import Trust

__all__ = [
    "Algorithm", "KeyDirectory", "KeyStore", "Keyring", "PublicKey", "SigningKey", "generate_key", "self_signed",
]

Algorithm = Literal["ED25519", "ECDSA_P256_SHA256"]
#: Tolerated difference between a producer's clock and the broker's when checking validity.
CLOCK_SKEW = dt.timedelta(minutes=5)


def _key_id(siren: str, public_der: bytes) -> str:
    return f"{siren}:{hashlib.sha256(public_der).hexdigest()[:16]}"


def _micros(moment: dt.datetime | None) -> int:
    return -1 if moment is None else int(moment.timestamp() * 1_000_000)


@dataclasses.dataclass(frozen=True, slots=True)
class PublicKey:
    """A public key with its owner and validity period: what verifies events."""

    key_id: str
    siren: str
    owner: str
    algorithm: Algorithm
    public_der: bytes
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    purpose: Literal["EVENTS", "LEDGER", "WITNESS"] = "EVENTS"
    proof_of_possession: bytes = b""

    def registration_bytes(self) -> bytes:
        """What the proof of possession signs: every field but the proof itself."""
        fields = (self.key_id, self.siren, self.owner, self.algorithm, self.purpose)
        head = b"".join(struct.pack(">H", len(f.encode())) + f.encode() for f in fields)
        return (b"dcant-bus-key-v1\x00" + head + struct.pack(">I", len(self.public_der)) + self.public_der
                + struct.pack(">qq", _micros(self.valid_from), _micros(self.valid_until)))

    def _loaded(self) -> ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey:
        key = serialization.load_der_public_key(self.public_der)
        if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
            raise SignatureError(f"key {self.key_id} is not Ed25519 or EC", key_id=self.key_id)
        return key

    def verify_raw(self, message: bytes, signature: bytes) -> None:
        """Check ``signature`` over ``message``; raise SignatureError."""
        key = _public_cache.get(self.public_der)
        if key is None:
            key = _public_cache.setdefault(self.public_der, self._loaded())
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
            else:
                key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise SignatureError("signature does not match the signed bytes", key_id=self.key_id) from exc

    def valid_at(self, moment: dt.datetime, *, skew: dt.timedelta = dt.timedelta(0)) -> bool:
        if moment < self.valid_from - skew:
            return False
        return self.valid_until is None or moment < self.valid_until + skew

    def to_record(self) -> dict[str, Any]:
        """The ``AdministrationKey`` Avro record."""
        return {
            "key_id": self.key_id, "siren": self.siren, "owner": self.owner, "algorithm": self.algorithm,
            "public_key": self.public_der, "valid_from": self.valid_from, "valid_until": self.valid_until,
            "purpose": self.purpose, "proof_of_possession": self.proof_of_possession,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PublicKey:
        return cls(
            key_id=record["key_id"], siren=record["siren"], owner=record["owner"], algorithm=record["algorithm"],
            public_der=bytes(record["public_key"]), valid_from=record["valid_from"],
            valid_until=record.get("valid_until"), purpose=record.get("purpose", "EVENTS"),
            proof_of_possession=bytes(record.get("proof_of_possession", b"")),
        )


_public_cache: dict[bytes, Any] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key and its public record. Never printed: ``repr`` shows the key id only."""

    public: PublicKey
    _private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey = dataclasses.field(repr=False)

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        if isinstance(self._private, ed25519.Ed25519PrivateKey):
            return self._private.sign(message)
        return self._private.sign(message, ec.ECDSA(hashes.SHA256()))

    def retire(self, at: dt.datetime) -> SigningKey:
        """This key with its validity ending at ``at``, re-signed (the record to republish)."""
        public = dataclasses.replace(self.public, valid_until=at, proof_of_possession=b"")
        return self_signed(public, self._private)

    def private_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                      else serialization.NoEncryption())
        return self._private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def self_signed(public: PublicKey, private: Any) -> SigningKey:
    """``public`` with its proof of possession made by ``private``."""
    unsigned = SigningKey(public, private)
    proof = unsigned.sign(public.registration_bytes())
    return SigningKey(dataclasses.replace(public, proof_of_possession=proof), private)


def generate_key(
    siren: str, owner: str, *, algorithm: Algorithm = "ED25519", valid_from: dt.datetime,
    purpose: Literal["EVENTS", "LEDGER", "WITNESS"] = "EVENTS",
) -> SigningKey:
    """A new key pair for administration ``siren``, valid from ``valid_from``."""
    if not (len(siren) == 9 and siren.isdigit()):
        raise ConfigurationError(f"SIREN must be 9 digits, got {siren!r}")
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "ED25519":
        private = ed25519.Ed25519PrivateKey.generate()
    elif algorithm == "ECDSA_P256_SHA256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ConfigurationError(f"unknown algorithm {algorithm!r}", hint="use ED25519 or ECDSA_P256_SHA256")
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    public = PublicKey(_key_id(siren, der), siren, owner, algorithm, der, valid_from, None, purpose)
    return self_signed(public, private)


class Keyring:
    """The signing keys a producer may sign with; picks, for each event, the key valid at its time.

    A verifier checks the key against the event's time (``ce_time``), so the signer chooses by
    the same rule: among the keys of the source's SIREN, the newest one valid at that time. An
    administration that rotated its keys, or back-filled a past year, thus signs every event
    with a key its verifiers accept. Only the signer's own records count here (a retirement it
    has not stored is the verifier's to enforce).
    """

    def __init__(self, keys: Iterable[SigningKey]) -> None:
        by_id = {k.key_id: k for k in keys}
        self.keys: tuple[SigningKey, ...] = tuple(sorted(by_id.values(), key=lambda k: k.public.valid_from))

    def for_event(self, at: dt.datetime, siren: str | None = None) -> SigningKey:
        """The newest key of ``siren`` valid at ``at``; raise :class:`NoValidKeyError` when none is.

        With ``siren`` None, or when the ring holds no key of that SIREN (a wire signing for a
        system source), every key of the ring is a candidate.
        """
        candidates = list(self.keys)
        if siren is not None:
            candidates = [k for k in self.keys if k.public.siren == siren] or candidates
        for key in reversed(candidates):
            if key.public.valid_at(at):
                return key
        who = siren or (candidates[0].public.siren if candidates else "?")
        periods = ", ".join(
            f"{k.key_id} from {k.public.valid_from.date()}"
            + (f" until {k.public.valid_until.date()}" if k.public.valid_until else "") for k in candidates)
        raise NoValidKeyError(
            f"no signing key of SIREN {who} is valid at the event time {at.isoformat()}"
            + (f" (keys: {periods})" if periods else " (no key)"),
            hint=f"create one valid then with `bus keys generate {who} --valid-from {at.date().isoformat()}`",
            siren=who)

    def __len__(self) -> int:
        return len(self.keys)


class KeyDirectory:
    """Public keys by key id: verifies event signatures against the signer's validity period.

    ``trust`` holds the registration authority's approvals and revocations (:mod:`bus._authority`);
    with a trust anchor, a key verifies only for events its approval covers.
    """

    def __init__(self, keys: Iterable[PublicKey] = (), *, trust: Trust | None = None) -> None:
        from ._authority import Trust

        self.trust = trust if trust is not None else Trust()
        self._keys: dict[str, PublicKey] = {}
        #: Published encryption keys (:class:`bus.RecipientKey`) by SIREN, oldest first (:mod:`bus._directory`).
        self.encryption_keys: dict[str, list[Any]] = {}
        #: Archive service SIREN by collectivity SIREN, the latest assignment on the directory (:mod:`bus._directory`).
        self.archive_services: dict[str, str] = {}
        for key in keys:
            self.add(key)

    def add(self, key: PublicKey) -> None:
        """Add or update a key after checking its proof of possession and id."""
        if key.key_id != _key_id(key.siren, key.public_der):
            raise SignatureError(f"key id {key.key_id} does not match its public key", key_id=key.key_id)
        key.verify_raw(key.registration_bytes(), key.proof_of_possession)
        known = self._keys.get(key.key_id)
        if known is not None and known.valid_until is not None and (
            key.valid_until is None or key.valid_until > known.valid_until
        ):
            # A retirement is final: a replayed older record cannot revive the key.
            return
        self._keys[key.key_id] = key

    def get(self, key_id: str) -> PublicKey:
        try:
            return self._keys[key_id]
        except KeyError:
            pass
        authority = self.trust.authorities.get(key_id)
        if authority is not None:
            return authority
        if key_id in self.trust.forged:
            kind, message = self.trust.forged[key_id]
            raise kind(message, key_id=key_id)
        if key_id.startswith("ra:"):
            from ._errors import ForgedApprovalError

            raise ForgedApprovalError(f"{key_id} is not a registration authority key chaining to the trust anchor",
                                      key_id=key_id)
        raise UnknownKeyError(f"no key {key_id} in the directory", key_id=key_id)

    def verify(self, key_id: str, message: bytes, signature: bytes, *, at: dt.datetime,
               received: dt.datetime | None = None) -> PublicKey:
        """Verify a signature made at ``at`` (the event time), received by the broker at ``received``.

        The key must be valid at the event time, and the broker must have received the
        record before the key's retirement (plus clock skew), so a retired key cannot sign
        new messages by back-dating them.
        """
        key = self.get(key_id)
        if not key.valid_at(at):
            raise KeyNotValidError(
                f"key {key_id} was not valid at the event time {at.isoformat()}", key_id=key_id)
        if received is not None and key.valid_until is not None and received >= key.valid_until + CLOCK_SKEW:
            raise KeyNotValidError(
                f"key {key_id} was retired at {key.valid_until.isoformat()} but the record reached the broker at "
                f"{received.isoformat()}", key_id=key_id)
        self.trust.check(key, at, received)
        key.verify_raw(message, signature)
        return key

    def trusted(self, key: PublicKey, at: dt.datetime, received: dt.datetime | None = None) -> bool:
        """True when the trust rules let ``key`` sign at ``at`` (no signature checked)."""
        from ._errors import SecurityError

        try:
            self.trust.check(key, at, received)
        except SecurityError:
            return False
        return True

    def valid_keys(self, siren: str, at: dt.datetime) -> list[PublicKey]:
        """The keys of ``siren`` that could sign an event dated ``at``: in their period, approved, not revoked."""
        return [k for k in self.for_siren(siren) if k.valid_at(at) and self.trusted(k, at)]

    def add_encryption_key(self, key: Any) -> None:
        """Add (or retire) a published encryption key, already checked as signed by its SIREN."""
        known = [k for k in self.encryption_keys.get(key.siren, []) if k.key_id != key.key_id]
        self.encryption_keys[key.siren] = sorted([*known, key], key=lambda k: k.valid_from)

    def encryption_key(self, siren: str, at: dt.datetime) -> Any:
        """The newest encryption key of ``siren`` valid at ``at`` (approved for ENCRYPTION under a trust anchor)."""
        from ._authority import fingerprint
        from ._errors import UnapprovedKeyError

        keys = [k for k in self.encryption_keys.get(siren, []) if k.valid_at(at)]
        if self.trust.enforced:
            approved = [k for k in keys if any(a.public_key_sha256 == fingerprint(k.public)
                                                   and a.covers(at, "ENCRYPTION")
                                                   for a in self.trust.approvals.get(k.key_id, ()))]
            if keys and not approved:
                raise UnapprovedKeyError(f"no encryption key of SIREN {siren} is approved for ENCRYPTION at "
                                         f"{at.isoformat()}", key_id=keys[-1].key_id)
            keys = approved
        if not keys:
            raise NoValidKeyError(f"no encryption key of SIREN {siren} is valid at {at.isoformat()}",
                                  hint="the recipient must publish its encryption key (`bus keys encryption`)",
                                  siren=siren)
        return keys[-1]

    def for_siren(self, siren: str) -> list[PublicKey]:
        return sorted((k for k in self._keys.values() if k.siren == siren), key=lambda k: k.valid_from)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._keys.values(), key=lambda k: (k.siren, k.valid_from)))

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys


def write_private(path: Path, data: bytes) -> Path:
    """Write a private key file mode 0600 (its folder 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return path


class KeyStore:
    """Private keys on disk: ``<dir>/<siren>/<key id>.pem`` (PKCS#8) and ``.json`` (public record).

    Files are created mode 0600. A passphrase (``BUS_KEY_PASSPHRASE``) encrypts the PEM.
    """

    def __init__(self, root: Path, passphrase: bytes | None = None) -> None:
        self.root = root
        self._passphrase = passphrase

    def save(self, key: SigningKey) -> Path:
        folder = self.root / key.public.siren
        stem = key.key_id.replace(":", "_")
        pem = write_private(folder / f"{stem}.pem", key.private_pem(self._passphrase))
        meta = {k: v for k, v in key.public.to_record().items()}
        meta["public_key"] = key.public.public_der.hex()
        meta["proof_of_possession"] = key.public.proof_of_possession.hex()
        meta["valid_from"] = key.public.valid_from.isoformat()
        meta["valid_until"] = key.public.valid_until.isoformat() if key.public.valid_until else None
        (folder / f"{stem}.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return pem

    def load_all(self, siren: str | None = None) -> list[SigningKey]:
        """Every stored key (of ``siren`` when given), oldest first."""
        if not self.root.is_dir():
            return []
        out = []
        folders = [self.root / siren] if siren else sorted(p for p in self.root.iterdir() if p.is_dir())
        for folder in folders:
            for meta_path in sorted(folder.glob("*.json")):
                out.append(self._load(meta_path))
        return sorted(out, key=lambda k: k.public.valid_from)

    def _load(self, meta_path: Path) -> SigningKey:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        pem = meta_path.with_suffix(".pem").read_bytes()
        try:
            private = serialization.load_pem_private_key(pem, password=self._passphrase)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot load private key {meta['key_id']}", hint="check BUS_KEY_PASSPHRASE") from exc
        public = PublicKey(
            key_id=meta["key_id"], siren=meta["siren"], owner=meta["owner"], algorithm=meta["algorithm"],
            public_der=bytes.fromhex(meta["public_key"]), valid_from=dt.datetime.fromisoformat(meta["valid_from"]),
            valid_until=dt.datetime.fromisoformat(meta["valid_until"]) if meta["valid_until"] else None,
            purpose=meta.get("purpose", "EVENTS"), proof_of_possession=bytes.fromhex(meta["proof_of_possession"]),
        )
        if not isinstance(private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigurationError(f"key {public.key_id} has an unsupported type")
        return SigningKey(public, private)

    def keyring(self, siren: str) -> Keyring:
        """Every stored ``EVENTS`` key of ``siren``, to sign each event with the key valid at its time."""
        return Keyring(k for k in self.load_all(siren) if k.public.purpose == "EVENTS")

    def current(self, siren: str, at: dt.datetime) -> SigningKey:
        """The key of ``siren`` valid at ``at`` (the newest when several are)."""
        valid = [k for k in self.load_all(siren) if k.public.valid_at(at) and k.public.purpose == "EVENTS"]
        if not valid:
            raise ConfigurationError(
                f"no valid signing key for SIREN {siren} in {self.root}",
                hint=f"create one with `bus keys generate {siren}`")
        return valid[-1]
