"""The one per-record step: what the bus does with a consumed record, as a pure decision.

Every record a processor or a subscriber consumes goes through :meth:`Step.run`, in this order:

1. **skip by type**: a record whose ``ce_type`` the core does not read is skipped unread;
2. **open**: :meth:`bus.Wire.open` checks the envelope, verifies the signature against the key
   directory at the event's time, decrypts an addressed event with the wire's decryption keys,
   then decodes the payload (nothing is decrypted or decoded unverified); an addressed event
   for which the reader holds no key is skipped (``not-a-recipient``): it is not for this reader;
3. **key**: ``core.key(event)`` names the state; a record whose Kafka key (or topic's
   partitioning) is not that key is **re-keyed**: its bytes, untouched, go to the core's rekey
   topic keyed by the state key, and it is processed from there;
4. **duplicate check**: the ids of the last :data:`SEEN_PER_KEY` events processed for a state
   are kept *with that state* (an :class:`Entry`); a redelivered event is skipped, so cores keep
   no ``seen`` list of their own;
5. **reference data**: a :class:`Binding`'s ``prepare`` (I/O: the content store) is asked for,
   and the step resumes with its answer;
6. **process**: ``core.process(state, event, ctx)``;
7. **derived ids**: each output without an id gets one derived from (core, state key, cause,
   rank) by :func:`derived_id`, so a re-run after a crash emits the same ``ce_id``; an output
   of an addressed event that names no recipients of its own is addressed to the same ones, and
   a timer's output to the recipients of every addressed event its state took data from (the
   :class:`Entry` keeps them), unless the core publishes aggregates (``public_outputs``, :func:`broadcasts`);
8. **seal**: outputs are signed by the wire, each with its topic; an output whose dossier's key
   was destroyed since the core read its personal data (a copy the state kept) carries those
   fields ``[effacé]`` (:func:`bus._erasure.erased`) instead of failing;
9. **error policy**: any failure above becomes the :class:`~bus.ErrorPolicy`'s decision: retry
   after a backoff, dead-letter (the original bytes with ``dlq_*`` headers, ready to send), skip,
   or raise.

The step does no I/O and keeps no state: it returns a decision (:class:`Skip`, :class:`Rekey`,
:class:`Prepare`, :class:`Deliver`, :class:`Emit`, :class:`Fail`) and the *shells* do what it
asks. There are three: :class:`bus.client.Subscriber` (handlers: the step's :class:`Deliver`
asks it to call the handler), the faust shell of ``bus worker`` (``processors``), and
:class:`bus.testing.TopologyTestDriver`, which therefore runs exactly what production runs.
Anything added to how a record is handled (decryption, tenant checks, metrics) goes here once.

Timers: :meth:`Step.tick` runs ``core.on_time`` for one state. What "now" is for a tick is the
shell's choice: the processing clock, or event time (:class:`Watermarks`: per input partition the
newest event time seen, minus an allowed lateness; the worker's watermark is the oldest of its
partitions'), so a stream replayed from a past year meets its deadlines as it did live.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ._erasure import erased
from ._errors import BusError, ErasedDossierError, HandlerError, NotARecipientError, WithheldPersonalDataError
from ._policy import Action, ErrorPolicy
from ._processor import Context, Processor, broadcasts, reads
from ._topics import topic_for_schema
from ._wire import Event, Received, Record, Wire

__all__ = [
    "Binding",
    "DLQ_PREFIX",
    "Deliver",
    "Emit",
    "Entry",
    "Fail",
    "Prepare",
    "REKEY_HEADER",
    "Rekey",
    "SEEN_PER_KEY",
    "Skip",
    "Step",
    "Watermarks",
    "dead_letter_headers",
    "derived_id",
]

DLQ_PREFIX = "dlq_"
REKEY_HEADER = "bus_rekey_original_key"
# Processed ids kept with each state: a redelivery window, not a history. A redelivery after a
# crash replays what followed the last commit (at most a few batches of 200), far below this.
SEEN_PER_KEY = 256
PrepareFn = Callable[[Received], Awaitable[Mapping[str, Mapping[str, Any]]]]


@dataclasses.dataclass(frozen=True)
class Binding:
    """A core and, when it needs I/O, the shell step that does it before the core runs.

    ``prepare(event)`` returns extra reference tables merged into ``ctx.tables`` for that
    event only (ingress: the adapted document, keyed by its SHA-256).
    """

    core: Processor
    prepare: PrepareFn | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """A core's state for one key, the ids of the events last processed into it, on event time
    the moment its timers last ran, and the recipients of the addressed events it holds data of."""

    state: Any
    seen: tuple[str, ...] = ()
    timers_at: dt.datetime | None = None
    #: SIRENs of every addressed event processed into this state: what its timers emit is addressed to them.
    recipients: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        value = {"state": self.state, "seen": list(self.seen)}
        if self.timers_at is not None:
            value["timers_at"] = self.timers_at.isoformat()
        if self.recipients:
            value["recipients"] = list(self.recipients)
        return value

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Entry:
        at = value.get("timers_at")
        return cls(value["state"], tuple(value.get("seen", ())), dt.datetime.fromisoformat(at) if at else None,
                   tuple(value.get("recipients", ())))

    def after(self, state: Any, event_id: str, recipients: Sequence[str] = ()) -> Entry:
        return Entry(state, (*self.seen, event_id)[-SEEN_PER_KEY:], self.timers_at,
                     tuple(sorted({*self.recipients, *recipients})))


# -- decisions ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Skip:
    """Nothing to do: ``reason`` is ``other-type``, ``no-key``, ``duplicate``, ``not-a-recipient`` or ``policy``."""

    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Rekey:
    """Send ``record`` (the original bytes, keyed by the state key) to the rekey topic."""

    record: Record


@dataclasses.dataclass(frozen=True, slots=True)
class Prepare:
    """Run the binding's ``prepare`` for ``received``, then call :meth:`Step.resume`."""

    received: Received
    key: str
    record: Record


