"""The stage the demo's phases play on: who publishes, what the processors answered, this run's id.

:class:`Stage` holds one signed publisher per role of the demo (the commune, the prefecture,
the DGFiP, the archives service, the companies, each with its own key and CloudEvents source),
counts what the phases publish, and a :class:`Watcher` that reads every family topic from
where it stood when the run began, verifying each record. A phase publishes as the
administration that would send the message, then waits for the processors' outputs with
:meth:`Watcher.expect` (a condition on what was read, with a deadline): nothing sleeps.

Who reads what is decided here, once, not in each phase: :data:`ADDRESSED` names, per event type,
the parties a message goes to (its sender always among them), and :data:`SUBMISSIONS` the same per
native format handed to the ingress; the stage addresses each event accordingly, so its payload
(and a document it claim-checks, :meth:`Stage.document_key`) is encrypted to their keys. Every
other type is public by nature and broadcast. The watcher reads as every party of the demo (it
holds all their decryption keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from bus._errors import BusError, DeliveryError
from bus._keys import SigningKey
from bus._runtime import BusContext, dossier_key_store
from bus._sealed import DocumentKey, recipients_of
from bus._settings import BusSettings
from bus._topics import topic_for_schema
from bus._wire import Event, Received, Record, Wire
from bus.client import Publisher, kafka_args, partitions_of

from ._data import ADMINISTRATIONS
from ._keys import keyring_of

__all__ = ["ADDRESSED", "SUBMISSIONS", "WATCHED", "DemoTimeout", "Stage", "Watcher", "caused_by", "committed", "ids_of"]

log = logging.getLogger("bus.demo")
T = TypeVar("T")

#: Logical topics the demo reads the processors' answers from.
WATCHED = ("acts", "procurement", "invoices", "accounting", "archives",
           topic_for_schema("fr.dcant.reference.DocumentRequested"), "barometer", "deadletter")

#: Per event type a demo party sends, the roles it is addressed to besides its sender (encrypted to them).
#: Not listed, hence broadcast (public by nature): the publication of acts, notices and awards, DECP, the
#: attestations and companies (reference data); the barometer's figures are broadcast by its core.
ADDRESSED: dict[str, tuple[str, ...]] = {
    "fr.dcant.acts.ActTransmitted": ("prefecture",),  # to legality control
    "fr.dcant.acts.ActAcknowledged": ("commune",),  # the prefecture's AR
    "fr.dcant.procurement.CandidatureSubmitted": ("commune",),  # to the buyer, never to the other candidates
    # the buyer's profile reports tenders, their opening, rejection letters and the notification: the buyer's own
    # records (the letters themselves reach the companies through the profile); the modification is public (DECP)
    "fr.dcant.procurement.TenderSubmitted": (),
    "fr.dcant.procurement.TendersOpened": (),
    "fr.dcant.procurement.TenderRejected": (),
    "fr.dcant.procurement.ContractNotified": (),
    "fr.dcant.invoices.InvoiceReceived": ("commune",),  # supplier → buyer
    "fr.dcant.accounting.ServiceFaitRecorded": ("dgfip",),  # the ordonnateur certifies, for the comptable
    "fr.dcant.accounting.AcquittementReceived": ("commune",),  # the DGFiP's PES_ACQUIT
    "fr.dcant.accounting.PaymentRecorded": ("commune", "travaux"),  # the payment, to the buyer and the supplier paid
}
#: Per native format a demo party hands to the ingress, the roles its submission is addressed to besides the
#: sender: the document is stored sealed to them, and what the ingress derives from it stays addressed.
SUBMISSIONS: dict[str, tuple[str, ...]] = {
    "facturx": ("commune",),  # the supplier's Factur-X invoice, to the buyer
    "seda": ("commune",),  # the archives service's ArchiveTransferReply, to the transferring commune
}


class DemoTimeout(BusError):
    """A processor's answer did not come before the demo's deadline."""

    default_hint = "check the worker's log (printed above) and that `bus broker status` is healthy"


class Watcher:
    """Reads the watched topics from given offsets in the background; phases wait on what it read.

    ``events`` are the verified, decoded records in arrival order; ``dead`` the raw records of
    the dead-letter topic; ``rejected`` the records that did not verify.
    """

    def __init__(self, ctx: BusContext, start: dict[TopicPartition, int]) -> None:
        self.ctx = ctx
        self.start = dict(start)
        self.wire = Wire(ctx.catalog, ctx.directory, None, max_event_bytes=ctx.settings.max_event_bytes,
                         dossier_keys=dossier_key_store(ctx.settings), decryption=ctx.decryption)
        self.events: list[Received] = []
        self.dead: list[Record] = []
        self.rejected = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._dead_letter_topic = ctx.topic("deadletter")

    @classmethod
    async def from_now(cls, ctx: BusContext) -> Watcher:
        """A watcher of everything published on the watched topics from this moment on."""
        tps = await partitions_of(ctx.settings, [ctx.topic(t) for t in WATCHED])
        probe = AIOKafkaConsumer(**kafka_args(ctx.settings), group_id=None, enable_auto_commit=False)
        await probe.start()
        try:
            ends = await probe.end_offsets(tps) if tps else {}
        finally:
            await probe.stop()
        return cls(ctx, ends)

    async def __aenter__(self) -> Watcher:
        consumer = AIOKafkaConsumer(**kafka_args(self.ctx.settings), group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", max_poll_records=1000)
        await consumer.start()
        consumer.assign(list(self.start))
        for tp, offset in self.start.items():
            consumer.seek(tp, offset)
        self._consumer = consumer
        self._task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=500)
            if not batch:
                continue
            for tp, messages in batch.items():
                for m in messages:
                    record = Record(m.key, m.value, tuple(m.headers or ()), tp.topic, tp.partition, m.offset,
                                    m.timestamp)
                    if tp.topic == self._dead_letter_topic:
                        self.dead.append(record)
                        continue
                    try:
                        self.events.append(self.wire.open(record))
                    except BusError as err:
                        self.rejected += 1
                        log.info("demo watcher: record %s[%s]@%s does not verify: %s", tp.topic, tp.partition,
                                 m.offset, err)
            async with self._changed:
                self._changed.notify_all()

    def of(self, event_type: str, *, subject: str | None = None,
           where: Callable[[Received], bool] | None = None) -> list[Received]:
        """Events read so far of ``event_type`` (short names like ``ActStateChanged`` match too)."""
        return [e for e in self.events
                if (e.type == event_type or e.type.endswith("." + event_type))
                and (subject is None or e.subject == subject) and (where is None or where(e))]

    async def until(self, check: Callable[[], T | None], *, timeout: float) -> T | None:
        """``check()``'s first truthy result, or None when ``timeout`` seconds pass without one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._changed:
            while True:
                result = check()
                if result:
                    return result
                if self._task is not None and self._task.done():
                    self._task.result()  # the reader crashed: raise its error
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)

    async def expect(self, check: Callable[[], T | None], what: str, *, timeout: float = 180) -> T:
        """Like :meth:`until`, but a missing answer is a :class:`DemoTimeout` naming ``what``."""
        result = await self.until(check, timeout=timeout)
        if not result:
            raise DemoTimeout(f"no {what} within {timeout:.0f} s")
        return result

    def produced_by(self, source: str) -> list[Received]:
        """Events read whose CloudEvents source is ``source`` (the worker's outputs)."""
        return [e for e in self.events if e.envelope.source == source]


