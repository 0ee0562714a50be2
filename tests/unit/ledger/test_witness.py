"""Witness cosigning: growth is cosigned; forks, split views and rollbacks are refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bus._errors import SignatureError, UnknownKeyError
from bus.ledger import (
    Checkpoint,
    CheckpointError,
    LedgerError,
    MerkleTree,
    Witness,
    WitnessError,
    WitnessState,
    leaf_hash,
    partition_log_id,
    sign,
    verify,
)

LOG = partition_log_id("fr.dcant.invoices", 0)


class Keys:
    def __init__(self, *names: str) -> None:
        self.private = {name: Ed25519PrivateKey.generate() for name in names}

    def signer(self, name: str) -> Callable[[bytes], bytes]:
        return self.private[name].sign

    def verifier(self, key_id: str, message: bytes, signature: bytes) -> None:
        if key_id not in self.private:
            raise UnknownKeyError("unknown checkpoint key", key=key_id)
        self.private[key_id].public_key().verify(signature, message)


class Log:
    """A log operator: leaves, a proof builder, and checkpoints signed with the log key."""

    def __init__(self, keys: Keys, leaves: list[bytes], log_id: str = LOG) -> None:
        self.keys, self.leaves, self.log_id = keys, leaves, log_id
        self.tree = MerkleTree(leaves)

    def checkpoint(self, size: int, timestamp_ms: int = 1_700_000_000_000) -> Checkpoint:
        cp = Checkpoint(self.log_id, size, self.tree.root(size), timestamp_ms, "log-key")
        return sign(cp, "log-key", self.keys.signer("log-key"))

    def proof(self, size1: int, size2: int) -> list[bytes]:
        return self.tree.consistency_proof(size1, size2)


def records(n: int, tag: bytes = b"") -> list[bytes]:
    return [leaf_hash(tag + i.to_bytes(4, "big")) for i in range(n)]


@pytest.fixture
def keys() -> Keys:
    return Keys("log-key", "witness-dgfip")


@pytest.fixture
def witness(keys: Keys) -> Witness:
    return Witness("witness-dgfip", keys.verifier)


def test_cosigns_a_growing_log(keys: Keys, witness: Witness) -> None:
    log = Log(keys, records(300))
    previous = 0
    for size in (1, 2, 7, 8, 64, 65, 300):
        cosigned = witness.cosign(log.checkpoint(size), log.proof(previous, size), keys.signer("witness-dgfip"))
        verify(cosigned, keys.verifier, require=["witness-dgfip"])
        assert cosigned.signers == ("log-key", "witness-dgfip")
        assert Checkpoint.from_bytes(cosigned.to_bytes()) == cosigned
        assert witness.state.head(LOG) == (size, log.tree.root(size))
        previous = size


def test_same_size_same_root_is_cosigned_again(keys: Keys, witness: Witness) -> None:
    log = Log(keys, records(10))
    witness.cosign(log.checkpoint(10), [], keys.signer("witness-dgfip"))
    later = witness.cosign(log.checkpoint(10, timestamp_ms=1_700_000_060_000), [], keys.signer("witness-dgfip"))
    assert later.timestamp_ms == 1_700_000_060_000
    assert witness.state.head(LOG) == (10, log.tree.root(10))


def test_refuses_a_fork(keys: Keys, witness: Witness) -> None:
    honest = records(20)
    forked = honest[:7] + records(13, b"forged")  # record 7 onward rewritten
    log, fork = Log(keys, honest), Log(keys, forked)
    witness.cosign(log.checkpoint(10), [], keys.signer("witness-dgfip"))
    before = witness.state
    with pytest.raises(WitnessError) as info:
        witness.cosign(fork.checkpoint(20), fork.proof(10, 20), keys.signer("witness-dgfip"))
    ctx = info.value.context
    assert ctx["reason"] == "inconsistent" and ctx["log"] == LOG
    assert (ctx["cosigned_size"], ctx["size"]) == (10, 20)
    assert (ctx["cosigned_root"], ctx["root"]) == (log.tree.root(10).hex(), fork.tree.root(20).hex())
    assert LOG in str(info.value) and log.tree.root(10).hex() in str(info.value)
    assert witness.state == before
    # The honest continuation is still cosigned after the refusal.
    witness.cosign(log.checkpoint(20), log.proof(10, 20), keys.signer("witness-dgfip"))


def test_refuses_a_split_view_at_the_same_size(keys: Keys, witness: Witness) -> None:
    log, other = Log(keys, records(10)), Log(keys, records(10, b"other"))
    witness.cosign(log.checkpoint(10), [], keys.signer("witness-dgfip"))
    with pytest.raises(WitnessError) as info:
        witness.cosign(other.checkpoint(10), [], keys.signer("witness-dgfip"))
    assert info.value.context["reason"] == "split-view"


def test_refuses_a_rollback(keys: Keys, witness: Witness) -> None:
    log = Log(keys, records(10))
    witness.cosign(log.checkpoint(10), [], keys.signer("witness-dgfip"))
    with pytest.raises(WitnessError) as info:
        witness.cosign(log.checkpoint(9), [], keys.signer("witness-dgfip"))
    assert info.value.context["reason"] == "rollback"
    assert (info.value.context["cosigned_size"], info.value.context["size"]) == (10, 9)
    assert witness.state.head(LOG) == (10, log.tree.root(10))


def test_refuses_growth_without_a_valid_proof(keys: Keys, witness: Witness) -> None:
    log = Log(keys, records(16))
    witness.cosign(log.checkpoint(5), [], keys.signer("witness-dgfip"))
    for bad_proof in ([], log.proof(4, 16), log.proof(5, 15)):
        with pytest.raises(WitnessError):
            witness.cosign(log.checkpoint(16), bad_proof, keys.signer("witness-dgfip"))
    assert witness.state.head(LOG) == (5, log.tree.root(5))


def test_first_checkpoint_needs_no_history_but_no_proof_either(keys: Keys) -> None:
    log = Log(keys, records(4))
    with pytest.raises(WitnessError):
        Witness("witness-dgfip", keys.verifier).cosign(log.checkpoint(4), [log.tree.root(4)], keys.signer("witness-dgfip"))


def test_checks_the_log_signature_first(keys: Keys, witness: Witness) -> None:
    log = Log(keys, records(4))
    unsigned = log.checkpoint(4).unsigned()
    with pytest.raises(CheckpointError):
        witness.cosign(unsigned, [], keys.signer("witness-dgfip"))
    forged = sign(unsigned, "log-key", keys.signer("witness-dgfip"))
    with pytest.raises(SignatureError):
        witness.cosign(forged, [], keys.signer("witness-dgfip"))
    assert witness.state.head(LOG) is None


def test_logs_are_independent(keys: Keys, witness: Witness) -> None:
    a = Log(keys, records(8))
    b = Log(keys, records(3, b"b"), log_id=partition_log_id("fr.dcant.invoices", 1))
    witness.cosign(a.checkpoint(8), [], keys.signer("witness-dgfip"))
    witness.cosign(b.checkpoint(3), [], keys.signer("witness-dgfip"))
    assert witness.state.head(a.log_id) == (8, a.tree.root(8))
    assert witness.state.head(b.log_id) == (3, b.tree.root(3))


def test_state_serialises_and_resumes(keys: Keys, witness: Witness) -> None:
    a = Log(keys, records(30))
    b = Log(keys, records(3, b"b"), log_id="fr.dcant.ref.companies@snapshot-1")
    witness.cosign(a.checkpoint(12), [], keys.signer("witness-dgfip"))
    witness.cosign(b.checkpoint(3), [], keys.signer("witness-dgfip"))
    stored = witness.state.to_bytes()
    assert WitnessState.from_bytes(stored) == witness.state
    resumed = Witness("witness-dgfip", keys.verifier, WitnessState.from_bytes(stored))
    with pytest.raises(WitnessError):
        resumed.cosign(a.checkpoint(11), [], keys.signer("witness-dgfip"))
    resumed.cosign(a.checkpoint(30), a.proof(12, 30), keys.signer("witness-dgfip"))
    assert resumed.state.head(a.log_id) == (30, a.tree.root(30))
    assert WitnessState().to_bytes() == b"\x01\x00\x00\x00\x00"
    for bad in (stored[:-1], stored + b"\x00", b"\x02" + stored[1:], b"", stored[:7]):
        with pytest.raises(LedgerError):
            WitnessState.from_bytes(bad)


def test_advance_is_pure(keys: Keys) -> None:
    log = Log(keys, records(9))
    start = WitnessState()
    after = start.advance(log.checkpoint(9), [])
    assert start.head(LOG) is None and after.head(LOG) == (9, log.tree.root(9))
    with pytest.raises(TypeError):
        after.heads[LOG] = (0, b"")  # type: ignore[index]
    with pytest.raises(LedgerError):
        WitnessState({LOG: (1, b"short")})
