"""Erasure by destroying keys (crypto-shredding) of the personal data in a dossier's events.

A schema marks the fields that hold a natural person's data with ``"personal": true`` (a field
attribute: Avro ignores it, and the parsing canonical form, hence the fingerprint, does not
change). When a :class:`bus.Wire` has a :class:`DossierKeyStore`, an event whose personal fields
are not blank travels as a *personal value* in place of the Avro payload::

    magic "\\xdc\\x5e\\x02" | u16 len, key id | u8 n | n × (u8 len, field path)
    | 12-byte nonce | u32 len | AES-256-GCM(dossier key, nonce, full Avro payload, aad=binding)
    | Avro single-object payload with the n fields blanked (null, "", [] or {})

The *dossier key* is one random AES-256 key per dossier, made on the first personal event of the
dossier. The dossier is the event's ``ce_subject``, unless the producer names another one
(:attr:`bus.Event.dossier`): a derived event that copies a dossier's personal data under its own
subject (an archive transfer ``transfer:<dossier>/transfer-1`` carrying an act's title) is
encrypted under that dossier's key, so erasing the dossier erases the copy too. Its value then
starts with magic ``"\\xdc\\x5e\\x04" | u16 len, dossier`` followed by the same fields as above,
and the associated data binds the dossier as well. The dossier travels in the value, not in a new
envelope attribute: the signature covers the value, so the dossier is signed without a new
signing-bytes version, and only personal values carry it.

A personal field is a field of the record with ``"personal": true``, or such a field of a record
nested in a record or in an array of records (its path: ``archive_units[].title``); a map's values
are not searched. The producer signs the whole value, so the signature (and the
Merkle ledger, which hashes the record bytes) covers the ciphertext: ``bus verify`` never needs
the key, before or after an erasure. The associated data (:func:`aad`) ties the ciphertext to the event's
id, source, type, subject, time, schema and recipients, so it cannot be moved under another envelope.

Reading (:meth:`bus.Wire.open`): with the dossier's key, the full payload (its fingerprint must
be the blanked one's); without it, the blanked payload with each personal field shown as
:data:`ERASED` (the store holds the dossier's erasure) or :data:`WITHHELD` (this reader holds no
key of that dossier). Either way the event is verified and its other fields read as before.

Erasing (``bus erase DOSSIER --basis TEXT``): a signed ``fr.dcant.privacy.PersonalDataErased``
event on the dossier's family topic (so it is ledgered and checkpointed like the others), then
:meth:`DossierKeyStore.destroy` replaces the key file by the erasure record. Nothing else has to
change: every copy of the ciphertext, in Kafka's segments, replicas, backups and evidence
bundles, becomes unreadable at once.

Why the keys live in the keys directory (:func:`bus._runtime.dossier_key_store`) and not on a
compacted topic: a key published on a topic is copied to every consumer that reads it and to
every replica and backup, and a Kafka tombstone only removes the older value at the next log
compaction, after ``delete.retention.ms``, and never from the copies already read: destroying a
key there does not destroy it. The store is one folder of files (0600) held by the bus
operator, with one copy to destroy. A file overwritten and unlinked is gone for the bus; whether
the disk keeps the old blocks (SSD wear levelling, a copy-on-write filesystem, backups of the
keys directory) is the operator's to handle, and is the reason backups must not keep this folder
longer than the erasure delay.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import struct
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._catalog import Schema
from ._codec import encode, fingerprint_of
from ._errors import (
    DecryptionError, EnvelopeError, ErasedDossierError, SchemaError, UnknownDossierError,
)
from ._keys import write_private
from ._sealed import Cursor

__all__ = [
    "ERASED", "ERASURE_SCHEMA", "ERASURE_TYPE", "WITHHELD", "DossierKeyStore", "Erasure", "aad", "dossier_of",
    "erased", "is_personal", "mark", "personal_fields", "protect", "relabel", "reveal",
]

MAGIC = b"\xdc\x5e\x02"
#: A personal value that names its dossier (another one than the event's subject).
MAGIC_DOSSIER = b"\xdc\x5e\x04"
#: What a reader sees in a personal field whose dossier key was destroyed.
ERASED = "[effacé]"
#: What a reader sees in a personal field whose dossier key it does not hold (nothing was erased).
WITHHELD = "[chiffré]"
ERASURE_TYPE = ERASURE_SCHEMA = "fr.dcant.privacy.PersonalDataErased"


@dataclasses.dataclass(frozen=True, slots=True)
class Erasure:
    """A dossier's erasure: why (the legal basis), when, and the event that recorded it on the bus."""

    dossier: str
    basis: str
    erased_at: dt.datetime
    key_id: str
    event_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"dossier": self.dossier, "basis": self.basis, "erased_at": self.erased_at.isoformat(),
                "key_id": self.key_id, "event_id": self.event_id}


