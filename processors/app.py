"""The faust application of the processors, built on demand from settings and cores.

:func:`make_app` builds a :class:`faust.App` that runs the given cores through
:class:`processors._faust.CoreShell`; nothing happens at import (no module-level app). The app
id is the topic prefix plus the consumer group, so faust's own topics (changelogs, rekey
topics) carry the prefix as the bus's topics do. :func:`run_worker` is what ``bus worker``
runs: it connects (topics, catalog, keys), creates the rekey topics, starts the app in the
running loop and stops it cleanly when asked (SIGINT/SIGTERM in the command).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from bus._errors import ConfigurationError
from bus._metrics import BusMetrics, serve
from bus._processor import Processor
from bus._runtime import BusContext
from bus._settings import BusSettings
from bus._step import Binding
from bus._topics import ensure_topics

from ._faust import CLOCKS, CoreShell, ReferenceTables, changelog_spec, rekey_spec
from ._observe import observe, readiness

__all__ = ["app_id", "guard_consumer", "make_app", "run_worker"]

log = logging.getLogger("processors.app")


def app_id(settings: BusSettings) -> str:
    return f"{settings.topic_prefix}{settings.consumer_group}"


def _bindings(cores: Sequence[Processor | Binding]) -> list[Binding]:
    out = [c if isinstance(c, Binding) else Binding(c) for c in cores]
    names = [b.core.name for b in out]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"two cores share a name in {names}", hint="each core needs its own name")
    if not out:
        raise ConfigurationError("no processor core to run", hint="name one with --processor")
    return out


def _credentials(settings: BusSettings) -> Any:
    import faust

    from bus import client_ssl_context

    context = client_ssl_context(settings)  # BUS_SSL_CAFILE / CERTFILE / KEYFILE, as every bus client
    if settings.sasl_mechanism:
        password = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
        return faust.SASLCredentials(username=settings.sasl_username, password=password,
                                     mechanism=settings.sasl_mechanism, ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def guard_consumer() -> None:
    """Make faust never skip an input record: idempotent, patches this process only.

    The mechanism, in one rule: **a record is committed only once the step finished it, and
    every record faust fetched but did not hand to the agent is fetched again**. faust acks a
    record when the agent's batch is done (the shell acknowledges a batch only once Kafka has
    its outputs and its states), and commits, per partition, the end of the run of consecutive
    acked offsets. Six faust/aiokafka interplays broke that rule, each seen in a test (records
    fetched, dropped, never fetched again, yet committed):

    - **an empty set of active partitions**: faust hands the consumer thread its *live* set;
      table recovery pauses and resumes partitions, so the set can be empty by the time the
      thread fetches, and aiokafka reads an empty set as "every assigned partition": it returns
      records and moves past them, and faust drops them as inactive. The fetch here takes a
      snapshot and reads nothing when it is empty;
    - **records dropped by ``getmany``**: faust drops fetched records of a partition that is not
      active (recovery, a rebalance) and the rest of a fetch when the group's generation changed,
      counting on a later seek. When none came, they were never read. Here the partition is
      sought back to its first dropped record (dropped records are always a suffix of a
      partition's fetch, so nothing is reordered) and they are fetched again;
    - **gap filling**: faust treats a jump in offsets as a compacted or transactional gap and
      marks the missing offsets done, which committed the dropped records unread. The bus's input
      and rekey topics are neither compacted nor transactional (idempotent producers, delete
      retention), so their offsets have no gaps: gap filling is switched off. If a gap ever
      appeared, the partition's commits would stop at it (visible as lag) instead of skipping it;
    - **never-committed partitions**: aiokafka's ``seek_to_committed`` seeks only partitions whose
      committed offset is above 0, so after a rebalance a partition this group never committed
      stayed past the dropped records. Here such an *input* partition is sought to its beginning,
      what ``auto_offset_reset=earliest`` promises; changelogs are left to faust's recovery;
    - **the offset to commit**: faust commits the run of consecutive acked offsets, and checks the
      run starts where the last commit ended with ``min(acked) - committed > 1``, an off-by-one
      (a committed offset is the *next* record: one unacked record at the head passed) skipped
      entirely when nothing was committed yet (``None``) or the partition starts at 0. On a fresh
      group, records dropped during the first table recovery were committed before they were
      fetched again; a worker killed then lost them (seen in the fault harness: 12 acts with no
      state, every input offset committed). Here the run must start exactly at the partition's
      start: its committed offset, or where the worker was sought to on assignment;
    - **records skipped by the fetch**: a worker restarted after a SIGKILL was sought to its
      committed offsets, yet its first fetches of some partitions began further on (seen in the
      fault harness: ``accounting[0]`` sought to 6, first record handed over 21; the commits
      then stopped at 6 for good and the records in between were never processed). Here each
      input partition's next offset is tracked (set by every seek, moved by every record handed
      over); a record beyond it is not handed over, the partition is sought back to it (in the
      consumer's own thread: faust's ``seek`` calls aiokafka from another) and the last seeks
      and fetches of the partition are logged as evidence. A skip seen three times from the
      same offset is records deleted by retention before the group read them: logged, accepted.

    Re-reading is always safe: the step skips an event whose id is among the processed ids kept
    with its state, and outputs carry ids derived from their cause.
    """
    from faust.transport import consumer as base
    from faust.transport.drivers import aiokafka as driver
    from faust.transport.consumer import ensure_TP
    from faust.utils.functional import consecutive_numbers

    thread = driver.AIOKafkaConsumerThread
    if getattr(thread, "_bus_guarded", False):
        return
    fetch_records = thread._fetch_records

    async def _fetch_records(self: Any, consumer: Any, active_partitions: Any, timeout: float | None = None,
                             max_records: int | None = None) -> Any:
        active = frozenset(active_partitions or ())
        if not active:
            return {}
        records = await fetch_records(self, consumer, active, timeout=timeout, max_records=max_records)
        for tp, batch in (records or {}).items():
            if batch:
                _history(self.consumer, tp).append(f"fetched {batch[0].offset}..{batch[-1].offset}")
        return records

    async def seek_to_committed(self: Any) -> Any:
        return await self.call_thread(_seek_inputs_to_committed, self._ensure_consumer())

    async def getmany(self: Any, timeout: float) -> Any:
        # faust-streaming 0.15's Consumer.getmany, with dropped records sought back (see above).
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            try:
                await self.perform_seek()
            except Exception as ex:  # faust logs and carries on here too
                self.log.warning(f"exception performing seek when flow not active {ex}")
            return
        dropped: dict[Any, int] = {}
        stopped = False
        expected = _expected(self)
        for tp, record in self.scheduler.iterate(records):
            if not stopped and (not self.flow_active or self.app.consumer_generation_id != generation_id):
                stopped = True
            if stopped or tp in dropped or not (active_partitions is None or tp in active_partitions
                                                or tp in self._buffered_partitions):
                dropped[tp] = min(dropped.get(tp, record.offset), record.offset)
                continue
            following = expected.get(tp)
            if following is not None and record.offset > following and not _skip_accepted(self, tp, following,
                                                                                           record.offset):
                log.warning("%s[%s]: record %s fetched where %s was next: reading again from %s (%s)", tp.topic,
                            tp.partition, record.offset, following, following, "; ".join(_history(self, tp)))
                dropped[tp] = following
                continue
            if following is not None:
                expected[tp] = max(following, record.offset + 1)
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            yield tp, self._to_message(tp, record)
        assigned = self.assignment()
        for tp, offset in dropped.items():
            if tp in assigned and not _is_changelog(tp):
                log.info("re-reading %s[%s] from %s: faust dropped it during a rebalance", tp.topic, tp.partition,
                         offset)
                await _seek_back(self, tp, offset)

    async def perform_seek(self: Any) -> None:
        # faust's perform_seek, also keeping where each partition starts (0 included, which faust
        # stores as None) for the commit check below.
        committed = {ensure_TP(tp): offset for tp, offset in (await self.seek_to_committed()).items()}
        self._read_offset.update({tp: offset if offset is not None and offset >= 0 else None
                                  for tp, offset in committed.items()})
        self._committed_offset.update({tp: offset or None for tp, offset in committed.items() if offset is not None})
        starts = self.__dict__.setdefault("_bus_starts", {})
        starts.update({tp: offset for tp, offset in committed.items() if offset is not None and offset >= 0})
        expected = _expected(self)
        for tp, offset in committed.items():
            if offset is not None and offset >= 0 and not _is_changelog(tp):
                expected[tp] = offset
                _history(self, tp).append(f"sought to committed {offset}")

    def _new_offset(self: Any, tp: Any) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        acked.sort()
        start = _start(self, tp)
        if start is None:
            return None
        stale = [offset for offset in acked if offset < start]  # re-read below the last commit
        if stale:
            acked[: len(stale)] = []
            self._acked_index[tp].difference_update(stale)
        if not acked or acked[0] != start:
            return None  # the record at the partition's head is not done yet: commit nothing
        batch = next(consecutive_numbers(acked))
        acked[: len(batch)] = []
        self._acked_index[tp].difference_update(batch)
        return batch[-1] + 1

    async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        log.warning("offsets %s..%s of %s[%s] were never handed to the agent: its commits stop there "
                    "until they are read", offset_from, offset_to, tp.topic, tp.partition)

    thread._fetch_records = _fetch_records
    thread.seek_to_committed = seek_to_committed
    base.Consumer.getmany = getmany
    base.Consumer._add_gap = _add_gap
    base.Consumer.perform_seek = perform_seek
    base.Consumer._new_offset = _new_offset
    thread._bus_guarded = True


def _kafka_paused(consumer: Any, tp: Any) -> Any:
    """Whether aiokafka itself has ``tp`` paused (faust keeps its own view): evidence for the stall watch."""
    try:
        return tp in consumer._thread._ensure_consumer().paused()
    except Exception as exc:  # evidence only
        return repr(exc)


def _is_changelog(tp: Any) -> bool:
    return bool(tp.topic.endswith("-changelog"))


def _expected(consumer: Any) -> dict[Any, int]:
    """Per input partition, the offset of the next record the agent must get (set by seeks, moved by records)."""
    return consumer.__dict__.setdefault("_bus_next", {})  # type: ignore[no-any-return]


def _history(consumer: Any, tp: Any) -> Any:
    """The last seeks and fetches of ``tp``: the evidence logged when a partition skips records."""
    import collections

    histories = consumer.__dict__.setdefault("_bus_history", {})
    return histories.setdefault(tp, collections.deque(maxlen=12))


def _skip_accepted(consumer: Any, tp: Any, following: int, offset: int) -> bool:
    """A skip seen three times from the same offset is real (records deleted by retention): move on."""
    seen = consumer.__dict__.setdefault("_bus_skips", {})
    count = seen[tp, following, offset] = seen.get((tp, following, offset), 0) + 1
    if count < 3:
        return False
    log.error("%s[%s]: offsets %s..%s are gone from the broker (deleted before this group read them)", tp.topic,
              tp.partition, following, offset - 1)
    _expected(consumer)[tp] = offset + 1
    return True


async def _seek_back(consumer: Any, tp: Any, offset: int) -> None:
    """Seek ``tp`` back to ``offset`` in the consumer's own thread (faust's ``seek`` calls aiokafka from another)."""
    _history(consumer, tp).append(f"sought back to {offset}")
    _expected(consumer)[tp] = offset
    await consumer.seek_wait({tp: offset})


async def _seek_inputs_to_committed(consumer: Any) -> dict[Any, int | None]:
    """aiokafka's ``seek_to_committed``, but an input partition without a committed offset starts at its beginning."""
    committed: dict[Any, int | None] = await consumer.seek_to_committed()
    unset = [tp for tp, offset in committed.items() if not offset and not tp.topic.endswith("-changelog")]
    if unset:
        for tp, offset in (await consumer.beginning_offsets(unset)).items():
            consumer.seek(tp, offset)
            committed[tp] = offset
    return committed


