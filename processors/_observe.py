"""What a running worker tells its operator: the gauges of its metrics and its readiness.

The counters and histograms of every record are kept by the step's shells
(:class:`bus.StepMetrics`); here are the figures only the worker knows at a given moment, set
just before each scrape: consumer lag per input partition it owns, states held per processor,
and the unpaid invoices whose payment deadline falls within 7, 15 or 30 days (from the
accounting chain's states). Readiness: the reference tables read, the table recovery complete,
partitions assigned, and every owned input partition within ``max_lag`` records of its end.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bus._metrics import BusMetrics, lag_refusal

__all__ = ["DEADLINE_HORIZONS", "observe", "readiness"]

DEADLINE_HORIZONS = (7, 15, 30)


def _lags(app: Any) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for shell in app.bus_shells:
        sources = {*shell.partitions, shell.rekey.name}
        for tp in app.consumer.assignment():
            if tp.topic not in sources:
                continue
            end = app.consumer.highwater(tp) or 0
            done = shell.last_offsets.get(tp)
            if done is None:  # nothing handled since this worker started: count from the commit point
                from .app import _start

                start = _start(app.consumer, tp) or 0
            else:
                start = done + 1
            out[(tp.topic, tp.partition)] = max(end - start, 0)
    return out


def observe(app: Any, metrics: BusMetrics) -> None:
    """Register the worker's gauges, set at each scrape."""

    async def refresh() -> None:
        metrics.lag.clear()
        for (topic, partition), lag in _lags(app).items():
            metrics.lag.labels(topic, str(partition)).set(lag)
        today = app.bus_context.clock().date()
        due = dict.fromkeys(DEADLINE_HORIZONS, 0)
        for shell in app.bus_shells:
            states = list(shell.table.data.values())
            metrics.states.labels(shell.core.name).set(len(states))
            counting = getattr(shell.core, "deadlines_within", None)
            if counting is None:
                continue
            for value in states:
                for days in DEADLINE_HORIZONS:
                    due[days] += counting(value["state"], today, days)
        for days, count in due.items():
            metrics.payments_due.labels(str(days)).set(count)

    metrics.on_scrape(refresh)


def readiness(app: Any, *, max_lag: int = 1000) -> Any:
    """The readiness check of a worker (see the module docstring)."""

    async def ready() -> tuple[bool, str]:
        if not app.bus_references.ready.is_set():
            return False, "reading the reference tables"
        if not app.tables.recovery.completed.is_set():
            return False, "recovering the states from their changelogs"
        if not app.consumer.assignment():
            return False, "no partition assigned yet"
        refusal = lag_refusal(_lags(app), max_lag)
        if refusal is not None:
            return False, refusal
        return True, "assigned, recovered and caught up"

    return ready
