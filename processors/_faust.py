"""The one faust shell that runs any pure processor core on Kafka.

A core (:class:`bus.Processor`) knows nothing of faust. :class:`CoreShell` gives it:

- an agent on its input topics, reading raw bytes (key and value serializer ``raw``); every
  record is opened with :meth:`bus.Wire.open` (signature, envelope, Avro) before the core sees
  it, and failures follow the bus's :class:`~bus.ErrorPolicy` exactly as :class:`bus.client.Subscriber`
  does: retried, dead-lettered with the original bytes and ``dlq_*`` headers, or raised;
- re-keying: when ``core.key(event)`` differs from the record key, the record (bytes untouched)
  is forwarded to a ``<app>-<core>-rekey`` topic keyed by the state key, with the original key in
  a header, and processed from there. A hand-made repartition topic rather than faust's
  ``group_by``: ``group_by`` would re-serialise the value through faust's codecs and drop the
  CloudEvents headers that carry the signature, and the key function needs the opened event;
- the per-key state in a faust :class:`~faust.Table` (JSON values, changelog topic, six
  partitions like the family topics). The table partitions by key with the producer's
  partitioner (``use_partitioner``), which is what places a record keyed by the same dossier on
  the same partition number, so faust's co-partitioned assignment gives one worker the input
  partition, the rekey partition and the changelog partition of a key together: a worker that
  takes over a partition recovers its states from the changelog;
- the reference tables (``ctx.tables``) from :class:`ReferenceTables`, a group-less reader that
  gives every worker a verified copy of each reference topic;
- outputs sealed with the worker's key and sent without awaiting each; the batch (faust
  ``take_events``) is acknowledged only once every output, dead letter and forwarded record is
  acknowledged by Kafka, and then the changed states, which the shell writes to the changelog
  itself (faust's own buffered write may be skipped by its pre-commit flush). A state on Kafka
  therefore implies its outputs are; an input whose state is not is redelivered, and its
  outputs carry the same ``ce_id`` (derived from their cause), so consumers drop the copies;
- a timer calling ``core.on_time`` for each key this worker owns, never while a batch is in flight
  (one writer of states at a time, so the changelog always ends with the newest state).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import murmur2

from bus._errors import BusError, DeliveryError
from bus._policy import Action, ErrorPolicy
from bus._processor import Context, Processor, reads
from bus._runtime import BusContext
from bus._topics import DAY_MS, TopicSpec, topic_for_schema, topic_map
from bus._wire import Received, Record
from bus.client import dead_letter_headers

__all__ = ["Binding", "CoreShell", "ReferenceTables", "STATE_PARTITIONS", "rekey_spec"]

log = logging.getLogger("processors.shell")

STATE_PARTITIONS = 6  # the family topics' count: states are co-partitioned with them
REKEY_HEADER = "bus_rekey_original_key"
SEEN_PER_KEY = 64  # processed ce_ids kept with each state: a redelivery window, not a history
Prepare = Callable[[Received], Awaitable[Mapping[str, Mapping[str, Any]]]]
_RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


@dataclasses.dataclass(frozen=True)
class Binding:
    """A core and, when it needs I/O, the shell step that does it before the core runs.

    ``prepare(event)`` returns extra reference tables merged into ``ctx.tables`` for that
    event only (ingress: the adapted document, keyed by its SHA-256).
    """

    core: Processor
    prepare: Prepare | None = None


def derived_id(core: str, state_key: str, cause: str, rank: int, *, clock_id: str | None,
               now: dt.datetime) -> str:
    """A UUIDv7-shaped ``ce_id`` that is the same each time the same cause makes the same output.

    74 bits of SHA-256 over (core, state key, cause, rank); the 48-bit milliseconds are those of
    ``clock_id`` when it is a UUIDv7 (the cause's own id, so the id stays time-ordered), else
    the UTC day of ``now`` (timer outputs: same ids within a day).
    """
    digest = int.from_bytes(hashlib.sha256(f"{core}\x00{state_key}\x00{cause}\x00{rank}".encode()).digest()[:10], "big")
    try:
        parsed = uuid.UUID(clock_id) if clock_id else None
    except ValueError:
        parsed = None
    if parsed is not None and parsed.version == 7:
        millis = parsed.int >> 80
    else:
        day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        millis = int(day.timestamp() * 1000)
    value = (millis & (2**48 - 1)) << 80 | digest
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return str(uuid.UUID(int=value))


def partition_of(key: bytes, partitions: int = STATE_PARTITIONS) -> int:
    """Kafka's default partitioner (murmur2), the one producers and the table use."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def rekey_spec(settings: Any, app_id: str, core: str) -> TopicSpec:
    """The repartition topic of one core: internal, short retention, the state's partitions."""
    return TopicSpec(f"rekey.{core}", f"{app_id}-{core}-rekey", STATE_PARTITIONS, settings.replication_factor,
                     "delete", 7 * DAY_MS, min(settings.min_insync_replicas, settings.replication_factor),
                     "CreateTime", purpose=f"records of {core} re-keyed by their state key")


class ReferenceTables:
    """Every worker's complete, verified copy of reference topics: ``data[topic][subject] = data``.

    Not a faust GlobalTable: faust recovers tables from key and value only, and the
    signature is in the headers, so every record is opened with the wire here. The reader
    also learns administrations' keys, so keys published after start are honoured.
    ``ready`` is set once the topics are read up to their end at start.
    """

    def __init__(self, bus: BusContext, topics: Iterable[str]) -> None:
        self.bus = bus
        self.wire = bus.wire()
        self.data: dict[str, dict[str, Any]] = {t: {} for t in topics}
        self.ready = asyncio.Event()
        self.rejected = 0

    def view(self, topics: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        return {t: MappingProxyType(self.data[t]) for t in topics}

    async def run(self) -> None:
        specs = topic_map(self.bus.settings)
        names = {specs[t].name: t for t in (*self.data, "reference.administrations")}
        from bus.client import kafka_args  # same connection settings as every bus client

        consumer = AIOKafkaConsumer(*names, **kafka_args(self.bus.settings), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            tps = consumer.assignment()
            ends = await consumer.end_offsets(list(tps))
            behind = {tp for tp in tps if ends[tp] > 0}
            for tp in tps:
                await consumer.seek_to_beginning(tp)
            while True:
                if not behind:
                    self.ready.set()
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    for m in messages:
                        self._apply(names[tp.topic], Record(m.key, m.value, tuple(m.headers or ()), tp.topic,
                                                            tp.partition, m.offset, m.timestamp))
                behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
        finally:
            await consumer.stop()

    def _apply(self, topic: str, record: Record) -> None:
        if topic == "reference.administrations":
            # BusContext checks each key record's proof of possession and signature rules.
            self.bus.learn_key(self.wire, record)
            if topic not in self.data:
                return
        if record.value is None:
            if record.key is not None:
                self.data[topic].pop(record.key.decode(), None)  # tombstone: the entity was removed
            return
        try:
            received = self.wire.open(record)
        except BusError as err:
            self.rejected += 1
            log.warning("reference record %s[%s]@%s rejected: %s", record.topic, record.partition,
                        record.offset, err)
            return
        self.data[topic][received.subject] = received.data


class CoreShell:
    """Runs one core in a faust app: agent, rekey topic, state table, timer."""

    def __init__(self, app: Any, binding: Binding, bus: BusContext, references: ReferenceTables, *,
                 timer_interval: float, batch_size: int, batch_within: float,
                 policy: ErrorPolicy | None = None) -> None:
        from mode import CrashingSupervisor  # faust's service library: crash the app, not just the agent

        self.app = app
        self.core = binding.core
        self.prepare = binding.prepare
        self.bus = bus
        self.wire = bus.wire()
        self.references = references
        settings = bus.settings
        self.policy = policy or ErrorPolicy(max_retries=settings.max_retries, backoff_ms=settings.retry_backoff_ms)
        self.specs = topic_map(settings)
        self.partitions = {self.specs[t].name: self.specs[t].partitions for t in self.core.inputs}
        self.rekey = rekey_spec(settings, app.conf.id, self.core.name)
        self.dead_letter_topic = self.specs["deadletter"].name
        self.stats: Counter[str] = Counter()
        self.batch_size, self.batch_within = batch_size, batch_within
        # One writer of states at a time: a timer tick running while a batch awaits its outputs
        # could write a newer state to the changelog before the batch writes its older copy of
        # the same key, and a recovered worker would then lose what the tick did (seen: a key
        # whose timer mark was in memory and never in the changelog).
        self.writing = asyncio.Lock()
        # Keys as raw bytes (a str key would be JSON-quoted, hashing to another partition); values
        # JSON. The shell writes the changelog itself (see _delivered), placing keys with
        # partition_of: faust's synchronous partitioner crashes (TypeError on None) whenever
        # aiokafka lacks the changelog's metadata.
        self.table = app.Table(f"{self.core.name}-state", default=None, partitions=STATE_PARTITIONS,
                               use_partitioner=True, key_type=bytes)
        self.source = app.topic(*self.partitions, self.rekey.name, **_RAW)
        app.agent(self.source, name=f"{self.core.name}-agent", supervisor_strategy=CrashingSupervisor)(self._agent)
        if timer_interval > 0:
            app.timer(timer_interval, name=f"{self.core.name}-timer")(self._tick)

    # -- the agent ------------------------------------------------------------------------------

    async def _agent(self, stream: Any) -> None:
        await self.references.ready.wait()
        async for events in stream.take_events(self.batch_size, within=self.batch_within):
            async with self.writing:
                pending: list[Awaitable[Any]] = []
                staged: dict[bytes, Any] = {}
                for event in events:
                    m = event.message
                    record = Record(m.key, m.value, tuple(m.headers or ()), m.topic, m.partition, m.offset,
                                    int(m.timestamp * 1000) if m.timestamp is not None else None)
                    pending += await self._handle(record, staged)
                # The batch is acknowledged (so committable) only when Kafka has every output, then
                # every state it changed.
                await self._delivered(pending, staged)

    async def _delivered(self, pending: list[Awaitable[Any]], staged: dict[bytes, Any]) -> None:
        """Wait for the outputs, then write and wait for the changed states (outputs first).

        faust's own changelog write is buffered and its pre-commit flush gives up after 0.1 s
        without progress, so offsets could be committed with states still unwritten: after a
        crash those inputs were neither in the state nor redelivered (observed: a stalled
        dossier). Writing the changelog here, after the outputs, gives: a state on Kafka
        implies its outputs on Kafka; an input whose state is not on Kafka is redelivered and
        re-run, its outputs carrying the same ``ce_id`` (:func:`derived_id`) so consumers drop them.
        """
        try:
            if pending:
                await asyncio.gather(*pending)
            if staged:
                changelog = self.table.changelog_topic.get_topic_name()
                await asyncio.gather(*[
                    await self.app.producer.send(changelog, key, json.dumps(value).encode(), partition_of(key),
                                                 None, None)
                    for key, value in staged.items()])
        except Exception as exc:
            raise DeliveryError(f"{self.core.name}: Kafka refused an output: {exc}") from exc

    async def _handle(self, record: Record, staged: dict[bytes, Any]) -> list[Awaitable[Any]]:
        attempts = 0
        while True:
            attempts += 1
            try:
                return await self._step(record, staged)
            except Exception as error:
                action = self.policy.action_for(error)
                if action is Action.RETRY and attempts <= self.policy.max_retries:
                    self.stats["retried"] += 1
                    await asyncio.sleep(self.policy.backoff_ms * attempts / 1000)  # retry backoff, not a wait
                    continue
                if action is Action.RAISE:
                    raise
                if action is Action.SKIP:
                    self.stats["skipped"] += 1
                    return []
                return [await self._dead_letter(record, error, attempts)]

    def _original(self, record: Record) -> tuple[Record, str | None]:
        """A record from the rekey topic as it was first published, and its state key."""
        if record.topic != self.rekey.name:
            return record, None
        original_key: bytes | None = None
        headers = []
        for name, value in record.headers:
            if name == REKEY_HEADER:
                original_key = value or None
            else:
                headers.append((name, value))
        state_key = record.key.decode() if record.key else None
        return dataclasses.replace(record, key=original_key, headers=tuple(headers)), state_key

    def context(self, extra: Mapping[str, Mapping[str, Any]] | None = None) -> Context:
        tables = self.references.view(self.core.tables)
        return Context(now=self.bus.clock(), tables={**tables, **extra} if extra else tables)

    async def _step(self, record: Record, staged: dict[bytes, Any]) -> list[Awaitable[Any]]:
        if not reads(self.core, record.headers):
            self.stats["other_types"] += 1  # not this core's: skipped unread (see Processor.types)
            return []
        record, state_key = self._original(record)
        received = self.wire.open(record)
        ctx = self.context()
        if state_key is None:
            key = self.core.key(received, ctx)
            if key is None:
                return []
            if key.encode() != record.key or self.partitions.get(record.topic or "") != STATE_PARTITIONS:
                self.stats["rekeyed"] += 1
                return [await self.app.producer.send(
                    self.rekey.name, key.encode(), record.value, None, None,
                    [*record.headers, (REKEY_HEADER, record.key or b"")])]
            state_key = key
        if self.prepare is not None:
            ctx = self.context(await self.prepare(received))
        # From here to the table write nothing awaits: the timer cannot interleave on this key.
        entry = self.table.get(state_key.encode())
        if entry is None:
            entry = {"state": self.core.initial_state(), "seen": []}
        if received.id in entry["seen"]:
            self.stats["duplicates"] += 1
            log.info("%s: %s already processed for %s", self.core.name, received.id, state_key)
            return []
        state, outputs = self.core.process(copy.deepcopy(entry["state"]), received, ctx)
        sealed = self._seal(outputs, state_key, received.id, received.envelope.id)
        self._stage(staged, state_key.encode(), {"state": state, "seen": [*entry["seen"], received.id][-SEEN_PER_KEY:]})
        self.stats["processed"] += 1
        return await self._send(sealed)

    def _stage(self, staged: dict[bytes, Any], key: bytes, value: Any) -> None:
        """Set a state in memory now; its changelog record is written by :meth:`_delivered`."""
        self.table.data[key] = value  # the store itself: no buffered changelog write by faust
        staged[key] = value

    def _seal(self, outputs: Sequence[Any], state_key: str, cause: str, clock_id: str | None) -> list[tuple[str, Record]]:
        """Seal outputs, each with a ``ce_id`` derived from (core, state, cause, rank) unless it has one."""
        return [(self._topic_of(e.schema), self.wire.seal(e if e.id else dataclasses.replace(
            e, id=derived_id(self.core.name, state_key, cause, rank, clock_id=clock_id, now=self.bus.clock()))))
            for rank, e in enumerate(outputs)]

    def _topic_of(self, schema: str) -> str:
        return self.specs[topic_for_schema(schema)].name

    async def _send(self, sealed: list[tuple[str, Record]]) -> list[Awaitable[Any]]:
        out = []
        for topic, r in sealed:
            out.append(await self.app.producer.send(topic, r.key, r.value, None, None, list(r.headers)))
            self.stats["emitted"] += 1
        return out

    async def _dead_letter(self, record: Record, error: BaseException, attempts: int) -> Awaitable[Any]:
        original, _ = self._original(record)
        headers = dead_letter_headers(original, error, processor=self.core.name, attempts=attempts,
                                      now=self.bus.clock())
        self.stats["dead_lettered"] += 1
        log.warning("%s dead-lettered %s[%s]@%s: %s", self.core.name, record.topic, record.partition,
                    record.offset, type(error).__name__)
        return await self.app.producer.send(self.dead_letter_topic, original.key, original.value, None, None, headers)

    # -- the timer ------------------------------------------------------------------------------

    def owned_keys(self) -> list[str]:
        """Keys of the states whose partition this worker owns now."""
        owned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.rekey.name}
        return [k.decode() for k in list(self.table.keys()) if partition_of(k) in owned]

    async def _tick(self) -> None:
        if not self.references.ready.is_set():
            return
        async with self.writing:
            await self._tick_owned()

    async def _tick_owned(self) -> None:
        ctx = self.context()
        pending: list[Awaitable[Any]] = []
        staged: dict[bytes, Any] = {}
        for key in self.owned_keys():
            entry = self.table.get(key.encode())
            if entry is None:
                continue
            state, outputs = self.core.on_time(copy.deepcopy(entry["state"]), key, ctx)
            if state == entry["state"] and not outputs:
                continue
            # A tick has no cause: the state it started from names it, so a re-run after a crash
            # (the new state unwritten) gives the same ids, on the same day.
            before = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()
            sealed = self._seal(outputs, key, f"on_time:{before}", None)
            self._stage(staged, key.encode(), {"state": state, "seen": entry["seen"]})
            pending += await self._send(sealed)
        await self._delivered(pending, staged)