# -- which fields, and their blanks -------------------------------------------------------------

def _blank(field: Mapping[str, Any], schema: Schema, path: str) -> Any:
    kind = field["type"]
    branches = kind if isinstance(kind, list) else [kind]
    names = [b if isinstance(b, str) else b.get("type") for b in branches]
    if "null" in names:
        return None
    for name, blank in (("string", ""), ("array", []), ("map", {})):
        if name in names:
            return blank
    raise SchemaError(f"personal field {path!r} of {schema.name} has no blank value "
                      "(make it nullable, a string, an array or a map)", schema=schema.name)


@functools.lru_cache(maxsize=1024)
def _personal(schema: Schema) -> dict[str, tuple[Any, bool]]:
    """Path of each personal field of ``schema`` -> (its blank, whether it holds a string)."""
    out: dict[str, tuple[Any, bool]] = {}
    named: dict[str, Mapping[str, Any]] = {}

    def visit(record: Mapping[str, Any], prefix: str, namespace: str, seen: frozenset[str]) -> None:
        for field in record.get("fields", ()):
            path, kind = prefix + field["name"], field["type"]
            branches = kind if isinstance(kind, list) else [kind]
            if field.get("personal") is True:
                out[path] = (_blank(field, schema, path), "string" in branches)
                continue
            for branch in branches:
                suffix = ""
                if isinstance(branch, Mapping) and branch.get("type") == "array":
                    branch, suffix = branch["items"], "[]"
                if isinstance(branch, str):  # a named type defined earlier in the schema
                    branch = named.get(branch) or named.get(f"{namespace}.{branch}")
                if not isinstance(branch, Mapping) or branch.get("type") != "record":
                    continue
                space = branch.get("namespace", namespace)
                full = branch["name"] if "." in branch["name"] else f"{space}.{branch['name']}"
                named.setdefault(full, branch)
                if full not in seen:  # a recursive type is searched once along a path
                    visit(branch, f"{path}{suffix}.", space, seen | {full})

    visit(schema.raw, "", schema.raw.get("namespace", ""), frozenset({schema.name}))
    return out


def personal_fields(schema: Schema) -> dict[str, Any]:
    """The personal fields of ``schema`` (``"personal": true``), by path, and the blank each is replaced with."""
    return {path: blank for path, (blank, _) in _personal(schema).items()}


def _values(data: Any, steps: Sequence[str]) -> Iterator[Any]:
    """The values at a field path (``a[].b``: ``b`` of each item of ``a``) present in ``data``."""
    name = steps[0].removesuffix("[]")
    if not isinstance(data, Mapping) or name not in data:
        return
    value = data[name]
    if len(steps) == 1:
        yield value
        return
    for item in (value if steps[0].endswith("[]") and isinstance(value, list) else [value]):
        yield from _values(item, steps[1:])


def _replace(data: Any, steps: Sequence[str], change: Callable[[Any], Any]) -> Any:
    """``data`` with ``change`` applied to each value at a field path; copies only what it changes."""
    name = steps[0].removesuffix("[]")
    if not isinstance(data, Mapping) or name not in data:
        return data
    value = data[name]
    if len(steps) == 1:
        return {**data, name: change(value)}
    if steps[0].endswith("[]") and isinstance(value, list):
        return {**data, name: [_replace(item, steps[1:], change) for item in value]}
    return {**data, name: _replace(value, steps[1:], change)}


# -- the value ----------------------------------------------------------------------------------

def aad(sealed_binding: bytes) -> bytes:
    """The associated data of a dossier ciphertext: its own label, then the envelope's :func:`bus._sealed.binding`."""
    return b"dcant-bus-personal-v1\x00" + sealed_binding


def _named(aad: bytes, dossier: str) -> bytes:
    """The associated data of a value that names its dossier: the dossier is bound too."""
    raw = dossier.encode()
    return aad + struct.pack(">H", len(raw)) + raw