@dataclasses.dataclass(frozen=True, slots=True)
class Deliver:
    """Call the handler with ``received``; once it succeeded, store ``entry`` under ``key``."""

    received: Received
    key: str
    entry: Entry


@dataclasses.dataclass(frozen=True, slots=True)
class Emit:
    """Store ``entry`` under ``key`` once every record of ``outputs`` (topic set) is on Kafka."""

    key: str
    entry: Entry
    outputs: tuple[Record, ...]
    cause: str | None
    time: dt.datetime | None = None  # the cause's event time (timers on event time observe it)


@dataclasses.dataclass(frozen=True, slots=True)
class Fail:
    """The error policy's decision: RETRY after ``delay`` s, DEAD_LETTER ``dead_letter``, or RAISE."""

    action: Action
    error: BaseException
    attempts: int
    delay: float = 0.0
    dead_letter: Record | None = None


Decision = Skip | Rekey | Prepare | Deliver | Emit | Fail


def dead_letter_headers(record: Record, error: BaseException, *, processor: str, attempts: int,
                        now: dt.datetime) -> list[tuple[str, bytes]]:
    """The original headers, untouched, followed by the ``dlq_*`` headers describing the failure."""
    if isinstance(error, BusError):
        described = error.to_headers()
    else:
        described = {"error_class": type(error).__name__, "error_message": str(error)[:1000],
                     "error_hint": "a bug in the handler: fix it, then `bus dlq redrive`"}
    added = {
        **described,
        "processor": processor,
        "source_topic": record.topic or "",
        "source_partition": str(record.partition),
        "source_offset": str(record.offset),
        "source_timestamp": str(record.timestamp_ms),
        "failed_at": now.isoformat(),
        "attempts": str(attempts),
    }
    return [*record.headers, *((f"{DLQ_PREFIX}{k}", str(v).encode()) for k, v in added.items())]


def derived_id(core: str, state_key: str, cause: str, rank: int, *, clock_id: str | None,
               now: dt.datetime) -> str:
    """A UUIDv7-shaped ``ce_id`` that is the same each time the same cause makes the same output.

    74 bits of SHA-256 over (core, state key, cause, rank); the 48-bit milliseconds are those of
    ``clock_id`` when it is a UUIDv7 (the cause's own id, so the id stays time-ordered), else
    the UTC day of ``now`` (timer outputs: same ids within a day).
    """
    digest = int.from_bytes(hashlib.sha256(f"{core}\x00{state_key}\x00{cause}\x00{rank}".encode()).digest()[:10], "big")
    try:
        parsed = uuid.UUID(clock_id) if clock_id else None
    except ValueError:
        parsed = None
    if parsed is not None and parsed.version == 7:
        millis = parsed.int >> 80
    else:
        day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        millis = int(day.timestamp() * 1000)
    value = (millis & (2**48 - 1)) << 80 | digest
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return str(uuid.UUID(int=value))