def make_app(settings: BusSettings, cores: Sequence[Processor | Binding], *, bus: BusContext | None = None,
             timer_interval: float = 60.0, web_port: int | None = None, batch_size: int = 200,
             batch_within: float = 0.01, clock: str = "processing",
             lateness: dt.timedelta = dt.timedelta(hours=1), idle: float = 300.0,
             metrics: BusMetrics | None = None) -> Any:
    """A faust app running ``cores`` (each a core, or a :class:`Binding` of a core and its I/O step).

    ``bus`` gives the catalog, key directory and signing key (default: the local files of
    ``settings``); ``timer_interval`` is the period of ``on_time`` in seconds (0: no timer);
    ``web_port`` enables faust's web server on that port (default: disabled); ``clock`` is
    ``processing`` (timers and ``ctx.now`` on the wall clock) or ``event`` (``ctx.now`` is each
    event's time, timers follow the stream's watermark with ``lateness`` allowed, and the wall
    clock once the stream was silent for ``idle`` seconds: see :class:`processors._faust.CoreShell`);
    ``metrics`` counts every record's decision (``bus worker --metrics-port``). Batches
    (faust ``take_events``) hold up to ``batch_size`` records gathered for at most
    ``batch_within`` seconds: under load they fill at once, at a low rate the wait is latency
    (tell-us-once at 200 events/s through bench_processors' latency stage on a dev broker: p50
    105 ms with 0.05 s, 41 ms with 0.01 s).
    """
    import faust

    bindings = _bindings(cores)
    if clock not in CLOCKS:
        raise ConfigurationError(f"unknown clock {clock!r}", hint=f"use one of {', '.join(CLOCKS)}")
    bus = bus or BusContext.offline(settings)
    if bus.signer is None:
        raise ConfigurationError(f"no signing key for {settings.source}: a worker signs what it emits",
                                 hint="create one with `bus keys generate <SIREN>` and set BUS_SOURCE")
    guard_consumer()
    ident = app_id(settings)
    datadir = settings.state_dir / "faust" / ident
    datadir.parent.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    app = faust.App(
        ident,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap.split(",")],
        broker_credentials=_credentials(settings),
        datadir=str(datadir),
        store="memory://",
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=6,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=5,
        # The DESIGN measured 18.5k/s with the 16 KiB default against 51k/s with 256 KiB.
        producer_max_batch_size=256 * 1024,
        producer_max_request_size=max(settings.max_event_bytes * 2, 1024 * 1024),
        broker_commit_interval=1.0,
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        processing_guarantee="at_least_once",
        # The shell acknowledges a batch only once Kafka has its outputs and its states; a batch
        # cut by a shutdown is simply redelivered. Waiting for it to drain (faust's default)
        # hangs the shutdown when the producer is already stopping.
        stream_wait_empty=False,
    )
    tables = sorted({t for b in bindings for t in b.core.tables})
    references = ReferenceTables(bus, tables)
    app.task(references.run)
    app.bus_shells = [CoreShell(app, b, bus, references, timer_interval=timer_interval, batch_size=batch_size,
                                batch_within=batch_within, clock=clock, lateness=lateness, idle=idle,
                                metrics=metrics.step(b.core.name) if metrics is not None else None)
                      for b in bindings]
    app.bus_references = references
    app.bus_context = bus
    app.timer(STALL_CHECK_SECONDS, name="stall-watch")(_stall_watch(app))
    app.timer(RECONCILE_SECONDS, name="reconcile")(_reconciler(app))
    return app


