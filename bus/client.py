"""The SDK: a typed, signing producer and a verifying, at-least-once consumer on aiokafka.

:class:`Publisher` is idempotent (``enable_idempotence``, ``acks=all``): ``publish`` seals the
event (Avro, CloudEvents headers, signature) and returns once the cluster has it.
:class:`Subscriber` verifies and decodes every record before the handler sees it, commits an
offset only after the handler succeeded (or the record was safely dead-lettered), and routes
failures through an :class:`~bus.ErrorPolicy`. A dead-letter record keeps the original key,
value and headers untouched and adds ``dlq_*`` headers naming the error class, message, hint,
processor, source topic, partition and offset.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import struct
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from ._actor import Actor, ActorVerifier
from ._errors import BrokerUnavailableError, ConfigurationError, DeliveryError
from ._policy import Action, ErrorPolicy
from ._processor import Context
from ._settings import BusSettings
from ._step import DLQ_PREFIX, Deliver, Entry, Fail, Skip, Step, dead_letter_headers
from ._tls import client_principal, client_ssl_context, refusal
from ._topics import topic_for_schema, topic_map
from ._wire import Event, Received, Record, Wire

__all__ = ["DLQ_PREFIX", "Publisher", "Subscriber", "admin_client", "dead_letter_headers", "kafka_args",
           "partitions_of", "probe_broker", "read_topic", "start_client"]

log = logging.getLogger("bus.client")
_PRODUCE = 0  # the Kafka API key of Produce
_FETCH = 1  # ... and of Fetch
Handler = Callable[[Received], Awaitable[None]]


def kafka_args(settings: BusSettings) -> dict[str, Any]:
    """aiokafka's connection arguments: bootstrap, security protocol, SASL, and the TLS context."""
    args: dict[str, Any] = {"bootstrap_servers": settings.bootstrap, **settings.kafka_security()}
    context = client_ssl_context(settings)
    if context is not None:
        args["ssl_context"] = context
    return args


PROBE_TIMEOUT_S = 5.0
# ApiVersions v0 (api key 18), correlation id 0x0b05: any Kafka broker answers it before any login.
_API_VERSIONS = struct.pack(">hhih", 18, 0, 0x0B05, 5) + b"probe"
_answered: set[str] = set()


