"""Date arithmetic of the délai global de paiement (DGP) of public buyers.

The rules are those of décret n° 2013-269 du 29 mars 2013 relatif à la lutte contre les
retards de paiement dans les contrats de la commande publique, now codified in the code de la
commande publique (articles R. 2192-10 to R. 2192-36):

* art. 1 (R. 2192-10): the period is 30 days for the State, the collectivités territoriales and
  their établissements publics (50 days for établissements publics de santé, 60 for public
  enterprises); :data:`LOCAL_AUTHORITY_DAYS` is the default of the accounting chain;
* art. 2 (R. 2192-12): it runs from the date the buyer receives the payment request
  (the reception date, here the invoice event's date in France);
* art. 10 (R. 2192-27/28): the buyer may suspend it **once**, before it expires, when the
  request lacks required pieces or mentions or they are wrong or inconsistent. On receipt of
  everything asked for, *a new period is opened*: 30 days, or the balance that remained on
  the date the suspension was notified when that balance is longer than 30 days
  (:func:`restart_days`). So for a 30-day buyer a corrected invoice always restarts a full
  30 days from its own reception;
* art. 8 (R. 2192-31): late-payment interest runs from the day after the period expires to the
  day of payment included, so the number of days late is ``paid_on - deadline``.

The accounting chain keeps a running period and a suspension in its JSON state as the plain
dicts :func:`open_period`, :func:`suspend_period` and :func:`reopen_period` make (ISO dates).
A suspension is notified on the day the chain checks the request: for wrong or inconsistent
mentions, and also when the contract or engagement the invoice names is not known to the
buyer yet (the reference cannot be verified); the "everything asked for" that reopens the
period is then the corrected invoice, or the contract's data when it is published.

Days are calendar days: weekends and public holidays are not special and a deadline falling on a
Sunday is not moved; leap years come from :mod:`datetime`. Dates are civil dates in
metropolitan France (:func:`paris_date`), computed without a time-zone database so the core
stays pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

__all__ = [
    "LOCAL_AUTHORITY_DAYS",
    "RESTART_MINIMUM_DAYS",
    "days_late",
    "deadline_for",
    "interest_start",
    "open_period",
    "paris_date",
    "remaining_days",
    "reopen_period",
    "restart_days",
    "suspend_period",
]

#: Délai global de paiement of collectivités territoriales and the State (décret 2013-269 art. 1).
LOCAL_AUTHORITY_DAYS = 30

#: Minimum length of the new period opened after a suspension (décret 2013-269 art. 10).
RESTART_MINIMUM_DAYS = 30

_HOUR = dt.timedelta(hours=1)


def _last_sunday(year: int, month: int) -> dt.date:
    last = dt.date(year, month + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


def paris_date(instant: dt.datetime) -> dt.date:
    """The civil date of ``instant`` in metropolitan France (CET, CEST in summer).

    Summer time runs from the last Sunday of March to the last Sunday of October, 01:00 UTC
    both (EU directive 2000/84/EC); that rule is applied directly, so no time-zone database is
    read. A naive ``instant`` is taken as UTC.
    """
    utc = instant.replace(tzinfo=dt.UTC) if instant.tzinfo is None else instant.astimezone(dt.UTC)
    year = utc.year
    summer_starts = dt.datetime.combine(_last_sunday(year, 3), dt.time(1), dt.UTC)
    summer_ends = dt.datetime.combine(_last_sunday(year, 10), dt.time(1), dt.UTC)
    offset = 2 * _HOUR if summer_starts <= utc < summer_ends else _HOUR
    return (utc + offset).date()


def deadline_for(start: dt.date, days: int) -> dt.date:
    """The last day of a ``days``-day period running from ``start`` (invoice received on
    2028-02-10 with 30 days: 2028-03-11, through the 29th of February)."""
    return start + dt.timedelta(days=days)


def remaining_days(deadline: dt.date, suspended_on: dt.date) -> int:
    """Days of the period left on the date the suspension was notified (never negative)."""
    return max(0, (deadline - suspended_on).days)


def restart_days(remaining: int) -> int:
    """Length of the new period opened by a corrected request: 30 days, or the balance left at
    the suspension when it is longer (décret 2013-269 art. 10)."""
    return max(RESTART_MINIMUM_DAYS, remaining)


def days_late(deadline: dt.date, paid_on: dt.date) -> int:
    """Days of late-payment interest: from the day after ``deadline`` to ``paid_on`` included."""
    return max(0, (paid_on - deadline).days)


def interest_start(deadline: dt.date) -> dt.date:
    """The first day late-payment interest runs: the day after the period expired."""
    return deadline + dt.timedelta(days=1)


def open_period(start: dt.date, days: int) -> dict[str, Any]:
    """A ``days``-day period running from ``start``: ``{"start", "days", "deadline"}``."""
    return {"start": start.isoformat(), "days": days, "deadline": deadline_for(start, days).isoformat()}


def suspend_period(received: dt.date, notified_on: dt.date, days: int) -> dict[str, Any]:
    """The suspension, notified on ``notified_on`` (never before ``received``), of the ``days``-day
    period that ran from ``received``: ``{"on", "deadline_before", "remaining"}``."""
    on = max(received, notified_on)
    deadline = deadline_for(received, days)
    return {"on": on.isoformat(), "deadline_before": deadline.isoformat(), "remaining": remaining_days(deadline, on)}


def reopen_period(suspension: Mapping[str, Any], completed_on: dt.date) -> dict[str, Any]:
    """The new period opened once what the suspension asked for is received on ``completed_on``
    (a period never starts before the suspension it follows): :func:`restart_days` long."""
    start = max(completed_on, dt.date.fromisoformat(suspension["on"]))
    return open_period(start, restart_days(suspension["remaining"]))
