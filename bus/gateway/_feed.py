"""The gateway's view of the bus: one consumer tailing the family, notification and dead-letter topics.

Every record is verified (``wire.open``) and kept as a :class:`FeedItem` with a gateway-wide
sequence number (what waiting readers compare). The ingress topic is read only to learn which
submissions gateways made (so statuses survive a restart). From the same stream come the statuses of
submissions (events *caused* by a submission, dead letters *of* it) and the inboxes: an event
concerns an administration when its source is that SIREN, when its payload names the SIREN
(or a SIRET of it), or when it was caused by or correlated with one of its submissions.

An addressed event (``ce_recipients``, a sealed payload) concerns its recipients only, whatever
its source, subject or payload: the payload is theirs. The gateway decrypts it with the keys of
the administrations it serves; an inbox lists it with ``recipients`` and ``decrypted``. When the
gateway serves a recipient but holds no key of it (a configuration error, logged), the recipient's
inbox still lists the event, verified, with ``data`` null and ``decrypted`` false, rather than
drop what was sent to it. An event addressed to none of them is listed in no inbox (it still
counts for the status of the submission that caused it: envelope only).
Readers wait on :meth:`Feed.wait` (long polling, SSE, webhooks) instead of polling Kafka.

The index lives in memory and is rebuilt from the topics' beginning at start: fine for an
administration's gateway, not for a national one (an issue-13 follow-up). Inbox cursors are
per-partition offsets (:mod:`._cursor`), so they stay valid across restarts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from bus._actor import Actor
from bus._envelope import Envelope
from bus._errors import BusError, NotARecipientError
from bus._metrics import GatewayMetrics
from bus._settings import BusSettings
from bus._step import DLQ_PREFIX
from bus._wire import Record, Wire

from ._cursor import Cursor

__all__ = ["DeadLetter", "Feed", "FeedItem", "names_siren"]

log = logging.getLogger("bus.gateway.feed")
_GATEWAY_SOURCE = re.compile(r"^urn:siren:(\d{9}):gateway$")


@dataclasses.dataclass(frozen=True, slots=True)
class FeedItem:
    """A verified event as the gateway serves it (payload already JSON-friendly)."""

    seq: int
    topic: str
    partition: int
    offset: int
    id: str
    type: str
    source: str
    subject: str
    time: str
    correlationid: str | None
    causationid: str | None
    data: Any
    #: The agent who acted (the event's verified ``actor`` claims), when it names one.
    actor: dict[str, Any] | None = None
    #: An addressed event's recipients (``ce_recipients``); None for a broadcast one.
    recipients: tuple[str, ...] | None = None
    #: False when the gateway could not decrypt an addressed event (``data`` is then None).
    decrypted: bool = True

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("seq", "actor", "recipients", "decrypted")}
        if self.actor is not None:
            out["actor"] = self.actor
        if self.recipients is not None:
            out |= {"recipients": list(self.recipients), "decrypted": self.decrypted}
        return out


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-lettered record: which event, and the error class, message and hint."""

    ce_id: str
    error_class: str
    message: str
    hint: str
    processor: str | None
    topic: str
    offset: int


def names_siren(value: Any, siren: str) -> bool:
    """True when a payload value is ``siren`` or a SIRET of it, anywhere in ``value``."""
    if isinstance(value, str):
        return value == siren or (len(value) == 14 and value.isdigit() and value.startswith(siren))
    if isinstance(value, Mapping):
        return any(names_siren(v, siren) for v in value.values())
    if isinstance(value, list | tuple):
        return any(names_siren(v, siren) for v in value)
    return False