async def probe_broker(settings: BusSettings, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`BrokerUnavailableError` unless a bootstrap server answers within ``timeout_s``.

    aiokafka alone waits its whole request timeout (40 s) when a host drops packets or something
    that is not Kafka listens on the port. Without TLS the probe sends ApiVersions and waits for
    the reply; with TLS it only opens a TCP connection. One answer per bootstrap address and
    process is enough: later failures are reported by the clients themselves.
    """
    bootstrap = settings.bootstrap
    if bootstrap in _answered:
        return
    plaintext = settings.security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT")

    async def knock(server: str) -> bool:
        host, _, port = server.strip().rpartition(":")
        writer = None
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
                if plaintext:
                    writer.write(struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS)
                    await writer.drain()
                    _size, correlation = struct.unpack(">ii", await reader.readexactly(8))
                    return correlation == 0x0B05
                return True
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
            return False
        finally:
            if writer is not None:
                writer.close()

    if any(await asyncio.gather(*(knock(server) for server in bootstrap.split(",") if server.strip()))):
        _answered.add(bootstrap)
        return
    raise BrokerUnavailableError(f"no broker at {bootstrap}")


async def start_client(client: Any, settings: BusSettings) -> None:
    """Start an aiokafka consumer, producer or admin client, or close it and raise a typed error.

    No broker answering raises :class:`BrokerUnavailableError` within seconds; the client is
    closed on every failure path, so nothing is left "Unclosed".
    """
    close = client.close if isinstance(client, AIOKafkaAdminClient) else client.stop
    await _start_or_close(client.start, close, settings)


async def _start_or_close(start: Callable[[], Awaitable[None]], close: Callable[[], Awaitable[None]],
                          settings: BusSettings) -> None:
    try:
        await probe_broker(settings)
        await start()
    except BaseException as exc:
        try:
            await close()
        except (KafkaError, OSError):
            pass
        refused = refusal(exc, settings, action="connect") if isinstance(exc, KafkaError) else None
        if refused is not None:  # a TLS, SASL or ACL refusal, named with the setting to check
            raise refused from exc
        if isinstance(exc, KafkaConnectionError):
            raise BrokerUnavailableError(f"no broker at {settings.bootstrap}") from exc
        if isinstance(exc, KafkaError):
            raise DeliveryError(f"cannot reach Kafka at {settings.bootstrap}: {exc}") from exc
        raise


class _AdminClient(AIOKafkaAdminClient):
    """The admin client of :func:`admin_client`: ``start()`` probes first and closes on failure."""

    def __init__(self, settings: BusSettings) -> None:
        super().__init__(**kafka_args(settings), request_timeout_ms=30000)
        self._bus_settings = settings

    async def start(self) -> None:
        await _start_or_close(super().start, self.close, self._bus_settings)


def admin_client(settings: BusSettings) -> AIOKafkaAdminClient:
    """An admin client on the configured cluster (call ``start()``/``close()``).

    ``start()`` raises :class:`BrokerUnavailableError` quickly when no broker answers.
    """
    return _AdminClient(settings)


async def partitions_of(settings: BusSettings, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of ``topics`` that exists (a missing topic has none), without a consumer group."""
    admin = admin_client(settings)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    except KafkaError as exc:
        raise (refusal(exc, settings, action=f"describe {', '.join(topics)}")
               or DeliveryError(f"cannot reach Kafka at {settings.bootstrap}: {exc}")) from exc
    finally:
        await admin.close()
    return sorted((TopicPartition(t["topic"], p["partition"]) for t in described if t.get("error_code", 0) == 0
                   for p in t.get("partitions", [])), key=lambda tp: (tp.topic, tp.partition))


def _watch_throttling(owner: Publisher | Subscriber, client: Any, api_key: int, quota: str) -> None:
    """Add to ``owner.throttled_ms`` the throttle time of every answer to ``api_key`` requests, with one line each.

    aiokafka parses the throttle time and drops it (since KIP-219 the broker answers at once and then
    holds the connection back for that long), so a tenant over its quota would only see a slow bus.
    """
    send = client.send

    async def send_and_watch(node_id: int, request: Any, **kwargs: Any) -> Any:
        response = await send(node_id, request, **kwargs)
        throttle = getattr(response, "throttle_time_ms", 0) if request.API_KEY == api_key else 0
        if throttle:
            owner.throttled_ms += throttle
            log.warning("the broker throttles %s for %d ms: its %s quota is exceeded (records are delayed, "
                        "not lost; `bus acl plan --quotas` shows the quotas%s)",
                        client_principal(owner.settings) or "this client", throttle, quota,
                        "; if nothing arrives, lower BUS_FETCH_MAX_BYTES below 10 s of the quota" if api_key == _FETCH
                        else "")
        return response

    client.send = send_and_watch


class Publisher:
    """Signs and sends events; one per process is enough (it is safe for concurrent use).

    ``throttled_ms`` adds up the time the broker held this publisher back for its produce quota
    (each throttled answer is also logged in one line): a quota delays records, it never drops them.
    """

    def __init__(self, settings: BusSettings, wire: Wire, *, linger_ms: int = 5,
                 max_batch_size: int = 256 * 1024, actors: ActorVerifier | None = None) -> None:
        self.settings = settings
        self.wire = wire
        #: Verifies agents' ID tokens (``publish(..., id_token=...)``); default from BUS_OIDC_ISSUERS / _AUDIENCE.
        self.actors = actors
        self.throttled_ms = 0
        self._topics = topic_map(settings)
        self._producer = AIOKafkaProducer(
            **kafka_args(settings), enable_idempotence=True, acks="all",
            linger_ms=linger_ms, max_batch_size=max_batch_size,
            max_request_size=max(settings.max_event_bytes * 2, 1024 * 1024),
        )
        _watch_throttling(self, self._producer.client, _PRODUCE, "produce")

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await start_client(self._producer, self.settings)

    async def stop(self) -> None:
        await self._producer.stop()

    def topic_name(self, event: Event, topic: str | None = None) -> str:
        key = topic or topic_for_schema(event.schema)
        spec = self._topics.get(key)
        return spec.name if spec else key

    async def publish(self, event: Event, *, topic: str | None = None, id_token: str | None = None,
                      role: str | None = None) -> Record:
        """Seal ``event`` and wait until the cluster acknowledged it; returns the record as stored.

        ``id_token``: the OpenID Connect ID token of the agent who acted, verified here (an
        :class:`~bus.ActorTokenError` sends nothing); its claims and hash go on the event as its
        signed ``actor``, with ``role`` (``maire``, ``adjoint``...) when given. The token is never sent.
        """
        return (await self.publish_many([event], topic=topic, id_token=id_token, role=role))[0]

    async def actor(self, id_token: str, *, role: str | None = None) -> Actor:
        """The verified :class:`~bus.Actor` of an agent's ID token (see :meth:`publish`)."""
        if self.actors is None:
            if not self.settings.oidc_audience:
                raise ConfigurationError("an event names its actor only on a bus with BUS_OIDC_AUDIENCE set",
                                         hint="set BUS_OIDC_ISSUERS and BUS_OIDC_AUDIENCE (the bus's client id)")
            self.actors = ActorVerifier(self.settings.oidc_issuers, self.settings.oidc_audience)
        return await self.actors.verify(id_token, role=role)

    async def publish_many(self, events: Iterable[Event], *, topic: str | None = None, id_token: str | None = None,
                           role: str | None = None) -> list[Record]:
        """Seal and send every event without waiting for each, then wait for all acks (in order).

        ``id_token`` and ``role``: the agent who acted on all of them (see :meth:`publish`).
        """
        if id_token is not None:
            acted = await self.actor(id_token, role=role)
            events = [dataclasses.replace(e, actor=acted) for e in events]
        pending = []
        for event in events:
            record = self.wire.seal(event)
            name = self.topic_name(event, topic)
            pending.append((record, name, await self._send(name, record)))
        out = []
        for record, name, future in pending:
            try:
                meta = await future
            except KafkaError as exc:
                raise (refusal(exc, self.settings, action=f"produce to {name}", topic=name)
                       or DeliveryError(f"Kafka refused the record: {exc}", topic=name)) from exc
            out.append(Record(record.key, record.value, record.headers, name, meta.partition, meta.offset,
                              meta.timestamp))
        return out

    async def send_raw(self, topic: str, record: Record) -> Record:
        """Send bytes as they are (re-drive, tests forging records). No sealing, no checks."""
        future = await self._send(topic, record)
        try:
            meta = await future
        except KafkaError as exc:
            raise (refusal(exc, self.settings, action=f"produce to {topic}", topic=topic)
                   or DeliveryError(f"Kafka refused the record: {exc}", topic=topic)) from exc
        return Record(record.key, record.value, record.headers, topic, meta.partition, meta.offset, meta.timestamp)

    async def _send(self, topic: str, record: Record) -> asyncio.Future[Any]:
        try:
            return await self._producer.send(topic, value=record.value, key=record.key, headers=list(record.headers))
        except KafkaError as exc:
            raise (refusal(exc, self.settings, action=f"produce to {topic}", topic=topic)
                   or DeliveryError(f"cannot send to {topic}: {exc}", topic=topic)) from exc


class Subscriber:
    """Consumes topics in a group, verifies each record, runs the handler, commits after success.

    Each record goes through the bus's one per-record step (:class:`bus.Step`): skipped when
    its ``ce_id`` was already handled for its dossier (the ids of the last handled events are
    kept per subject, for ``dedup_window`` subjects), opened, handed to the handler, and on
    failure routed by the :class:`~bus.ErrorPolicy`. A duplicate is an ordinary at-least-once
    redelivery: it is counted (``stats["duplicates"]``), not dead-lettered.
    """

    def __init__(
        self, settings: BusSettings, wire: Wire, topics: Sequence[str], handler: Handler, *,
        processor: str, group: str | None = None, policy: ErrorPolicy | None = None,
        dead_letter: Publisher | None = None, from_beginning: bool = True, dedup_window: int = 100_000,
    ) -> None:
        self.settings = settings
        self.wire = wire
        self.handler = handler
        self.processor = processor
        self.policy = policy or ErrorPolicy(max_retries=settings.max_retries, backoff_ms=settings.retry_backoff_ms)
        specs = topic_map(settings)
        self.topics = [specs[t].name if t in specs else t for t in topics]
        self.step = Step(wire, name=processor, policy=self.policy, dead_letter_topic=specs["deadletter"].name)
        self._dead_letter = dead_letter
        self._owns_dlq = dead_letter is None
        self._consumer = AIOKafkaConsumer(
            *self.topics, **kafka_args(settings), group_id=group or settings.consumer_group,
            enable_auto_commit=False, auto_offset_reset="earliest" if from_beginning else "latest",
            isolation_level="read_committed", max_poll_records=500,
            max_partition_fetch_bytes=settings.fetch_max_bytes, fetch_max_bytes=settings.fetch_max_bytes,
        )
        self._entries: collections.OrderedDict[str, Entry] = collections.OrderedDict()
        self._window = dedup_window
        self.stats = collections.Counter[str]()
        #: Time the broker held this subscriber back for its fetch quota (each throttled answer logged once).
        self.throttled_ms = 0
        _watch_throttling(self, self._consumer._client, _FETCH, "fetch")

    async def __aenter__(self) -> Subscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            if self._dead_letter is None:
                self._dead_letter = Publisher(self.settings, self.wire)
                await self._dead_letter.start()
        except BaseException:
            await self._consumer.stop()  # built in __init__: never left "Unclosed"
            raise
        try:
            await start_client(self._consumer, self.settings)
        except BaseException:
            if self._owns_dlq:
                await self._dead_letter.stop()
            raise

    async def stop(self) -> None:
        await self._consumer.stop()
        if self._owns_dlq and self._dead_letter is not None:
            await self._dead_letter.stop()

    async def run(self, *, until: Callable[[], bool] | None = None, idle_timeout_ms: int | None = None) -> None:
        """Consume until ``until()`` is true, or until no record came for ``idle_timeout_ms``."""
        while until is None or not until():
            batch = await self._consumer.getmany(timeout_ms=idle_timeout_ms or 1000)
            if not batch:
                if idle_timeout_ms is not None:
                    return
                continue
            await self.handle_batch(batch)

    async def handle_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Handle one ``getmany`` batch, committing each partition after its records succeeded."""
        for tp, messages in batch.items():
            for message in messages:
                record = Record(message.key, message.value, tuple(message.headers or ()), tp.topic,
                                tp.partition, message.offset, message.timestamp)
                try:
                    await self._handle(record)
                except BaseException:
                    # Commit what succeeded before this record; it will be redelivered.
                    await self._commit({tp: message.offset})
                    raise
            await self._commit({tp: messages[-1].offset + 1})

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            raise DeliveryError(f"commit failed: {exc}") from exc

    async def _handle(self, record: Record) -> None:
        """Drive the step for one record: call the handler, retry, dead-letter or raise as it decides."""
        attempt = 1
        while True:
            now = self.wire.clock()
            decision = self.step.run(record, ctx=Context(now=now), lookup=self._entries.get, attempt=attempt)
            if isinstance(decision, Deliver):
                try:
                    await self.handler(decision.received)
                except Exception as exc:
                    decision = self.step.failure(record, exc, attempt, now=now, handler=True)
                else:
                    self._remember(decision.key, decision.entry)
                    self.stats["handled"] += 1
                    return
            if isinstance(decision, Skip):
                self.stats["duplicates" if decision.reason == "duplicate" else "skipped"] += 1
                return
            assert isinstance(decision, Fail)
            if decision.action is Action.RETRY:
                self.stats["retried"] += 1
                await asyncio.sleep(decision.delay)  # the policy's backoff, not a wait for an event
                attempt += 1
                continue
            if decision.action is Action.RAISE:
                raise decision.error
            await self._to_dead_letter(record, decision)
            return

    def _remember(self, key: str, entry: Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        if len(self._entries) > self._window:
            self._entries.popitem(last=False)

    async def _to_dead_letter(self, record: Record, decision: Fail) -> None:
        assert self._dead_letter is not None and decision.dead_letter is not None
        await self._dead_letter.send_raw(self.step.dead_letter_topic, decision.dead_letter)
        self.stats["dead_lettered"] += 1
        log.warning("dead-lettered %s[%s]@%s: %s", record.topic, record.partition, record.offset,
                    type(decision.error).__name__)


async def read_topic(settings: BusSettings, topic: str, *, from_offsets: dict[int, int] | None = None,
                     timeout_ms: int = 1000) -> list[Record]:
    """Every record of ``topic`` from the start (or given offsets) to its current end, without a group."""
    probe = AIOKafkaConsumer(**kafka_args(settings), group_id=None)
    await start_client(probe, settings)  # closes the consumer itself when the broker is down
    try:
        if topic not in await probe.topics():
            return []
    finally:
        await probe.stop()
    # Subscribing at construction makes aiokafka fetch the topic's metadata and assign every
    # partition (no group): the partitions are known once start() returns.
    consumer = AIOKafkaConsumer(topic, **kafka_args(settings), enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest")
    await start_client(consumer, settings)
    try:
        tps = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if not tps:
            return []
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            start = (from_offsets or {}).get(tp.partition)
            if start is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
        out: list[Record] = []
        remaining = set()
        for tp in tps:
            if await consumer.position(tp) < ends[tp]:
                remaining.add(tp)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=timeout_ms)
            for tp, messages in batch.items():
                for m in messages:
                    if m.offset < ends[tp]:
                        out.append(Record(m.key, m.value, tuple(m.headers or ()), tp.topic, tp.partition,
                                          m.offset, m.timestamp))
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return sorted(out, key=lambda r: (r.partition or 0, r.offset or 0))
    finally:
        await consumer.stop()
