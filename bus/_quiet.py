"""aiokafka's retry chatter summarised: one line per broker and period instead of one per attempt.

While a broker is down aiokafka logs every failed connection and fetch at ERROR, about ten lines
a second per client. :class:`BrokerChatter` (a filter on the root handlers) lets none of those
through and says instead, at most once per ``period`` seconds: ``broker 127.0.0.1:9092
unreachable: 37 attempts in the last 30 s, retrying with backoff`` — one line an operator can act
on. aiokafka's other records are dropped unless ``BUS_LOG_LEVEL=DEBUG`` (the bus reports real
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
        window = self.since.get(broker)  # when this broker's last line was written
        if window is not None and now - window < self.period:
            return False
        count = self.counts.pop(broker)
        self.since[broker] = now
        start = now if window is None else window
        record.name, record.levelno, record.levelname = "bus.broker", logging.WARNING, "WARNING"
        record.msg, record.args = ("broker %s unreachable: %d failed attempt(s) in the last %.0f s, retrying with "
                                   "backoff"), (broker, count, max(now - start, 0.0))
        record.exc_info = record.exc_text = None
        return True
