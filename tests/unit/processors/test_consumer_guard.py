"""The worker's guards on faust's consumer (``processors.app.guard_consumer``), without a broker.

What they prevent is shown on the real broker by the killed-worker and demo-twice integration
tests; here each guard's rule is pinned on a stand-in for aiokafka's consumer.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition

from processors.app import _seek_inputs_to_committed, guard_consumer

pytestmark = pytest.mark.asyncio

INPUT, FRESH, AT_ZERO = (TopicPartition("p.dcant.acts", n) for n in range(3))
CHANGELOG = TopicPartition("p.dcant-bus-acts-lifecycle-state-changelog", 0)


class StandInConsumer:
    """What ``_seek_inputs_to_committed`` uses of an AIOKafkaConsumer, recording the seeks."""

    def __init__(self, committed: dict[TopicPartition, int | None], beginning: dict[TopicPartition, int]) -> None:
        self.committed, self.beginning = committed, beginning
        self.seeks: dict[TopicPartition, int] = {}
        self.asked: list[TopicPartition] = []

    async def seek_to_committed(self) -> dict[TopicPartition, int | None]:
        # aiokafka seeks only offsets above 0 and returns every committed offset, None included
        self.seeks.update({tp: offset for tp, offset in self.committed.items() if offset and offset > 0})
        return dict(self.committed)

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked += partitions
        return {tp: self.beginning[tp] for tp in partitions}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset


async def test_an_input_partition_never_committed_starts_at_its_beginning():
    consumer = StandInConsumer({INPUT: 42, FRESH: None, AT_ZERO: 0, CHANGELOG: None},
                               {FRESH: 7, AT_ZERO: 3, CHANGELOG: 0})
    committed = await _seek_inputs_to_committed(consumer)
    assert consumer.seeks == {INPUT: 42, FRESH: 7, AT_ZERO: 3}
    assert committed == {INPUT: 42, FRESH: 7, AT_ZERO: 3, CHANGELOG: None}
    assert CHANGELOG not in consumer.asked  # faust's recovery seeks changelogs itself


async def test_a_fetch_with_no_active_partition_reads_nothing():
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    guard_consumer()
    guard_consumer()  # idempotent: wrapping twice would still be one guard
    thread = SimpleNamespace(consumer=SimpleNamespace(flow_active=True))
    assert await AIOKafkaConsumerThread._fetch_records(thread, consumer=None, active_partitions=set()) == {}
    assert AIOKafkaConsumerThread._bus_guarded is True


class StandInFaustConsumer:
    """What the guarded ``Consumer.getmany`` uses of faust's consumer, recording the seeks."""

    def __init__(self, records: dict, active: set, *, generation_changes_after: int | None = None) -> None:
        self.records, self.active, self.seeks = records, active, {}
        self.flow_active, self.should_stop, self._buffered_partitions = True, False, set()
        self.delivered = 0
        self.generation_changes_after = generation_changes_after
        self.scheduler = SimpleNamespace(iterate=lambda recs: ((tp, r) for tp, rs in recs.items() for r in rs))
        self.app = SimpleNamespace(monitor=SimpleNamespace(track_tp_end_offset=lambda tp, hw: None))
        self.app.consumer_generation_id = 1
        self.log = SimpleNamespace(warning=lambda message: None)

    async def _wait_next_records(self, timeout: float):
        return self.records, self.active

    def highwater(self, tp):
        return 0

    def _to_message(self, tp, record):
        self.delivered += 1
        if self.generation_changes_after is not None and self.delivered >= self.generation_changes_after:
            self.app.consumer_generation_id = 2  # a rebalance while the fetch is being delivered
        return (tp, record.offset)

    def assignment(self):
        return {INPUT, FRESH, AT_ZERO}

    async def seek_wait(self, partitions):  # faust's seek run in the consumer's thread
        self.seeks.update(partitions)


def records(tp: TopicPartition, *offsets: int) -> list:
    return [SimpleNamespace(offset=o) for o in offsets]


async def test_records_of_an_inactive_partition_are_read_again_not_skipped():
    from faust.transport.consumer import Consumer

    guard_consumer()
    consumer = StandInFaustConsumer({INPUT: records(INPUT, 10, 11), FRESH: records(FRESH, 4, 5)}, {INPUT})
    got = [m async for _, m in Consumer.getmany(consumer, 1.0)]
    assert got == [(INPUT, 10), (INPUT, 11)]
    assert consumer.seeks == {FRESH: 4}  # fetched again from the first dropped record


