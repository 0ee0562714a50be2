"""Checkpoints as C2SP signed notes, Ed25519 through injected callables, table snapshots."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from bus._errors import SecurityError, SignatureError, UnknownKeyError
from bus.ledger import (
    EMPTY_ROOT,
    Checkpoint,
    CheckpointError,
    MerkleLog,
    NoteSignature,
    ProofError,
    TableSnapshot,
    detect_split_view,
    leaf_hash,
    note_key_hash,
    partition_log_id,
    sign,
    verify,
)

ROOT = bytes(range(32))


class Keys:
    """A tiny key directory: Ed25519 keys by name, handing out signer and verifier callables."""

    def __init__(self, *names: str) -> None:
        self.private = {name: Ed25519PrivateKey.generate() for name in names}

    def signer(self, name: str) -> Callable[[bytes], bytes]:
        return self.private[name].sign

    def verifier(self, key_id: str, message: bytes, signature: bytes) -> None:
        if key_id not in self.private:
            raise UnknownKeyError("unknown checkpoint key", key=key_id)
        self.private[key_id].public_key().verify(signature, message)


@pytest.fixture
def keys() -> Keys:
    return Keys("log-invoices", "witness-dgfip", "witness-prefecture")


def make(**overrides: object) -> Checkpoint:
    fields: dict[str, object] = {
        "log_id": partition_log_id("fr.dcant.invoices", 3),
        "size": 1234,
        "root": ROOT,
        "timestamp_ms": 1_700_000_000_000,
        "key_id": "log-invoices",
    }
    fields.update(overrides)
    return Checkpoint(**fields)  # type: ignore[arg-type]


def test_note_text_is_pinned() -> None:
    cp = make(root=bytes(32), extensions=("schema catalog 42",))
    signed = sign(cp, "log-invoices", lambda m: b"\xff" * 6, key_hash=b"\x00\x00\x00\x00")
    assert signed.body() == (
        b"fr.dcant.invoices/3\n"
        b"1234\n"
        b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        b"timestamp 1700000000000\n"
        b"key log-invoices\n"
        b"schema catalog 42\n"
    )
    assert signed.to_bytes() == signed.body() + "\n\u2014 log-invoices AAAAAP///////w==\n".encode()
    assert Checkpoint.from_bytes(signed.to_bytes()) == signed


def test_sign_verify_and_round_trip(keys: Keys) -> None:
    signed = sign(make(), "log-invoices", keys.signer("log-invoices"))
    cosigned = sign(signed, "witness-dgfip", keys.signer("witness-dgfip"))
    assert cosigned.signers == ("log-invoices", "witness-dgfip")
    parsed = Checkpoint.from_bytes(cosigned.to_bytes())
    assert parsed == cosigned
    verify(parsed, keys.verifier, require=["witness-dgfip"])
    assert parsed.signature_by("witness-dgfip").key_hash == note_key_hash("witness-dgfip")  # type: ignore[union-attr]
    assert parsed.unsigned() == make()


def test_c2sp_key_hash_can_be_given(keys: Keys) -> None:
    raw = keys.private["log-invoices"].public_key().public_bytes_raw()
    kh = note_key_hash("log-invoices", b"\x01" + raw)
    signed = sign(make(), "log-invoices", keys.signer("log-invoices"), key_hash=kh)
    parsed = Checkpoint.from_bytes(signed.to_bytes())
    assert parsed.signatures[0].key_hash == kh != note_key_hash("log-invoices")
    verify(parsed, keys.verifier, key_hash={"log-invoices": kh}.__getitem__)
    with pytest.raises(SignatureError):
        verify(parsed, keys.verifier)


@pytest.mark.parametrize(
    "change",
    [
        {"log_id": "fr.dcant.invoices/4"},
        {"size": 1235},
        {"root": bytes(reversed(ROOT))},
        {"timestamp_ms": 1_700_000_000_001},
        {"extensions": ("injected",)},
    ],
)
def test_tampering_any_field_breaks_verification(keys: Keys, change: dict[str, object]) -> None:
    signed = sign(make(), "log-invoices", keys.signer("log-invoices"))
    verify(signed, keys.verifier)
    with pytest.raises(SignatureError):
        verify(dataclasses.replace(signed, **change), keys.verifier)  # type: ignore[arg-type]


def test_changing_the_key_id_needs_that_key_to_have_signed(keys: Keys) -> None:
    signed = sign(make(), "log-invoices", keys.signer("log-invoices"))
    with pytest.raises(CheckpointError):
        verify(dataclasses.replace(signed, key_id="witness-dgfip"), keys.verifier)


def test_every_byte_of_the_note_is_covered(keys: Keys) -> None:
    note = sign(make(extensions=("ext",)), "log-invoices", keys.signer("log-invoices")).to_bytes()
    for i in range(len(note)):
        for bit in (0, 5):
            tampered = bytearray(note)
            tampered[i] ^= 1 << bit
            with pytest.raises(SecurityError):
                verify(Checkpoint.from_bytes(bytes(tampered)), keys.verifier)


def test_missing_and_unknown_signatures(keys: Keys) -> None:
    unsigned = make()
    with pytest.raises(CheckpointError):
        verify(unsigned, keys.verifier)
    with pytest.raises(CheckpointError):
        unsigned.to_bytes()
    signed = sign(unsigned, "log-invoices", keys.signer("log-invoices"))
    with pytest.raises(CheckpointError):
        verify(signed, keys.verifier, require=["witness-dgfip"])
    # A signature by a key nobody asked for counts for nothing and is not checked.
    stranger = sign(signed, "stranger", lambda m: b"junk")
    verify(stranger, keys.verifier)
    with pytest.raises(UnknownKeyError):
        verify(stranger, keys.verifier, require=["stranger"])
    with pytest.raises(CheckpointError):
        sign(signed, "log-invoices", keys.signer("log-invoices"))
    forged = sign(signed, "witness-dgfip", keys.signer("witness-prefecture"))
    with pytest.raises(SignatureError):
        verify(forged, keys.verifier, require=["witness-dgfip"])


def test_signer_failures_are_wrapped() -> None:
    def broken(message: bytes) -> bytes:
        raise RuntimeError("HSM unreachable")

    with pytest.raises(CheckpointError) as info:
        sign(make(), "log-invoices", broken)
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(CheckpointError):
        sign(make(), "log-invoices", lambda m: b"")


@pytest.mark.parametrize(
    "note",
    [
        b"",
        b"fr.dcant.invoices/3\n1234\n",
        # leading zero in the size
        b"o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntimestamp 1\nkey k\n\n\xe2\x80\x94 k AAAAAAE=\n",
        # root of 31 bytes
        b"o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\ntimestamp 1\nkey k\n\n\xe2\x80\x94 k AAAAAAE=\n",
        # no signature line
        b"o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntimestamp 1\nkey k\n\n",
        # signature without the em dash
        b"o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntimestamp 1\nkey k\n\n- k AAAAAAE=\n",
        # signature blob with only the key hash
        b"o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntimestamp 1\nkey k\n\n\xe2\x80\x94 k AAAAAA==\n",
        # the same key twice
        b"o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntimestamp 1\nkey k\n\n\xe2\x80\x94 k AAAAAAE=\n\xe2\x80\x94 k AAAAAAI=\n",
        # CRLF line ends
        b"o\r\n1\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\ntimestamp 1\r\nkey k\r\n\r\n\xe2\x80\x94 k AAAAAAE=\r\n",
        # lines four and five swapped
        b"o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nkey k\ntimestamp 1\n\n\xe2\x80\x94 k AAAAAAE=\n",
        # not UTF-8
        b"\xff\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntimestamp 1\nkey k\n\n\xe2\x80\x94 k AAAAAAE=\n",
    ],
)
def test_malformed_notes_are_rejected(note: bytes) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.from_bytes(note)


def test_the_minimal_valid_note_parses() -> None:
    note = b"o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntimestamp 1\nkey k\n\n\xe2\x80\x94 k AAAAAAE=\n"
    cp = Checkpoint.from_bytes(note)
    assert (cp.log_id, cp.size, cp.root, cp.timestamp_ms, cp.key_id) == ("o", 1, bytes(32), 1, "k")
    assert cp.signatures == (NoteSignature("k", b"\x00\x00\x00\x00", b"\x01"),)


@pytest.mark.parametrize(
    "bad",
    [
        {"log_id": ""},
        {"log_id": "a\nb"},
        {"log_id": "tab\there"},
        {"size": -1},
        {"size": 1 << 63},
        {"size": True},
        {"timestamp_ms": -5},
        {"root": b"short"},
        {"key_id": "has space"},
        {"key_id": "a+b"},
        {"extensions": ("",)},
        {"extensions": ("two\nlines",)},
    ],
)
def test_invalid_fields_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(CheckpointError):
        make(**bad)


def test_partition_log_id() -> None:
    assert partition_log_id("fr.dcant.acts", 0) == "fr.dcant.acts/0"
    for topic, partition in (("", 0), ("a/b", 0), ("t", -1)):
        with pytest.raises(ValueError):
            partition_log_id(topic, partition)


def test_detect_split_view() -> None:
    a = make()
    assert detect_split_view(a, make(root=bytes(32)))
    assert not detect_split_view(a, make(timestamp_ms=1))
    assert not detect_split_view(a, make(size=1235, root=bytes(32)))
    assert not detect_split_view(a, make(log_id="fr.dcant.invoices/4", root=bytes(32)))


_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12
)
_name = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters="+\x85\x1c\x1d\x1e\x1f"), min_size=1, max_size=10).filter(lambda s: not any(c.isspace() for c in s))


@settings(max_examples=150, deadline=None)
@given(
    log_id=_line,
    size=st.integers(0, (1 << 63) - 1),
    root_hash=st.binary(min_size=32, max_size=32),
    timestamp=st.integers(0, (1 << 63) - 1),
    key_id=_name,
    extensions=st.lists(_line, max_size=3),
    sigs=st.lists(st.tuples(_name, st.binary(min_size=4, max_size=4), st.binary(min_size=1, max_size=80)), min_size=1, max_size=4, unique_by=lambda t: t[0]),
)
def test_round_trip_any_checkpoint(log_id, size, root_hash, timestamp, key_id, extensions, sigs) -> None:  # type: ignore[no-untyped-def]
    cp = Checkpoint(
        log_id=log_id,
        size=size,
        root=root_hash,
        timestamp_ms=timestamp,
        key_id=key_id,
        extensions=tuple(extensions),
        signatures=tuple(NoteSignature(*s) for s in sigs),
    )
    assert Checkpoint.from_bytes(cp.to_bytes()) == cp


# --- table snapshots -------------------------------------------------------------------


TABLE = {b"company:21310555400017": b"{...v1}", b"company:13002526500013": b"{...v2}", b"company:0": b""}


def test_table_snapshot_is_order_independent_and_sensitive() -> None:
    snap = TableSnapshot.of(TABLE)
    assert snap.size == 3
    assert TableSnapshot.of(dict(reversed(list(TABLE.items())))) == snap
    assert TableSnapshot.of({**TABLE, b"company:0": b"x"}).root != snap.root
    assert TableSnapshot.of({k: v for k, v in TABLE.items() if k != b"company:0"}).root != snap.root
    assert TableSnapshot.of({b"ab": b"c"}).root != TableSnapshot.of({b"a": b"bc"}).root
    assert TableSnapshot.of({}) == TableSnapshot(0, EMPTY_ROOT)
    log = MerkleLog()
    log.extend(leaf_hash(b"\x02" + len(k).to_bytes(4, "big") + k + len(v).to_bytes(4, "big") + v) for k, v in sorted(TABLE.items()))
    assert snap.root == log.root()
    with pytest.raises(TypeError):
        TableSnapshot.of({b"k": None})  # type: ignore[dict-item]


def test_table_entry_proofs() -> None:
    snap = TableSnapshot.of(TABLE)
    for key, value in TABLE.items():
        index, proof = TableSnapshot.prove(TABLE, key)
        snap.verify_entry(key, value, index, proof)
        with pytest.raises(ProofError):
            snap.verify_entry(key, value + b"!", index, proof)
    with pytest.raises(KeyError):
        TableSnapshot.prove(TABLE, b"company:missing")


def test_table_snapshot_checkpoint_signs(keys: Keys) -> None:
    snap = TableSnapshot.of(TABLE)
    cp = snap.checkpoint("fr.dcant.ref.companies@snapshot-42", 1_700_000_000_000, "log-invoices")
    signed = sign(cp, "log-invoices", keys.signer("log-invoices"))
    parsed = Checkpoint.from_bytes(signed.to_bytes())
    verify(parsed, keys.verifier)
    assert (parsed.size, parsed.root) == (snap.size, snap.root)
    assert base64.b64decode(parsed.body().split(b"\n")[2]) == snap.root