def is_personal(value: bytes) -> bool:
    return value[:3] in (MAGIC, MAGIC_DOSSIER)


def protect(store: DossierKeyStore, schema: Schema, data: Mapping[str, Any], payload: bytes, dossier: str,
            aad: bytes, *, subject: str | None = None) -> bytes:
    """The personal value of ``payload`` (``data`` encoded) for ``dossier``, or ``payload`` itself when
    no personal field of ``schema`` holds anything.

    ``subject``: the event's, when ``dossier`` may differ from it (the value then names its dossier).
    """
    held, redacted = [], data
    for path, (blank, _) in _personal(schema).items():
        steps = path.split(".")
        if any(value not in (None, blank, ERASED) for value in _values(data, steps)):  # a marker names nobody
            held.append(path)
            redacted = _replace(redacted, steps, lambda _value, blank=blank: blank)
    if not held:
        return payload
    key_id, key = store.key_for_sealing(dossier, schema.family)
    redacted_payload = encode(schema, redacted)
    parts = [MAGIC]
    if subject is not None and dossier != subject:
        raw = dossier.encode()
        parts, aad = [MAGIC_DOSSIER, struct.pack(">H", len(raw)), raw], _named(aad, dossier)
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, payload, aad)
    kid = key_id.encode()
    parts += [struct.pack(">H", len(kid)), kid, struct.pack(">B", len(held))]
    for name in held:
        raw = name.encode()
        parts += [struct.pack(">B", len(raw)), raw]
    parts += [nonce, struct.pack(">I", len(ciphertext)), ciphertext, redacted_payload]
    return b"".join(parts)


def dossier_of(value: bytes, subject: str) -> str:
    """The dossier whose key encrypts a personal value: the one it names, else the event's subject."""
    if value[:3] != MAGIC_DOSSIER:
        return subject
    cursor = Cursor(value, 3, "personal value")
    return cursor.take(struct.unpack(">H", cursor.take(2))[0]).decode("utf-8", "replace")


def _parse(value: bytes) -> tuple[str, tuple[str, ...], bytes, bytes, bytes]:
    """(key id, blanked fields, nonce, ciphertext, blanked payload)."""
    cursor = Cursor(value, 3, "personal value")
    take = cursor.take
    if value[:3] == MAGIC_DOSSIER:
        take(struct.unpack(">H", take(2))[0])  # the dossier: dossier_of
    key_id = take(struct.unpack(">H", take(2))[0]).decode("utf-8", "replace")
    fields = tuple(take(take(1)[0]).decode("utf-8", "replace") for _ in range(take(1)[0]))
    nonce = take(12)
    ciphertext = take(struct.unpack(">I", take(4))[0])
    return key_id, fields, nonce, ciphertext, cursor.rest()


def reveal(store: DossierKeyStore | None, value: bytes, aad: bytes, subject: str,
           **context: Any) -> tuple[bytes, tuple[str, ...], Erasure | None]:
    """(payload to decode, fields it shows blanked, the dossier's erasure if known) of a verified personal value
    of an event about ``subject`` (its dossier, unless the value names another: :func:`dossier_of`).

    With the dossier's key: the full payload and no blanked field. Without it: the blanked payload.
    """
    dossier = dossier_of(value, subject)
    if value[:3] == MAGIC_DOSSIER:
        aad = _named(aad, dossier)
    key_id, fields, nonce, ciphertext, redacted = _parse(value)
    key = None if store is None else store.key(dossier, key_id)
    if key is None:
        return redacted, fields, None if store is None else store.erasure(dossier)
    try:
        payload = AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise DecryptionError("the personal data does not decrypt with the dossier's key", key_id=key_id,
                              **context) from exc
    if fingerprint_of(payload) != fingerprint_of(redacted):
        raise EnvelopeError("the personal data and the blanked payload have different schemas", **context)
    return payload, (), None


def mark(schema: Schema, data: dict[str, Any], fields: Sequence[str], erased: bool) -> dict[str, Any]:
    """``data`` with each blanked string field showing :data:`ERASED` or :data:`WITHHELD` (others stay blank)."""
    marker = ERASED if erased else WITHHELD
    strings = {path for path, (_, string) in _personal(schema).items() if string}
    for path in fields:
        if path in strings:
            data = _replace(data, path.split("."), lambda _value: marker)
    return data