class Step:
    """The per-record sequence for one core (or, with ``core=None``, one handler).

    ``topics`` maps the logical topics the core emits to (and reads) to their Kafka names;
    ``partitions`` gives each input topic's partition count and ``state_partitions`` the
    state's: a record is processed in place only when both its key is the state key and its
    topic is partitioned like the state, else it is re-keyed to ``rekey_topic``. ``prepares``:
    the core's binding has a ``prepare`` step, asked for (:class:`Prepare`) before ``process``.
    ``event_time``: ``ctx.now`` of ``process`` is the event's own ``ce_time`` (a replay then
    decides as the live run did), not the shell's clock; and before an event is processed, its
    state's timers run for each day since they last ran, up to the event's time, as the live
    run's periodic timer did (see :meth:`tick`).
    """

    def __init__(self, wire: Wire, *, name: str, core: Processor | None = None,
                 policy: ErrorPolicy | None = None, topics: Mapping[str, str] | None = None,
                 rekey_topic: str | None = None, dead_letter_topic: str = "deadletter",
                 partitions: Mapping[str, int] | None = None, state_partitions: int | None = None,
                 prepares: bool = False, event_time: bool = False) -> None:
        self.wire = wire
        self.name = name
        self.core = core
        self.policy = policy or ErrorPolicy()
        self.topics = dict(topics or {})
        self.rekey_topic = rekey_topic
        self.dead_letter_topic = dead_letter_topic
        self.partitions = dict(partitions or {})
        self.state_partitions = state_partitions
        self.prepares = prepares
        self.event_time = event_time

    # -- one record -----------------------------------------------------------------------------

    def run(self, record: Record, *, ctx: Context, lookup: Callable[[str], Entry | None],
            attempt: int = 1) -> Decision:
        """The decision for ``record`` (its ``attempt``-th try); ``lookup`` reads a state entry."""
        if self.core is not None and not reads(self.core, record.headers):
            return Skip("other-type")
        original, state_key = self.original(record)
        try:
            received = self.wire.open(original)
            if self.core is None:
                key = received.subject
                entry = lookup(key) or Entry(None)
                if received.id in entry.seen:
                    return Skip("duplicate")
                return Deliver(received, key, entry.after(None, received.id))
            if received.hidden and received.erasure is None:  # withheld, not erased: never act on placeholders
                dossier = received.dossier or received.subject
                raise WithheldPersonalDataError(
                    f"{self.name} does not hold the dossier key of {dossier}: its personal fields "
                    f"({', '.join(received.hidden)}) are encrypted", dossier=dossier, fields=",".join(received.hidden))
            if state_key is None:
                key = self.core.key(received, ctx)
                if key is None:
                    return Skip("no-key")
                if self._elsewhere(key, original):
                    return Rekey(Record(key.encode(), original.value,
                                        (*original.headers, (REKEY_HEADER, original.key or b"")), self.rekey_topic))
                state_key = key
            if self._seen(state_key, received.id, lookup):
                return Skip("duplicate")
            if self.prepares:
                return Prepare(received, state_key, record)
            return self._process(received, state_key, ctx, lookup)
        except NotARecipientError:
            # Verified, but addressed to administrations whose keys this reader does not hold: it passes
            # unread (issue 12 item 3), neither retried nor dead-lettered, as a record of another type.
            return Skip("not-a-recipient")
        except Exception as error:
            return self.failure(record, error, attempt, now=ctx.now)

    def resume(self, prepared: Prepare, extra: Mapping[str, Mapping[str, Any]], *, ctx: Context,
               lookup: Callable[[str], Entry | None], attempt: int = 1) -> Decision:
        """The decision for a record once its :class:`Prepare` was answered with ``extra`` tables."""
        try:
            ctx = dataclasses.replace(ctx, tables={**ctx.tables, **extra})
            return self._process(prepared.received, prepared.key, ctx, lookup)
        except Exception as error:
            return self.failure(prepared.record, error, attempt, now=ctx.now)

    def failure(self, record: Record, error: BaseException, attempt: int, *, now: dt.datetime,
                handler: bool = False) -> Skip | Fail:
        """What the policy does with ``error`` raised on the ``attempt``-th try of ``record``.

        ``handler``: the error came from a subscriber's handler; unless the policy raises it, a
        non-bus error is wrapped in :class:`bus.HandlerError` so the dead letter says so.
        """
        action = self.policy.action_for(error)
        if handler and not isinstance(error, BusError) and action is not Action.RAISE:
            wrapped = HandlerError(f"{self.name} failed: {error}", topic=record.topic, partition=record.partition,
                                   offset=record.offset)
            wrapped.__cause__ = error
            error, action = wrapped, self.policy.action_for(wrapped)
        if action is Action.RETRY and attempt <= self.policy.max_retries:
            return Fail(Action.RETRY, error, attempt, delay=self.policy.backoff_ms * attempt / 1000)
        if action is Action.SKIP:
            return Skip("policy")
        if action is Action.RAISE:
            return Fail(Action.RAISE, error, attempt)
        original, _ = self.original(record)
        headers = dead_letter_headers(original, error, processor=self.name, attempts=attempt, now=now)
        return Fail(Action.DEAD_LETTER, error, attempt,
                    dead_letter=Record(original.key, original.value, tuple(headers), self.dead_letter_topic))

    # -- timers ---------------------------------------------------------------------------------

    def tick(self, key: str, entry: Entry, ctx: Context) -> Emit | None:
        """``core.on_time`` for one state at ``ctx.now``: the new entry and its sealed outputs, or None.

        On event time, timers run once for each day since they last ran for this state (at noon
        UTC, the same date in Paris), the last run at ``ctx.now`` itself: a state meets each
        deadline on its day whatever the pace of the replay; and not again within the same day.
        """
        assert self.core is not None
        entry, outputs = self._timers(key, entry, ctx)
        if not outputs and entry is None:
            return None
        assert entry is not None
        return Emit(key, entry, tuple(outputs), None)

    def _moments(self, entry: Entry, now: dt.datetime) -> list[dt.datetime]:
        if not self.event_time:
            return [now]
        if entry.timers_at is None:
            return []  # first event of the state: nothing could be due before it
        moments = []
        day = entry.timers_at.astimezone(dt.UTC).date() + dt.timedelta(days=1)
        last = now.astimezone(dt.UTC).date()
        while day <= last:
            moments.append(now if day == last else dt.datetime.combine(day, dt.time(12), dt.UTC))
            day += dt.timedelta(days=1)
        return moments

    def _timers(self, key: str, entry: Entry, ctx: Context) -> tuple[Entry | None, list[Record]]:
        """Run the timers due at ``ctx.now``: the entry after them (None if unchanged) and their outputs."""
        assert self.core is not None
        outputs: list[Record] = []
        changed = False
        moments = self._moments(entry, ctx.now)
        for moment in moments:
            state, events = self.core.on_time(copy.deepcopy(entry.state), key, dataclasses.replace(ctx, now=moment))
            if state != entry.state or events:
                # A tick has no cause: the state it started from names it, so a re-run after a
                # crash (the new state unwritten) gives the same ids, on the same day.
                before = hashlib.sha256(json.dumps({"state": entry.state, "seen": list(entry.seen)},
                                                   sort_keys=True).encode()).hexdigest()
                if entry.recipients and not broadcasts(self.core):  # derived from addressed data: stays addressed
                    events = [e if e.recipients is not None else dataclasses.replace(e, recipients=entry.recipients)
                              for e in events]
                outputs += self._seal(events, key, f"on_time:{before}", None, moment)
                entry = Entry(state, entry.seen, entry.timers_at, entry.recipients)
                changed = True
        if self.event_time and (entry.timers_at is None or moments):  # at most once a day per state
            entry = Entry(entry.state, entry.seen, ctx.now, entry.recipients)
            changed = True
        return (entry if changed else None), outputs

    # -- helpers --------------------------------------------------------------------------------

    def original(self, record: Record) -> tuple[Record, str | None]:
        """A record from the rekey topic as it was first published, and its state key."""
        if self.rekey_topic is None or record.topic != self.rekey_topic:
            return record, None
        original_key: bytes | None = None
        headers = []
        for name, value in record.headers:
            if name == REKEY_HEADER:
                original_key = value or None
            else:
                headers.append((name, value))
        state_key = record.key.decode() if record.key else None
        return dataclasses.replace(record, key=original_key, headers=tuple(headers)), state_key

    def _elsewhere(self, key: str, record: Record) -> bool:
        if self.rekey_topic is None:
            return False
        if key.encode() != record.key:
            return True
        count = self.partitions.get(record.topic or "")
        return count is not None and count != self.state_partitions

    @staticmethod
    def _seen(key: str, event_id: str, lookup: Callable[[str], Entry | None]) -> bool:
        entry = lookup(key)
        return entry is not None and event_id in entry.seen

    def _process(self, received: Received, key: str, ctx: Context, lookup: Callable[[str], Entry | None]) -> Emit:
        assert self.core is not None
        entry = lookup(key) or Entry(self.core.initial_state())
        timed: list[Record] = []
        if self.event_time:
            ctx = dataclasses.replace(ctx, now=received.time)
            if entry.timers_at is not None:  # the timers the live run would have run before this event
                ticked, timed = self._timers(key, entry, ctx)
                entry = ticked or entry
            else:
                entry = Entry(entry.state, entry.seen, received.time, entry.recipients)
        state, outputs = self.core.process(copy.deepcopy(entry.state), received, ctx)
        addressed = () if received.envelope.recipients is None or broadcasts(self.core) else \
            received.envelope.recipient_sirens
        if addressed:  # what is derived from an addressed event stays addressed
            outputs = [o if o.recipients is not None else dataclasses.replace(o, recipients=addressed)
                       for o in outputs]
        sealed = self._seal(outputs, key, received.id, received.envelope.id, ctx.now)
        return Emit(key, entry.after(state, received.id, addressed), (*timed, *sealed), received.id, received.time)

    def _seal(self, outputs: Sequence[Event], key: str, cause: str, clock_id: str | None,
              now: dt.datetime) -> tuple[Record, ...]:
        """Seal outputs, each with a ``ce_id`` derived from (core, state, cause, rank) unless it has one."""
        out = []
        for rank, event in enumerate(outputs):
            if not event.id:
                event = dataclasses.replace(event, id=derived_id(self.name, key, cause, rank, clock_id=clock_id,
                                                                 now=now))
            if self.event_time and event.time is None:
                event = dataclasses.replace(event, time=now)  # on event time, outputs keep their cause's time
            try:
                record = self.wire.seal(event)
            except ErasedDossierError:
                # the core copied personal data of a dossier erased since it read it (its state kept a copy):
                # the output carries it erased, as every earlier copy now reads
                schema = self.wire.catalog.latest(event.schema)
                record = self.wire.seal(dataclasses.replace(event, data=erased(schema, event.data)))
            logical = topic_for_schema(event.schema)
            out.append(dataclasses.replace(record, topic=self.topics.get(logical, logical)))
        return tuple(out)


