"""Encryption per recipient: a fresh data key, AES-256-GCM over the payload, HPKE (RFC 9180) to wrap it.

An addressed event (``ce_recipients``) travels as a *sealed value* in place of the Avro payload::

    magic "\\xdc\\x5e\\x03" | u8 n | n × (u16 len, key id | u8 suite | u16 len, HPKE enc‖ct of the data key)
    | 12-byte nonce | u32 len | AES-256-GCM(data key, nonce, Avro single-object payload, aad=binding)

The ``binding`` (:func:`binding`) is the event's id, source, type, subject, time, schema and
recipients, so a ciphertext cannot be replayed under another envelope. Each wrapped key's HPKE
``info`` names the recipient key it is for. The producer signs the sealed value (every wrapped key
and the ciphertext), so a verifier without any key checks integrity, and :meth:`bus.Wire.open`
verifies before any decryption is tried.

Data keys are reused within limits (:class:`DataKeyCache`, as Kroxylicious' record encryption
and the AWS Encryption SDK's caching do): a producer seals up to ``max_uses`` events for the same
recipient keys, for at most ``max_age`` seconds, under one data key wrapped once, each event with
its own random nonce and its own binding; a reader unwraps each wrapped key once
(:class:`UnwrapCache`). The HPKE work (~0.2 ms per recipient) is then paid once per window, not
per event. What it costs: whoever learns one event's data key reads the other events of its window
(all addressed to the same recipients) — so one event is disclosed by its plaintext, never by its
data key. Version 1 values (magic ``\\x01``: a data key per event, wrap bound to the event) are
still opened.

Suites: ``X25519`` (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM), the default, and
``MLKEM768_X25519`` (the hybrid post-quantum KEM, same KDF and AEAD), chosen per recipient key.

Documents (claim checks) use :func:`encrypt_stream` / :func:`decrypt_stream`: AES-256-GCM in
chunks, each with its own nonce (prefix ‖ index) and its index and final flag in the associated
data, so memory stays bounded and truncation or reordering fails. An addressed document is stored
as :func:`seal_document` writes it::

    magic "\xdc\x5e\x10" | slots (as above; HPKE info "dcant-bus-doc-v1") | 32-byte salt
    | encrypt_stream(plaintext, HKDF-SHA256(wrapping key, salt), aad=SHA-256(all of the above))

so its claim check's digest (of these bytes) covers the ciphertext and the wrapped keys, and
:func:`open_document` reads it back for a holder of one recipient's key.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._errors import (
    ConfigurationError, DecryptionError, EncapsulationError, NotARecipientError, SwappedKeyError,
    TruncatedCiphertextError,
)
from ._keys import write_private

__all__ = [
    "DataKeyCache", "DecryptionKey", "DecryptionKeyring", "DocumentKey", "EncryptionKeyStore", "RecipientKey", "Suite",
    "UnwrapCache", "binding", "decrypt_stream", "encrypt_stream", "generate_encryption_key", "is_sealed",
    "is_sealed_document", "open_document", "open_sealed", "recipients_of", "seal_document", "seal_payload",
]

Suite = Literal["X25519", "MLKEM768_X25519"]
MAGIC = b"\xdc\x5e\x03"  # version 2 of the sealed value (\x02 is the personal value: bus._erasure)
MAGIC_V1 = b"\xdc\x5e\x01"  # a data key per event, its wrap bound to the event (read, no longer written)
_SUITE_CODE: dict[str, int] = {"X25519": 1, "MLKEM768_X25519": 2}
_SUITE_OF = {v: k for k, v in _SUITE_CODE.items()}
_HPKE = {
    "X25519": hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
    "MLKEM768_X25519": hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
}
_X25519_LEN = 32


def _key_id(siren: str, public: bytes) -> str:
    return f"{siren}:enc:{hashlib.sha256(public).hexdigest()[:16]}"


@dataclasses.dataclass(frozen=True, slots=True)
class RecipientKey:
    """An administration's public encryption key: what producers wrap data keys to."""

    key_id: str
    siren: str
    suite: Suite
    public: bytes  # X25519: 32 raw bytes; hybrid: ML-KEM-768 public key (1184) ‖ X25519 (32)
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    owner: str = ""

    def valid_at(self, moment: dt.datetime) -> bool:
        return (self.valid_from is None or moment >= self.valid_from) and (
            self.valid_until is None or moment < self.valid_until)

    def to_record(self) -> dict[str, Any]:
        """The ``fr.dcant.reference.EncryptionKey`` record published on the directory topic."""
        if self.valid_from is None:
            raise ConfigurationError(f"encryption key {self.key_id} has no validity start to publish")
        return {"key_id": self.key_id, "siren": self.siren, "owner": self.owner, "suite": self.suite,
                "public_key": self.public, "valid_from": self.valid_from, "valid_until": self.valid_until}

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> RecipientKey:
        key = cls(r["key_id"], r["siren"], r["suite"], bytes(r["public_key"]), r["valid_from"], r.get("valid_until"),
                  r.get("owner", ""))
        if key.key_id != _key_id(key.siren, key.public):
            raise ConfigurationError(f"encryption key id {key.key_id} does not match its public key")
        return key

    def loaded(self) -> Any:
        if self.suite == "X25519":
            return x25519.X25519PublicKey.from_public_bytes(self.public)
        return hpke.MLKEM768X25519PublicKey(mlkem.MLKEM768PublicKey.from_public_bytes(self.public[:-_X25519_LEN]),
                                            x25519.X25519PublicKey.from_public_bytes(self.public[-_X25519_LEN:]))


