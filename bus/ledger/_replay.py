"""Replay: read topics back over an offset or time range, verify and decode every record.

:class:`PartitionReader` streams records of whole topics (or from given positions) in
offset order per partition on aiokafka batches, without a consumer group, up to the end
offsets seen at start (or following, for the ledger). :func:`open_records` is the hot path:
a list of :class:`~bus.Record` in, a list of :class:`Opened` out (signature verified by
:meth:`Wire.open`, payload decoded with the writer schema the producer used, from the
catalog topic, into the reader's newest shape). It is a plain function of picklable data, so
:class:`Opener` can fan batches out to a ``ProcessPoolExecutor`` whose workers rebuild the
wire once from the catalog documents and public keys. :func:`replay` ties both together with
filters on type, producer (``ce_source``) and dossier (``ce_subject``).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import decimal
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from bus._catalog import Catalog
from bus._envelope import Envelope
from bus._errors import BusError, DeliveryError, EnvelopeError
from bus._keys import KeyDirectory, PublicKey
from bus._settings import BusSettings
from bus._wire import Record, Wire
from bus.client import kafka_args, partitions_of

__all__ = [
    "Opened",
    "Opener",
    "PartitionReader",
    "ReplayQuery",
    "json_value",
    "open_records",
    "read_all",
    "replay",
]


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
        self._consumer = AIOKafkaConsumer(**kafka_args(settings), group_id=None, enable_auto_commit=False,
                                          auto_offset_reset="earliest", isolation_level="read_committed",
                                          max_poll_records=2000)

    async def __aenter__(self) -> PartitionReader:
        tps = await partitions_of(self.settings, self.topics)
        try:
            await self._consumer.start()
        except KafkaError as exc:
            raise DeliveryError(f"cannot reach Kafka at {self.settings.bootstrap}: {exc}") from exc
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
                out += [Record(m.key, m.value, tuple(m.headers or ()), tp.topic, tp.partition, m.offset, m.timestamp)
                        for m in messages if end is None or m.offset < end]
            if not self.follow:
                for tp in list(remaining):
                    # Aborted transactions and control records occupy offsets: compare positions.
                    if await self._consumer.position(tp) >= self.ends[tp]:
                        remaining.discard(tp)
            if out:
                yield out


async def read_all(settings: BusSettings, topic: str) -> list[Record]:
    """Every record of one topic, in (partition, offset) order."""
    out: list[Record] = []
    async with PartitionReader(settings, [topic]) as reader:
        async for batch in reader.batches():
            out += batch
    return sorted(out, key=lambda r: (r.partition or 0, r.offset or 0))


_PLAIN = frozenset({str, int, float, bool, type(None)})


def json_value(value: Any) -> Any:
    """A decoded Avro value as JSON: instants and dates ISO 8601, bytes base64, decimals as strings."""
    kind = type(value)
    # Exact-type fast paths first: fastavro returns plain dicts, lists and scalars, and the
    # ABC isinstance checks below cost a third of a replay when run on every leaf.
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): v if type(v) in _PLAIN else json_value(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _PLAIN else json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Opened:
    """The outcome of opening one record: the verified event, or why it was refused."""

    topic: str | None
    partition: int | None
    offset: int | None
    timestamp_ms: int | None
    ok: bool
    error_class: str | None = None
    error: str | None = None
    id: str | None = None
    type: str | None = None
    source: str | None = None
    subject: str | None = None
    time: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    sigkeyid: str | None = None
    writer: str | None = None
    writer_version: int | None = None
    reader_version: int | None = None
    data: Any = None

    def to_json(self) -> dict[str, Any]:
        """The JSON line ``bus replay`` prints."""
        out = {"topic": self.topic, "partition": self.partition, "offset": self.offset,
               "timestamp_ms": self.timestamp_ms, "verified": self.ok}
        if not self.ok:
            return {**out, "error_class": self.error_class, "error": self.error, "id": self.id, "type": self.type,
                    "subject": self.subject}
        return {**out, "id": self.id, "type": self.type, "source": self.source, "subject": self.subject,
                "time": self.time, "correlationid": self.correlationid, "causationid": self.causationid,
                "signed_by": self.sigkeyid, "schema": self.writer, "writer_version": self.writer_version,
                "reader_version": self.reader_version, "data": self.data}


def _refused(record: Record, err: BaseException) -> Opened:
    env = peek(record)
    return Opened(record.topic, record.partition, record.offset, record.timestamp_ms, False,
                  type(err).__name__, getattr(err, "message", str(err)),
                  id=env.id if env else None, type=env.type if env else None,
                  subject=env.subject if env else None)


def open_records(wire: Wire, records: Sequence[Record]) -> list[Opened]:
    """Verify and decode each record (the hot path; never raises for a bad record)."""
    out = []
    for record in records:
        try:
            got = wire.open(record)
        except BusError as err:
            out.append(_refused(record, err))
            continue
        env = got.envelope
        out.append(Opened(record.topic, record.partition, record.offset, record.timestamp_ms, True,
                          id=env.id, type=env.type, source=env.source, subject=env.subject, time=env.time,
                          correlationid=env.correlationid, causationid=env.causationid, sigkeyid=env.sigkeyid,
                          writer=got.writer.name, writer_version=got.writer.version,
                          reader_version=got.schema.version, data=json_value(got.data)))
    return out


def peek(record: Record) -> Envelope | None:
    """The record's envelope, unverified (for filtering only), or None if it has none."""
    try:
        return Envelope.from_headers(record.headers)
    except EnvelopeError:
        return None


_WORKER: Wire | None = None


def _init_worker(catalog_docs: list[bytes], keys: list[dict[str, Any]], max_event_bytes: int) -> None:
    global _WORKER
    catalog = Catalog()
    for doc in catalog_docs:
        catalog.add_catalog_record(doc)
    _WORKER = Wire(catalog, KeyDirectory(PublicKey.from_record(k) for k in keys), max_event_bytes=max_event_bytes)


def _open_in_worker(records: list[Record]) -> list[Opened]:
    assert _WORKER is not None, "worker initialiser did not run"
    return open_records(_WORKER, records)


class Opener:
    """Opens batches in this process, or in ``workers`` processes (Ed25519 is the hot spot)."""

    def __init__(self, wire: Wire, workers: int = 1) -> None:
        self.wire = wire
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1:
            docs = [s.to_catalog_record() for s in wire.catalog]
            keys = [k.to_record() for k in wire.keys]
            self._pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                             initargs=(docs, keys, wire.max_event_bytes))

    async def open(self, records: Sequence[Record]) -> list[Opened]:
        """Open one batch; with a pool, split it across the workers and keep the order."""
        if self._pool is None or len(records) < 2 * self.workers:
            return open_records(self.wire, records)
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


async def replay(settings: BusSettings, wire: Wire, query: ReplayQuery, *, workers: int = 1,
                 progress: Callable[[int, int], None] | None = None) -> AsyncIterator[Opened]:
    """Every record of the query, verified and decoded, in (partition, offset) order per batch.

    ``progress(done, total)`` is called after each batch with offsets read and the estimate.
    """
    since_ms = int(query.since.timestamp() * 1000) if query.since is not None else None
    with Opener(wire, workers) as opener:
        async with PartitionReader(settings, query.topics, since_ms=since_ms, from_offset=query.from_offset,
                                   to_offset=query.to_offset) as reader:
            total, done = reader.total, 0
            async for batch in reader.batches():
                done += len(batch)
                wanted = [r for r in batch if query.wants(r)]
                for item in await opener.open(wanted):
                    yield item
                if progress is not None:
                    progress(done, total)