class Watermarks:
    """Event time per input partition, for timers that run on the stream's time.

    A shell calls :meth:`observe` with the verified ``ce_time`` of every event it processed.
    :meth:`now` is the time timers may run at: the oldest newest-time of the partitions still
    *behind* (records left to read), or, when every partition is read to its end, the newest
    time seen; minus ``lateness``, the delay allowed to an event behind others on its partition.
    A partition behind with no event seen yet holds timers back (``None``): its time is unknown.
    Replaying a past year therefore fires each deadline when the stream reaches it, as live.
    """

    def __init__(self, lateness: dt.timedelta = dt.timedelta(0)) -> None:
        self.lateness = lateness
        self.newest: dict[Any, dt.datetime] = {}

    def observe(self, partition: Any, time: dt.datetime) -> None:
        current = self.newest.get(partition)
        if current is None or time > current:
            self.newest[partition] = time

    def keep(self, partitions: Any) -> None:
        """Forget partitions no longer assigned: they must not hold this worker's time back."""
        for tp in [tp for tp in self.newest if tp not in partitions]:
            del self.newest[tp]

    def now(self, behind: Any = ()) -> dt.datetime | None:
        behind = list(behind)
        if behind:
            if any(tp not in self.newest for tp in behind):
                return None
            return min(self.newest[tp] for tp in behind) - self.lateness
        if not self.newest:
            return None
        return max(self.newest.values()) - self.lateness
