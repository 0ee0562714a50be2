"""An in-memory topology test driver for processor cores, after Kafka Streams' TopologyTestDriver.

The driver is a third shell of the bus's one per-record step (:class:`bus.Step`), beside the
faust worker and :class:`bus.client.Subscriber`: skip by type, open, key, re-key, duplicate
check, ``prepare`` (a :class:`bus.Binding`'s I/O step), process, derived ids, seal and the error
policy are exactly what production runs; only the topics are lists in memory. Every hop goes
through the real wire: an input event is sealed (Avro single-object, CloudEvents
headers, Ed25519 signature by a test producer key), opened (verified, decoded) as a consumer
would, handed to the core with a fake clock, and every output is sealed with the processor's
key and stored as bytes, to be opened again when the test reads it. A schema drift, a
signature bug or a non-serialisable output fails at the first hop, as it would on Kafka.
Records the core rejects with a :class:`bus.BusError` land in ``dead_letters`` with their
original bytes, as the real consumer routes them.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import datetime as dt
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from bus._catalog import Catalog, default_catalog
from bus._erasure import DossierKeyStore
from bus._errors import BusError
from bus._keys import KeyDirectory, SigningKey, generate_key
from bus._policy import Action, ErrorPolicy
from bus._processor import Context, Processor
from bus._step import Binding, Emit, Entry, Fail, Prepare, Rekey, Skip, Step
from bus._wire import Event, Received, Record, Wire

__all__ = ["FakeClock", "TestInputTopic", "TestOutputTopic", "TopologyTestDriver"]

EPOCH = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: dt.datetime = EPOCH) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        self.now += delta
        return self.now

    def set(self, moment: dt.datetime) -> None:
        if moment < self.now:
            raise ValueError("the fake clock does not go backwards")
        self.now = moment


class TestInputTopic:
    """Pipes events into the driver as a given producer would send them."""

    __test__ = False  # not a pytest test class

    def __init__(self, driver: TopologyTestDriver, topic: str) -> None:
        self._driver = driver
        self.topic = topic

    def pipe(self, event: Event, *, source_siren: str = "213100000") -> Record:
        """Seal ``event`` with the test key of ``source_siren`` and deliver it."""
        record = self._driver.seal_as(source_siren, event, topic=self.topic)
        self._driver.deliver(record)
        return record

    def pipe_record(self, record: Record) -> None:
        """Deliver raw bytes (forged, altered, duplicated records)."""
        self._driver.deliver(Record(record.key, record.value, record.headers, self.topic,
                                    0, self._driver._next_offset(self.topic), record.timestamp_ms))

    def pipe_all(self, events: Iterable[Event], **kwargs: Any) -> list[Record]:
        return [self.pipe(e, **kwargs) for e in events]


class TestOutputTopic:
    """Reads what the processor emitted on one topic, opened through the real wire."""

    __test__ = False

    def __init__(self, driver: TopologyTestDriver, topic: str) -> None:
        self._driver = driver
        self.topic = topic
        self._position = 0

    def read(self) -> Received:
        records = self._driver.outputs[self.topic]
        if self._position >= len(records):
            raise AssertionError(f"no more output on {self.topic}")
        self._position += 1
        return self._driver.wire.open(records[self._position - 1])

    def read_all(self) -> list[Received]:
        out = []
        while not self.is_empty():
            out.append(self.read())
        return out

    def is_empty(self) -> bool:
        return self._position >= len(self._driver.outputs[self.topic])


T = TypeVar("T")


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a ``prepare`` coroutine to its end from synchronous test code (in a thread if a loop runs)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class TopologyTestDriver:
    """Runs one processor core (or a :class:`bus.Binding`) over in-memory topics with a fake clock.

    ``event_time``: as ``bus worker --clock event``, the core sees each event's own time and a
    state's timers catch up to it before it is processed (:class:`bus.Step`). ``dossier_keys``:
    the operator's per-dossier key store (:mod:`bus._erasure`), shared by the test producers and
    the processor as on a deployed bus: personal fields then travel encrypted, and destroying a
    dossier's key shows them erased to every later read.
    """

    def __init__(self, processor: Processor | Binding, *, catalog: Catalog | None = None,
                 clock: FakeClock | None = None, processor_siren: str = "130000000",
                 policy: ErrorPolicy | None = None, event_time: bool = False,
                 dossier_keys: DossierKeyStore | None = None) -> None:
        binding = processor if isinstance(processor, Binding) else Binding(processor)
        self.processor = binding.core
        self.prepare = binding.prepare
        self.catalog = catalog or default_catalog()
        self.clock = clock or FakeClock()
        self.directory = KeyDirectory()
        self.dossier_keys = dossier_keys
        self._producers: dict[str, SigningKey] = {}
        key = self._key_for(processor_siren)
        name = self.processor.name
        self.wire = Wire(self.catalog, self.directory, key, source=f"urn:siren:{processor_siren}:{name}",
                         clock=self.clock, dossier_keys=dossier_keys)
        self.rekey_topic = f"rekey.{name}"
        self.step = Step(self.wire, name=name, core=self.processor, policy=policy or ErrorPolicy(backoff_ms=0),
                         rekey_topic=self.rekey_topic, prepares=self.prepare is not None, event_time=event_time)
        self.entries: dict[str, Entry] = {}
        self.tables: dict[str, dict[str, Any]] = {t: {} for t in self.processor.tables}
        self.outputs: dict[str, list[Record]] = collections.defaultdict(list)
        self.dead_letters: list[tuple[Record, BusError]] = []
        self.stats: collections.Counter[str] = collections.Counter()
        self._offsets: collections.Counter[str] = collections.Counter()

    @property
    def states(self) -> dict[str, Any]:
        """Every state by key (a copy: change them through records, not here)."""
        return {key: entry.state for key, entry in self.entries.items()}

    def _key_for(self, siren: str) -> SigningKey:
        if siren not in self._producers:
            key = generate_key(siren, f"test producer {siren}", valid_from=self.clock.now - dt.timedelta(days=3650))
            self.directory.add(key.public)
            self._producers[siren] = key
        return self._producers[siren]

    def _next_offset(self, topic: str) -> int:
        offset = self._offsets[topic]
        self._offsets[topic] += 1
        return offset

    def seal_as(self, siren: str, event: Event, *, topic: str) -> Record:
        wire = Wire(self.catalog, self.directory, self._key_for(siren), source=f"urn:siren:{siren}:test",
                    clock=self.clock, dossier_keys=self.dossier_keys)
        record = wire.seal(event)
        return Record(record.key, record.value, record.headers, topic, 0, self._next_offset(topic),
                      int(self.clock.now.timestamp() * 1000))

    def input_topic(self, topic: str) -> TestInputTopic:
        return TestInputTopic(self, topic)

    def output_topic(self, topic: str) -> TestOutputTopic:
        return TestOutputTopic(self, topic)

    def context(self) -> Context:
        return Context(now=self.clock.now, tables=self.tables)

    def deliver(self, record: Record) -> None:
        """What the worker does with one record: a reference table's update, or the step."""
        if record.topic in self.tables:
            self._update_table(record)  # the worker's ReferenceTables reader
        if record.topic not in self.processor.inputs and record.topic != self.rekey_topic:
            return
        attempt = 1
        while True:
            ctx = self.context()
            decision = self.step.run(record, ctx=ctx, lookup=self.entries.get, attempt=attempt)
            if isinstance(decision, Prepare):
                assert self.prepare is not None
                try:
                    extra = _run_sync(self.prepare(decision.received))
                except Exception as error:
                    decision = self.step.failure(record, error, attempt, now=ctx.now)
                else:
                    decision = self.step.resume(decision, extra, ctx=ctx, lookup=self.entries.get, attempt=attempt)
            if isinstance(decision, Fail) and decision.action is Action.RETRY:
                self.stats["retried"] += 1  # the backoff is simulated: the fake clock does not move
                attempt += 1
                continue
            break
        if isinstance(decision, Skip):
            self.stats[decision.reason] += 1
        elif isinstance(decision, Rekey):
            self.stats["rekeyed"] += 1
            self._append(decision.record)
            self.deliver(self.outputs[self.rekey_topic][-1])
        elif isinstance(decision, Emit):
            self._emit(decision)
        else:
            assert isinstance(decision, Fail)
            if decision.action is Action.RAISE:
                raise decision.error
            assert decision.dead_letter is not None
            self._append(decision.dead_letter)
            self.dead_letters.append((self.step.original(record)[0], decision.error))  # type: ignore[arg-type]

    def _update_table(self, record: Record) -> None:
        try:
            received = self.wire.open(record)
        except BusError as err:
            self.stats["rejected_reference"] += 1
            self.dead_letters.append((record, err))
            return
        self.tables[record.topic or ""][received.subject] = received.data

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock and fire every dossier's timers."""
        self.clock.advance(delta)
        for key in sorted(self.entries):
            decision = self.step.tick(key, self.entries[key], self.context())
            if decision is not None:
                self._emit(decision)

    def _emit(self, decision: Emit) -> None:
        self.entries[decision.key] = decision.entry
        for record in decision.outputs:
            self._append(record)

    def _append(self, record: Record) -> None:
        topic = record.topic or ""
        self.outputs[topic].append(Record(record.key, record.value, record.headers, topic, 0,
                                          self._next_offset(topic), int(self.clock.now.timestamp() * 1000)))

    def state(self, key: str) -> Any:
        entry = self.entries.get(key)
        return None if entry is None else entry.state
