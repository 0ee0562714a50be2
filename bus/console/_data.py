"""What the console shows, read from the bus: the one place the console does I/O.

:class:`ConsoleData` is the contract the web pages use (a dossier's timeline, the checkpoints per
partition, the dead letters, the barometer, an evidence bundle, a re-drive); :class:`BusData`
answers it from the broker with the ledger's and the CLI's own functions. Every failure to
reach the broker surfaces as :class:`bus.DeliveryError`, which the app shows as a page saying
the bus is unreachable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any, Protocol

from bus._errors import BusError, DeliveryError
from bus._settings import BusSettings

__all__ = ["BusData", "ConsoleData", "DeadLetter", "PartitionStatus", "TimelineEvent"]


@dataclasses.dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One verified event of a dossier's timeline."""

    id: str
    time: str
    type: str
    source: str
    subject: str
    topic: str
    partition: int
    offset: int
    data: dict[str, Any]

    @property
    def short_type(self) -> str:
        return self.type.rsplit(".", 1)[-1]

    def data_json(self) -> str:
        return json.dumps(self.data, ensure_ascii=False, indent=1, default=str)


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionStatus:
    """The last signed checkpoint of one topic-partition and what verification found."""

    topic: str
    partition: str  # a partition number, or "table" for a compacted topic's snapshot
    size: int | None
    checkpoint_time: dt.datetime | None
    findings: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered record: where it came from and why it was rejected."""

    partition: int
    offset: int
    source: str
    error_class: str
    message: str
    processor: str
    failed_at: str
    subject: str


class ConsoleData(Protocol):
    """What the pages read and the one action they take."""

    async def timeline(self, dossier: str) -> list[TimelineEvent]: ...

    async def verification(self) -> list[PartitionStatus]: ...

    async def dead_letters(self) -> list[DeadLetter]: ...

    async def redrive(self, partition: int, offset: int) -> str: ...

    async def barometer(self) -> list[dict[str, Any]]: ...

    async def evidence(self, dossier: str) -> bytes: ...


def _unreachable(error: Exception) -> DeliveryError:
    return DeliveryError(f"the bus is unreachable: {error}", hint="start the broker (`bus broker start`)")


class BusData:
    """:class:`ConsoleData` from the broker of ``settings``."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings

    async def _context(self) -> Any:
        from bus._runtime import BusContext

        try:
            return await BusContext.connect(self.settings, create_topics=False)
        except BusError:
            raise
        except Exception as error:  # aiokafka's connection errors: the broker is down
            raise _unreachable(error) from error

    async def timeline(self, dossier: str) -> list[TimelineEvent]:
        from bus.ledger._trace import trace_dossier

        ctx = await self._context()
        # as `bus trace` reads: the console decrypts what is addressed to the administrations whose keys it holds
        opened = await trace_dossier(self.settings, ctx.wire(), dossier)
        return [TimelineEvent(o.id or "", o.time or "", o.type or "", o.source or "", o.subject or "", o.topic or "",
                              o.partition or 0, o.offset or 0, o.data if isinstance(o.data, dict) else {"data": o.data})
                for o in opened if o.ok]

    async def verification(self) -> list[PartitionStatus]:
        from bus._topics import FAMILIES, topic_map
        from bus.ledger._replay import read_all
        from bus.ledger._verify import load_checkpoints, verify_topics

        ctx = await self._context()
        specs = topic_map(self.settings)
        report = await verify_topics(self.settings, ctx.catalog, ctx.directory, [specs[f].name for f in FAMILIES])
        by_log, _ = load_checkpoints(await read_all(self.settings, specs["ledger.checkpoints"].name), ctx.directory)
        rows = []
        for log_id, entries in sorted(by_log.items()):
            topic, _, partition = log_id.rpartition("/")
            last = entries[-1].checkpoint if entries else None
            findings = tuple(f"{f.kind}: {f.detail}" for f in report.findings
                             if f.topic == topic and str(f.partition) == partition)
            rows.append(PartitionStatus(topic, partition, last.size if last else None,
                                        dt.datetime.fromtimestamp(last.timestamp_ms / 1000, dt.UTC) if last else None,
                                        findings))
        return rows

    async def _dead(self) -> list[Any]:
        from bus._topics import topic_map
        from bus.client import read_topic

        await self._context()
        return await read_topic(self.settings, topic_map(self.settings)["deadletter"].name)

    async def dead_letters(self) -> list[DeadLetter]:
        from bus.cli._dlq import dlq_info

        rows = []
        for r in await self._dead():
            info = dlq_info(r)
            subject = dict(r.headers).get("ce_subject", b"").decode("utf-8", "replace")
            rows.append(DeadLetter(r.partition or 0, r.offset or 0,
                                   f"{info.get('source_topic')}[{info.get('source_partition')}]@"
                                   f"{info.get('source_offset')}", info.get("error_class", "?"),
                                   info.get("error_message", ""), info.get("processor", ""),
                                   info.get("failed_at", "")[:19], subject))
        return rows

    async def redrive(self, partition: int, offset: int) -> str:
        from bus.cli._dlq import dlq_info, original
        from bus.client import Publisher

        chosen = [r for r in await self._dead() if r.partition == partition and r.offset == offset]
        if not chosen:
            raise DeliveryError(f"no dead letter at {partition}@{offset}", hint="reload the dead letters page")
        ctx = await self._context()
        target = dlq_info(chosen[0]).get("source_topic") or ""
        async with Publisher(self.settings, ctx.wire()) as publisher:
            sent = await publisher.send_raw(target, original(chosen[0]))
        return f"{sent.topic}[{sent.partition}]@{sent.offset}"

    async def barometer(self) -> list[dict[str, Any]]:
        from bus._opendata import read_barometer

        await self._context()
        return await read_barometer(self.settings)

    async def evidence(self, dossier: str) -> bytes:
        from bus.ledger._evidence import collect_evidence

        ctx = await self._context()
        return await collect_evidence(self.settings, ctx.catalog, ctx.directory, dossier)