STALL_CHECK_SECONDS = 30.0
RECONCILE_SECONDS = 5.0
RECONCILE_CHECKS = 3  # a partition unchanged for this many checks in a row, its head record missing, is re-read


def _reconciler(app: Any) -> Any:
    """A timer that re-reads, from its commit point, an input partition whose head record was lost in flight.

    faust seeks to the committed offsets after each recovery while the consumer thread keeps
    fetching, and it hands a fetched record to the agent only if no rebalance began in the
    meantime; both can leave a partition whose position is past records the agent never got:
    nothing left to fetch, the head never acknowledged, so nothing committed and the records in
    between never processed (seen under load in the failover test: ``position 13, committed 11,
    acked []`` for minutes, records 11 and 12 never counted). The guard's commit rule keeps such
    records from being committed; this timer gets them read: when a partition's commit point,
    position and acknowledgements did not move for :data:`RECONCILE_CHECKS` checks, its position
    is past its commit point, and none of its messages is in the agent's hands, it is sought back
    to the commit point (re-reading is idempotent: processed ids are kept with each state).
    """
    marks: dict[Any, tuple[Any, int]] = {}

    async def reconcile() -> None:
        consumer = app.consumer
        if not getattr(consumer, "flow_active", False) or not app.bus_references.ready.is_set():
            marks.clear()
            return
        sources = {t for shell in app.bus_shells for t in (*shell.partitions, shell.rekey.name)}
        in_hand = {m.tp for m in list(consumer._unacked_messages)}
        for tp in [tp for tp in consumer.assignment() if tp.topic in sources]:
            start = _start(consumer, tp)
            try:
                position = await consumer.position(tp)
            except Exception:  # a partition moving away: look again next time
                marks.pop(tp, None)
                continue
            acked = sorted(consumer._acked.get(tp, ()))
            stuck = (start is not None and position is not None and position > start and tp not in in_hand
                     and (not acked or acked[0] != start))
            if not stuck:
                marks.pop(tp, None)
                continue
            state = (start, position, tuple(acked[:3]), len(acked))
            seen, count = marks.get(tp, (None, 0))
            count = count + 1 if seen == state else 1
            marks[tp] = (state, count)
            if count >= RECONCILE_CHECKS:
                marks.pop(tp, None)
                log.warning("%s[%s]: records %s..%s were fetched and never reached the agent (acked %s): reading "
                            "again from %s (%s)", tp.topic, tp.partition, start, position - 1, acked[:3], start,
                            "; ".join(_history(consumer, tp)))
                await _seek_back(consumer, tp, start)

    return reconcile


