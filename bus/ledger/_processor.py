"""The ledger processor: a Merkle log per family topic-partition, signed checkpoints on a cadence.

For every family topic-partition the processor appends each record's leaf (RFC 6962 hash of
:func:`~bus.ledger.record_leaf_bytes`: key, value, headers, topic, partition, offset,
timestamp) to a :class:`~bus.ledger.MerkleLog`, and every ``every_records`` records or
``every_seconds`` seconds publishes a :class:`~bus.ledger.Checkpoint` signed by the bus's
ledger key (purpose ``LEDGER``) on the ``ledger.checkpoints`` topic (key = log id). It runs
on aiokafka batches directly (DESIGN §4: high-volume stateless path), ``read_committed``.

**State lives in the checkpoints themselves.** Each checkpoint carries extension lines::

    next-offset <n>                 Kafka position after the last record it covers
    frontier <base64>               MerkleLog.to_bytes() at that size (its root is checked)
    digests <from> <base64>         8-byte content digests of the records since size <from>

so a restarted processor resumes from its latest verified checkpoint per partition and
re-reads the partition from ``next-offset`` (nothing else to persist, nothing to lose: records
read but not yet checkpointed are simply read again). The content digests, offset-free, let
``bus verify`` say exactly which record was altered, inserted, deleted or moved.

Compacted reference topics have no stable history: at each checkpoint round they are covered
by a signed :class:`~bus.ledger.TableSnapshot` (log id ``<topic>/table``, extension
``positions p:offset,...``) over key → SHA-256 of the latest record's leaf bytes.

An optional in-process :class:`~bus.ledger.Witness` (another administration's ``WITNESS``
key) cosigns each checkpoint after checking a consistency proof computed from the previous
checkpoint's frontier and the new leaves (:func:`consistency_from_frontier`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from hashlib import sha256

from bus._errors import ConfigurationError, SignatureError
from bus._keys import KeyDirectory, KeyStore, SigningKey
from bus._metrics import LedgerMetrics
from bus._settings import BusSettings
from bus._topics import FAMILIES, topic_map
from bus._wire import Record, utc_now
from bus.ledger._checkpoint import Checkpoint, CheckpointError, TableSnapshot, Verifier, partition_log_id, sign, verify
from bus.ledger._merkle import MerkleLog, MerkleTree, leaf_hash, node_hash, record_leaf_bytes
from bus.ledger._witness import Witness

__all__ = [
    "CheckpointMeta",
    "LedgerProcessor",
    "PartitionLog",
    "TableLog",
    "checkpoint_meta",
    "checkpoint_verifier",
    "consistency_from_frontier",
    "content_digest",
    "ledger_key",
    "record_leaf",
    "table_log_id",
]

log = logging.getLogger("bus.ledger")

DIGEST_SIZE = 8
#: A checkpoint note is at most 1 MiB: 50k digests (~530 KB of base64) per checkpoint at most.
MAX_WINDOW = 50_000
_EXT_NEXT = "next-offset "
_EXT_FRONTIER = "frontier "
_EXT_DIGESTS = "digests "
_EXT_POSITIONS = "positions "


def record_leaf(record: Record, topic: str | None = None) -> bytes:
    """The leaf hash of a consumed record; ``topic`` names the log when verifying a copy."""
    return leaf_hash(record_leaf_bytes(record.key, record.value, record.headers, topic or record.topic or "",
                                       record.partition or 0, record.offset or 0,
                                       -1 if record.timestamp_ms is None else record.timestamp_ms))


def content_digest(record: Record) -> bytes:
    """8 bytes naming a record's content (key, value, headers, timestamp) wherever it sits.

    Position-free on purpose: a record moved, or followed by a deletion, keeps its digest,
    so the verifier can align what a checkpoint saw with what the topic holds now.
    """
    raw = record_leaf_bytes(record.key, record.value, record.headers, "", 0, 0,
                            -1 if record.timestamp_ms is None else record.timestamp_ms)
    return sha256(raw).digest()[:DIGEST_SIZE]


def table_log_id(topic: str) -> str:
    """Log id of the table snapshots of a compacted topic: ``<topic>/table``."""
    return f"{topic}/table"


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointMeta:
    """What the processor's extension lines say, parsed (absent lines are None / empty)."""

    next_offset: int | None = None
    frontier: MerkleLog | None = None
    digests_from: int | None = None
    digests: tuple[bytes, ...] = ()
    positions: Mapping[int, int] = dataclasses.field(default_factory=dict)


