"""aiokafka's retry chatter summarised: one line per broker and period instead of one per attempt.

While a broker is down aiokafka logs every failed connection and fetch at ERROR, about ten lines
a second per client. :class:`BrokerChatter` (a filter on the root handlers) lets none of those
through and says instead, once failures have lasted ``period`` seconds and then at most once per
period: ``broker 127.0.0.1:9092 unreachable: 37 failed attempt(s) in the last 30 s, retrying with
backoff`` — one line an operator can act on, and none from a command that fails at once (its
error is its one line). aiokafka's other records are dropped unless ``BUS_LOG_LEVEL=DEBUG`` (the bus reports real
failures as typed errors).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

__all__ = ["BrokerChatter"]

_ADDRESS = re.compile(r"\('?(?P<host>[\w.:-]+)'?, (?P<port>\d+)\)|(?P<hp>[\w.-]+:\d+)")
_CONNECTION = ("Unable connect to node", "Unable to bootstrap", "Connect call failed", "NodeNotReadyError",
               "Unable to update metadata", "KafkaConnectionError")


class BrokerChatter(logging.Filter):
    """Drop aiokafka's records; summarise its connection failures per broker every ``period`` s."""

    def __init__(self, period: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.period, self.clock = period, clock
        self.counts: dict[str, int] = {}
        self.since: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        message = record.getMessage()
        if not any(marker in message for marker in _CONNECTION):
            return False
        found = _ADDRESS.search(message)
        broker = (found.group("hp") or f"{found.group('host')}:{found.group('port')}") if found else "the broker"
        now = self.clock()
        self.counts[broker] = self.counts.get(broker, 0) + 1
        # The first failure opens a window; a line is written once failures lasted a whole period,
        # so a command that fails at once still fails with its one line and nothing else.
        start = self.since.setdefault(broker, now)
        if now - start < self.period:
            return False
        count = self.counts.pop(broker)
        self.since[broker] = now
        record.name, record.levelno, record.levelname = "bus.broker", logging.WARNING, "WARNING"
        record.msg, record.args = ("broker %s unreachable: %d failed attempt(s) in the last %.0f s, retrying with "
                                   "backoff"), (broker, count, max(now - start, 0.0))
        record.exc_info = record.exc_text = None
        return True