def _start(consumer: Any, tp: Any) -> int | None:
    """Where ``tp``'s next commit must start: its committed offset, or where it was sought to on assignment."""
    committed = consumer._committed_offset.get(tp)
    return committed if committed is not None else consumer.__dict__.get("_bus_starts", {}).get(tp)


def _stall_watch(app: Any) -> Any:
    """A timer that says, with the consumer's state, when a worker has input left and reads none.

    Evidence for the intermittent stall of a worker started on a group another worker just left
    (seen under heavy load: recovered, "Worker ready", then nothing read for minutes). Logs only.
    """
    seen: dict[str, int] = {}

    async def watch() -> None:
        if not app.bus_references.ready.is_set():
            return
        done = sum(n for shell in app.bus_shells for kind, n in shell.stats.items() if kind != "ticked")
        if seen.get("done") != done:
            seen["done"] = done
            return
        consumer = app.consumer
        sources = {t for shell in app.bus_shells for t in (*shell.partitions, shell.rekey.name)}
        tps = [tp for tp in consumer.assignment() if tp.topic in sources]
        try:
            ends = await consumer.highwaters(*tps)
            # behind: records not fetched yet, or fetched and still not committed (a lost record shows there)
            behind = {tp: ends[tp] - start for tp in tps
                      if (start := min(await consumer.position(tp) or 0,
                                       consumer._committed_offset.get(tp) or 0)) < ends.get(tp, 0)}
        except Exception as exc:  # evidence only: never let the watch stop the worker
            log.debug("stall watch could not read positions: %r", exc)
            return
        if not behind:
            return
        active = getattr(consumer, "_active_partitions", None)
        log.warning("no record handled for %s s while %s partition(s) have input left (%s); assigned %s, "
                    "active %s, paused %s, flow active %s", STALL_CHECK_SECONDS, len(behind),
                    ", ".join(f"{tp.topic}[{tp.partition}]+{n}" for tp, n in sorted(behind.items())[:6]),
                    len(consumer.assignment()), None if active is None else len(active),
                    len(getattr(consumer, "_paused_partitions", ())), getattr(consumer, "flow_active", None))
        for tp in sorted(behind)[:6]:
            acked = sorted(consumer._acked.get(tp, ()))[:3]
            try:
                position = await consumer.position(tp)
            except Exception as exc:  # evidence only
                position = repr(exc)
            log.warning("  %s[%s]: position %s, committed %s, next expected %s, last read %s, acked %s, active %s, "
                        "paused %s, kafka paused %s; %s", tp.topic, tp.partition, position,
                        consumer._committed_offset.get(tp), _expected(consumer).get(tp),
                        consumer._read_offset.get(tp), acked, active is None or tp in active,
                        tp in getattr(consumer, "_paused_partitions", ()), _kafka_paused(consumer, tp),
                        "; ".join(_history(consumer, tp)))

    return watch


