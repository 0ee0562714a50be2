"""What the bus measures while it runs, for Prometheus: one registry per process, one place per fact.

Every decision of the per-record step (:class:`bus.Step`) is counted here, by
:meth:`StepMetrics.observe`, which the shells call once per record (the worker's faust shell,
the SDK's :class:`bus.client.Subscriber`): records in by processor, event type and outcome,
dead letters by error class, verification failures, step duration and end-to-end latency (the
cause's event time to its outputs). Gauges that only a running process knows — consumer lag,
state sizes, checkpoint ages, payments whose deadline is near — are set by that process just
before a scrape (:meth:`BusMetrics.collectors`). :func:`serve` exposes ``/metrics`` and the
health endpoints (``/health/live``, ``/health/ready``) on one port, with aiohttp (already a
dependency of faust).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ._errors import SecurityError
from ._step import Decision, Deliver, Emit, Fail, Prepare, Rekey, Skip
from ._wire import Record

__all__ = ["BusMetrics", "Readiness", "StepMetrics", "serve"]

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
        self.checkpoint_age = Gauge("bus_checkpoint_age_seconds", "Age of the last ledger checkpoint",
                                    ["topic", "partition"], registry=r)
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
    await web.TCPSite(runner, host, port).start()
    return runner
