"""An in-memory topology test driver for processor cores, after Kafka Streams' TopologyTestDriver.

Every hop goes through the real wire: an input event is sealed (Avro single-object, CloudEvents
headers, Ed25519 signature by a test producer key), opened (verified, decoded) as a consumer
would, handed to the core with a fake clock, and every output is sealed with the processor's
key and stored as bytes, to be opened again when the test reads it. A schema drift, a
signature bug or a non-serialisable output fails at the first hop, as it would on Kafka.
Records the core rejects with a :class:`bus.BusError` land in ``dead_letters`` with their
original bytes, as the real consumer routes them.
"""

from __future__ import annotations

import collections
import copy
import datetime as dt
from collections.abc import Iterable
from typing import Any

from bus._catalog import Catalog, default_catalog
from bus._errors import BusError
from bus._keys import KeyDirectory, SigningKey, generate_key
from bus._processor import Context, Processor, reads
from bus._topics import topic_for_schema
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


class TopologyTestDriver:
    """Runs one processor core over in-memory topics with a fake clock."""

    def __init__(self, processor: Processor, *, catalog: Catalog | None = None,
                 clock: FakeClock | None = None, processor_siren: str = "130000000") -> None:
        self.processor = processor
        self.catalog = catalog or default_catalog()
        self.clock = clock or FakeClock()
        self.directory = KeyDirectory()
        self._producers: dict[str, SigningKey] = {}
        key = self._key_for(processor_siren)
        self.wire = Wire(self.catalog, self.directory, key, source=f"urn:siren:{processor_siren}:{processor.name}",
                         clock=self.clock)
        self.states: dict[str, Any] = {}
        self.tables: dict[str, dict[str, Any]] = {t: {} for t in processor.tables}
        self.outputs: dict[str, list[Record]] = collections.defaultdict(list)
        self.dead_letters: list[tuple[Record, BusError]] = []
        self._offsets: collections.Counter[str] = collections.Counter()

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
                    clock=self.clock)
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
        """What the faust shell does with one record: open, update tables or run the core."""
        if record.topic not in self.tables and not reads(self.processor, record.headers):
            return  # not one of the core's types: a shell skips it unread
        try:
            received = self.wire.open(record)
            if record.topic in self.tables:
                self.tables[record.topic][received.subject] = received.data
            if record.topic not in self.processor.inputs:
                return
            key = self.processor.key(received, self.context())
            if key is None:
                return
            state = self.states.get(key)
            if state is None:
                state = self.processor.initial_state()
            new_state, events = self.processor.process(copy.deepcopy(state), received, self.context())
        except BusError as err:
            self.dead_letters.append((record, err))
            return
        self._emit(key, new_state, events)

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock and fire every dossier's timers."""
        self.clock.advance(delta)
        for key in sorted(self.states):
            new_state, events = self.processor.on_time(copy.deepcopy(self.states[key]), key, self.context())
            self._emit(key, new_state, events)

    def _emit(self, key: str, state: Any, events: list[Event]) -> None:
        self.states[key] = state
        for event in events:
            topic = topic_for_schema(event.schema)
            record = self.wire.seal(event)
            self.outputs[topic].append(Record(record.key, record.value, record.headers, topic, 0,
                                              self._next_offset(topic), int(self.clock.now.timestamp() * 1000)))

    def state(self, key: str) -> Any:
        return self.states.get(key)