@dataclasses.dataclass(frozen=True, slots=True)
class DecryptionKey:
    """A recipient's private half. Never printed: ``repr`` shows the key id only."""

    public: RecipientKey
    _x25519: x25519.X25519PrivateKey = dataclasses.field(repr=False)
    _mlkem: mlkem.MLKEM768PrivateKey | None = dataclasses.field(default=None, repr=False)

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def hpke_private(self) -> Any:
        if self._mlkem is None:
            return self._x25519
        return hpke.MLKEM768X25519PrivateKey(self._mlkem, self._x25519)


def generate_encryption_key(siren: str, *, suite: Suite = "X25519", valid_from: dt.datetime | None = None,
                            owner: str = "") -> DecryptionKey:
    """A new encryption key pair for administration ``siren`` (X25519, or the hybrid ML-KEM-768 + X25519)."""
    if not (len(siren) == 9 and siren.isdigit()):
        raise ConfigurationError(f"SIREN must be 9 digits, got {siren!r}")
    if suite not in _SUITE_CODE:
        raise ConfigurationError(f"unknown encryption suite {suite!r}", hint="use X25519 or MLKEM768_X25519")
    xk = x25519.X25519PrivateKey.generate()
    mk = mlkem.MLKEM768PrivateKey.generate() if suite == "MLKEM768_X25519" else None
    public = xk.public_key().public_bytes_raw()
    if mk is not None:
        public = mk.public_key().public_bytes_raw() + public
    return DecryptionKey(RecipientKey(_key_id(siren, public), siren, suite, public, valid_from, None, owner), xk, mk)


class DecryptionKeyring:
    """The decryption keys a reader holds (a worker: those of every administration it serves)."""

    def __init__(self, keys: Iterable[DecryptionKey] = ()) -> None:
        self.by_id: dict[str, DecryptionKey] = {k.key_id: k for k in keys}

    def __len__(self) -> int:
        return len(self.by_id)


def binding(*fields: str | None) -> bytes:
    """The associated data tying a ciphertext to its envelope: each field length-prefixed."""
    parts = [b"dcant-bus-sealed-v1\x00"]
    for field in fields:
        raw = b"" if field is None else field.encode()
        parts += (_U32_PACK(len(raw)), raw)
    return b"".join(parts)


_U32_PACK = struct.Struct(">I").pack


_DOC_INFO = b"dcant-bus-doc-v1\x00"


def _info(key_id: str, aad: bytes | None, *, document: bool = False) -> bytes:
    """HPKE ``info`` of a wrapped data key: v2 names the recipient key; v1 (``aad`` given) also the event.

    A document's key (``document``) has an info of its own: a wrap cannot pass from a document to an event.
    """
    if document:
        return _DOC_INFO + key_id.encode()
    if aad is None:
        return b"dcant-bus-dek-v2\x00" + key_id.encode()
    return b"dcant-bus-dek-v1\x00" + key_id.encode() + b"\x00" + hashlib.sha256(aad).digest()


def is_sealed(value: bytes) -> bool:
    return value[:3] in (MAGIC, MAGIC_V1)