@dataclasses.dataclass
class Stage:
    """Everything the phases share: context, keys, run id, publishers per role, watcher, out dir."""

    ctx: BusContext
    keys: dict[str, SigningKey]
    watcher: Watcher
    worker_source: str
    out: Path | None = None
    run: str = dataclasses.field(default_factory=lambda: secrets.token_hex(3).upper())
    published: Counter[str] = dataclasses.field(default_factory=Counter)
    written: list[Path] = dataclasses.field(default_factory=list)
    #: Each party's own connection settings (its certificate) on the secure broker, by SIREN.
    identities: dict[str, BusSettings] = dataclasses.field(default_factory=dict)
    _publishers: dict[str, Publisher] = dataclasses.field(default_factory=dict)

    @property
    def run_number(self) -> int:
        """A number derived from the run id, for the numeric references (PES bordereaux, mandats)."""
        return int(self.run, 16) % 9000 + 1000

    def siren(self, role: str) -> str:
        return self.keys[role].public.siren

    def source(self, role: str) -> str:
        """``urn:siren:<SIREN>:<system>`` of a role."""
        return f"urn:siren:{self.siren(role)}:{ADMINISTRATIONS[role]['system']}"

    async def publisher(self, role: str) -> Publisher:
        """The started publisher signing with ``role``'s key (one per role, closed by :meth:`close`)."""
        if role not in self._publishers:
            wire = Wire(self.ctx.catalog, self.ctx.directory, keyring_of(self.ctx, self.keys[role]),
                        source=self.source(role),
                        clock=self.ctx.clock, max_event_bytes=self.ctx.settings.max_event_bytes,
                        dossier_keys=dossier_key_store(self.ctx.settings))  # the acts' names: erasable
            publisher = Publisher(self.identities.get(self.siren(role), self.ctx.settings), wire)
            await publisher.start()
            self._publishers[role] = publisher
        return self._publishers[role]

    def recipients(self, role: str, addressees: Iterable[str]) -> tuple[str, ...]:
        """The SIRENs of ``addressees`` (roles) and of the sender ``role`` (it reads what follows from its message)."""
        return tuple(sorted({self.siren(r) for r in (role, *addressees)}))

    def addressed(self, role: str, event: Event) -> Event:
        """``event`` as ``role`` sends it: addressed per :data:`ADDRESSED` (unless it names its recipients)."""
        addressees = ADDRESSED.get(event.type)
        if addressees is None or event.recipients is not None:
            return event
        return dataclasses.replace(event, recipients=self.recipients(role, addressees))

    def document_key(self, role: str, event_type: str, at: dt.datetime) -> DocumentKey | None:
        """The key a document that ``role`` claim-checks in an ``event_type`` dated ``at`` is sealed under.

        A fresh key wrapped for the recipients :meth:`addressed` gives that event (None when it is broadcast).
        """
        addressees = ADDRESSED.get(event_type)
        if addressees is None:
            return None
        return DocumentKey.fresh(recipients_of({}, self.ctx.directory, self.recipients(role, addressees), at))

    async def publish(self, role: str, events: Iterable[Event], *, topic: str | None = None) -> list[Record]:
        """Sign ``events`` as ``role`` and send them, addressed per :data:`ADDRESSED`; returns the records as stored."""
        events = [self.addressed(role, e) for e in events]
        records = await (await self.publisher(role)).publish_many(events, topic=topic)
        self.published[role] += len(records)
        return records

    async def submit(self, role: str, path: Path, *, declared_format: str | None = None,
                     dossier_hint: str | None = None, time: dt.datetime | None = None) -> Record:
        """Hand a native file to the ingress as ``role`` (claim check in the content store), addressed per
        :data:`SUBMISSIONS` (the document then stored sealed), received at ``time`` (default: now)."""
        from processors.ingress import submit

        settings = self.ctx.settings.model_copy(update={"source": self.source(role)})
        as_role = dataclasses.replace(self.ctx, settings=settings)
        addressees = SUBMISSIONS.get(declared_format or "")
        record = await submit(as_role, await self.publisher(role), path, declared_format=declared_format,
                              dossier_hint=dossier_hint, time=time,
                              recipients=None if addressees is None else self.recipients(role, addressees))
        self.published[role] += 1
        return record

    def write(self, name: str, data: bytes) -> Path | None:
        """Write a native document the bus produced into the output directory (when there is one)."""
        if self.out is None:
            return None
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / name
        path.write_bytes(data)
        self.written.append(path)
        return path

    def scratch(self) -> Path:
        """A folder for the files the demo's parties hand to the ingress (the suppliers' PDFs)."""
        folder = self.ctx.settings.state_dir / "demo" / self.run
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    async def close(self) -> None:
        for publisher in self._publishers.values():
            await publisher.stop()
        self._publishers.clear()


def ids_of(records: Sequence[Record]) -> set[str]:
    """The ``ce_id`` of published records."""
    return {dict(r.headers)["ce_id"].decode() for r in records}


def caused_by(ids: set[str]) -> Callable[[Received], bool]:
    """A filter of the events caused by (or correlated with) one of ``ids``."""
    return lambda e: e.envelope.causationid in ids or e.envelope.correlationid in ids


async def committed(settings: BusSettings, group: str, record: Record) -> bool:
    """Whether consumer group ``group`` committed past ``record`` (it handled the record)."""
    from bus.client import admin_client

    admin = admin_client(settings)
    try:
        await admin.start()
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError as exc:
        raise DeliveryError(f"cannot read the offsets of group {group}: {exc}") from exc
    finally:
        await admin.close()
    meta = offsets.get(TopicPartition(record.topic or "", record.partition or 0))
    return meta is not None and meta.offset > (record.offset or 0)
