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
