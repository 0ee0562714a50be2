"""Replay: read topics back over an offset or time range, verify and decode every record.

:class:`PartitionReader` streams records of whole topics (or from given positions) in
offset order per partition on aiokafka batches, without a consumer group, up to the end
offsets seen at start (or following, for the ledger), or reads one slice ``[start, end)`` of
a partition. :func:`replay` cuts the query's offset ranges into slices
(:mod:`bus.ledger._pool`) and opens each record with a :class:`~bus.ledger._opening.FastOpener`
(signature verified against the producer's key valid at the event time, payload decoded with
the writer schema from the catalog, into the reader's newest shape), with filters on type,
producer (``ce_source``) and dossier (``ce_subject``). With ``workers`` > 1, helper
processes claim slices too and read them from Kafka themselves: no record crosses a process
boundary, and only what is yielded comes back (every opened record, or with
``refused_only`` just the refused ones and the counts); a helper decrypts addressed events
when its parent's wire does, with the keys of the same key store (a private key never crosses
the pipe); a :class:`ReplayPool` keeps such helpers for several replays. :class:`Opener` opens given records, in this process or in a
pool of its own (``bus verify``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import traceback
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from bus._catalog import Catalog
from bus._errors import DeliveryError
from bus._keys import KeyDirectory
from bus._runtime import encryption_key_store
from bus._sealed import DecryptionKeyring
from bus._settings import BusSettings
from bus._wire import Record, Wire
from bus.client import kafka_args, partitions_of, start_client
from bus.ledger._opening import FastOpener, Opened, json_value, open_records, peek
from bus.ledger._pool import PARENT, Helpers, Slice, SliceBoard, plan_slices

__all__ = [
    "Opened",
    "Opener",
    "PartitionReader",
    "ReplayPool",
    "ReplayQuery",
    "ReplayStats",
    "json_value",
    "open_records",
    "read_all",
    "replay",
]

#: Offsets per slice: what one process claims at a time (one fetch of ~1 KiB records).
SLICE = 256
#: Slices that may be claimed ahead of the first one not yet yielded, when every record is yielded.
WINDOW = 64


class PartitionReader:
    """Every partition of ``topics`` from ``start`` positions (default: the beginning) to the end.

    Without ``follow``, the end is each partition's end offset when the reader started, so a
    replay is a stable snapshot. ``since_ms`` starts each partition at the first record whose
    timestamp is at or after it (``offsets_for_times``).
    """

    def __init__(self, settings: BusSettings, topics: Sequence[str], *,
                 start: Mapping[tuple[str, int], int] | None = None, follow: bool = False,
                 since_ms: int | None = None, from_offset: int | None = None, to_offset: int | None = None) -> None:
        self.settings = settings
        self.topics = list(topics)
        self.start = dict(start or {})
        self.follow = follow
        self.since_ms = since_ms
        self.from_offset = from_offset
        self.to_offset = to_offset
        self.ends: dict[TopicPartition, int] = {}
        self.begins: dict[TopicPartition, int] = {}
        self._reading: TopicPartition | None = None
        # A snapshot never waits for new records: a fetch past the end must not hold a seek up.
        self._consumer = AIOKafkaConsumer(**kafka_args(settings), group_id=None, enable_auto_commit=False,
                                          auto_offset_reset="earliest", isolation_level="read_committed",
                                          max_poll_records=2000, fetch_max_wait_ms=500 if follow else 20)

    async def __aenter__(self) -> PartitionReader:
        try:
            tps = await partitions_of(self.settings, self.topics) if self.topics else []
        except BaseException:
            await self._consumer.stop()  # never started, but aiokafka warns about it unless stopped
            raise
        await start_client(self._consumer, self.settings)
        if not tps:
            return self
        self._consumer.assign(tps)
        self.ends = dict(await self._consumer.end_offsets(tps))
        firsts = await self._consumer.beginning_offsets(tps)
        times = {}
        if self.since_ms is not None:
            times = await self._consumer.offsets_for_times({tp: self.since_ms for tp in tps})
        for tp in tps:
            position = self.start.get((tp.topic, tp.partition), firsts[tp])
            if self.from_offset is not None:
                position = max(position, self.from_offset)
            if self.since_ms is not None:
                found = times.get(tp)
                position = max(position, found.offset if found is not None else self.ends[tp])
            position = max(position, firsts[tp])
            if self.to_offset is not None:
                self.ends[tp] = min(self.ends[tp], self.to_offset + 1)
            self.begins[tp] = position
            self._consumer.seek(tp, position)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    def assign(self, partitions: set[TopicPartition]) -> None:
        """Read these partitions by slices (a helper's reader, handed a plan)."""
        if partitions != self._consumer.assignment():
            self._consumer.assign(list(partitions))
            self._reading = None

    @property
    def total(self) -> int:
        """Upper bound of the records to read (offsets in range; gaps make it an over-estimate)."""
        return sum(max(0, self.ends[tp] - self.begins[tp]) for tp in self.begins)

    async def batches(self, *, timeout_ms: int = 1000, stop: asyncio.Event | None = None) -> AsyncIterator[list[Record]]:
        """Batches of records; each partition's records arrive in offset order."""
        remaining = {tp for tp in self.begins if self.follow or self.begins[tp] < self.ends[tp]}
        while remaining and not (stop is not None and stop.is_set()):
            try:
                fetched = await self._consumer.getmany(*remaining, timeout_ms=timeout_ms)
            except KafkaError as exc:
                raise DeliveryError(f"cannot read from Kafka: {exc}") from exc
            out: list[Record] = []
            for tp, messages in fetched.items():
                end = None if self.follow else self.ends[tp]
                out += [to_record(tp, m) for m in messages if end is None or m.offset < end]
            if not self.follow:
                for tp in list(remaining):
                    # Aborted transactions and control records occupy offsets: compare positions.
                    if await self._consumer.position(tp) >= self.ends[tp]:
                        remaining.discard(tp)
            # Following, an idle wait yields an empty batch: the caller's clock-driven work (the
            # ledger's every-T-seconds round) must run when no record arrives after the last one.
            if out or self.follow:
                yield out

    async def read_slice(self, piece: Slice, *, chunk: int = SLICE,
                         timeout_ms: int = 1000) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
        """The records of one slice, as aiokafka hands them, ``chunk`` at most at a time.

        Only the slice's partition is fetched meanwhile; reading the slice that follows the
        last one needs no seek (the fetched records are still good).
        """
        tp = TopicPartition(piece.topic, piece.partition)
        consumer = self._consumer
        if self._reading != tp:
            consumer.pause(*(p for p in consumer.assignment() if p != tp))
            consumer.resume(tp)
            self._reading = tp
        if await consumer.position(tp) != piece.start:
            consumer.seek(tp, piece.start)
        while (position := await consumer.position(tp)) < piece.end:
            try:
                fetched = await consumer.getmany(tp, timeout_ms=timeout_ms,
                                                 max_records=min(chunk, piece.end - position))
            except KafkaError as exc:
                raise DeliveryError(f"cannot read from Kafka: {exc}") from exc
            messages = fetched.get(tp, [])
            if messages and messages[-1].offset >= piece.end:  # records past a gap (control records)
                messages = [m for m in messages if m.offset < piece.end]
            if messages:
                yield messages


def to_record(tp: TopicPartition, message: ConsumerRecord[bytes, bytes]) -> Record:
    """An aiokafka record as a :class:`~bus.Record` read from ``tp``."""
    return Record(message.key, message.value, tuple(message.headers or ()), tp.topic, tp.partition, message.offset,
                  message.timestamp)


async def read_all(settings: BusSettings, topic: str) -> list[Record]:
    """Every record of one topic, in (partition, offset) order."""
    out: list[Record] = []
    async with PartitionReader(settings, [topic]) as reader:
        async for batch in reader.batches():
            out += batch
    return sorted(out, key=lambda r: (r.partition or 0, r.offset or 0))


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayQuery:
    """What to replay: topics, an offset range (per partition) or time range, and filters.

    ``types`` match ``ce_type`` exactly or as a prefix ending in ``.``; ``sources`` match
    ``ce_source``; ``subjects`` match ``ce_subject`` (the dossier). Empty means everything.
    """

    topics: tuple[str, ...]
    from_offset: int | None = None
    to_offset: int | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    types: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    subjects: frozenset[str] = frozenset()

    @property
    def filtered(self) -> bool:
        """Whether :meth:`wants` can refuse a record at all."""
        return self.until is not None or bool(self.types or self.sources or self.subjects)

    def wants(self, record: Record) -> bool:
        """Whether the record is in the time range and passes the filters (envelope unverified)."""
        if self.until is not None and record.timestamp_ms is not None and \
                record.timestamp_ms > int(self.until.timestamp() * 1000):
            return False
        if not (self.types or self.sources or self.subjects):
            return True
        env = peek(record)
        if env is None:
            return False  # an envelope-less record cannot match a filter on its envelope
        if self.types and env.type not in self.types and not any(
                t.endswith(".") and env.type.startswith(t) for t in self.types):
            return False
        if self.sources and env.source not in self.sources:
            return False
        return not (self.subjects and env.subject not in self.subjects)


@dataclasses.dataclass(slots=True)
class ReplayStats:
    """What a replay did: records read in range, opened (passed the filters), refused among them."""

    read: int = 0
    opened: int = 0
    refused: int = 0

    def add(self, other: ReplayStats) -> None:
        self.read += other.read
        self.opened += other.opened
        self.refused += other.refused


@dataclasses.dataclass(slots=True)
class SliceOutcome(ReplayStats):
    """One slice opened: its counts and the records to yield (all, or the refused ones)."""

    items: list[Opened] = dataclasses.field(default_factory=list)


async def open_slice(reader: PartitionReader, opener: FastOpener, query: ReplayQuery, piece: Slice, *,
                     refused_only: bool) -> SliceOutcome:
    """Read one slice from Kafka and open its wanted records (the work of every replay process)."""
    out = SliceOutcome()
    tp = TopicPartition(piece.topic, piece.partition)
    async for messages in reader.read_slice(piece):
        out.read += len(messages)
        if query.filtered:
            records = [r for r in map(to_record, [tp] * len(messages), messages) if query.wants(r)]
            items = [(r.key, r.value, r.headers, r.timestamp_ms) for r in records]
        else:
            records = None
            items = [(m.key, m.value, m.headers, m.timestamp) for m in messages]
        out.opened += len(items)
        if refused_only:  # only the records the fast path does not vouch for are opened one by one
            for i in opener.unverified(items):
                item = opener.open(records[i] if records is not None else to_record(tp, messages[i]))
                if not item.ok:
                    out.refused += 1
                    out.items.append(item)
        else:
            opened = opener.open_all(records if records is not None else [to_record(tp, m) for m in messages])
            out.refused += sum(not item.ok for item in opened)
            out.items += opened
        await asyncio.sleep(0)  # the parent hears its helpers between chunks
    return out


def _held(settings: BusSettings) -> DecryptionKeyring | None:
    """A helper's decryption keys: those of the settings' key store, like its parent's (private keys never travel)."""
    held = encryption_key_store(settings).keyring()
    return held if len(held) else None


def _helper_main(conn: Connection, board: SliceBoard, owner: int, settings: BusSettings) -> None:
    """A helper process: for each plan, claim slices on the board, open them, send the outcomes back."""
    asyncio.run(_help(conn, board, owner, settings))


async def _help(conn: Connection, board: SliceBoard, owner: int, settings: BusSettings) -> None:
    try:
        async with PartitionReader(settings, []) as reader:
            conn.send(("ready",))
            opener = None
            while (message := conn.recv())[0] == "plan":
                _, generation, slices, query, refused_only, wire = message
                if wire is not None:
                    catalog, keys, max_event_bytes, dossier_keys, decrypting = wire
                    opener = FastOpener(Wire(catalog, keys, max_event_bytes=max_event_bytes, dossier_keys=dossier_keys,
                                             decryption=_held(settings) if decrypting else None))
                assert opener is not None, "the first plan carries the wire"
                reader.assign({TopicPartition(s.topic, s.partition) for s in slices})
                last = None
                while (index := board.claim(owner, last, generation)) != -1:
                    if index is None:  # the parent's output lags: wait for it to yield
                        await asyncio.sleep(0.005)
                        continue
                    try:
                        outcome = await open_slice(reader, opener, query, slices[index], refused_only=refused_only)
                    except Exception:  # noqa: BLE001 - the parent opens the slice itself and meets the error
                        conn.send(("failed", generation, index, traceback.format_exc()))
                        break
                    conn.send(("done", generation, index, outcome))
                    last = index
                conn.send(("idle", generation))
    except (EOFError, OSError, KeyboardInterrupt):
        return  # the parent has gone


class ReplayPool:
    """``helpers`` processes that replays share with the process that runs them.

    Start it early (before connecting, say): the helpers import the bus meanwhile, and a
    replay uses whichever are ready, then the others as they come. One replay at a time.
    """

    def __init__(self, settings: BusSettings, helpers: int) -> None:
        self.settings = settings
        self.helpers = Helpers(helpers, _helper_main, (settings,))
        self._sent: tuple[Any, ...] = ()

    def plan(self, wire: Wire, slices: list[Slice], query: ReplayQuery, refused_only: bool) -> int:
        """Hand a replay's slices to the helpers (and the catalog and keys, when they changed)."""
        generation = self.helpers.board.plan(len(slices), len(slices) if refused_only else WINDOW)
        trust = wire.keys.trust
        decisions = (len(trust.authorities), len(trust.forged), sum(map(len, trust.approvals.values())),
                     sum(map(len, trust.revocations.values())))
        decrypting = wire.decryption is not None
        state = (wire.catalog, len(wire.catalog), *wire.keys, decisions, wire.max_event_bytes, wire.dossier_keys,
                 decrypting)
        same = len(state) == len(self._sent) and all(a is b or a == b for a, b in zip(state, self._sent, strict=True))
        self._sent = state
        self.helpers.send(("plan", generation, slices, query, refused_only, None if same else
                           (wire.catalog, wire.keys, wire.max_event_bytes, wire.dossier_keys, decrypting)))
        return generation

    def close(self) -> None:
        self.helpers.close()

    async def __aenter__(self) -> ReplayPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


async def replay(settings: BusSettings, wire: Wire, query: ReplayQuery, *, workers: int = 1,
                 pool: ReplayPool | None = None, progress: Callable[[int, int], None] | None = None,
                 refused_only: bool = False, stats: ReplayStats | None = None) -> AsyncIterator[Opened]:
    """Every record of the query, verified and decoded, in (partition, offset) order.

    ``workers`` processes share the work, this one included, or this one and ``pool``'s.
    ``refused_only`` yields only the records that fail (every record is still verified and
    decoded); ``stats`` receives the counts. ``progress(done, total)`` is called as slices
    complete, with offsets read and the estimate.
    """
    since_ms = int(query.since.timestamp() * 1000) if query.since is not None else None
    # A pool of our own starts first: its helpers import the bus while this process finds the offsets.
    own = ReplayPool(settings, workers - 1) if pool is None and workers > 1 else None
    pool = pool or own
    stats = stats if stats is not None else ReplayStats()
    opener = FastOpener(wire)
    try:
        async with PartitionReader(settings, query.topics, since_ms=since_ms, from_offset=query.from_offset,
                                   to_offset=query.to_offset) as reader:
            slices = plan_slices([(tp.topic, tp.partition, reader.begins[tp], reader.ends[tp])
                                  for tp in sorted(reader.begins)], SLICE)
            total, done = reader.total, 0
            if pool is None:
                outcomes = _alone(reader, opener, query, slices, refused_only)
            else:
                outcomes = _shared(reader, opener, query, slices, pool, pool.plan(wire, slices, query, refused_only),
                                   refused_only)
            async for piece, outcome in outcomes:
                stats.add(outcome)
                for item in outcome.items:
                    yield item
                done += piece.end - piece.start
                if progress is not None:
                    progress(done, total)
    finally:
        if own is not None:
            own.close()
        elif pool is not None:
            pool.helpers.board.cancel()


async def _alone(reader: PartitionReader, opener: FastOpener, query: ReplayQuery, slices: list[Slice],
                 refused_only: bool) -> AsyncIterator[tuple[Slice, SliceOutcome]]:
    for piece in slices:
        yield piece, await open_slice(reader, opener, query, piece, refused_only=refused_only)


async def _shared(reader: PartitionReader, opener: FastOpener, query: ReplayQuery, slices: list[Slice],
                  pool: ReplayPool, generation: int, refused_only: bool) -> AsyncIterator[tuple[Slice, SliceOutcome]]:
    """Each slice's outcome in slice order, opened here or by a helper."""
    helpers, board = pool.helpers, pool.helpers.board
    outcomes: dict[int, SliceOutcome] = {}
    orphans: list[int] = []  # slices a helper claimed and could not open
    following, last, exhausted = 0, None, False

    def hear(owner: int, message: tuple[Any, ...]) -> None:
        if message[0] == "gone":
            orphans.extend(i for i in board.claimed_by(owner) if i >= following and i not in outcomes)
        elif message[0] == "done" and message[1] == generation:
            outcomes[message[2]] = message[3]
        elif message[0] == "failed" and message[1] == generation:
            orphans.append(message[2])

    while following < len(slices):
        while not helpers.messages.empty():
            hear(*helpers.messages.get_nowait())
        if following in outcomes:
            yield slices[following], outcomes.pop(following)
            following += 1
            board.advance(following)
            continue
        index = orphans.pop() if orphans else None
        if index is None and not exhausted:
            index = board.claim(PARENT, last, generation)
            exhausted = index == -1
            if exhausted:
                index = None
        if index is not None:
            outcomes[index] = await open_slice(reader, opener, query, slices[index], refused_only=refused_only)
            last = index
            continue
        hear(*await helpers.messages.get())


_WORKER: FastOpener | None = None


def _init_worker(catalog_docs: list[bytes], directory: KeyDirectory, max_event_bytes: int) -> None:
    global _WORKER
    catalog = Catalog()
    for doc in catalog_docs:
        catalog.add_catalog_record(doc)
    # The whole directory travels (pickled), trust decisions included, not only the public keys.
    _WORKER = FastOpener(Wire(catalog, directory, max_event_bytes=max_event_bytes))


def _open_in_worker(records: list[Record]) -> list[Opened]:
    assert _WORKER is not None, "worker initialiser did not run"
    return _WORKER.open_all(records)


class Opener:
    """Opens given batches in this process, or in ``workers`` processes (``bus verify``).

    The records travel to the pool: :func:`replay` instead has its helpers read from Kafka.
    """

    def __init__(self, wire: Wire, workers: int = 1) -> None:
        self.wire = wire
        self.workers = workers
        self._opener = FastOpener(wire)
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1:
            docs = [s.to_catalog_record() for s in wire.catalog]
            self._pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                             initargs=(docs, wire.keys, wire.max_event_bytes))

    async def open(self, records: Sequence[Record]) -> list[Opened]:
        """Open one batch; with a pool, split it across the workers and keep the order."""
        if self._pool is None or len(records) < 2 * self.workers:
            return self._opener.open_all(records)
        loop = asyncio.get_running_loop()
        size = -(-len(records) // self.workers)
        chunks = [list(records[i:i + size]) for i in range(0, len(records), size)]
        results = await asyncio.gather(*(loop.run_in_executor(self._pool, _open_in_worker, c) for c in chunks))
        return [item for chunk in results for item in chunk]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> Opener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