def _wrap(data_key: bytes, recipients: Sequence[RecipientKey], *, document: bool = False) -> bytes:
    """The slots: ``u8 n`` then, for each recipient, its key id, suite and HPKE-wrapped ``data_key``."""
    parts = [struct.pack(">B", len(recipients))]
    for key in recipients:
        wrapped = _HPKE[key.suite].encrypt(data_key, key.loaded(), info=_info(key.key_id, None, document=document))
        kid = key.key_id.encode()
        parts += [struct.pack(">H", len(kid)), kid, struct.pack(">BH", _SUITE_CODE[key.suite], len(wrapped)), wrapped]
    return b"".join(parts)


class DataKeyCache:
    """A producer's data keys, one per set of recipient keys, each reused for ``max_uses`` events or ``max_age`` s.

    The wrapped slots are made once per data key. A new recipient key (rotation, revocation: the
    set of key ids changes) gets a new data key at once. At most ``max_sets`` sets are kept.
    """

    def __init__(self, *, max_uses: int = 1000, max_age: float = 300.0, max_sets: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_uses, self.max_age, self.max_sets, self.clock = max_uses, max_age, max_sets, clock
        self._issued: collections.OrderedDict[tuple[str, ...], list[Any]] = collections.OrderedDict()
        self.wraps = 0  # data keys wrapped so far (for tests and benchmarks)

    def issue(self, recipients: Sequence[RecipientKey]) -> tuple[bytes, bytes]:
        """(data key, wrapped slots) for one more event to ``recipients``."""
        ids = tuple(k.key_id for k in recipients)
        now = self.clock()
        entry = self._issued.get(ids)
        if entry is None or entry[2] >= self.max_uses or now - entry[3] >= self.max_age:
            data_key = AESGCM.generate_key(256)
            entry = self._issued[ids] = [data_key, _wrap(data_key, recipients), 0, now]
            self.wraps += 1
            while len(self._issued) > self.max_sets:
                self._issued.popitem(last=False)
        self._issued.move_to_end(ids)
        entry[2] += 1
        return entry[0], entry[1]


class UnwrapCache:
    """A reader's unwrapped data keys by (recipient key id, wrapped bytes), the ``max_keys`` most recent."""

    def __init__(self, max_keys: int = 4096) -> None:
        self.max_keys = max_keys
        self._keys: collections.OrderedDict[tuple[str, bytes], bytes] = collections.OrderedDict()

    def get(self, kid: str, wrapped: bytes) -> bytes | None:
        found = self._keys.get((kid, wrapped))
        if found is not None:
            self._keys.move_to_end((kid, wrapped))
        return found

    def put(self, kid: str, wrapped: bytes, data_key: bytes) -> None:
        self._keys[kid, wrapped] = data_key
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)


def seal_payload(payload: bytes, recipients: Sequence[RecipientKey], aad: bytes, *,
                 keys: DataKeyCache | None = None) -> bytes:
    """The sealed value of ``payload`` for ``recipients``: a data key wrapped for each (fresh, or from ``keys``)."""
    if keys is None:
        data_key = AESGCM.generate_key(256)
        slots = _wrap(data_key, recipients)
    else:
        data_key, slots = keys.issue(recipients)
    nonce = os.urandom(12)  # random 96-bit nonces: far below the 2^32 messages per key that NIST SP 800-38D allows
    ciphertext = AESGCM(data_key).encrypt(nonce, payload, aad)
    return b"".join((MAGIC, slots, nonce, struct.pack(">I", len(ciphertext)), ciphertext))


def _parse(value: bytes) -> tuple[list[tuple[str, int, bytes]], bytes, bytes]:
    """(slots (key id, suite code, wrapped), nonce, ciphertext); TruncatedCiphertextError when it stops short."""
    size = len(value)

    def short(wanted: int) -> TruncatedCiphertextError:
        return TruncatedCiphertextError(f"sealed value stops at {size} bytes, {wanted} expected")

    if size < 4:
        raise short(4)
    pos, slots = 4, []
    for _ in range(value[3]):
        if pos + 2 > size:
            raise short(pos + 2)
        end = pos + 2 + _U16(value, pos)[0]
        if end + 3 > size:
            raise short(end + 3)
        kid = value[pos + 2:end].decode("utf-8", "replace")
        suite, length = _SUITE_LEN(value, end)
        pos = end + 3 + length
        if pos > size:
            raise short(pos)
        slots.append((kid, suite, value[end + 3:pos]))
    if pos + 16 > size:
        raise short(pos + 16)
    nonce = value[pos:pos + 12]
    end = pos + 16 + _U32(value, pos + 12)[0]
    if end > size:
        raise short(end)
    if end != size:
        raise DecryptionError(f"sealed value has {size - end} bytes after its ciphertext")
    return slots, nonce, value[pos + 16:end]

