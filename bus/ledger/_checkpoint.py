"""Signed checkpoints of Merkle logs, in the C2SP tlog-checkpoint / signed-note text form.

A :class:`Checkpoint` states "log L had N entries with root R at time T", signed by the
log's key and cosigned by witnesses. Its signed bytes (:meth:`Checkpoint.body`) and its
serialisation (:meth:`Checkpoint.to_bytes`, a signed note) are plain UTF-8 text an auditor
can read decades later::

    <log id>                         origin line, e.g. fr.dcant.invoices/3
    <tree size>                      ASCII decimal, no leading zeros
    <root hash>                      standard base64 of the 32-byte RFC 6962 root
    timestamp <ms>                   ASCII decimal milliseconds since the Unix epoch
    key <key id>                     the key the log signs this checkpoint with
    <extension line>*                optional, opaque, kept in order
                                     (blank line)
    — <key name> <base64(key hash (4 bytes) || signature)>     one per signer

Lines four and five are C2SP extension lines. Signing and verification go through
injected callables, so this core needs no key directory. :class:`TableSnapshot` digests
the state of a compacted reference topic so a checkpoint can cover it.

    LedgerError
    └── CheckpointError ....... a checkpoint note is malformed, unsigned or signed twice
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from hashlib import sha256

from bus._errors import BusError, SignatureError
from bus.ledger._merkle import HASH_SIZE, LedgerError, MerkleTree, leaf_hash, root, verify_inclusion

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "NoteSignature",
    "Signer",
    "TableSnapshot",
    "Verifier",
    "detect_split_view",
    "note_key_hash",
    "partition_log_id",
    "sign",
    "verify",
]

Signer = Callable[[bytes], bytes]
"""Signs a message with one key; returns the raw signature."""

Verifier = Callable[[str, bytes, bytes], None]
"""``verifier(key_id, message, signature)`` returns if the signature is good, raises otherwise."""

_DASH = "\u2014"
_MAX_NOTE_BYTES = 1 << 20
_MAX_SIGNATURES = 100
_KEY_HASH_SIZE = 4
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_KEY_NAME = re.compile(r"[^\s+]+")
# C2SP signed-note: no control characters but newline, which separates lines.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_U32 = struct.Struct(">I")
_TABLE_ENTRY_V1 = b"\x02"


class CheckpointError(LedgerError):
    """A checkpoint note is malformed, lacks a required signature, or is signed twice by one key."""

    default_hint = "the checkpoint was altered or truncated; fetch it again from the checkpoint topic"


def note_key_hash(key_name: str, key_material: bytes = b"") -> bytes:
    """The 4-byte signed-note key hash: ``SHA-256(key name || 0x0A || key material)[:4]``.

    C2SP defines the key material as the signature-type byte then the public key
    (``0x01 || 32-byte key`` for Ed25519); pass it to be compatible with other note
    verifiers. Without it the hash depends on the name only; it is a lookup hint either way.
    """
    return sha256(key_name.encode("utf-8") + b"\n" + key_material).digest()[:_KEY_HASH_SIZE]


def partition_log_id(topic: str, partition: int) -> str:
    """The log id (checkpoint origin) of one Kafka topic-partition: ``<topic>/<partition>``."""
    if not topic or "/" in topic or not 0 <= partition <= 0x7FFFFFFF:
        raise ValueError(f"not a Kafka topic-partition: {topic!r} {partition}")
    return f"{topic}/{partition}"


def _check_line(what: str, line: str) -> None:
    if not line or "\n" in line or _CONTROL.search(line):
        raise CheckpointError(f"{what} must be one non-empty line without control characters", line=repr(line))


def _check_key_name(name: str) -> None:
    if not isinstance(name, str) or not _KEY_NAME.fullmatch(name):
        raise CheckpointError("a key name must be non-empty, without spaces or '+'", key=repr(name))


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a signed note: who signed, their 4-byte key hash, the signature."""

    key_name: str
    key_hash: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.key_name)
        if len(self.key_hash) != _KEY_HASH_SIZE or not self.signature:
            raise CheckpointError("a note signature needs a 4-byte key hash and a signature", key=self.key_name)

    def line(self) -> str:
        """The signature line, without its newline."""
        blob = base64.b64encode(self.key_hash + self.signature).decode("ascii")
        return f"{_DASH} {self.key_name} {blob}"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's signed statement of its size and root at a time; see the module docstring."""

    log_id: str
    size: int
    root: bytes
    timestamp_ms: int
    key_id: str
    extensions: tuple[str, ...] = ()
    signatures: tuple[NoteSignature, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_line("the log id", self.log_id)
        for name, value in (("size", self.size), ("timestamp_ms", self.timestamp_ms)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 63:
                raise CheckpointError(f"{name} must be an integer in [0, 2**63)", log=self.log_id, **{name: value})
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"the root must be {HASH_SIZE} bytes", log=self.log_id)
        _check_key_name(self.key_id)
        for line in self.extensions:
            _check_line("an extension line", line)
        names = [s.key_name for s in self.signatures]
        if len(set(names)) != len(names):
            raise CheckpointError("a key signed this checkpoint twice", log=self.log_id, keys=",".join(names))

    def body(self) -> bytes:
        """The signed bytes: the checkpoint text up to and including its last newline."""
        lines = [
            self.log_id,
            str(self.size),
            base64.b64encode(self.root).decode("ascii"),
            f"timestamp {self.timestamp_ms}",
            f"key {self.key_id}",
            *self.extensions,
        ]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @property
    def signers(self) -> tuple[str, ...]:
        """Key names of the signatures, in note order."""
        return tuple(s.key_name for s in self.signatures)

    def signature_by(self, key_name: str) -> NoteSignature | None:
        """The signature by ``key_name``, if the checkpoint carries one."""
        return next((s for s in self.signatures if s.key_name == key_name), None)

    def unsigned(self) -> Checkpoint:
        """The same statement without any signature."""
        return replace(self, signatures=())

    def to_bytes(self) -> bytes:
        """The signed note; raise :class:`CheckpointError` if nobody signed yet."""
        if not self.signatures:
            raise CheckpointError("an unsigned checkpoint is not a signed note", log=self.log_id)
        sig_lines = "".join(s.line() + "\n" for s in self.signatures)
        return self.body() + b"\n" + sig_lines.encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        """Parse a signed note written by :meth:`to_bytes`, strictly (canonical form only)."""
        if len(data) > _MAX_NOTE_BYTES:
            raise CheckpointError("checkpoint note is too large", length=len(data))
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError("checkpoint note is not UTF-8") from exc
        body, sep, sig_text = text.partition("\n\n")
        if not sep or not sig_text.endswith("\n"):
            raise CheckpointError("checkpoint note lacks its blank line or signature lines")
        lines = body.split("\n")
        if len(lines) < 5:
            raise CheckpointError("checkpoint body has fewer than five lines", lines=len(lines))
        log_id, size_text, root_text, time_line, key_line, *extensions = lines
        size = _parse_decimal("tree size", size_text)
        root_hash = _parse_base64("root hash", root_text)
        if not time_line.startswith("timestamp ") or not key_line.startswith("key "):
            raise CheckpointError("checkpoint lines 4 and 5 must be 'timestamp <ms>' and 'key <key id>'")
        timestamp = _parse_decimal("timestamp", time_line.removeprefix("timestamp "))
        signatures = []
        sig_lines = sig_text[:-1].split("\n")
        if len(sig_lines) > _MAX_SIGNATURES:
            raise CheckpointError("too many signature lines", count=len(sig_lines))
        for line in sig_lines:
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != _DASH:
                raise CheckpointError("malformed signature line", line=repr(line))
            blob = _parse_base64("signature", parts[2])
            if len(blob) <= _KEY_HASH_SIZE:
                raise CheckpointError("signature line is too short", key=parts[1])
            signatures.append(NoteSignature(parts[1], blob[:_KEY_HASH_SIZE], blob[_KEY_HASH_SIZE:]))
        checkpoint = cls(
            log_id=log_id,
            size=size,
            root=root_hash,
            timestamp_ms=timestamp,
            key_id=key_line.removeprefix("key "),
            extensions=tuple(extensions),
            signatures=tuple(signatures),
        )
        if checkpoint.to_bytes() != data:
            raise CheckpointError("checkpoint note is not in canonical form", log=log_id)
        return checkpoint


def _parse_decimal(what: str, text: str) -> int:
    if not _DECIMAL.fullmatch(text) or len(text) > 19:
        raise CheckpointError(f"{what} is not a canonical decimal", value=repr(text))
    return int(text)


def _parse_base64(what: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CheckpointError(f"{what} is not valid base64", value=repr(text)) from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise CheckpointError(f"{what} is not canonical base64", value=repr(text))
    return raw


def sign(checkpoint: Checkpoint, key_id: str, signer: Signer, *, key_hash: bytes | None = None) -> Checkpoint:
    """Return ``checkpoint`` with one more signature, by ``key_id``, over :meth:`Checkpoint.body`.

    ``signer(message) -> signature`` holds the private key. ``key_hash`` is the note key
    hash (default :func:`note_key_hash` of the name). A key signs a checkpoint at most once.
    """
    _check_key_name(key_id)
    if checkpoint.signature_by(key_id) is not None:
        raise CheckpointError("this key already signed the checkpoint", log=checkpoint.log_id, key=key_id)
    try:
        signature = signer(checkpoint.body())
    except BusError:
        raise
    except Exception as exc:
        raise CheckpointError("the signer failed", log=checkpoint.log_id, key=key_id) from exc
    if not isinstance(signature, bytes) or not signature:
        raise CheckpointError("the signer returned no signature bytes", log=checkpoint.log_id, key=key_id)
    note_sig = NoteSignature(key_id, note_key_hash(key_id) if key_hash is None else key_hash, signature)
    return replace(checkpoint, signatures=(*checkpoint.signatures, note_sig))


def verify(
    checkpoint: Checkpoint,
    verifier: Verifier,
    *,
    require: Collection[str] = (),
    key_hash: Callable[[str], bytes] = note_key_hash,
) -> None:
    """Verify the log's signature (``checkpoint.key_id``) and those of the ``require`` keys.

    ``verifier(key_id, message, signature)`` must raise when the signature is bad or the key
    is not trusted for this log (it receives the body, whose first line is the log id).
    ``key_hash(key_id)`` gives the 4-byte note key hash each signature line must carry
    (pass the C2SP one when signing with it). Signatures by other keys are ignored, as
    signed-note verifiers do: they count for nothing. A :class:`~bus._errors.BusError` from
    the verifier propagates; any other exception becomes :class:`~bus._errors.SignatureError`.
    """
    message = checkpoint.body()
    for key_name in dict.fromkeys((checkpoint.key_id, *require)):
        note_sig = checkpoint.signature_by(key_name)
        if note_sig is None:
            raise CheckpointError("a required signature is missing", log=checkpoint.log_id, key=key_name)
        if note_sig.key_hash != key_hash(key_name):
            raise SignatureError("signature line carries another key's hash", log=checkpoint.log_id, key=key_name)
        try:
            verifier(key_name, message, note_sig.signature)
        except BusError:
            raise
        except Exception as exc:
            raise SignatureError(
                "checkpoint signature does not verify", log=checkpoint.log_id, key=key_name, size=checkpoint.size
            ) from exc


def detect_split_view(a: Checkpoint, b: Checkpoint) -> bool:
    """True when two checkpoints of the same log and size carry different roots.

    Both must have been verified first; then this is proof the log showed two histories.
    Checkpoints of different logs or sizes are never a split view by themselves (check a
    consistency proof for those).
    """
    return a.log_id == b.log_id and a.size == b.size and a.root != b.root


def _table_entry_leaf(key: bytes, value: bytes) -> bytes:
    """Leaf bytes of one table entry: ``0x02 || u32 len(key) || key || u32 len(value) || value``."""
    if not isinstance(key, bytes) or not isinstance(value, bytes):
        raise TypeError("table keys and values are bytes (a tombstoned key is absent from the table)")
    return _TABLE_ENTRY_V1 + _U32.pack(len(key)) + key + _U32.pack(len(value)) + value


@dataclass(frozen=True, slots=True)
class TableSnapshot:
    """Digest of a key→value table (a compacted topic's state): a Merkle root over its entries sorted by key.

    Leaf *i* is :func:`~bus.ledger.leaf_hash` of the *i*-th entry in byte order of keys, as
    ``0x02 || u32 len(key) || key || u32 len(value) || value``.
    """

    size: int
    root: bytes

    @staticmethod
    def leaf_hashes(table: Mapping[bytes, bytes]) -> list[bytes]:
        """The leaf hashes of ``table``, in key order."""
        return [leaf_hash(_table_entry_leaf(k, table[k])) for k in sorted(table)]

    @classmethod
    def of(cls, table: Mapping[bytes, bytes]) -> TableSnapshot:
        """Snapshot of ``table`` as it is now."""
        return cls(size=len(table), root=root(cls.leaf_hashes(table)))

    @staticmethod
    def prove(table: Mapping[bytes, bytes], key: bytes) -> tuple[int, list[bytes]]:
        """The index of ``key`` in key order and the inclusion proof of its entry."""
        keys = sorted(table)
        try:
            index = keys.index(key)
        except ValueError:
            raise KeyError(key) from None
        leaves = [leaf_hash(_table_entry_leaf(k, table[k])) for k in keys]
        return index, MerkleTree(leaves).inclusion_proof(index, len(leaves))

    def verify_entry(self, key: bytes, value: bytes, index: int, proof: list[bytes]) -> None:
        """Check that ``key`` had ``value`` in the snapshotted table; raise :class:`ProofError`."""
        verify_inclusion(leaf_hash(_table_entry_leaf(key, value)), index, self.size, proof, self.root)

    def checkpoint(self, log_id: str, timestamp_ms: int, key_id: str) -> Checkpoint:
        """An unsigned checkpoint covering this snapshot (``log_id`` names the topic and snapshot)."""
        return Checkpoint(log_id=log_id, size=self.size, root=self.root, timestamp_ms=timestamp_ms, key_id=key_id)
