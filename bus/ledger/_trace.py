"""``bus trace DOSSIER``: every event of a dossier across families, as a timeline, and its state at a date.

Collection starts from the verified events whose subject is the dossier, then adds,
transitively until nothing changes: events sharing a collected event's correlation id,
events whose causation id names a collected event (what it caused), and events a collected
event names as its cause (what caused it). So an invoice brings its contract and procurement
(correlation, causation), a mandat its invoices, a transfer its dossier. Only verified
events (:class:`~bus.ledger._replay.Opened` with ``ok``) are followed: a forged event cannot
pull itself into a dossier's history.

The state at a date is that of the last state-changing event of the dossier itself up to
that date: its payload's ``status`` or ``state`` field when it has one, else the event
type's name (``fr.dcant.invoices.InvoicePaid`` → ``InvoicePaid``). :func:`collect` and
:func:`state_at` are pure; :func:`trace_dossier` reads the family topics.

Erasure: a verified ``fr.dcant.privacy.PersonalDataErased`` event of a dossier in the timeline
(:func:`with_erasures`) labels the personal fields this reader sees blanked in the dossier's
events as erased, with its basis and date: the ledgered event is the authority, so a reader
without the key store (an auditor, an evidence bundle) tells an erasure from a key it lacks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence

from bus._envelope import parse_time
from bus._erasure import ERASURE_TYPE, relabel
from bus._settings import BusSettings
from bus._topics import FAMILIES, topic_map
from bus._wire import Wire
from bus.ledger._replay import Opened, ReplayQuery, replay

__all__ = ["DossierState", "collect", "state_at", "state_of", "trace_dossier", "with_erasures"]

_STATE_FIELDS = ("status", "state")


@dataclasses.dataclass(frozen=True, slots=True)
class DossierState:
    """A dossier's state at a moment and the event that set it."""

    dossier: str
    at: dt.datetime | None
    state: str | None
    event: Opened | None


def _time(item: Opened) -> dt.datetime:
    return parse_time(item.time or "1970-01-01T00:00:00Z")


def collect(dossier: str, events: Iterable[Opened]) -> list[Opened]:
    """The dossier's events and everything linked to them by correlation or causation, by time."""
    verified = [e for e in events if e.ok and e.id]
    by_id = {e.id: e for e in verified}
    by_correlation: dict[str, list[Opened]] = defaultdict(list)
    by_cause: dict[str, list[Opened]] = defaultdict(list)
    for e in verified:
        if e.correlationid:
            by_correlation[e.correlationid].append(e)
        if e.causationid:
            by_cause[e.causationid].append(e)
    found: dict[str, Opened] = {}
    todo = [e for e in verified if e.subject == dossier]
    while todo:
        event = todo.pop()
        if event.id in found:
            continue
        found[event.id] = event  # type: ignore[index]
        linked = by_cause.get(event.id or "", []) + by_correlation.get(event.correlationid or "", [])
        if event.causationid in by_id:
            linked.append(by_id[event.causationid])  # type: ignore[index]
        todo += [e for e in linked if e.id not in found]
    return with_erasures(sorted(found.values(),
                                key=lambda e: (_time(e), e.topic or "", e.partition or 0, e.offset or 0)))


def with_erasures(events: Sequence[Opened]) -> list[Opened]:
    """``events`` with the blanked personal fields of each erased dossier shown erased (basis, date, event)."""
    erasures = {e.subject: {"basis": e.data["basis"], "erased_at": e.data["erased_at"], "event_id": e.id}
                for e in events if e.ok and e.type == ERASURE_TYPE and isinstance(e.data, dict)}
    out = []
    for e in events:
        erasure = erasures.get(e.dossier or e.subject)  # a derived event may name its dossier (bus.Event.dossier)
        if e.hidden and e.erasure is None and erasure is not None:
            e = dataclasses.replace(e, data=relabel(e.data, e.hidden), erasure=erasure)
        out.append(e)
    return out


def state_of(event: Opened) -> str:
    """The state an event puts its dossier in (payload status/state, else the event name)."""
    data = event.data if isinstance(event.data, dict) else {}
    for name in _STATE_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return (event.type or "").rsplit(".", 1)[-1]


def state_at(dossier: str, timeline: Sequence[Opened], at: dt.datetime | None = None) -> DossierState:
    """The dossier's state at ``at`` (default: now): its own last event up to that moment."""
    own = [e for e in timeline if e.subject == dossier and (at is None or _time(e) <= at)]
    if not own:
        return DossierState(dossier, at, None, None)
    last = max(own, key=_time)
    return DossierState(dossier, at, state_of(last), last)


async def trace_dossier(settings: BusSettings, wire: Wire, dossier: str, *, topics: Sequence[str] | None = None,
                        at: dt.datetime | None = None, workers: int = 1) -> list[Opened]:
    """Read the family topics (or ``topics``), verify every event, collect the dossier's timeline.

    With ``at``, only events the broker received by then are read, and only events whose
    time is at or before it are kept.
    """
    specs = topic_map(settings)
    names = tuple(topics) if topics is not None else tuple(specs[f].name for f in FAMILIES)
    query = ReplayQuery(topics=names, until=at)
    events = [item async for item in replay(settings, wire, query, workers=workers)]
    timeline = collect(dossier, events)
    return [e for e in timeline if at is None or _time(e) <= at]
