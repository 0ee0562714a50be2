"""The audit ledger's pure core: Merkle logs over Kafka records, signed checkpoints, witnesses.

Per topic-partition, every record's exact bytes become an RFC 6962 leaf
(:func:`record_leaf_bytes`, :func:`leaf_hash`) appended to a :class:`MerkleLog`; the log's
size and root are published as a signed :class:`Checkpoint` (C2SP signed-note text) that
other administrations' :class:`Witness` keys cosign only if it extends what they saw. An
auditor then checks inclusion and consistency proofs offline (:func:`verify_inclusion`,
:func:`verify_consistency`). No I/O, no clock, no Kafka here (DESIGN §5).

    SecurityError
    └── LedgerError ........... the ledger cannot vouch for a log
        ├── ProofError ........ an inclusion or consistency proof does not verify
        ├── CheckpointError ... a checkpoint note is malformed, unsigned or signed twice
        └── WitnessError ...... a checkpoint contradicts what a witness already cosigned
"""

from bus.ledger._checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteSignature,
    Signer,
    TableSnapshot,
    Verifier,
    detect_split_view,
    note_key_hash,
    partition_log_id,
    sign,
    verify,
)
from bus.ledger._merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    LeafHashes,
    LedgerError,
    MerkleLog,
    MerkleTree,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    record_leaf_bytes,
    root,
    verify_consistency,
    verify_inclusion,
)
from bus.ledger._witness import Witness, WitnessError, WitnessState
from bus.ledger._evidence import BundleReport, build_bundle, collect_evidence, verify_bundle
from bus.ledger._processor import LedgerProcessor
from bus.ledger._replay import Opened, ReplayQuery, replay
from bus.ledger._trace import trace_dossier
from bus.ledger._verify import Finding, VerifyReport, verify_topics

__all__ = [
    "BundleReport",
    "Checkpoint",
    "CheckpointError",
    "EMPTY_ROOT",
    "Finding",
    "HASH_SIZE",
    "LeafHashes",
    "LedgerError",
    "LedgerProcessor",
    "MerkleLog",
    "MerkleTree",
    "NoteSignature",
    "Opened",
    "ProofError",
    "ReplayQuery",
    "Signer",
    "TableSnapshot",
    "Verifier",
    "VerifyReport",
    "Witness",
    "WitnessError",
    "WitnessState",
    "build_bundle",
    "collect_evidence",
    "consistency_proof",
    "detect_split_view",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "note_key_hash",
    "partition_log_id",
    "record_leaf_bytes",
    "replay",
    "root",
    "sign",
    "trace_dossier",
    "verify",
    "verify_bundle",
    "verify_consistency",
    "verify_inclusion",
    "verify_topics",
]