async def _finish_batches(app: Any, grace: float) -> None:
    """Wait until no shell has a batch in flight (each batch holds its shell's lock), at most ``grace`` s.

    The locks stay taken: no new batch starts while faust stops. A batch that does not finish in
    time is cut; it was not acknowledged, so it is redelivered to the next worker.
    """
    try:
        await asyncio.wait_for(asyncio.gather(*(shell.writing.acquire() for shell in app.bus_shells)), grace)
    except TimeoutError:
        log.warning("a batch was still in flight after %s s: it will be redelivered", grace)


async def run_worker(settings: BusSettings, cores: Sequence[Processor | Binding], *,
                     stop: asyncio.Event, metrics_port: int | None = None, metrics_host: str = "127.0.0.1",
                     ready_lag: int = 1000, stop_grace: float = 30.0, **options: Any) -> None:
    """Connect, start the app, run until ``stop`` is set or the app crashes, then stop it cleanly.

    ``metrics_port``: serve ``/metrics``, ``/health/live`` and ``/health/ready`` (ready: assigned,
    recovered, and within ``ready_lag`` records of every owned partition's end). A stop first
    lets the batch in flight finish (at most ``stop_grace`` seconds), then stops faust, which
    commits what was acknowledged and leaves the group.
    """
    from bus.client import admin_client

    bindings = _bindings(cores)
    bus = await BusContext.connect(settings)
    admin = admin_client(settings)
    await admin.start()
    try:
        await ensure_topics(admin, [spec(settings, app_id(settings), b.core.name)
                                    for b in bindings for spec in (rekey_spec, changelog_spec)])
    finally:
        await admin.close()
    metrics = BusMetrics() if metrics_port is not None else None
    app = make_app(settings, bindings, bus=bus, metrics=metrics, **options)
    await app.start()
    server = None
    if metrics is not None:
        observe(app, metrics)
        server = await serve(metrics, host=metrics_host, port=metrics_port or 0, ready=readiness(app, max_lag=ready_lag))
    # mode (faust's service library) has no public awaitable for "crashed"; _crashed is its Event.
    crashed = asyncio.ensure_future(app._crashed.wait())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([crashed, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        crashed.cancel()
        stopping.cancel()
        await _finish_batches(app, stop_grace)
        await app.stop()
        if server is not None:
            await server.cleanup()
    if app.crash_reason is not None:
        raise app.crash_reason
