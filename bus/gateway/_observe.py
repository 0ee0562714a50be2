"""What a running gateway tells its operator: requests, submissions, inbox latency, feed lag, readiness.

``bus gateway --metrics-port P`` serves ``/metrics``, ``/health/live`` and ``/health/ready`` on
a port of their own (never on the public API). Requests are counted by a plain ASGI wrapper
(streamed inbox responses pass through untouched) under their route template, so a SIREN or a
document digest in the path never becomes a series. Ready: the broker answers a metadata
request, the feed's consumer has its partitions, read to the end once, and is within
``max_lag`` records of every partition's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from bus._metrics import GatewayMetrics, lag_refusal

from ._feed import Feed

__all__ = ["MeasuredApp", "counted_submission", "feed_lags", "gateway_readiness", "observe_feed"]

#: How long the readiness check waits for the broker's metadata answer.
BROKER_TIMEOUT_SECONDS = 5.0


class MeasuredApp:
    """ASGI wrapper counting each HTTP request by route template, method and status, and timing it."""

    def __init__(self, app: Any, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception escaping the app is answered 500 by the server
        started = time.perf_counter()

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)


@contextlib.contextmanager
def counted_submission(metrics: GatewayMetrics | None, kind: str) -> Iterator[None]:
    """Count the submission in the block as accepted, or refused with its error class."""
    try:
        yield
    except Exception as exc:
        if metrics is not None:
            metrics.submissions.labels(kind, "refused", type(exc).__name__).inc()
        raise
    if metrics is not None:
        metrics.submissions.labels(kind, "accepted", "").inc()


async def feed_lags(feed: Feed) -> dict[tuple[str, int], int]:
    """Records not yet read by the feed, per partition it reads."""
    consumer = feed.consumer
    if consumer is None:
        return {}
    out = {}
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if end is None:
            continue  # nothing fetched from it yet: unknown, the readiness waits for the first read
        out[(tp.topic, tp.partition)] = max(end - await consumer.position(tp), 0)
    return out


def observe_feed(feed: Feed, metrics: GatewayMetrics) -> None:
    """Set the feed's consumer lag before each scrape."""

    async def refresh() -> None:
        lag = metrics.metrics.lag
        lag.clear()
        for (topic, partition), behind in (await feed_lags(feed)).items():
            lag.labels(topic, str(partition)).set(behind)

    metrics.metrics.on_scrape(refresh)


def gateway_readiness(feed: Feed, *, max_lag: int = 1000) -> Any:
    """The readiness check of a gateway (see the module docstring)."""

    async def ready() -> tuple[bool, str]:
        consumer = feed.consumer
        if consumer is None or not consumer.assignment():
            return False, "the feed has no partition assigned yet"
        try:
            await asyncio.wait_for(consumer.topics(), BROKER_TIMEOUT_SECONDS)
        except Exception as exc:  # any failure to get metadata means: not reachable now
            return False, f"the broker does not answer ({type(exc).__name__})"
        if not feed.ready.is_set():
            return False, "the feed is reading the topics to their end"
        refusal = lag_refusal(await feed_lags(feed), max_lag)
        if refusal is not None:
            return False, refusal
        return True, f"broker reachable, feed assigned and within {max_lag} records of the end"

    return ready
