"""``bus verify``: recompute the Merkle logs from the topics and hold them against the checkpoints.

For each topic-partition the verifier rebuilds the leaves from the records as they are now,
then checks every signed checkpoint of that log (signature by a published ``LEDGER`` key
valid at the checkpoint's time, required witness cosignatures), that checkpoints of the
same size agree (else: **split view**), that successive checkpoints are consistent (RFC 9162
consistency proofs computed from the recomputed leaves), that the recomputed root at each
checkpoint's size is the signed one, and every event's signature (:meth:`Wire.open`).

**Locating the damage.** The first checkpoint whose root differs bounds the first bad
position: records agree up to the largest matching checkpoint size. Within that window the
checkpoints' offset-free content digests (see :mod:`bus.ledger._processor`) are aligned with
the records' digests, which names each **altered**, **inserted**, **deleted** and
**reordered** record and a **truncated** tail by topic, partition and offset (offsets are
those of the topic verified; a deleted record is reported at the offset of the record that
now sits where it was). Without digests the window itself is reported.

**Verifying a copy.** Leaves include the topic name, so a copy of a partition written to
another topic (a forensic copy, or a forged one in the tests) is verified against the
original's checkpoints with ``as_topic={copy: original}`` (``bus verify COPY --as-topic
ORIGINAL``): leaves are computed as if the records sat in the original topic.

Pure parts (:func:`check_partition`, :func:`align`, :func:`load_checkpoints`) do no I/O;
:func:`verify_topics` is the Kafka shell.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from difflib import SequenceMatcher
from hashlib import sha256
from typing import Literal

from bus._catalog import Catalog
from bus._errors import BusError
from bus._keys import KeyDirectory
from bus._settings import BusSettings
from bus._topics import topic_map
from bus._wire import Record, Wire
from bus.ledger._checkpoint import Checkpoint, TableSnapshot, partition_log_id, verify
from bus.ledger._merkle import MerkleTree, ProofError, record_leaf_bytes, verify_consistency
from bus.ledger._processor import CheckpointMeta, checkpoint_meta, checkpoint_verifier, content_digest, record_leaf

__all__ = [
    "CheckpointEntry",
    "Finding",
    "PartitionScan",
    "VerifyReport",
    "align",
    "check_partition",
    "check_table",
    "load_checkpoints",
    "verify_topics",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong (or worth knowing), located by topic, partition, offset and leaf position."""

    kind: str
    topic: str
    partition: int | None
    offset: int | None
    detail: str
    position: int | None = None
    severity: Literal["error", "info"] = "error"

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class CheckpointEntry:
    """A verified checkpoint, its parsed extensions, and where it was read (checkpoint-topic offset)."""

    checkpoint: Checkpoint
    meta: CheckpointMeta
    where: int | None = None

    @property
    def when(self) -> str:
        return dt.datetime.fromtimestamp(self.checkpoint.timestamp_ms / 1000, dt.UTC).isoformat(timespec="seconds")


@dataclasses.dataclass
class VerifyReport:
    """Everything ``bus verify`` found, and what it covered."""

    findings: list[Finding] = dataclasses.field(default_factory=list)
    records: int = 0
    partitions: int = 0
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def errors(self, kind: str | None = None) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error" and kind in (None, f.kind)]


class PartitionScan:
    """The recomputed leaves of one partition: leaf hashes, offsets, content digests, by position."""

    def __init__(self, topic: str, partition: int, log_topic: str | None = None) -> None:
        self.topic = topic
        self.partition = partition
        self.log_topic = log_topic or topic
        self.log_id = partition_log_id(self.log_topic, partition)
        self.leaves: list[bytes] = []
        self.offsets: list[int] = []
        self.digests: list[bytes] = []

    def add(self, record: Record) -> None:
        self.leaves.append(record_leaf(record, self.log_topic))
        self.offsets.append(record.offset or 0)
        self.digests.append(content_digest(record))

    def offset_at(self, position: int) -> int | None:
        """Offset of the record at ``position``; one past the last offset at the end; None if empty."""
        if position < len(self.offsets):
            return self.offsets[position]
        return self.offsets[-1] + 1 if self.offsets else None

    def finding(self, kind: str, position: int | None, detail: str, **kw: object) -> Finding:
        offset = self.offset_at(position) if position is not None else None
        return Finding(kind, self.topic, self.partition, offset, detail, position, **kw)  # type: ignore[arg-type]


def load_checkpoints(records: Sequence[Record], directory: KeyDirectory, *,
                     require_witnesses: Collection[str] = ()) -> tuple[dict[str, list[CheckpointEntry]], list[Finding]]:
    """Parse and verify every checkpoint record; bad ones become findings and are set aside."""
    by_log: dict[str, list[CheckpointEntry]] = defaultdict(list)
    findings = []
    for record in records:
        try:
            cp = Checkpoint.from_bytes(record.value or b"")
            verify(cp, checkpoint_verifier(directory, cp), require=require_witnesses)
            meta = checkpoint_meta(cp)
        except BusError as err:
            findings.append(Finding("bad-checkpoint", record.topic or "", record.partition, record.offset,
                                    f"{type(err).__name__}: {err.message} {err.context or ''}".strip()))
            continue
        by_log[cp.log_id].append(CheckpointEntry(cp, meta, record.offset))
    for entries in by_log.values():
        entries.sort(key=lambda e: (e.checkpoint.size, e.checkpoint.timestamp_ms))
    return dict(by_log), findings