async def test_records_cut_by_a_new_generation_are_read_again():
    from faust.transport.consumer import Consumer

    guard_consumer()
    consumer = StandInFaustConsumer({INPUT: records(INPUT, 10, 11, 12), AT_ZERO: records(AT_ZERO, 0, 1)},
                                    {INPUT, AT_ZERO}, generation_changes_after=2)
    got = [m async for _, m in Consumer.getmany(consumer, 1.0)]
    assert got == [(INPUT, 10), (INPUT, 11)]
    assert consumer.seeks == {INPUT: 12, AT_ZERO: 0}


async def test_records_skipped_by_the_fetch_are_read_again():
    from faust.transport.consumer import Consumer

    guard_consumer()
    # sought to 6 (committed) on assignment, yet the fetch returns 21: 6..20 were never handed over
    consumer = StandInFaustConsumer({INPUT: records(INPUT, 21, 22), FRESH: records(FRESH, 4, 5)}, {INPUT, FRESH})
    consumer.__dict__["_bus_next"] = {INPUT: 6, FRESH: 4}
    got = [m async for _, m in Consumer.getmany(consumer, 1.0)]
    assert got == [(FRESH, 4), (FRESH, 5)]
    assert consumer.seeks == {INPUT: 6}
    assert consumer.__dict__["_bus_next"] == {INPUT: 6, FRESH: 6}
    consumer.records = {INPUT: records(INPUT, 6, 7)}  # read again from 6: handed over in order
    assert [m async for _, m in Consumer.getmany(consumer, 1.0)] == [(INPUT, 6), (INPUT, 7)]
    assert consumer.__dict__["_bus_next"][INPUT] == 8


async def test_a_skip_seen_three_times_is_records_deleted_by_retention():
    from faust.transport.consumer import Consumer

    guard_consumer()
    consumer = StandInFaustConsumer({INPUT: records(INPUT, 30)}, {INPUT})
    consumer.__dict__["_bus_next"] = {INPUT: 6}
    for _ in range(2):
        assert [m async for _, m in Consumer.getmany(consumer, 1.0)] == []
    assert [m async for _, m in Consumer.getmany(consumer, 1.0)] == [(INPUT, 30)]


async def test_a_gap_in_offsets_is_never_committed_as_done():
    from faust.transport.consumer import Consumer

    guard_consumer()
    consumer = SimpleNamespace(_committed_offset={INPUT: 9}, _gap={})
    await Consumer._add_gap(consumer, INPUT, 10, 14)
    assert consumer._gap == {}  # faust would mark 10..14 done; the guard leaves them to be read


def committing(committed: dict, starts: dict, acked: dict) -> SimpleNamespace:
    """What faust's ``Consumer._new_offset`` reads, for the guarded version."""
    consumer = SimpleNamespace(_committed_offset=committed, _acked=acked,
                               _acked_index={tp: set(offsets) for tp, offsets in acked.items()})
    consumer.__dict__["_bus_starts"] = starts
    return consumer


async def test_a_missing_head_record_is_never_committed_past():
    from faust.transport.consumer import Consumer

    guard_consumer()
    # committed 10 means "record 10 is next": 11 and 12 done, 10 not yet (faust would commit 13)
    consumer = committing({INPUT: 10}, {}, {INPUT: [11, 12]})
    assert Consumer._new_offset(consumer, INPUT) is None
    consumer._acked[INPUT] = [12, 10, 11]
    assert Consumer._new_offset(consumer, INPUT) == 13


async def test_a_partition_never_committed_commits_only_from_where_it_started():
    from faust.transport.consumer import Consumer

    guard_consumer()
    # nothing committed yet (faust's None, or 0): records 0..4 were dropped, 5..7 are done
    consumer = committing({FRESH: None}, {FRESH: 0}, {FRESH: [5, 6, 7]})
    assert Consumer._new_offset(consumer, FRESH) is None
    consumer._acked[FRESH] += [0, 1, 2, 3, 4]
    assert Consumer._new_offset(consumer, FRESH) == 8
    unknown = committing({AT_ZERO: None}, {}, {AT_ZERO: [3]})
    assert Consumer._new_offset(unknown, AT_ZERO) is None  # where it started is unknown: wait for the seek