class Cursor:
    """Reads a framed value piece by piece: TruncatedCiphertextError (naming ``what``) when it stops short."""

    def __init__(self, value: bytes, start: int, what: str) -> None:
        self.view, self.pos, self.what = memoryview(value), start, what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.view):
            raise TruncatedCiphertextError(f"{self.what} stops at {len(self.view)} bytes, {self.pos + n} expected")
        out = bytes(self.view[self.pos:self.pos + n])
        self.pos += n
        return out

    def rest(self) -> bytes:
        return bytes(self.view[self.pos:])




_U16, _U32, _SUITE_LEN = struct.Struct(">H").unpack_from, struct.Struct(">I").unpack_from, struct.Struct(">BH").unpack_from


def _unwrap(key: DecryptionKey, suite: int, wrapped: bytes, aad: bytes | None, document: bool = False) -> bytes | None:
    if _SUITE_OF.get(suite) != key.public.suite:
        return None
    try:
        return _HPKE[key.public.suite].decrypt(wrapped, key.hpke_private(), info=_info(key.key_id, aad,
                                                                                        document=document))
    except (InvalidTag, ValueError):
        return None


def _unwrap_slots(slots: Sequence[tuple[str, int, bytes]], keyring: DecryptionKeyring | None, wrap_aad: bytes | None,
                  *, recipients: Sequence[str], unwrapped: UnwrapCache | None, document: bool = False,
                  context: Mapping[str, Any]) -> tuple[str, bytes]:
    """(key id, data key) of the first slot this reader holds a key of; a typed DecryptionError otherwise."""
    held = {} if keyring is None else keyring.by_id
    mine = next(((kid, suite, wrapped) for kid, suite, wrapped in slots if kid in held), None)
    if mine is None:
        raise NotARecipientError(
            "not a recipient: this reader holds no decryption key of " + (", ".join(recipients) or "its recipients"),
            **context)
    kid, suite, wrapped = mine
    key = held[kid]
    cache = unwrapped if wrap_aad is None else None
    data_key = None if cache is None else cache.get(kid, wrapped)
    if data_key is None:
        data_key = _unwrap(key, suite, wrapped, wrap_aad, document)
        if data_key is not None and cache is not None:
            cache.put(kid, wrapped, data_key)
    if data_key is None:
        # Diagnose (failure path only): is this reader's wrapped key in another slot?
        if any(_unwrap(key, s, w, wrap_aad, document) is not None for k, s, w in slots if k != kid):
            raise SwappedKeyError(f"the data key wrapped for {kid} sits in another recipient's slot",
                                  key_id=kid, **context)
        raise EncapsulationError(f"the HPKE encapsulation in slot {kid} does not open with that key for this "
                                 f"{'document' if document else 'event'}", key_id=kid, **context)
    return kid, data_key