def _expected_digests(entries: Sequence[CheckpointEntry]) -> dict[int, bytes]:
    known: dict[int, bytes] = {}
    for e in entries:
        if e.meta.digests_from is None:
            continue
        for i, digest in enumerate(e.meta.digests):
            known.setdefault(e.meta.digests_from + i, digest)
    return known


def align(scan: PartitionScan, start: int, expected: Sequence[bytes]) -> list[Finding]:
    """Name each difference between the signed digests ``expected`` (positions from ``start``) and the records."""
    actual = scan.digests[start:]
    ops = [op for op in SequenceMatcher(None, expected, actual, autojunk=False).get_opcodes() if op[0] != "equal"]
    if ops and ops[-1][0] == "insert" and ops[-1][1] == len(expected):
        ops.pop()  # records after the last checkpoint: not yet anchored, not tampering
    removed: list[tuple[int, int, bytes]] = []  # (expected index, actual insertion point, digest)
    added: list[tuple[int, bytes]] = []  # (actual index, digest)
    altered: list[tuple[int, int]] = []  # (expected index, actual index)
    for tag, i1, i2, j1, j2 in ops:
        common = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        altered += [(i1 + k, j1 + k) for k in range(common)]
        removed += [(i, j1 + common, expected[i]) for i in range(i1 + common, i2)]
        added += [(j, actual[j]) for j in range(j1 + common, j2)]
    # A record whose content shows up elsewhere was moved, not altered, deleted or inserted.
    gone = {d for _i, _j, d in removed} | {expected[i] for i, _j in altered}
    came = {d for _j, d in added} | {actual[j] for _i, j in altered}
    moved = gone & came
    out: list[Finding] = []
    for i, j in altered:
        if actual[j] in moved:
            out.append(scan.finding("reordered", start + j, f"record moved here; position {start + i} held another"))
        elif expected[i] not in moved:
            out.append(scan.finding("altered", start + j, f"record at position {start + j} differs from the one "
                                    "the checkpoint signed (content digest mismatch)"))
    for j, digest in added:
        kind = "reordered" if digest in moved else "inserted"
        out.append(scan.finding(kind, start + j, "record moved here from another position" if kind == "reordered"
                                else f"record at position {start + j} is not in the signed log"))
    tail = [r for r in removed if start + r[1] >= len(scan.digests) and r[2] not in moved]
    for i, j, digest in removed:
        if digest in moved or (i, j, digest) in tail:
            continue
        out.append(scan.finding("deleted", start + j, f"signed record #{start + i} is missing before this offset"))
    if tail:
        out.append(scan.finding("truncated", len(scan.digests),
                                f"{len(tail)} signed record(s) missing at the end (positions {start + tail[0][0]}"
                                f"..{start + tail[-1][0]})"))
    return sorted(out, key=lambda f: (f.position or 0, f.kind))


def check_partition(scan: PartitionScan, entries: Sequence[CheckpointEntry]) -> list[Finding]:
    """Hold one partition's recomputed leaves against its verified checkpoints (pure)."""
    entries = [e for e in entries if e.checkpoint.log_id == scan.log_id]
    findings: list[Finding] = []
    n = len(scan.leaves)
    tree = MerkleTree(scan.leaves)
    by_size: dict[int, list[CheckpointEntry]] = defaultdict(list)
    for e in entries:
        by_size[e.checkpoint.size].append(e)
    recomputed = {size: tree.root(size) for size in by_size if size <= n}
    for size, group in sorted(by_size.items()):
        roots = {e.checkpoint.root for e in group}
        if len(roots) > 1:
            views = "; ".join(f"root {e.checkpoint.root.hex()[:16]} at {e.when} (checkpoint offset {e.where})"
                              f"{' = records' if recomputed.get(size) == e.checkpoint.root else ''}" for e in group)
            findings.append(scan.finding("split-view", size - 1 if size else None,
                                         f"{len(roots)} different roots signed for size {size}: {views}"))
    data_ok = {size: any(e.checkpoint.root == recomputed.get(size) for e in group) for size, group in by_size.items()}
    first_bad = min((s for s, ok in data_ok.items() if not ok), default=None)
    if first_bad is not None:
        good = max((s for s, ok in data_ok.items() if ok and s < first_bad), default=0)
        bad = by_size[first_bad][0]
        if first_bad > n:
            findings.append(scan.finding("truncated", n, f"checkpoint of {bad.when} covers {first_bad} records, "
                                         f"the partition holds {n}"))
        else:
            findings.append(scan.finding("root-mismatch", good, f"checkpoint of {bad.when} (size {first_bad}) does not "
                                         f"match the records; they agree up to position {good}"))
        top = max(by_size)
        known = _expected_digests(entries)
        window = [known.get(i) for i in range(good, top)]
        if window and all(d is not None for d in window):
            located = align(scan, good, window)  # type: ignore[arg-type]
            if any(f.kind == "truncated" for f in located):
                findings = [f for f in findings if f.kind != "truncated"]
            findings += located
    ok_sizes = sorted(s for s, ok in data_ok.items() if ok)
    for a, b in zip(ok_sizes, ok_sizes[1:], strict=False):
        proof = tree.consistency_proof(a, b)
        root_b = recomputed[b]
        for e in by_size[a]:
            try:
                verify_consistency(a, b, e.checkpoint.root, root_b, proof)
            except ProofError as err:
                findings.append(scan.finding("inconsistent-checkpoints", a - 1 if a else None,
                                             f"checkpoint of {e.when} (size {a}, root {e.checkpoint.root.hex()[:16]}) is not a prefix of the size-{b} "
                                             f"log: {err.message}"))
    top = max(by_size, default=0)
    if entries and n > top:
        findings.append(scan.finding("unanchored", top, f"{n - top} record(s) after the latest checkpoint",
                                     severity="info"))
    if not entries and n:
        findings.append(scan.finding("no-checkpoint", 0, f"{n} record(s) but no checkpoint for {scan.log_id}"))
    return findings