class Feed:
    """Tails ``topics`` (verified) and ``deadletter`` into an in-memory index; see the module doc."""

    def __init__(self, settings: BusSettings, wire: Wire, topics: Iterable[str], deadletter: str, *,
                 to_json: Callable[[Any], Any], submissions: str | None = None,
                 metrics: GatewayMetrics | None = None, administrations: Collection[str] = ()) -> None:
        self.settings = settings
        self.wire = wire
        self.topics = tuple(topics)
        self.deadletter = deadletter
        self.submissions = submissions
        self.to_json = to_json
        self.administrations = frozenset(administrations)  # served: whose undecryptable events are an error
        self.items: list[FeedItem] = []
        self.caused_by: dict[str, list[FeedItem]] = defaultdict(list)
        self.by_id: dict[str, FeedItem] = {}
        self.dead: dict[str, DeadLetter] = {}
        self.submitted_by: dict[str, str] = {}  # submission ce_id -> SIREN
        self.rejected = 0
        self.metrics = metrics
        self.consumer: AIOKafkaConsumer | None = None  # while run() reads (lag and readiness)
        self.ready = asyncio.Event()
        self._changed = asyncio.Condition()
        self._listeners: list[Callable[[FeedItem], None]] = []

    def listen(self, callback: Callable[[FeedItem], None]) -> None:
        """Call ``callback`` with every new item (webhook dispatch)."""
        self._listeners.append(callback)

    def concerns(self, item: FeedItem, siren: str) -> bool:
        if item.recipients is not None:
            return siren in item.recipients
        if item.source.startswith(f"urn:siren:{siren}:") or siren in item.subject:
            return True
        if self.submitted_by.get(item.causationid or "") == siren or \
                self.submitted_by.get(item.correlationid or "") == siren:
            return True
        return names_siren(item.data, siren)

    def inbox(self, siren: str, after: Cursor, limit: int, types: Callable[[str], bool] | None = None,
              *, since: int = 0) -> list[FeedItem]:
        """Up to ``limit`` items concerning ``siren`` past ``after`` (only from sequence ``since`` on)."""
        out = []
        for item in self.items[max(since, 0):]:
            if after.admits(item.topic, item.partition, item.offset) and self.concerns(item, siren) \
                    and (types is None or types(item.type)):
                out.append(item)
                if len(out) >= limit:
                    break
        return out

    async def wait(self, after: int, timeout: float) -> None:
        """Return when an item with ``seq > after`` exists, or after ``timeout`` seconds."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: len(self.items) > after), timeout)
            except TimeoutError:
                return

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set (no consumer group: every gateway reads everything)."""
        from bus.client import kafka_args

        extra = (self.submissions,) if self.submissions else ()
        consumer = AIOKafkaConsumer(*self.topics, self.deadletter, *extra, **kafka_args(self.settings), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    metadata_max_age_ms=5000)
        await consumer.start()
        self.consumer = consumer
        try:
            while not stop.is_set():
                try:
                    batch = await consumer.getmany(timeout_ms=200)
                except KafkaError as exc:
                    log.warning("feed: %s", exc)
                    continue
                for messages in batch.values():
                    for m in messages:
                        self._add(Record(m.key, m.value, tuple(m.headers or ()), m.topic, m.partition, m.offset,
                                         m.timestamp))
                if batch:
                    async with self._changed:
                        self._changed.notify_all()
                elif not self.ready.is_set():
                    self.ready.set()
        finally:
            self.consumer = None
            await consumer.stop()

    def _add(self, record: Record) -> None:
        if record.topic == self.deadletter:
            self._add_dead(record)
            return
        try:
            received = self.wire.open(record)
            env, payload, decrypted = received.envelope, received.data, True
        except NotARecipientError as err:
            if err.envelope is None:  # no verified envelope to show: nothing to serve
                self.rejected += 1
                return
            env, payload, decrypted = err.envelope, None, False
            lacking = self.administrations.intersection(env.recipient_sirens)
            if lacking:
                log.error("feed: event %s is addressed to %s, and this gateway holds no decryption key of it",
                          env.id, ", ".join(sorted(lacking)))
        except BusError as err:
            self.rejected += 1
            log.warning("feed: not serving %s[%s]@%s: %s", record.topic, record.partition, record.offset,
                        type(err).__name__)
            return
        # What a gateway submitted (its source says so) is known again after a restart.
        made_here = _GATEWAY_SOURCE.match(env.source)
        if made_here:
            self.submitted_by[env.id] = made_here.group(1)
        if record.topic == self.submissions:
            return  # documents awaiting ingress are not inbox content
        item = FeedItem(len(self.items) + 1, record.topic or "", record.partition or 0, record.offset or 0, env.id,
                        env.type, env.source, env.subject, env.time, env.correlationid, env.causationid,
                        self.to_json(payload) if decrypted else None,
                        None if env.actor is None else Actor.from_header(env.actor).to_json(),
                        env.recipient_sirens if env.recipients is not None else None,
                        decrypted=decrypted)
        self.items.append(item)
        if self.metrics is not None and self.ready.is_set() and record.timestamp_ms is not None:
            # Live traffic only: the records read at start-up are as old as the topics.
            self.metrics.inbox_latency.observe(max(time.time() - record.timestamp_ms / 1000, 0.0))
        self.by_id.setdefault(item.id, item)
        if env.causationid:
            self.caused_by[env.causationid].append(item)
        for listener in self._listeners:
            listener(item)

    def _add_dead(self, record: Record) -> None:
        info = {k[len(DLQ_PREFIX):]: v.decode("utf-8", "replace") for k, v in record.headers
                if k.startswith(DLQ_PREFIX)}
        try:
            ce_id = Envelope.from_headers(record.headers).id
        except BusError:
            ce_id = dict(record.headers).get("ce_id", b"").decode("utf-8", "replace")
        if ce_id:
            self.dead[ce_id] = DeadLetter(ce_id, info.get("error_class", "?"), info.get("error_message", ""),
                                          info.get("error_hint", ""), info.get("processor"), record.topic or "",
                                          record.offset or 0)