def _b64(text: str, what: str, log_id: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CheckpointError(f"checkpoint {what} is not base64", log=log_id) from exc


def checkpoint_meta(checkpoint: Checkpoint) -> CheckpointMeta:
    """Parse and check the extension lines; raise CheckpointError when they contradict the note."""
    cp = checkpoint
    fields: dict[str, object] = {}
    try:
        for line in cp.extensions:
            if line.startswith(_EXT_NEXT):
                fields["next_offset"] = int(line.removeprefix(_EXT_NEXT))
            elif line.startswith(_EXT_FRONTIER):
                fields["frontier"] = MerkleLog.from_bytes(_b64(line.removeprefix(_EXT_FRONTIER), "frontier", cp.log_id))
            elif line.startswith(_EXT_DIGESTS):
                start, blob = line.removeprefix(_EXT_DIGESTS).split(" ")
                raw = _b64(blob, "digests", cp.log_id)
                fields["digests_from"] = int(start)
                fields["digests"] = tuple(raw[i:i + DIGEST_SIZE] for i in range(0, len(raw), DIGEST_SIZE))
                if len(raw) % DIGEST_SIZE or int(start) + len(fields["digests"]) != cp.size:  # type: ignore[arg-type]
                    raise CheckpointError("checkpoint digests do not end at its size", log=cp.log_id, size=cp.size)
            elif line.startswith(_EXT_POSITIONS):
                pairs = [p.split(":") for p in line.removeprefix(_EXT_POSITIONS).split(",") if p]
                fields["positions"] = {int(p): int(o) for p, o in pairs}
    except ValueError as exc:
        raise CheckpointError(f"malformed checkpoint extension: {exc}", log=cp.log_id) from exc
    meta = CheckpointMeta(**fields)  # type: ignore[arg-type]
    if meta.frontier is not None and (meta.frontier.size != cp.size or meta.frontier.root() != cp.root):
        raise CheckpointError("checkpoint frontier does not rebuild its root", log=cp.log_id, size=cp.size)
    return meta


def checkpoint_verifier(directory: KeyDirectory, checkpoint: Checkpoint) -> Verifier:
    """A note verifier: the log key must be a published LEDGER key, witnesses WITNESS keys, valid then."""
    moment = dt.datetime.fromtimestamp(checkpoint.timestamp_ms / 1000, dt.UTC)

    def check(key_id: str, message: bytes, signature: bytes) -> None:
        key = directory.get(key_id)
        wanted = "LEDGER" if key_id == checkpoint.key_id else "WITNESS"
        if key.purpose != wanted:
            raise SignatureError(f"key {key_id} is a {key.purpose} key, not a {wanted} key", key_id=key_id,
                                 log=checkpoint.log_id)
        directory.verify(key_id, message, signature, at=moment)

    return check


def ledger_key(store: KeyStore, siren: str, at: dt.datetime, purpose: str = "LEDGER") -> SigningKey:
    """The newest locally stored key of ``siren`` with ``purpose`` (LEDGER or WITNESS) valid at ``at``."""
    keys = [k for k in store.load_all(siren) if k.public.purpose == purpose and k.public.valid_at(at)]
    if not keys:
        raise ConfigurationError(f"no {purpose} key for SIREN {siren} in {store.root}",
                                 hint=f"create one with `bus ledger keygen {siren}`")
    return keys[-1]


def consistency_from_frontier(old: MerkleLog, new_leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 PROOF(m, D[0:n]) from the size-m log's frontier and the leaves m..n-1 only.

    Every node of a consistency proof inside the old tree is a frontier node or a suffix of
    them, so the processor need not keep old leaves to let a witness cosign.
    """
    m = old.size
    n = m + len(new_leaves)
    if m in (0, n):
        return []
    bounds = [0]
    for bit in reversed(range(m.bit_length())):
        if m >> bit & 1:
            bounds.append(bounds[-1] + (1 << bit))
    frontier = old.frontier
    new_tree = MerkleTree(list(new_leaves))

    def mth(start: int, end: int) -> bytes:
        if end <= m:
            i, j = bounds.index(start), bounds.index(end)
            acc = frontier[j - 1]
            for h in reversed(frontier[i:j - 1]):
                acc = node_hash(h, acc)
            return acc
        if start >= m:
            if start == m:
                return new_tree.root(end - m)
            return MerkleTree(list(new_leaves[start - m:end - m])).root()
        k = 1 << ((end - start - 1).bit_length() - 1)
        return node_hash(mth(start, start + k), mth(start + k, end))

    proof: list[bytes] = []
    start, end, size1, whole = 0, n, m, True
    while True:
        if size1 == end - start:
            if not whole:
                proof.append(mth(start, end))
            break
        k = 1 << ((end - start - 1).bit_length() - 1)
        if size1 <= k:
            proof.append(mth(start + k, end))
            end = start + k
        else:
            proof.append(mth(start, start + k))
            start, size1, whole = start + k, size1 - k, False
    proof.reverse()
    return proof


class PartitionLog:
    """One topic-partition's Merkle log and what arrived since its last checkpoint (pure)."""

    def __init__(self, topic: str, partition: int, log: MerkleLog | None = None, next_offset: int = 0) -> None:
        self.topic = topic
        self.partition = partition
        self.log_id = partition_log_id(topic, partition)
        self.log = log.copy() if log is not None else MerkleLog()
        self.base = self.log.copy()
        self.next_offset = next_offset
        self.pending: list[bytes] = []
        self._digests = bytearray()

    @classmethod
    def resume(cls, checkpoint: Checkpoint) -> PartitionLog:
        """The log as of ``checkpoint`` (which must carry its frontier and next offset)."""
        meta = checkpoint_meta(checkpoint)
        if meta.frontier is None or meta.next_offset is None:
            raise CheckpointError("checkpoint lacks the frontier or next offset to resume from", log=checkpoint.log_id)
        topic, _, partition = checkpoint.log_id.rpartition("/")
        return cls(topic, int(partition), meta.frontier, meta.next_offset)

    def append(self, record: Record) -> None:
        """Append one consumed record of this partition (in offset order)."""
        if record.offset is None or record.offset < self.next_offset:
            return  # already in the log (a re-read after restart or rebalance)
        leaf = record_leaf(record, self.topic)
        self.log.append(leaf)
        self.pending.append(leaf)
        self._digests += content_digest(record)
        self.next_offset = record.offset + 1

    def checkpoint(self, timestamp_ms: int, key_id: str) -> Checkpoint:
        """The unsigned checkpoint of the log as it is now, with its extension lines."""
        extensions = [f"{_EXT_NEXT}{self.next_offset}",
                      f"{_EXT_FRONTIER}{base64.b64encode(self.log.to_bytes()).decode('ascii')}"]
        if self._digests:
            extensions.append(f"{_EXT_DIGESTS}{self.base.size} {base64.b64encode(bytes(self._digests)).decode('ascii')}")
        return Checkpoint(self.log_id, self.log.size, self.log.root(), timestamp_ms, key_id, tuple(extensions))

    def proof_from_base(self) -> list[bytes]:
        """Consistency proof from the last checkpointed size to now."""
        return consistency_from_frontier(self.base, self.pending)

    def checkpointed(self) -> None:
        """The current state was published: it is the new base."""
        self.base = self.log.copy()
        self.pending.clear()
        self._digests.clear()


class TableLog:
    """A compacted topic's table (key → SHA-256 of the latest record's leaf bytes) and positions."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.log_id = table_log_id(topic)
        self.table: dict[bytes, bytes] = {}
        self.positions: dict[int, int] = {}
        self.changed = False

    def append(self, record: Record) -> None:
        if record.key is None or record.offset is None:
            return
        if record.value is None:
            self.table.pop(record.key, None)
        else:
            self.table[record.key] = sha256(record_leaf_bytes(
                record.key, record.value, record.headers, self.topic, record.partition or 0, record.offset,
                -1 if record.timestamp_ms is None else record.timestamp_ms)).digest()
        self.positions[record.partition or 0] = record.offset + 1
        self.changed = True

    def checkpoint(self, timestamp_ms: int, key_id: str) -> Checkpoint:
        snapshot = TableSnapshot.of(self.table)
        positions = ",".join(f"{p}:{o}" for p, o in sorted(self.positions.items()))
        cp = snapshot.checkpoint(self.log_id, timestamp_ms, key_id)
        return dataclasses.replace(cp, extensions=(f"{_EXT_POSITIONS}{positions}",) if positions else ())


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


class LedgerProcessor:
    """Runs the ledger over Kafka: resume from checkpoints, consume, append, sign, publish.

    ``topics`` are real topic names (default: the family topics of ``settings``);
    ``reference_topics`` are compacted topics covered by table snapshots (default: the
    reference topics). ``witness`` is an optional (Witness, its signing key) pair.
    """

    def __init__(
        self, settings: BusSettings, signer: SigningKey, directory: KeyDirectory, *,
        topics: Sequence[str] | None = None, reference_topics: Sequence[str] | None = None,
        every_records: int = 1000, every_seconds: float = 60.0,
        witness: tuple[Witness, SigningKey] | None = None, clock: Callable[[], dt.datetime] = utc_now,
        metrics: LedgerMetrics | None = None,
    ) -> None:
        if signer.public.purpose != "LEDGER":
            raise ConfigurationError(f"key {signer.key_id} is not a LEDGER key", hint="use `bus ledger keygen`")
        if every_records < 1 or every_seconds <= 0:
            raise ConfigurationError("checkpoint cadence must be at least 1 record and more than 0 seconds")
        specs = topic_map(settings)
        self.settings = settings
        self.signer = signer
        self.directory = directory
        # The key directory is an append-only log like a family topic: a split view of it is
        # caught by the same consistency proofs.
        self.topics = (list(topics) if topics is not None else
                       [specs[f].name for f in (*FAMILIES, "reference.administrations")])
        self.reference_topics = (list(reference_topics) if reference_topics is not None else
                                 [s.name for s in specs.values()
                                  if s.key.startswith("reference.") and s.cleanup_policy == "compact"])
        self.checkpoint_topic = specs["ledger.checkpoints"].name
        self.every_records = min(every_records, MAX_WINDOW)
        self.every_seconds = every_seconds
        self.witness = witness
        self.clock = clock
        self.logs: dict[tuple[str, int], PartitionLog] = {}
        self.tables: dict[str, TableLog] = {t: TableLog(t) for t in self.reference_topics}
        self.published: list[Checkpoint] = []
        self.newest_ms: dict[str, int] = {}  # log id -> time of its newest checkpoint (resumed or published)
        self.metrics = metrics
        self.following = False  # True once run() reads the topics
        self._last_round = clock()

    async def resume(self) -> None:
        """Load the latest verified checkpoint of every log from the checkpoint topic."""
        from bus.ledger._replay import read_all

        latest: dict[str, Checkpoint] = {}
        for record in await read_all(self.settings, self.checkpoint_topic):
            try:
                cp = Checkpoint.from_bytes(record.value or b"")
                verify(cp, checkpoint_verifier(self.directory, cp))
            except Exception as err:  # an unknown key is a BusError too; never resume from it
                log.warning("ignoring checkpoint at offset %s: %s", record.offset, err)
                if self.metrics is not None:
                    self.metrics.refused(err)
                continue
            self.newest_ms[cp.log_id] = max(self.newest_ms.get(cp.log_id, 0), cp.timestamp_ms)
            known = latest.get(cp.log_id)
            if cp.log_id.endswith("/table") or (known is not None and known.size >= cp.size):
                continue
            latest[cp.log_id] = cp
        for cp in latest.values():
            part = PartitionLog.resume(cp)
            if part.topic in self.topics:
                self.logs[(part.topic, part.partition)] = part

    def ingest(self, records: Iterable[Record]) -> list[Checkpoint]:
        """Append consumed records (no I/O); return the checkpoints of logs that reached N records."""
        out: list[Checkpoint] = []
        for record in records:
            topic, partition = record.topic or "", record.partition or 0
            if topic in self.tables:
                self.tables[topic].append(record)
                continue
            part = self.logs.get((topic, partition))
            if part is None:
                part = self.logs[(topic, partition)] = PartitionLog(topic, partition)
            part.append(record)
            if len(part.pending) >= self.every_records:
                out.append(self._sign(part.checkpoint(_ms(self.clock()), self.signer.key_id), part))
        return out

    def due(self, *, force: bool = False) -> list[Checkpoint]:
        """Signed checkpoints of every changed log when T seconds elapsed since the last round (or forced)."""
        now = self.clock()
        if not force and (now - self._last_round).total_seconds() < self.every_seconds:
            return []
        self._last_round = now
        out = [self._sign(part.checkpoint(_ms(now), self.signer.key_id), part)
               for part in sorted(self.logs.values(), key=lambda p: p.log_id) if part.pending]
        for table in self.tables.values():
            if table.changed or force:
                out.append(self._sign(table.checkpoint(_ms(now), self.signer.key_id), None))
                table.changed = False
        return out

    def _sign(self, checkpoint: Checkpoint, part: PartitionLog | None) -> Checkpoint:
        signed = sign(checkpoint, self.signer.key_id, self.signer.sign)
        if self.witness is not None and part is not None:
            witness, key = self.witness
            try:
                signed = witness.cosign(signed, part.proof_from_base(), key.sign)
            except Exception as err:  # a refusal must not stop the ledger: publish log-signed only
                log.error("witness %s refused %s at size %s: %s", witness.key_id, signed.log_id, signed.size, err)
                if self.metrics is not None:
                    self.metrics.refused(err)
        if part is not None:
            part.checkpointed()
        return signed

    async def publish(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Put checkpoints on the checkpoint topic (key = log id), waiting for the acks."""
        if not checkpoints:
            return
        from bus._catalog import default_catalog
        from bus._wire import Wire
        from bus.client import Publisher

        async with Publisher(self.settings, Wire(default_catalog(), self.directory)) as publisher:
            for cp in checkpoints:
                await publisher.send_raw(self.checkpoint_topic, Record(cp.log_id.encode(), cp.to_bytes(), ()))
        self.published.extend(checkpoints)
        for cp in checkpoints:
            self.newest_ms[cp.log_id] = max(self.newest_ms.get(cp.log_id, 0), cp.timestamp_ms)
            if self.metrics is not None:
                self.metrics.published(cp.log_id)

    async def catch_up(self, *, force: bool = True) -> list[Checkpoint]:
        """Read every topic to its current end, then publish (by default: force) checkpoints."""
        from bus.ledger._replay import PartitionReader

        out: list[Checkpoint] = []
        async with PartitionReader(self.settings, [*self.topics, *self.reference_topics],
                                   start=self._positions()) as reader:
            async for batch in reader.batches():
                ready = self.ingest(batch) + self.due()
                await self.publish(ready)
                out += ready
        final = self.due(force=force)
        await self.publish(final)
        return out + final

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the topics until ``stop`` is set, publishing checkpoints on the cadence."""
        from bus.ledger._replay import PartitionReader

        async with PartitionReader(self.settings, [*self.topics, *self.reference_topics],
                                   start=self._positions(), follow=True) as reader:
            self.following = True
            async for batch in reader.batches(timeout_ms=int(min(self.every_seconds, 1.0) * 1000), stop=stop):
                await self.publish(self.ingest(batch) + self.due())
        await self.publish(self.due(force=True))

    def pending(self) -> dict[str, int]:
        """Records read per log and not yet covered by a published checkpoint."""
        return {part.log_id: len(part.pending) for part in self.logs.values()}

    def _positions(self) -> dict[tuple[str, int], int]:
        return {key: part.next_offset for key, part in self.logs.items()}
