"""What the bus measures while it runs, for Prometheus: one registry per process, one place per fact.

Every decision of the per-record step (:class:`bus.Step`) is counted here, by
:meth:`StepMetrics.observe`, which the shells call once per record (the worker's faust shell,
the SDK's :class:`bus.client.Subscriber`): records in by processor, event type and outcome,
dead letters by error class, verification failures, step duration and end-to-end latency (the
cause's event time to its outputs). Gauges that only a running process knows — consumer lag,
state sizes, checkpoint ages, payments whose deadline is near — are set by that process just
before a scrape (:meth:`BusMetrics.on_scrape`). The ledger and the gateway add their own
families to the same registry (:class:`LedgerMetrics`, :class:`GatewayMetrics`). :func:`serve` exposes ``/metrics`` and the
health endpoints (``/health/live``, ``/health/ready``) on one port, with aiohttp (already a
dependency of faust).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ._errors import ConfigurationError, SecurityError
from ._step import Decision, Deliver, Emit, Fail, Prepare, Rekey, Skip
from ._wire import Record

__all__ = [
    "BusMetrics", "GatewayMetrics", "LedgerMetrics", "Readiness", "StepMetrics", "check_port", "exported_samples",
    "lag_refusal", "serve",
]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
#: A readiness check: (ready, reason when not).
Readiness = Callable[[], Awaitable[tuple[bool, str]]]


class BusMetrics:
    """The metric families of one process (its own registry: tests and several apps never clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.records = Counter("bus_records", "Records handled by the per-record step",
                               ["processor", "event_type", "outcome"], registry=r)
        self.dead_letters = Counter("bus_dead_letters", "Records sent to the dead-letter topic",
                                    ["processor", "event_type", "error_class"], registry=r)
        self.verification_failures = Counter("bus_verification_failures",
                                             "Records refused by signature, key or envelope checks",
                                             ["processor", "error_class"], registry=r)
        self.outputs = Counter("bus_outputs", "Events emitted by processors", ["processor"], registry=r)
        self.step_seconds = Histogram("bus_step_seconds", "Time of the per-record step, I/O it asked for included",
                                      ["processor"], buckets=LATENCY_BUCKETS, registry=r)
        self.end_to_end_seconds = Histogram("bus_end_to_end_seconds",
                                            "From the cause's event time to its outputs being sent",
                                            ["processor"], buckets=LATENCY_BUCKETS, registry=r)
        self.lag = Gauge("bus_consumer_lag", "Records not yet read, per input partition",
                         ["topic", "partition"], registry=r)
        self.states = Gauge("bus_state_entries", "States held by a processor", ["processor"], registry=r)
        self.payments_due = Gauge("bus_payments_due", "Unpaid invoices whose payment deadline falls within N days",
                                  ["within_days"], registry=r)
        self._refresh: list[Callable[[], Awaitable[None]]] = []

    def on_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Run ``refresh`` (it sets gauges) before each scrape."""
        self._refresh.append(refresh)

    async def exposition(self) -> bytes:
        for refresh in self._refresh:
            await refresh()
        return generate_latest(self.registry)

    def step(self, processor: str) -> StepMetrics:
        return StepMetrics(self, processor)


class StepMetrics:
    """Counts the step's decisions of one processor: call :meth:`observe` once per record."""

    def __init__(self, metrics: BusMetrics, processor: str) -> None:
        self.metrics = metrics
        self.processor = processor

    def observe(self, record: Record, decision: Decision, seconds: float, *, now: dt.datetime) -> None:
        m, name = self.metrics, self.processor
        event_type = _header(record, "ce_type") or "unknown"
        outcome = _outcome(decision)
        m.records.labels(name, event_type, outcome).inc()
        m.step_seconds.labels(name).observe(seconds)
        if isinstance(decision, Emit):
            m.outputs.labels(name).inc(len(decision.outputs))
            if decision.time is not None and decision.outputs:
                m.end_to_end_seconds.labels(name).observe(max((now - decision.time).total_seconds(), 0.0))
        if isinstance(decision, Fail):
            error = type(decision.error).__name__
            if decision.dead_letter is not None:
                m.dead_letters.labels(name, event_type, error).inc()
            if isinstance(decision.error, SecurityError):
                m.verification_failures.labels(name, error).inc()


class LedgerMetrics:
    """The ledger's families, on a process's :class:`BusMetrics` registry (``bus ledger run``).

    The age of each log's last checkpoint is set before a scrape from what the ledger knows
    (resumed or published); records read but not yet covered by a checkpoint tell whether an
    old checkpoint is a stalled ledger or an idle partition. A checkpoint the ledger refuses
    to resume from counts in ``bus_verification_failures`` with ``processor="ledger"``.
    """

    def __init__(self, metrics: BusMetrics) -> None:
        r = metrics.registry
        self.metrics = metrics
        self.checkpoint_age = Gauge("bus_checkpoint_age_seconds", "Age of the last ledger checkpoint of a log",
                                    ["topic", "partition"], registry=r)
        self.checkpoints = Counter("bus_checkpoints_published", "Ledger checkpoints published by this process",
                                   ["topic", "partition"], registry=r)
        self.pending = Gauge("bus_ledger_pending_records", "Records read by the ledger, not yet in a checkpoint",
                             ["topic", "partition"], registry=r)

    def published(self, log_id: str) -> None:
        self.checkpoints.labels(*_topic_partition(log_id)).inc()

    def refused(self, error: BaseException) -> None:
        self.metrics.verification_failures.labels("ledger", type(error).__name__).inc()

    def set_ages(self, newest_ms: dict[str, int], pending: dict[str, int], now: dt.datetime) -> None:
        """Set the gauges from each log's newest checkpoint time and its records pending."""
        now_ms = now.timestamp() * 1000
        self.checkpoint_age.clear()
        for log_id, at in newest_ms.items():
            self.checkpoint_age.labels(*_topic_partition(log_id)).set(max(now_ms - at, 0) / 1000)
        self.pending.clear()
        for log_id, count in pending.items():
            self.pending.labels(*_topic_partition(log_id)).set(count)


class GatewayMetrics:
    """The gateway's families, on a process's :class:`BusMetrics` registry (``bus gateway``).

    Requests by route template (never the raw path: one series per route), method and status;
    submissions accepted or refused at the door by kind (document, event) and error class;
    the inbox latency (a record's broker time to the moment the gateway can serve it).
    Consumer lag of the gateway's feed is the shared ``bus_consumer_lag``.
    """

    def __init__(self, metrics: BusMetrics) -> None:
        r = metrics.registry
        self.metrics = metrics
        self.requests = Counter("bus_gateway_requests", "HTTP requests answered by the gateway",
                                ["route", "method", "status"], registry=r)
        self.request_seconds = Histogram("bus_gateway_request_seconds", "Time to answer an HTTP request",
                                         ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.submissions = Counter("bus_gateway_submissions", "Submissions accepted or refused at the door",
                                   ["kind", "outcome", "error_class"], registry=r)
        self.inbox_latency = Histogram("bus_gateway_inbox_latency_seconds",
                                       "From a record's broker time to its being served in the inbox",
                                       buckets=LATENCY_BUCKETS, registry=r)


def exported_samples() -> frozenset[str]:
    """Every sample name a bus process may export (worker, ledger, gateway): for checking alert rules."""
    metrics = BusMetrics()
    LedgerMetrics(metrics)
    GatewayMetrics(metrics)
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "gauge": ("",)}
    return frozenset(family.name + suffix for family in metrics.registry.collect()
                     for suffix in suffixes[family.type])


def lag_refusal(lags: dict[tuple[str, int], int], max_lag: int) -> str | None:
    """Why a process is not ready when some partitions are more than ``max_lag`` records behind (else None)."""
    behind = {tp: lag for tp, lag in lags.items() if lag > max_lag}
    if not behind:
        return None
    worst = max(behind, key=lambda tp: behind[tp])
    return f"{len(behind)} partition(s) more than {max_lag} records behind (worst: {worst[0]}[{worst[1]}] {behind[worst]})"


def _topic_partition(log_id: str) -> tuple[str, str]:
    """``<topic>/<partition>`` (or ``<topic>/table`` for a reference table) as two labels."""
    topic, _, partition = log_id.rpartition("/")
    return topic, partition


def _outcome(decision: Decision) -> str:
    if isinstance(decision, Skip):
        return decision.reason
    if isinstance(decision, Fail):
        return decision.action.value
    return {Emit: "processed", Deliver: "handled", Rekey: "rekeyed", Prepare: "prepared"}[type(decision)]


def _header(record: Record, name: str) -> str | None:
    for key, value in record.headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return None


async def serve(metrics: BusMetrics, *, host: str, port: int, ready: Readiness) -> Any:
    """Serve ``/metrics``, ``/health/live`` and ``/health/ready`` until the returned runner is cleaned up."""
    from aiohttp import web

    async def scrape(_request: web.Request) -> web.Response:
        body = await metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def live(_request: web.Request) -> web.Response:
        return web.json_response({"status": "live"})

    async def readiness(_request: web.Request) -> web.Response:
        ok, reason = await ready()
        return web.json_response({"status": "ready" if ok else "not ready", "reason": reason},
                                 status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", readiness)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise _port_taken(host, port, exc) from exc
    return runner


def check_port(host: str, port: int) -> None:
    """Raise ConfigurationError now if :func:`serve` could not listen on ``host:port`` (a server that
    starts it later, inside uvicorn's lifespan, would report a traceback instead of one line)."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does: TIME_WAIT is not "taken"
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise _port_taken(host, port, exc) from exc


def _port_taken(host: str, port: int, exc: OSError) -> ConfigurationError:
    return ConfigurationError(f"cannot serve the metrics on {host}:{port}: {exc.strerror}",
                              hint="choose a free port for --metrics-port")