def open_sealed(value: bytes, keyring: DecryptionKeyring | None, aad: bytes, *, recipients: Sequence[str] = (),
                unwrapped: UnwrapCache | None = None, **context: Any) -> bytes:
    """The plaintext of a (verified) sealed value, or a typed DecryptionError; never a partial plaintext.

    ``unwrapped`` remembers the data keys of version 2 values (their wraps are not bound to one event).
    """
    slots, nonce, ciphertext = _parse(value)
    wrap_aad = aad if value[:3] == MAGIC_V1 else None
    kid, data_key = _unwrap_slots(slots, keyring, wrap_aad, recipients=recipients, unwrapped=unwrapped,
                                  context=context)
    if len(ciphertext) < 16:
        raise TruncatedCiphertextError("ciphertext shorter than its GCM tag", key_id=kid, **context)
    try:
        return AESGCM(data_key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise DecryptionError("the payload does not decrypt with the unwrapped data key", key_id=kid,
                              **context) from exc


# -- documents: chunked, streamed ---------------------------------------------------------------

CHUNK = 64 * 1024
_STREAM_MAGIC = b"dcant-bus-stream-v1\x00"


def encrypt_stream(chunks: Iterable[bytes], data_key: bytes, aad: bytes = b"", *, chunk: int = CHUNK) -> Iterator[bytes]:
    """AES-256-GCM over a byte stream in ``chunk``-sized pieces: a header, then each sealed chunk.

    Nonce = 4-byte random prefix ‖ u64 index; associated data = ``aad`` ‖ index ‖ final flag. Memory: one chunk.
    """
    prefix = os.urandom(4)
    yield _STREAM_MAGIC + prefix + struct.pack(">I", chunk)
    aes, buffer, index = AESGCM(data_key), bytearray(), 0
    for piece in chunks:
        buffer += piece
        start = 0
        while len(buffer) - start > chunk:  # more follows: this chunk is not the final one
            yield _chunk(aes, prefix, index, bytes(buffer[start:start + chunk]), aad, final=False)
            index, start = index + 1, start + chunk
        del buffer[:start]
    yield _chunk(aes, prefix, index, bytes(buffer), aad, final=True)


def _chunk(aes: AESGCM, prefix: bytes, index: int, plain: bytes, aad: bytes, *, final: bool) -> bytes:
    return aes.encrypt(prefix + struct.pack(">Q", index), plain, aad + struct.pack(">Q?", index, final))


def decrypt_stream(read: Any, data_key: bytes, aad: bytes = b"") -> Iterator[bytes]:
    """Plaintext chunks of an :func:`encrypt_stream` output read from ``read(n)``; refuses truncation and reordering."""
    head = read(len(_STREAM_MAGIC) + 8)
    if len(head) < len(_STREAM_MAGIC) + 8 or not head.startswith(_STREAM_MAGIC):
        raise TruncatedCiphertextError("document stream has no header")
    prefix = head[len(_STREAM_MAGIC):-4]
    size = struct.unpack(">I", head[-4:])[0] + 16
    aes, index = AESGCM(data_key), 0
    piece = read(size)
    while True:
        if not piece:
            raise TruncatedCiphertextError(f"document stream stops before its final chunk (after {index} chunks)")
        following = read(size)
        final = not following
        nonce = prefix + struct.pack(">Q", index)
        try:
            yield aes.decrypt(nonce, piece, aad + struct.pack(">Q?", index, final))
        except InvalidTag as exc:
            if final:
                raise TruncatedCiphertextError(f"chunk {index} is not the final chunk: the stream was cut") from exc
            raise DecryptionError(f"chunk {index} does not decrypt (altered or out of order)") from exc
        if final:
            return
        piece, index = following, index + 1


# -- sealed documents: an HPKE header, then the chunked stream ------------------------------------

DOCUMENT_MAGIC = b"\xdc\x5e\x10"
_SALT = 32


@dataclasses.dataclass(frozen=True, slots=True)
class DocumentKey:
    """A document's wrapping key and its slots (the key wrapped for each recipient). Never printed.

    Each stored document gets its own AES-256-GCM key, HKDF-SHA256(wrapping key, a random salt in its
    header): a submission draws a fresh wrapping key, and what a reader derives from a document (the
    files of an ACTES bundle) is sealed under the same slots with a new salt, so it reaches exactly the
    document's recipients without their public keys, each file still under a key of its own.
    """

    slots: bytes
    _key: bytes = dataclasses.field(repr=False)

    @classmethod
    def fresh(cls, recipients: Sequence[RecipientKey]) -> DocumentKey:
        if not recipients:
            raise ConfigurationError("a sealed document needs at least one recipient key")
        key = AESGCM.generate_key(256)
        return cls(_wrap(key, recipients, document=True), key)

    def sirens(self) -> tuple[str, ...]:
        """The recipients' SIRENs, read from the key ids of the slots (``<siren>:enc:<hash>``)."""
        out, pos = [], 1
        for _ in range(self.slots[0]):
            end = pos + 2 + _U16(self.slots, pos)[0]
            out.append(self.slots[pos + 2:end].decode("utf-8", "replace").split(":", 1)[0])
            pos = end + 3 + _SUITE_LEN(self.slots, end)[1]
        return tuple(sorted(set(out)))

    def content_key(self, salt: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(hashes.SHA256(), 32, salt, b"dcant-bus-document-key-v1").derive(self._key)


def is_sealed_document(head: bytes) -> bool:
    return head[:3] == DOCUMENT_MAGIC


def seal_document(chunks: Iterable[bytes], key: DocumentKey) -> Iterator[bytes]:
    """The stored form of a document: ``magic | slots | salt`` then :func:`encrypt_stream` under the derived key.

    The chunks' associated data is the SHA-256 of that header, so no chunk moves under other slots.
    """
    salt = os.urandom(_SALT)
    header = DOCUMENT_MAGIC + key.slots + salt
    yield header
    yield from encrypt_stream(chunks, key.content_key(salt), hashlib.sha256(header).digest())


def _read_exact(read: Callable[[int], bytes], n: int, what: str) -> bytes:
    data = read(n)
    if len(data) < n:
        raise TruncatedCiphertextError(f"sealed document stops inside its {what}")
    return data


def open_document(read: Callable[[int], bytes], keyring: DecryptionKeyring | None, *,
                  recipients: Sequence[str] = (), **context: Any) -> tuple[DocumentKey, Iterator[bytes]]:
    """(the document's key, its plaintext chunks) read from ``read(n)``; a typed DecryptionError otherwise.

    The chunks are authenticated one by one; a cut stream fails at its end, so a reader that must
    never see a partial plaintext checks the stored digest first (:func:`bus._content.read_document`).
    """
    head = _read_exact(read, 4, "header")
    if not is_sealed_document(head):
        raise DecryptionError("not a sealed document", **context)
    parts, slots = [head], []
    for _ in range(head[3]):
        size = _read_exact(read, 2, "slots")
        kid = _read_exact(read, _U16(size)[0], "slots")
        suite_len = _read_exact(read, 3, "slots")
        suite, length = _SUITE_LEN(suite_len)
        wrapped = _read_exact(read, length, "slots")
        parts += [size, kid, suite_len, wrapped]
        slots.append((kid.decode("utf-8", "replace"), suite, wrapped))
    salt = _read_exact(read, _SALT, "salt")
    _, wrapping = _unwrap_slots(slots, keyring, None, recipients=recipients, unwrapped=None, document=True,
                                context=context)
    key = DocumentKey(b"".join(parts)[3:], wrapping)
    header = b"".join(parts) + salt
    return key, decrypt_stream(read, key.content_key(salt), hashlib.sha256(header).digest())


# -- the local store of private halves ----------------------------------------------------------


class EncryptionKeyStore:
    """Private decryption keys on disk: ``<dir>/<siren>/<key id>.enc.pem`` (0600, PKCS#8, encrypted with the
    passphrase ``BUS_KEY_PASSPHRASE`` when set) and ``.enc.json`` (the public record)."""

    def __init__(self, root: Path, passphrase: bytes | None = None) -> None:
        self.root = root
        self._passphrase = passphrase

    def _pem(self, key: Any) -> bytes:
        enc = (serialization.BestAvailableEncryption(self._passphrase) if self._passphrase
               else serialization.NoEncryption())
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)

    def save(self, key: DecryptionKey) -> Path:
        import json

        folder = self.root / key.public.siren
        stem = key.key_id.replace(":", "_")
        pem = write_private(folder / f"{stem}.enc.pem", self._pem(key._x25519)
                            + (b"" if key._mlkem is None else self._pem(key._mlkem)))
        meta = {"key_id": key.key_id, "siren": key.public.siren, "suite": key.public.suite,
                "public": key.public.public.hex(), "owner": key.public.owner,
                "valid_from": key.public.valid_from.isoformat() if key.public.valid_from else None}
        (folder / f"{stem}.enc.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return pem

    def load_all(self) -> list[DecryptionKey]:
        import json

        if not self.root.is_dir():
            return []
        out = []
        for meta_path in sorted(self.root.glob("*/*.enc.json")):
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            blocks = meta_path.with_name(meta_path.name.replace(".enc.json", ".enc.pem")).read_bytes()
            end = b"-----END ENCRYPTED PRIVATE KEY-----" if self._passphrase else b"-----END PRIVATE KEY-----"
            pems = [b + end for b in blocks.split(end) if b.strip()]
            try:
                loaded = [serialization.load_pem_private_key(p, password=self._passphrase) for p in pems]
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"cannot load decryption key {meta['key_id']}",
                                         hint="check BUS_KEY_PASSPHRASE") from exc
            since = meta.get("valid_from")
            public = RecipientKey(meta["key_id"], meta["siren"], meta["suite"], bytes.fromhex(meta["public"]),
                                  dt.datetime.fromisoformat(since) if since else None, None, meta.get("owner", ""))
            out.append(DecryptionKey(public, loaded[0], loaded[1] if len(loaded) > 1 else None))
        return out

    def keyring(self) -> DecryptionKeyring:
        return DecryptionKeyring(self.load_all())


def recipients_of(given: Mapping[str, RecipientKey], directory: Any, sirens: Sequence[str],
                  at: dt.datetime) -> list[RecipientKey]:
    """The encryption key of each SIREN at ``at``: the one ``given``, else the directory's approved one."""
    return [given[s] if s in given else directory.encryption_key(s, at) for s in sirens]
