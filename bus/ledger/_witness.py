"""Witness cosigning: another administration vouches that a log never forked or rolled back.

A :class:`Witness` holds, per log, the size and root of the latest checkpoint it cosigned
(:class:`WitnessState`, serialisable). It cosigns a new checkpoint only if the log signed
it and a consistency proof shows it extends that latest one (or it is the same tree).
An operator who shows two histories to two auditors then needs every witness to cosign
both, which none will: the refusal is a :class:`WitnessError` naming the log, both sizes
and both roots. The logic is pure (:meth:`WitnessState.advance`); the witness object
only chains state between calls, and its owner stores ``witness.state.to_bytes()``.

    LedgerError
    └── WitnessError .......... the checkpoint contradicts what the witness already cosigned
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from bus.ledger._checkpoint import Checkpoint, Signer, Verifier, note_key_hash, sign, verify
from bus.ledger._merkle import EMPTY_ROOT, HASH_SIZE, LedgerError, ProofError, verify_consistency

__all__ = ["Witness", "WitnessError", "WitnessState"]

_STATE_V1 = 0x01
_HEAD = struct.Struct(">BI")  # version, number of logs
_ENTRY = struct.Struct(">Q32s")  # size, root


class WitnessError(LedgerError):
    """The witness refuses a checkpoint: rollback, split view, or no proof it extends the cosigned one.

    ``context["reason"]`` is ``rollback``, ``split-view`` or ``inconsistent``.
    """

    default_hint = "the log shows a history other than the one already witnessed: keep both checkpoints as evidence"


@dataclass(frozen=True, slots=True)
class WitnessState:
    """The latest (size, root) cosigned per log id; immutable, advanced by :meth:`advance`."""

    heads: Mapping[str, tuple[int, bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for log_id, (size, root_hash) in self.heads.items():
            if not 0 <= size < 1 << 63 or len(root_hash) != HASH_SIZE:
                raise LedgerError("a witness head is (size in [0, 2**63), 32-byte root)", log=log_id, size=size)
        object.__setattr__(self, "heads", MappingProxyType(dict(self.heads)))

    def head(self, log_id: str) -> tuple[int, bytes] | None:
        """The latest (size, root) cosigned for ``log_id``, or None if never seen."""
        return self.heads.get(log_id)

    def advance(self, checkpoint: Checkpoint, proof: Sequence[bytes]) -> WitnessState:
        """The state after accepting ``checkpoint``; raise :class:`WitnessError` to refuse it.

        ``proof`` is the consistency proof from the cosigned size to ``checkpoint.size``
        (empty for the first checkpoint of a log, which is accepted on first sight, or for
        the same size). Signatures are not checked here (see :meth:`Witness.cosign`).
        """
        old_size, old_root = self.heads.get(checkpoint.log_id, (0, EMPTY_ROOT))
        ctx = {
            "log": checkpoint.log_id,
            "cosigned_size": old_size,
            "cosigned_root": old_root.hex(),
            "size": checkpoint.size,
            "root": checkpoint.root.hex(),
        }
        if checkpoint.size < old_size:
            raise WitnessError("checkpoint rolls the log back to a smaller size", reason="rollback", **ctx)
        if checkpoint.size == old_size and checkpoint.root != old_root:
            raise WitnessError("checkpoint has another root for an already cosigned size", reason="split-view", **ctx)
        try:
            verify_consistency(old_size, checkpoint.size, old_root, checkpoint.root, proof)
        except ProofError as exc:
            raise WitnessError(
                f"checkpoint is not proven to extend the cosigned tree ({exc.message})", reason="inconsistent", **ctx
            ) from exc
        heads = dict(self.heads)
        heads[checkpoint.log_id] = (checkpoint.size, checkpoint.root)
        return WitnessState(heads)

    def to_bytes(self) -> bytes:
        """``u8 version (1) || u32 n`` then per log, by id: ``u32 len || id (UTF-8) || u64 size || root``."""
        parts = [_HEAD.pack(_STATE_V1, len(self.heads))]
        for log_id in sorted(self.heads):
            size, root_hash = self.heads[log_id]
            raw = log_id.encode("utf-8")
            parts.append(struct.pack(">I", len(raw)) + raw + _ENTRY.pack(size, root_hash))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> WitnessState:
        """Parse :meth:`to_bytes`; raise :class:`~bus.ledger.LedgerError` on malformed state."""
        try:
            version, count = _HEAD.unpack_from(data)
            if version != _STATE_V1:
                raise LedgerError("unknown witness state version", version=version)
            pos = _HEAD.size
            heads: dict[str, tuple[int, bytes]] = {}
            for _ in range(count):
                (length,) = struct.unpack_from(">I", data, pos)
                log_id = bytes(data[pos + 4 : pos + 4 + length]).decode("utf-8")
                size, root_hash = _ENTRY.unpack_from(data, pos + 4 + length)
                pos += 4 + length + _ENTRY.size
                if len(log_id.encode("utf-8")) != length or log_id in heads:
                    raise LedgerError("witness state has a truncated or repeated log id", log=log_id)
                heads[log_id] = (size, root_hash)
        except (struct.error, UnicodeDecodeError) as exc:
            raise LedgerError("witness state is truncated or corrupt") from exc
        if pos != len(data):
            raise LedgerError("witness state has trailing bytes", length=len(data))
        return cls(heads)


class Witness:
    """One administration's witness key: cosigns checkpoints that extend what it cosigned before.

    ``log_verifier(key_id, message, signature)`` checks the log's own signature (and that
    the key may sign for that log); ``state`` resumes from a stored :class:`WitnessState`;
    ``key_hash`` gives the note key hash of a key name (see :func:`~bus.ledger.verify`).
    """

    def __init__(
        self,
        key_id: str,
        log_verifier: Verifier,
        state: WitnessState | None = None,
        *,
        key_hash: Callable[[str], bytes] = note_key_hash,
    ) -> None:
        self.key_id = key_id
        self._log_verifier = log_verifier
        self._key_hash = key_hash
        self._state = state if state is not None else WitnessState()

    @property
    def state(self) -> WitnessState:
        """What the witness has cosigned so far; store ``state.to_bytes()`` after each cosign."""
        return self._state

    def cosign(self, checkpoint: Checkpoint, consistency_proof: Sequence[bytes], signer: Signer) -> Checkpoint:
        """Verify, check consistency, then return ``checkpoint`` with this witness's cosignature.

        The state advances only when the cosignature was made. Raises the log verifier's
        error, :class:`WitnessError`, or :class:`~bus.ledger.CheckpointError`.
        """
        verify(checkpoint, self._log_verifier, key_hash=self._key_hash)
        new_state = self._state.advance(checkpoint, consistency_proof)
        cosigned = sign(checkpoint, self.key_id, signer, key_hash=self._key_hash(self.key_id))
        self._state = new_state
        return cosigned