def check_table(topic: str, records: Sequence[Record], entry: CheckpointEntry, log_topic: str | None = None) -> list[Finding]:
    """Recompute a compacted topic's table at the checkpoint's positions and compare the snapshot."""
    table: dict[bytes, bytes] = {}
    positions = entry.meta.positions
    for r in records:
        if r.key is None or r.offset is None or r.offset >= positions.get(r.partition or 0, 0):
            continue
        if r.value is None:
            table.pop(r.key, None)
        else:
            table[r.key] = sha256(record_leaf_bytes(r.key, r.value, r.headers, log_topic or topic, r.partition or 0,
                                                    r.offset, -1 if r.timestamp_ms is None else r.timestamp_ms)).digest()
    snap = TableSnapshot.of(table)
    if (snap.size, snap.root) != (entry.checkpoint.size, entry.checkpoint.root):
        return [Finding("table-mismatch", topic, None, None,
                        f"table snapshot of {entry.when} ({entry.checkpoint.size} keys) differs from the topic's "
                        f"state at positions {dict(positions)} ({snap.size} keys)")]
    return []


async def verify_topics(
    settings: BusSettings, catalog: Catalog, directory: KeyDirectory, topics: Sequence[str], *,
    as_topic: Mapping[str, str] | None = None, checkpoint_topic: str | None = None, workers: int = 1,
    require_witnesses: Collection[str] = (), progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Verify real topics ``topics`` against the checkpoints on ``checkpoint_topic`` (default: the bus's)."""
    from bus.ledger._replay import Opener, PartitionReader, read_all

    as_topic = dict(as_topic or {})
    specs = topic_map(settings)
    compacted = {s.name for s in specs.values() if s.cleanup_policy == "compact"}
    cp_records = await read_all(settings, checkpoint_topic or specs["ledger.checkpoints"].name)
    by_log, findings = load_checkpoints(cp_records, directory, require_witnesses=require_witnesses)
    report = VerifyReport(findings=findings)
    scans: dict[tuple[str, int], PartitionScan] = {}
    tables: dict[str, list[Record]] = defaultdict(list)
    wire = Wire(catalog, directory, max_event_bytes=settings.max_event_bytes)
    with Opener(wire, workers) as opener:
        async with PartitionReader(settings, topics) as reader:
            total, done = reader.total, 0
            for tp in reader.begins:
                scans[(tp.topic, tp.partition)] = PartitionScan(tp.topic, tp.partition, as_topic.get(tp.topic))
            async for batch in reader.batches():
                for record in batch:
                    if record.topic in compacted:
                        tables[record.topic].append(record)
                    else:
                        scans[(record.topic or "", record.partition or 0)].add(record)
                events = [r for r in batch if not (r.topic in compacted and r.value is None)]  # tombstones
                for opened in await opener.open(events):
                    if not opened.ok:
                        report.findings.append(Finding("bad-event", opened.topic or "", opened.partition,
                                                       opened.offset, f"{opened.error_class}: {opened.error}"))
                report.records += len(batch)
                done += len(batch)
                if progress is not None:
                    progress(done, total)
    for (topic, partition), scan in sorted(scans.items()):
        if topic in compacted:
            continue
        report.partitions += 1
        report.checkpoints += len(by_log.get(scan.log_id, []))
        report.findings += check_partition(scan, by_log.get(scan.log_id, []))
    for topic in {t for t in topics if t in compacted}:
        entries = by_log.get(f"{as_topic.get(topic, topic)}/table", [])
        if entries:
            report.checkpoints += len(entries)
            latest = max(entries, key=lambda e: e.checkpoint.timestamp_ms)
            report.findings += check_table(topic, tables[topic], latest, as_topic.get(topic))
    return report