def erased(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every personal field showing :data:`ERASED` (string) or its blank: what a copy of an
    erased dossier's personal data becomes (it then travels without a key)."""
    out = dict(data)
    for path, (blank, string) in _personal(schema).items():
        out = _replace(out, path.split("."), lambda value, shown=ERASED if string else blank: (
            value if value is None else shown))
    return out


def relabel(data: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """``data`` with the fields at ``fields`` that show :data:`WITHHELD` showing :data:`ERASED` (the
    dossier's erasure is known from its ledgered event, not from a key store)."""
    out = dict(data)
    for path in fields:
        out = _replace(out, path.split("."), lambda value: ERASED if value == WITHHELD else value)
    return out


# -- the key store ------------------------------------------------------------------------------

class DossierKeyStore:
    """One AES-256 key per dossier: ``<root>/<sha256(dossier)[:32]>.key`` (JSON, 0600), until its erasure.

    A key file holds the dossier, the key id, the family of its first event and the key; once
    erased, it holds the :class:`Erasure` record instead, and no key is made again for that dossier.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:  # never show a key
        return f"DossierKeyStore({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DossierKeyStore) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def _path(self, dossier: str) -> Path:
        # .key, not .json: the signing KeyStore reads every <keys dir>/*/*.json as one of its keys
        return self.root / f"{hashlib.sha256(dossier.encode()).hexdigest()[:32]}.key"

    def entry(self, dossier: str) -> dict[str, Any] | None:
        """The stored record of ``dossier`` (its key, or its erasure), None when there is none."""
        try:
            record = json.loads(self._path(dossier).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return record if record.get("dossier") == dossier else None

    def key_for_sealing(self, dossier: str, family: str) -> tuple[str, bytes]:
        """(key id, key) of ``dossier``, made on first use; ErasedDossierError once it was erased."""
        record = self.entry(dossier)
        if record is None:
            key = AESGCM.generate_key(256)
            record = {"dossier": dossier, "family": family, "key_id": f"dk:{os.urandom(8).hex()}", "key": key.hex()}
            path = self._path(dossier)
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:  # O_EXCL: two producers sealing the dossier's first events at once agree on one key
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return self.key_for_sealing(dossier, family)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(record, out)
        if "erased_at" in record:
            raise ErasedDossierError(f"the personal data of {dossier} was erased on {record['erased_at']}",
                                     dossier=dossier)
        return record["key_id"], bytes.fromhex(record["key"])

    def key(self, dossier: str, key_id: str) -> bytes | None:
        record = self.entry(dossier)
        if record is None or record.get("key_id") != key_id or "key" not in record:
            return None
        return bytes.fromhex(record["key"])

    def erasure(self, dossier: str) -> Erasure | None:
        record = self.entry(dossier)
        if record is None or "erased_at" not in record:
            return None
        return Erasure(dossier, record["basis"], dt.datetime.fromisoformat(record["erased_at"]), record["key_id"],
                       record.get("event_id"))

    def family(self, dossier: str) -> str:
        """The family of ``dossier``'s events (where its erasure is published); UnknownDossierError if none."""
        record = self.entry(dossier)
        if record is None:
            raise UnknownDossierError(f"no personal data of {dossier} is encrypted here", dossier=dossier)
        if "erased_at" in record:
            raise ErasedDossierError(f"{dossier} was already erased on {record['erased_at']}", dossier=dossier,
                                     hint="nothing left to erase")
        return str(record["family"])

    def destroy(self, dossier: str, *, basis: str, at: dt.datetime, event_id: str | None = None) -> Erasure:
        """Destroy ``dossier``'s key: its file is overwritten, then replaced by the erasure record."""
        family = self.family(dossier)
        record = self.entry(dossier)
        assert record is not None  # family() refused otherwise
        erasure = Erasure(dossier, basis, at, record["key_id"], event_id)
        path = self._path(dossier)
        with open(path, "r+b") as out:  # overwrite the key's bytes in place before the file goes
            out.write(b"\0" * path.stat().st_size)
            out.flush()
            os.fsync(out.fileno())
        tmp = path.with_suffix(".erasing")
        write_private(tmp, json.dumps({**erasure.to_json(), "family": family}).encode())
        os.replace(tmp, path)
        return erasure
