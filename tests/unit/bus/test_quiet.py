"""aiokafka's connection chatter becomes one line per broker and period (bus._quiet)."""

from __future__ import annotations

import logging

from bus._quiet import BrokerChatter


def record(name: str, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), None)


def test_a_lost_broker_is_one_line_per_period_with_its_address_and_count():
    now = [0.0]
    chatter = BrokerChatter(period=30, clock=lambda: now[0])
    failure = "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 9092)"
    passed = []
    for _ in range(40):  # ten a second for four seconds: nothing (a command failing at once adds no line)
        passed.append(chatter.filter(record("aiokafka.conn", failure)))
        now[0] += 0.1
    assert not any(passed)
    now[0] = 31.0
    later = record("aiokafka.consumer.fetcher", failure)
    assert chatter.filter(later) is True
    assert later.levelname == "WARNING" and later.name == "bus.broker"
    assert later.getMessage() == ("broker 127.0.0.1:9092 unreachable: 41 failed attempt(s) in the last 31 s, "
                                  "retrying with backoff")
    now[0] = 35.0
    assert chatter.filter(record("aiokafka", failure)) is False  # the next line a period later


def test_other_aiokafka_records_are_dropped_and_the_rest_passes():
    chatter = BrokerChatter()
    assert chatter.filter(record("aiokafka.consumer.group_coordinator", "Metadata for topic has changed")) is False
    assert chatter.filter(record("processors.app", "Unable connect to node")) is True
