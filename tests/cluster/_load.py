"""The workload of the cluster fault tests: idempotent acks=all producers publishing without pause.

Each of ``producers`` tasks has its own :class:`bus.client.Publisher` (its own producer id) and
publishes batches of company events, each with a ``ce_id`` fixed before the first attempt: a
batch whose delivery fails is sent again with the same ids, so a record written twice would show
as a duplicate ``ce_id`` in the log. The accounting reads the whole topic back at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

from bus import BusSettings, Event, Wire
from bus._errors import BusError
from bus.client import Publisher, admin_client, read_topic

TOPIC = "reference.companies"


def company(run: str, producer: int, n: int) -> Event:
    siret = f"{producer:02d}{n:012d}"
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{run}:{siret}",
                 schema="fr.dcant.reference.Company", id=f"{run}-{producer}-{n}",
                 data={"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret,
                       "name": f"Fault {run} {producer} {n}", "administrative_state": "ACTIVE",
                       "diffusion_status": "DIFFUSIBLE", "source_format": "sirene-json"})


@dataclasses.dataclass
class Report:
    """One fault's figures, a row of the README table."""

    fault: str
    acknowledged: int = 0
    lost: int = 0
    duplicates: int = 0
    failed_sends: int = 0  # batches whose delivery raised and were sent again
    longest_stall_s: float | None = 0.0  # None: not measured (the worker trial counts effects)
    seconds: float = 0.0
    detail: str = ""

    def row(self) -> str:
        stall = "—" if self.longest_stall_s is None else f"{self.longest_stall_s:.2f}"
        return (f"| {self.fault} | {self.acknowledged} | {self.lost} | {self.duplicates} | {self.failed_sends} "
                f"| {stall} | {self.seconds:.1f} | {self.detail} |")


HEADER = ("| fault | acknowledged | lost | duplicates | failed sends (re-sent) | longest stall (s) | duration (s) | what happened |\n"
          "|---|---|---|---|---|---|---|---|")


class Workload:
    """``producers`` publishing tasks on ``settings``'s cluster; ``acked`` grows as the cluster acknowledges."""

    def __init__(self, settings: BusSettings, wire: Wire, fault: str, *, producers: int = 3, batch: int = 10) -> None:
        self.settings, self.wire, self.producers, self.batch = settings, wire, producers, batch
        self.run = uuid.uuid4().hex[:8]
        self.report = Report(fault)
        self.acked: dict[str, int] = {}  # ce_id -> partition
        self.ack_times: list[float] = []
        self._progress = asyncio.Condition()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = 0.0

    async def __aenter__(self) -> Workload:
        self._started = time.monotonic()
        self.ack_times.append(self._started)
        self._tasks = [asyncio.create_task(self._produce(p), name=f"producer-{p}") for p in range(self.producers)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 120)

    async def _produce(self, producer: int) -> None:
        async with Publisher(self.settings, self.wire) as publisher:
            n = 0
            while not self._stop.is_set():
                events = [company(self.run, producer, n + i) for i in range(self.batch)]
                while True:
                    try:
                        records = await publisher.publish_many(events, topic=TOPIC)
                        break
                    except BusError:  # delivery failed: the same ids again (a duplicate would show)
                        self.report.failed_sends += 1
                n += self.batch
                async with self._progress:
                    for record in records:
                        self.acked[dict(record.headers)["ce_id"].decode()] = record.partition or 0
                    self.ack_times.append(time.monotonic())
                    self._progress.notify_all()

    async def advance(self, count: int, what: str, timeout: float = 90) -> None:
        """Wait until ``count`` more records are acknowledged than now."""
        target = len(self.acked) + count
        async with self._progress:
            try:
                await asyncio.wait_for(self._progress.wait_for(lambda: len(self.acked) >= target), timeout)
            except TimeoutError:
                raise AssertionError(f"no {count} acknowledgements within {timeout}s {what} "
                                     f"({len(self.acked)} acknowledged so far)") from None

    def busiest_partition(self) -> int:
        return Counter(self.acked.values()).most_common(1)[0][0]

    async def account(self) -> Report:
        """Read the topic back: every acknowledged ce_id must be there, once."""
        times = [*self.ack_times, time.monotonic()]
        log = Counter()
        for record in await read_topic(self.settings, self.topic):
            ce_id = dict(record.headers).get("ce_id", b"").decode()
            if ce_id.startswith(self.run + "-"):
                log[ce_id] += 1
        self.report.acknowledged = len(self.acked)
        self.report.lost = sum(1 for ce_id in self.acked if ce_id not in log)
        self.report.duplicates = sum(count - 1 for count in log.values() if count > 1)
        self.report.longest_stall_s = max(b - a for a, b in zip(times, times[1:]))
        self.report.seconds = times[-1] - self._started
        return self.report

    @property
    def topic(self) -> str:
        from bus._topics import topic_map

        return topic_map(self.settings)[TOPIC].name


async def partitions(settings: BusSettings, topic: str) -> dict[int, dict[str, object]]:
    """partition -> {leader, isr, replicas} as the cluster's metadata says now."""
    admin = admin_client(settings)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    out = {}
    for entry in described:
        for part in entry["partitions"]:
            out[part["partition"]] = {"leader": part["leader"], "isr": sorted(part["isr"]),
                                      "replicas": sorted(part["replicas"])}
    return out


def listed_brokers(address: str) -> int:
    """How many brokers the node at ``address`` lists in its metadata (a fenced broker is left out).

    Asked of one given node on a plain socket (as the broker's readiness probe does), so that a
    paused node, which accepts connections and never answers, cannot hold the question.
    """
    from bus._probe import _api_versions, _metadata_brokers

    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.settimeout(5)
        low, high = _api_versions(sock).get(3, (0, -1))
        return _metadata_brokers(sock, max(v for v in range(1, 9) if low <= v <= high))


async def busiest_leader(settings: BusSettings) -> int:
    """The node leading the most partitions of the topics of ``settings``'s prefix."""
    admin = admin_client(settings)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    led = Counter(part["leader"] for entry in described for part in entry["partitions"] if part["leader"] >= 0)
    return led.most_common(1)[0][0]


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 120) -> float:
    """Poll ``check`` until it holds; the seconds it took. Fails naming ``what`` after ``timeout``."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.25)
    return time.monotonic() - start


def fully_replicated(settings: BusSettings, topic: str, size: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            parts = await partitions(settings, topic)
        except Exception:  # noqa: BLE001 - a metadata request during a fault: ask again
            return False
        return bool(parts) and all(len(p["isr"]) == size for p in parts.values())
    return check
