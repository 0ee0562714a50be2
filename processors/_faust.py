"""The one faust shell that runs any pure processor core on Kafka.

A core (:class:`bus.Processor`) knows nothing of faust. :class:`CoreShell` gives it:

- an agent on its input topics, reading raw bytes (key and value serializer ``raw``); every
  record goes through the bus's one per-record step (:class:`bus.Step`: skip by type, open,
  key, duplicate check, prepare, process, derived ids, seal, error policy), and the shell does
  the I/O the step decides: the same step :class:`bus.client.Subscriber` and
  :class:`bus.testing.TopologyTestDriver` drive;
- re-keying: when the step says so (``core.key(event)`` differs from the record key), the record
  (bytes untouched) is forwarded to a ``<app>-<core>-rekey`` topic keyed by the state key, with the
  original key in a header, and processed from there. A hand-made repartition topic rather than faust's
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
  (one writer of states at a time, so the changelog always ends with the newest state), on the
  processing clock or, with ``clock="event"``, on the stream's time: each state's timers run
  for each day up to the time of its next event before that event (in the step), and states
  no event reaches any more follow the watermark (:class:`bus.Watermarks`), so a replayed year
  meets each deadline on its day.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import murmur2

from bus import (
    Action,
    Binding,
    BusContext,
    BusError,
    Context,
    DeliveryError,
    Emit,
    Entry,
    ErrorPolicy,
    Fail,
    Prepare,
    Record,
    Rekey,
    Skip,
    Step,
    TopicSpec,
    Watermarks,
    topic_map,
)
from bus._metrics import StepMetrics
from bus._step import Decision
from bus._topics import DAY_MS, FOREVER

__all__ = ["Binding", "CoreShell", "ReferenceTables", "STATE_PARTITIONS", "changelog_spec", "partition_of", "rekey_spec"]

log = logging.getLogger("processors.shell")

STATE_PARTITIONS = 6  # the family topics' count: states are co-partitioned with them
CLOCKS = ("processing", "event")
_RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


def partition_of(key: bytes, partitions: int = STATE_PARTITIONS) -> int:
    """Kafka's default partitioner (murmur2), the one producers and the table use."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def changelog_spec(settings: Any, app_id: str, core: str) -> TopicSpec:
    """The changelog topic of one core's state table, as faust names it (compacted, the state's partitions).

    Created before the worker starts, with the rekey topic: faust creates changelogs itself,
    but after the first rebalance, whose assignor then ignores the missing topics; the states
    of those partitions stayed unassigned and their cores processed nothing until another
    rebalance (seen: a worker that logged "Ignoring missing topic ...-changelog", then "Worker
    ready", and committed nothing of the accounting chain's inputs for 180 s).
    """
    return TopicSpec(f"changelog.{core}", f"{app_id}-{core}-state-changelog", STATE_PARTITIONS,
                     settings.replication_factor, "compact", FOREVER,
                     min(settings.min_insync_replicas, settings.replication_factor), "CreateTime",
                     purpose=f"the states of {core}, by state key")


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
            log.info("reference tables: reading %s partitions up to %s", len(tps),
                     {f"{tp.topic}[{tp.partition}]": end for tp, end in ends.items() if end})
            waits = 0
            while True:
                if not behind and not self.ready.is_set():
                    log.info("reference tables ready (%s rejected records)", self.rejected)
                    self.ready.set()
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    for m in messages:
                        self._apply(names[tp.topic], Record(m.key, m.value, tuple(m.headers or ()), tp.topic,
                                                            tp.partition, m.offset, m.timestamp))
                positions = {tp: await consumer.position(tp) for tp in behind}
                behind = {tp for tp in behind if positions[tp] < ends[tp]}
                waits = 0 if batch else waits + 1
                if behind and waits and waits % 20 == 0:  # ~10 s without a record while not ready: say where
                    log.warning("reference tables still not ready (no processor runs until they are): %s",
                                ", ".join(f"{tp.topic}[{tp.partition}] at {positions[tp]} of {ends[tp]}"
                                          for tp in sorted(behind)))
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
    """Runs one core in a faust app: agent, rekey topic, state table, timer; the step decides."""

    def __init__(self, app: Any, binding: Binding, bus: BusContext, references: ReferenceTables, *,
                 timer_interval: float, batch_size: int, batch_within: float,
                 policy: ErrorPolicy | None = None, clock: str = "processing",
                 lateness: dt.timedelta = dt.timedelta(hours=1), idle: float = 300.0,
                 metrics: StepMetrics | None = None) -> None:
        from mode import CrashingSupervisor  # faust's service library: crash the app, not just the agent

        self.app = app
        self.core = binding.core
        self.prepare = binding.prepare
        self.bus = bus
        self.references = references
        settings = bus.settings
        specs = topic_map(settings)
        self.partitions = {specs[t].name: specs[t].partitions for t in self.core.inputs}
        self.rekey = rekey_spec(settings, app.conf.id, self.core.name)
        self.step = Step(
            bus.wire(), name=self.core.name, core=self.core,
            policy=policy or ErrorPolicy(max_retries=settings.max_retries, backoff_ms=settings.retry_backoff_ms),
            topics={logical: spec.name for logical, spec in specs.items()}, rekey_topic=self.rekey.name,
            dead_letter_topic=specs["deadletter"].name, partitions=self.partitions,
            state_partitions=STATE_PARTITIONS, prepares=self.prepare is not None, event_time=clock == "event")
        self.watermarks = Watermarks(lateness) if clock == "event" else None
        self.last_offsets: dict[Any, int] = {}
        self.last_batch: float | None = None  # loop time of the last batch: how long the stream is silent
        self.idle = idle
        self._explained = float("-inf")  # loop time the shell last logged what holds its event time
        self.metrics = metrics
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
            done = False
            try:
                async with self.writing:
                    pending: list[Awaitable[Any]] = []
                    staged: dict[bytes, Any] = {}
                    for event in events:
                        m = event.message
                        record = Record(m.key, m.value, tuple(m.headers or ()), m.topic, m.partition, m.offset,
                                        int(m.timestamp * 1000) if m.timestamp is not None else None)
                        self.last_offsets[m.tp] = m.offset
                        pending += await self._handle(record, staged)
                    # The batch is acknowledged (so committable) only when Kafka has every output, then
                    # every state it changed.
                    await self._delivered(pending, staged)
                    self.last_batch = asyncio.get_running_loop().time()
                    done = True
            finally:
                if not done:
                    _never_commit(events, self.app.consumer)

    async def _delivered(self, pending: list[Awaitable[Any]], staged: dict[bytes, Any]) -> None:
        """Wait for the outputs, then write and wait for the changed states (outputs first).

        faust's own changelog write is buffered and its pre-commit flush gives up after 0.1 s
        without progress, so offsets could be committed with states still unwritten: after a
        crash those inputs were neither in the state nor redelivered (observed: a stalled
        dossier). Writing the changelog here, after the outputs, gives: a state on Kafka
        implies its outputs on Kafka; an input whose state is not on Kafka is redelivered and
        re-run, its outputs carrying the same ``ce_id`` (:func:`bus.derived_id`) so consumers drop them.
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

    def context(self, now: dt.datetime | None = None) -> Context:
        return Context(now=now or self.bus.clock(), tables=self.references.view(self.core.tables))

    def lookup(self, key: str) -> Entry | None:
        value = self.table.get(key.encode())
        return None if value is None else Entry.from_json(value)

    async def _handle(self, record: Record, staged: dict[bytes, Any]) -> list[Awaitable[Any]]:
        """Drive the step for one record, count its decision, do the I/O it decides; returns the sends."""
        started = time.perf_counter()
        decision = await self._decide(record)
        if self.metrics is not None:
            self.metrics.observe(record, decision, time.perf_counter() - started, now=self.bus.clock())
        return await self._act(record, decision, staged)

    async def _decide(self, record: Record) -> Decision:
        """The step's final decision for ``record``: its ``prepare`` answered, retries done."""
        attempt = 1
        while True:
            ctx = self.context()
            decision = self.step.run(record, ctx=ctx, lookup=self.lookup, attempt=attempt)
            if isinstance(decision, Prepare):
                assert self.prepare is not None
                try:
                    extra = await self.prepare(decision.received)
                except Exception as error:
                    decision = self.step.failure(record, error, attempt, now=ctx.now)
                else:
                    # From here to the table write nothing awaits: the timer cannot interleave on this key.
                    decision = self.step.resume(decision, extra, ctx=ctx, lookup=self.lookup, attempt=attempt)
            if isinstance(decision, Fail) and decision.action is Action.RETRY:
                self.stats["retried"] += 1
                await asyncio.sleep(decision.delay)  # the policy's backoff, not a wait for an event
                attempt += 1
                continue
            return decision

    async def _act(self, record: Record, decision: Decision, staged: dict[bytes, Any]) -> list[Awaitable[Any]]:
        if isinstance(decision, Skip):
            self.stats[decision.reason] += 1
            return []
        if isinstance(decision, Rekey):
            self.stats["rekeyed"] += 1
            return [await self._send(decision.record)]
        if isinstance(decision, Emit):
            if self.watermarks is not None and decision.time is not None:
                self.watermarks.observe((record.topic, record.partition), decision.time)
            self._stage(staged, decision.key.encode(), decision.entry.to_json())
            self.stats["processed"] += 1
            self.stats["emitted"] += len(decision.outputs)
            return [await self._send(r) for r in decision.outputs]
        assert isinstance(decision, Fail)
        if decision.action is Action.RAISE:
            raise decision.error
        assert decision.dead_letter is not None
        self.stats["dead_lettered"] += 1
        ce_id = dict(record.headers).get("ce_id", b"").decode("utf-8", "replace")
        log.warning("%s dead-lettered %s[%s]@%s: %s", self.core.name, record.topic, record.partition,
                    record.offset, type(decision.error).__name__,
                    extra={"ce_id": ce_id, "dossier": (record.key or b"").decode("utf-8", "replace"),
                           "processor": self.core.name, "error_class": type(decision.error).__name__})
        return [await self._send(decision.dead_letter)]

    def _stage(self, staged: dict[bytes, Any], key: bytes, value: Any) -> None:
        """Set a state in memory now; its changelog record is written by :meth:`_delivered`."""
        self.table.data[key] = value  # the store itself: no buffered changelog write by faust
        staged[key] = value

    async def _send(self, r: Record) -> Awaitable[Any]:
        assert r.topic is not None
        return await self.app.producer.send(r.topic, r.key, r.value, None, None, list(r.headers))

    # -- the timer ------------------------------------------------------------------------------

    def owned_keys(self) -> list[str]:
        """Keys of the states whose partition this worker owns now."""
        owned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.rekey.name}
        return [k.decode() for k in list(self.table.keys()) if partition_of(k) in owned]

    async def _tick(self) -> None:
        if not self.references.ready.is_set():
            return
        now = self.bus.clock() if self.watermarks is None else self._watermark()
        if now is None:
            return
        async with self.writing:
            staged: dict[bytes, Any] = {}
            pending = await self._tick_owned(now, staged)
            await self._delivered(pending, staged)

    def _watermark(self) -> dt.datetime | None:
        """On event time: the time the states no event reaches any more have got to.

        A state's own events run its timers up to their time (:meth:`bus.Step.tick`); this
        periodic tick moves the others to the watermark (:class:`bus.Watermarks`): the oldest
        event time of the input partitions this worker has not read to their end (a partition
        read to its end does not hold time back), minus the allowed lateness. A stream silent
        for ``idle`` seconds with every partition read to its end has nothing older to say: time
        then follows the wall clock (an idle source, as in live operation: a deadline still
        passes at night), day by day, so each timer still runs on its day.
        """
        assert self.watermarks is not None
        consumer = self.app.consumer
        sources = {*self.partitions, self.rekey.name}
        assigned = [tp for tp in consumer.assignment() if tp.topic in sources]
        self.watermarks.keep({(tp.topic, tp.partition) for tp in assigned})
        behind = [(tp.topic, tp.partition) for tp in assigned
                  if tp in self.last_offsets and self.last_offsets[tp] + 1 < (consumer.highwater(tp) or 0)]
        mark = self.watermarks.now(behind)
        loop = asyncio.get_running_loop()
        silent = None if self.last_batch is None else loop.time() - self.last_batch
        idle = self.idle > 0 and not behind and silent is not None and silent >= self.idle
        now = mark
        if idle:  # the source has nothing older to say: time follows the wall clock, never backwards
            wall = self.bus.clock()
            now = wall if mark is None else max(wall, mark)
        if loop.time() >= self._explained + 60:  # what holds the stream's time, once a minute in the log
            self._explained = loop.time()
            log.info("%s: timers at %s on %s (watermark %s; %d partitions behind: %s; silent for %s s, "
                     "idle after %g s)", self.core.name, now, "the wall clock" if idle else "event time", mark,
                     len(behind), ", ".join(f"{t}[{p}]" for t, p in behind[:5]) or "none",
                     "-" if silent is None else f"{silent:.0f}", self.idle)
        return now

    async def _tick_owned(self, now: dt.datetime, staged: dict[bytes, Any]) -> list[Awaitable[Any]]:
        """Timers at ``now`` for each state this worker owns; the states are staged, the sends returned."""
        ctx = self.context(now)
        pending: list[Awaitable[Any]] = []
        for key in self.owned_keys():
            entry = self.lookup(key)
            if entry is None:
                continue
            decision = self.step.tick(key, entry, ctx)
            if decision is None:
                continue
            self._stage(staged, key.encode(), decision.entry.to_json())
            self.stats["ticked"] += 1
            pending += [await self._send(r) for r in decision.outputs]
        return pending


def _never_commit(events: Sequence[Any], consumer: Any) -> None:
    """Keep a batch that was cut (stop, crash) out of the commits: it is redelivered to the next worker.

    faust's ``take_events`` acknowledges a batch in a ``finally``, so a batch cancelled by a stop
    (its agent cancelled while waiting for its outputs) was acknowledged, then committed by the
    consumer's last commit, unprocessed. Marked as acknowledged here, its messages are skipped by
    the consumer's ``ack`` and their offsets never reach a commit; no longer in the agent's hands,
    they are re-read from the commit point (``processors.app``'s reconcile timer) if the worker
    does not stop.
    """
    for event in events:
        event.message.acked = True
        consumer._unacked_messages.discard(event.message)
