"""The contract of a stream processor's pure core, shared by faust shells and the test driver.

A processor is a pure function ``process(state, event, ctx) -> (state, events)`` over the
state of one dossier: ``key(event, ctx)`` names it (usually the Kafka key, the subject; the
accounting chain keys invoices by their contract instead), and the shell re-partitions the
stream by that key so one worker owns each state. It does no I/O and reads no clock: the time is
``ctx.now`` (from the event stream or an injected clock) and reference data (companies,
attestations...) comes read-only in ``ctx.tables``. Timers (a payment deadline) are
``on_time(state, key, ctx)``, called by the shell as time advances. The faust agent that runs
a core, and :class:`bus.testing.TopologyTestDriver`, are interchangeable shells.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ._wire import Event, Received

__all__ = ["Context", "Processor", "broadcasts", "follow_up", "reads"]


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What a core may know besides its state and the event: the time and reference tables."""

    now: dt.datetime
    tables: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


@runtime_checkable
class Processor(Protocol):
    """A pure processor core. ``inputs`` and ``tables`` are logical topic names.

    A core may also declare ``types``, the CloudEvents types it reads (a set of strings): a shell
    then skips every other record of its input topics by its ``ce_type`` header, without
    verifying or decoding it (nothing of it is used). Input topics carry other cores' events,
    the core's own outputs among them, and verifying those was most of a worker's work.

    A core whose outputs are aggregate figures meant for open data (the barometer) declares
    ``public_outputs = True``: they are broadcast even when their inputs were addressed; any
    other core's outputs stay addressed to the recipients of what they derive from.
    """

    name: str
    inputs: Sequence[str]
    tables: Sequence[str]

    def key(self, event: Received, ctx: Context) -> str | None:
        """The state this event belongs to (usually ``event.subject``); None to ignore the event."""
        ...

    def initial_state(self) -> Any: ...

    def process(self, state: Any, event: Received, ctx: Context) -> tuple[Any, list[Event]]: ...

    def on_time(self, state: Any, key: str, ctx: Context) -> tuple[Any, list[Event]]: ...


def follow_up(cause: Received, *, type: str, schema: str, data: Mapping[str, Any], subject: str | None = None,
              time: dt.datetime | None = None, dossier: str | None = None) -> Event:
    """An event caused by ``cause``: same correlation id (or the cause's id), causation = cause.

    ``dossier``: the dossier whose key encrypts its personal fields, when not its subject (:attr:`Event.dossier`).
    """
    return Event(
        type=type, subject=subject or cause.subject, schema=schema, data=data, time=time,
        correlationid=cause.envelope.correlationid or cause.envelope.id, causationid=cause.envelope.id,
        dossier=dossier,
    )


def broadcasts(core: Processor | None) -> bool:
    """Whether ``core`` declared ``public_outputs`` (see :class:`Processor`): its outputs are never addressed."""
    return bool(getattr(core, "public_outputs", False))


def reads(core: Processor, headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether ``core`` reads a record with these headers (see :class:`Processor` ``types``).

    A record without a ``ce_type`` header is read, so the wire rejects it like any bad record.
    """
    types = getattr(core, "types", None)
    if types is None:
        return True
    for name, value in headers:
        if name == "ce_type":
            return value.decode("utf-8", "replace") in types
    return True
