"""Processors on Kafka: faust shell vs a bare aiokafka loop doing the same per-event work.

Entries: ``ingest_vs_bare``, ``processors_vs_bare`` (the slowest of tell-us-once, accounting,
acts, archiving; each core also gets ``processor_<core>_vs_bare``), ``two_workers_vs_one`` and
``latency_p99_ms`` / ``latency_p50_ms``.

Every run gets its own topic prefix, so runs never see each other's records or states. The
processes under test, ``bus worker`` (faust) and the bare loop (``python -m
bench.bench_processors bare CORE COUNT``), get their settings from ``BUS_*`` variables as an
operator would start them, are ready (group stable) before the first input is sent, and are
timed from the broker's own clock: family topics stamp records with ``LogAppendTime``, so the
outputs' timestamps say when results became durable, whatever process produced them.
:class:`BenchEnv` (keys, content store, processes) is shared with :mod:`bench.bench_large_document`.

    python -m bench.bench_processors [--quick]
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from bus import BusContext, BusSettings, Event, generate_key
from bus._keys import KeyStore, SigningKey
from bus._wire import Record, Wire
from bus.client import admin_client, kafka_args, read_topic

ROOT = Path(__file__).resolve().parent.parent
WORKER_SIREN, SUBMITTER_SIREN = "130000000", "213105554"
WORKER_SOURCE = f"urn:siren:{WORKER_SIREN}:bench-worker"
SUBMITTER_SOURCE = f"urn:siren:{SUBMITTER_SIREN}:bench"
#: Fixed and public: the benchmark's acts carry no personal data worth protecting.
PSEUDONYMISATION_SECRET = "62656e63682d6f6e6c792d7365637265742d6e6f742d666f722d757365"


@dataclasses.dataclass
class BenchEnv:
    """A cluster, a directory for keys, content and logs, and a unique run prefix."""

    bootstrap: str
    root: Path
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:6])
    keys: list[SigningKey] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.keys:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
            self.keys = [generate_key(WORKER_SIREN, "Bench workers", valid_from=since),
                         generate_key(SUBMITTER_SIREN, "Bench submitter", valid_from=since)]
            store = KeyStore(self.root / "keys")
            for key in self.keys:
                store.save(key)
        (self.root / "logs").mkdir(parents=True, exist_ok=True)

    @property
    def submitter_key(self) -> SigningKey:
        return self.keys[1]

    def settings(self, tag: str, **overrides: Any) -> BusSettings:
        """Worker-side settings of one run (own prefix, own group), sharing keys and content store."""
        values: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap, "state_dir": self.root / "state" / tag,
            "keys_dir": self.root / "keys", "content_store": (self.root / "content").as_uri(),
            "topic_prefix": f"bench-{self.run_id}-{tag}.", "consumer_group": "bench", "source": WORKER_SOURCE,
            "pseudonymisation_secret": PSEUDONYMISATION_SECRET,
        }
        values.update(overrides)
        return BusSettings(**values)

    def environ(self, settings: BusSettings, name: str) -> dict[str, str]:
        """The environment of a process under test: its settings as ``BUS_*`` variables."""
        env = {**os.environ, "BUS_BOOTSTRAP_SERVERS": settings.bootstrap, "BUS_TOPIC_PREFIX": settings.topic_prefix,
               "BUS_STATE_DIR": str(self.root / "state" / name), "BUS_KEYS_DIR": str(settings.resolved_keys_dir),
               "BUS_CONTENT_STORE": settings.resolved_content_store, "BUS_SOURCE": settings.source,
               "BUS_CONSUMER_GROUP": settings.consumer_group, "BUS_MAX_DOCUMENT_BYTES": str(settings.max_document_bytes),
               "PYTHONPATH": str(ROOT)}
        if settings.pseudonymisation_secret is not None:
            env["BUS_PSEUDONYMISATION_SECRET"] = settings.pseudonymisation_secret.get_secret_value()
        return env

    async def connect(self, settings: BusSettings) -> BusContext:
        """Topics of the run created, schemas and both public keys published; the worker's context."""
        ctx = await BusContext.connect(settings)
        await ctx.publish_keys(self.keys)
        return ctx

    def submitter_wire(self, ctx: BusContext) -> Wire:
        return Wire(ctx.catalog, ctx.directory, self.submitter_key, source=SUBMITTER_SOURCE,
                    max_event_bytes=ctx.settings.max_event_bytes)

    # -- processes ---------------------------------------------------------------------------

    def start(self, settings: BusSettings, name: str, command: Sequence[str], *,
              stdout: int | None = None) -> subprocess.Popen[bytes]:
        log = (self.root / "logs" / f"{name}.log").open("wb")
        profiles = os.environ.get("BUS_BENCH_PROFILE")  # a directory: every process under test runs in pyinstrument
        if profiles:
            Path(profiles).mkdir(parents=True, exist_ok=True)
            command = ["-m", "pyinstrument", "-r", "text", "-p", "show_all", "-o", str(Path(profiles) / f"{name}.txt"),
                       *command]
        try:
            return subprocess.Popen([sys.executable, *command], env=self.environ(settings, name), cwd=ROOT,
                                    stdout=stdout if stdout is not None else log, stderr=log)
        finally:
            log.close()  # the child keeps its own descriptor

    def start_worker(self, settings: BusSettings, name: str, core: str) -> subprocess.Popen[bytes]:
        """``bus worker --processor CORE`` (the module the command runs), no timer."""
        return self.start(settings, name, ["-m", "bus.cli._worker", "worker", "--processor", core,
                                           "--timer-interval", "0"])

    def log_tail(self, name: str, size: int = 2000) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace")[-size:] if path.is_file() else ""


def stop(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM (a clean faust stop), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


async def wait_group(settings: BusSettings, group: str, members: int, processes: Iterable[subprocess.Popen[bytes]],
                     timeout: float = 120) -> None:
    """Until consumer group ``group`` is Stable with ``members`` members (a worker died: raise)."""
    deadline = time.monotonic() + timeout
    watched = list(processes)
    while True:
        for p in watched:
            if p.poll() is not None:
                raise RuntimeError(f"a process under test exited with status {p.returncode}")
        admin = admin_client(settings)
        await admin.start()
        try:
            (response,) = await admin.describe_consumer_groups([group])
            (described,) = response.groups
            if described[2] == "Stable" and len(described[5]) == members:
                return
        except KafkaError:
            pass  # no group coordinator yet on a fresh broker: ask again
        finally:
            await admin.close()
        if time.monotonic() > deadline:
            raise RuntimeError(f"group {group} not stable with {members} members after {timeout:g}s")
        await asyncio.sleep(0.2)  # poll interval of the group state


async def send_records(settings: BusSettings, records: Sequence[tuple[str, Record]]) -> list[float]:
    """Send pre-sealed records as fast as the producer takes them; returns each send's wall time."""
    producer = AIOKafkaProducer(**kafka_args(settings), acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures, sent = [], []
        for topic, r in records:
            sent.append(time.time())
            futures.append(await producer.send(topic, r.value, key=r.key, headers=list(r.headers)))
        await asyncio.gather(*futures)
        return sent
    finally:
        await producer.stop()


def seal_all(wire: Wire, ctx: BusContext, events: Sequence[tuple[str, Event]]) -> list[tuple[str, Record]]:
    return [(ctx.topic(topic), wire.seal(event)) for topic, event in events]


async def end_offsets(settings: BusSettings, topics: Sequence[str]) -> dict[TopicPartition, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(**kafka_args(settings), group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or
                                                              await _partitions(consumer, t))]
        return dict(await consumer.end_offsets(tps)) if tps else {}
    finally:
        await consumer.stop()


async def _partitions(consumer: Any, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # aiokafka learns a topic's partitions from metadata
    return consumer.partitions_for_topic(topic) or set()


def total(offsets: dict[TopicPartition, int]) -> int:
    return sum(offsets.values())


async def outputs_since(settings: BusSettings, topics: Sequence[str], start: dict[TopicPartition, int],
                        source: str = WORKER_SOURCE) -> list[Record]:
    """Records appended after ``start`` to ``topics`` and signed by ``source`` (the process under test)."""
    out: list[Record] = []
    wanted = source.encode()
    for topic in topics:
        offsets = {tp.partition: o for tp, o in start.items() if tp.topic == topic}
        for r in await read_topic(settings, topic, from_offsets=offsets):
            if dict(r.headers).get("ce_source") == wanted:
                out.append(r)
    return out


def trimmed_rate(timestamps_ms: Sequence[int], per_output: float) -> tuple[float, int, float]:
    """Inputs/s over the 10th–90th percentile of output append times (start-up and tail left out).

    Returns (rate, outputs in the window, window seconds). ``per_output`` = inputs per output.
    """
    ts = sorted(timestamps_ms)
    lo, hi = len(ts) // 10, max(len(ts) * 9 // 10 - 1, 0)
    span = (ts[hi] - ts[lo]) / 1000 if ts else 0.0
    if span <= 0:
        span = max((ts[-1] - ts[0]) / 1000, 0.001) if ts else 0.001
        return (len(ts) - 1) / span * per_output, len(ts), span
    return (hi - lo) / span * per_output, hi - lo, span


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A ``/proc/<pid>/status`` memory field in kB (VmRSS now, VmHWM peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    """Reset the peak RSS (VmHWM) of ``pid`` to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# -- workloads: inputs of each core, every one producing at least one output -------------------

UBL_SAMPLE = "invoices/en16931-ubl/ubl-tc434-example1.xml"
BUYER = "21310555400017"


def ubl_documents(corpus: Path, out: Path, count: int) -> list[Path]:
    """``count`` distinct UBL invoices (the corpus example with its own invoice number each)."""
    template = (corpus / UBL_SAMPLE).read_bytes()
    marker = b"<cbc:ID>12115118</cbc:ID>"
    if marker not in template:
        raise RuntimeError(f"{UBL_SAMPLE} changed: its invoice number is not where the bench expects it")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = out / f"invoice-{i:06d}.xml"
        if not path.is_file():
            path.write_bytes(template.replace(marker, f"<cbc:ID>BENCH-{i:06d}</cbc:ID>".encode(), 1))
        paths.append(path)
    return paths


def store_documents(settings: BusSettings, paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Claim checks of ``paths`` put in the content store (once: the store is content-addressed)."""
    from bus._content import open_content_store

    store = open_content_store(settings)
    return [store.put(p, media_type="application/xml", file_name=p.name).to_record() for p in paths]


def ingest_inputs(refs: Sequence[dict[str, Any]]) -> list[tuple[str, Event]]:
    from processors.ingress import submitted_event

    return [("ingress.raw", submitted_event(ref, submitter_siren=SUBMITTER_SIREN)) for ref in refs]


def _act_subject(number: str) -> str:
    return f"act:{SUBMITTER_SIREN}:{number}"


def acts_inputs(n: int) -> list[tuple[str, Event]]:
    """ActTransmitted of ``n`` acts (acts lifecycle: one ActStateChanged each)."""
    out = []
    for i in range(n):
        number = f"B{i:06d}"
        data = {
            "act_id": f"031-{SUBMITTER_SIREN}-20260102-{number}-DE", "siren": SUBMITTER_SIREN, "department": "031",
            "arrondissement": None, "collectivity_nature": None, "number": number,
            "decision_date": dt.date(2026, 1, 2), "nature_code": 1, "nature_label": None,
            "nature_abbreviation": "DE", "matiere_codes": [7, 5], "classification_code": "7.5",
            "object": f"Subvention au club sportif numéro {i}", "classification_date": dt.date(2024, 1, 1),
            "previous_act_id": None, "personal_data": None, "referent": None, "return_addresses": [],
            "documents": [{"role": "MAIN", "file_name": "delib.pdf", "media_type": "application/pdf", "signed": False,
                           "content": {"sha256": f"{i:064x}", "size": 1234, "uri": f"cas://sha256/{i:064x}"},
                           "personal_data": None}],
        }
        out.append(("acts", Event(type="fr.dcant.acts.ActTransmitted", subject=_act_subject(number),
                                  schema="fr.dcant.acts.Act", data=data)))
    return out


def archiving_inputs(n: int) -> list[tuple[str, Event]]:
    """ActBecameExecutory of ``n`` acts (archiving: the dossier closes, one ArchiveStateChanged each)."""
    on = dt.date(2026, 1, 5)
    return [("acts", Event(type="fr.dcant.acts.ActBecameExecutory", subject=_act_subject(f"B{i:06d}"),
                           schema="fr.dcant.acts.ActExecutory",
                           data={"act_id": None, "siren": SUBMITTER_SIREN, "number": f"B{i:06d}", "nature_code": 1,
                                 "decision_date": dt.date(2026, 1, 2), "transmission_date": on,
                                 "publicity_mode": "PUBLISHED", "publicity_date": on, "executory_date": on}))
            for i in range(n)]


def tell_us_once_inputs(n: int) -> list[tuple[str, Event]]:
    """CandidatureSubmitted of ``n`` procedures by an unknown company (enriched + identification request)."""
    out = []
    for i in range(n):
        siret = f"{443061841 + i % 997:09d}{i % 100:05d}"
        operator = {"identifier": siret, "identifier_scheme": "SIRET", "siret": siret, "siren": siret[:9],
                    "name": f"Entreprise {i}", "country": "FR"}
        out.append(("procurement", Event(
            type="fr.dcant.procurement.CandidatureSubmitted", subject=f"notice:BENCH-{i:06d}",
            schema="fr.dcant.procurement.Candidature",
            data={"espd_id": f"ESPD-{i}", "procedure_reference": f"BENCH-{i:06d}", "buyer_identifier": BUYER,
                  "economic_operator": operator})))
    return out


def accounting_inputs(n: int) -> list[tuple[str, Event]]:
    """InvoiceReceived against ``n`` contracts (re-keyed by contract; one accounting event each)."""
    from adapters._en16931 import complete

    out = []
    seller = "44306184100047"
    for i in range(n):
        number = f"F-BENCH-{i:06d}"
        data = complete({
            "syntax": "UBL", "profile": "urn:cen.eu:en16931:2017", "number": number,
            "issue_date": dt.date(2026, 1, 2), "type_code": "380", "is_credit_note": False, "currency": "EUR",
            "contract_reference": f"2026M{i:06d}", "purchase_order_reference": None, "preceding_invoices": [],
            "seller_siret": seller, "seller_key": seller, "buyer_key": BUYER,
            "seller": {"name": "ROUTES SA", "legal_registration": {"id": seller, "scheme": "0009"},
                       "address": {"line1": "1 rue du Pont", "city": "Toulouse", "post_code": "31000",
                                   "country_code": "FR"}},
            "buyer": {"name": "COMMUNE DE TEST", "legal_registration": {"id": BUYER, "scheme": "0009"},
                      "address": {"city": "Toulouse", "post_code": "31000", "country_code": "FR"}},
            "payment_instructions": {"means_code": "30", "credit_transfers": [
                {"account_id": "FR7630004000031234567890143", "provider_id": "BNPAFRPPXXX"}]},
            "totals": {"line_total": "10000.00", "tax_exclusive": "10000.00", "tax_total": "2000.00",
                       "tax_inclusive": "12000.00", "payable": "12000.00"},
            "vat_breakdown": [{"taxable_amount": "10000.00", "tax_amount": "2000.00", "category": "S", "rate": "20.00"}],
            "lines": [{"id": "1", "quantity": "1", "unit_code": "C62", "net_amount": "10000.00",
                       "price": {"net_price": "10000.00"}, "vat_category": "S", "vat_rate": "20.00",
                       "item": {"name": "Travaux"}}],
        })
        out.append(("invoices", Event(type="fr.dcant.invoices.InvoiceReceived", subject=f"invoice:{seller}:{number}",
                                      schema="fr.dcant.invoices.Invoice", data=data)))
    return out


PROCESSOR_WORKLOADS = {
    "tell-us-once": tell_us_once_inputs,
    "accounting-chain": accounting_inputs,
    "acts-lifecycle": acts_inputs,
    "archiving": archiving_inputs,
}
#: Topics any of the cores writes to (outputs are told apart from inputs by their signer).
OUTPUT_TOPICS = ("acts", "procurement", "invoices", "accounting", "archives", "notifications", "deadletter")


# -- the bare loop: the same per-event work on aiokafka, run as its own process ------------------

async def bare_loop(settings: BusSettings, core_name: str, count: int) -> None:
    """Consume the core's inputs in a group from their current end, and for every record: open it (verify, decode), key it,
    run the shell step (ingress: read + adapt the document), run the core, seal and send the
    outputs without awaiting each, write the state as JSON to a compacted topic (what faust's
    table changelog does); await the batch's acks, commit. Exit after ``count`` processed inputs."""
    import copy
    import json

    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import NewTopic

    from bus._processor import Context
    from bus._topics import topic_for_schema
    from bus._processor import reads
    from processors import CORES

    made = CORES[core_name](settings)
    core, prepare = (made.core, made.prepare) if hasattr(made, "core") else (made, None)
    ctx = await BusContext.connect(settings, create_topics=False)
    wire = ctx.wire()
    state_topic = f"{settings.topic_prefix}bare-{core_name}-state"
    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(state_topic, 6, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(*(ctx.topic(t) for t in core.inputs), **kafka_args(settings),
                                group_id=f"{settings.topic_prefix}bare", enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_records=500)
    producer = AIOKafkaProducer(**kafka_args(settings), acks="all", enable_idempotence=True, linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    await consumer.start()
    tables = {t: {} for t in core.tables}
    states: dict[str, dict[str, Any]] = {}
    processed = 0
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        # Start at the end: the faust run of the same stage left its inputs on these topics.
        await consumer.seek_to_end()
        await consumer.commit({tp: await consumer.position(tp) for tp in consumer.assignment()})
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while processed < count:
            batch = await consumer.getmany(timeout_ms=1000)
            pending = []
            for tp, messages in batch.items():
                for m in messages:
                    if not reads(core, m.headers or ()):
                        continue  # another core's type (its own outputs too): skipped unread, as the shell does
                    received = wire.open(Record(m.key, m.value, tuple(m.headers or ()), tp.topic, tp.partition,
                                                m.offset, m.timestamp))
                    context = Context(now=ctx.clock(), tables=tables)
                    key = core.key(received, context)
                    if key is None:
                        continue
                    if prepare is not None:
                        context = Context(now=context.now, tables={**tables, **await prepare(received)})
                    entry = states.get(key) or {"state": core.initial_state(), "seen": []}
                    if received.id in entry["seen"]:
                        continue
                    state, outputs = core.process(copy.deepcopy(entry["state"]), received, context)
                    entry = {"state": state, "seen": [*entry["seen"], received.id][-64:]}
                    states[key] = entry
                    for event in outputs:
                        r = wire.seal(event)
                        pending.append(await producer.send(ctx.topic(topic_for_schema(event.schema)), r.value,
                                                           key=r.key, headers=list(r.headers)))
                    pending.append(await producer.send(state_topic, json.dumps(entry, default=str).encode(),
                                                       key=key.encode()))
                    processed += 1
            if pending:
                await asyncio.gather(*pending)
            if batch:
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def bare_main(argv: Sequence[str]) -> None:
    """``python -m bench.bench_processors bare CORE COUNT``: the bare loop with BUS_* settings."""
    core, count = argv[0], int(argv[1])
    asyncio.run(bare_loop(BusSettings(), core, count))


# -- measuring a run -------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    """What one process (bare loop or faust workers) did with one batch of inputs."""

    inputs: int
    outputs: int
    rate: float  # inputs/s over the trimmed window
    window_outputs: int
    window_s: float
    dead_letters: int
    latencies_ms: list[float] = dataclasses.field(default_factory=list)

    def describe(self) -> str:
        dead = f", {self.dead_letters} dead-lettered" if self.dead_letters else ""
        return f"{self.inputs} inputs → {self.outputs} outputs{dead}; {self.window_outputs} outputs in {self.window_s:.2f}s"


@dataclasses.dataclass
class Stage:
    """One prefix of the cluster: topics, keys, and the faust workers started on it (maybe still starting)."""

    env: BenchEnv
    tag: str
    core: str
    settings: BusSettings
    ctx: BusContext
    workers: list[subprocess.Popen[bytes]]

    @classmethod
    async def open(cls, env: BenchEnv, tag: str, core: str, workers: int) -> Stage:
        settings = env.settings(tag)
        ctx = await env.connect(settings)
        started = [env.start_worker(settings, f"{tag}-{w}", core) for w in range(workers)]
        return cls(env, tag, core, settings, ctx, started)

    def topics(self, *keys: str) -> list[str]:
        return [self.ctx.topic(k) for k in keys]

    async def faust(self, inputs: Sequence[tuple[str, Event]], *, offered_rate: float | None = None,
                    timeout: float = 300) -> Run:
        """Feed ``inputs`` to this stage's faust workers (once their group is stable), then stop them."""
        from processors._faust import rekey_spec
        from processors.app import app_id

        group = app_id(self.settings)
        try:
            await wait_group(self.settings, group, len(self.workers), self.workers)
            consumed = [*self.topics(*_core_inputs(self.core)), rekey_spec(self.settings, group, self.core).name]
            return await self._feed(inputs, group, consumed, self.workers, offered_rate, timeout)
        finally:
            for p in self.workers:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)  # reaped by close(); their shutdown overlaps the next step

    async def bare(self, inputs: Sequence[tuple[str, Event]], *, offered_rate: float | None = None,
                   timeout: float = 300) -> Run:
        """Feed ``inputs`` to the bare loop, started on this stage at the current end of the topics."""
        name = f"{self.tag}-bare"
        p = self.env.start(self.settings, name, ["-m", "bench.bench_processors", "bare", self.core, str(len(inputs))],
                           stdout=subprocess.PIPE)
        try:
            assert p.stdout is not None
            line = await asyncio.to_thread(p.stdout.readline)
            if line.strip() != b"ready":
                raise RuntimeError(f"the bare loop did not start: {self.env.log_tail(name)}")
            return await self._feed(inputs, f"{self.settings.topic_prefix}bare", self.topics(*_core_inputs(self.core)),
                                    [p], offered_rate, timeout)
        finally:
            stop(p)

    async def _feed(self, inputs: Sequence[tuple[str, Event]], group: str, consumed: list[str],
                    processes: list[subprocess.Popen[bytes]], offered_rate: float | None, timeout: float) -> Run:
        records = seal_all(self.env.submitter_wire(self.ctx), self.ctx, inputs)  # sealed before the clock runs
        outputs_at = self.topics(*(t for t in OUTPUT_TOPICS if t != "deadletter"))
        dead_at = self.topics("deadletter")
        start = await end_offsets(self.settings, outputs_at)
        dead_start = await end_offsets(self.settings, dead_at)
        sent = await (send_paced(self.settings, records, offered_rate) if offered_rate
                      else send_records(self.settings, records))
        await wait_done(self.settings, group, consumed, processes, timeout=timeout)
        for p in processes:
            if p.poll() not in (None, 0):
                raise RuntimeError(f"{self.tag}: a process under test exited with {p.returncode}")
        outputs = await outputs_since(self.settings, outputs_at, start)
        dead = total(await end_offsets(self.settings, dead_at)) - total(dead_start)
        if not outputs:
            raise RuntimeError(f"{self.core} produced no output in {self.tag}")
        rate, window, span = trimmed_rate([r.timestamp_ms or 0 for r in outputs], len(inputs) / len(outputs))
        run = Run(len(inputs), len(outputs), rate, window, span, dead)
        if offered_rate:
            sent_at = {dict(r.headers)["ce_id"]: t for (_, r), t in zip(records, sent, strict=True)}
            first: dict[bytes, int] = {}
            for r in outputs:
                cause = dict(r.headers).get("ce_causationid")
                if cause in sent_at and r.timestamp_ms is not None:
                    first[cause] = min(first.get(cause, r.timestamp_ms), r.timestamp_ms)
            run.latencies_ms = sorted(ts - sent_at[c] * 1000 for c, ts in first.items())
        return run

    def close(self) -> None:
        for p in self.workers:
            stop(p)


def _core_inputs(core: str) -> tuple[str, ...]:
    from processors import CORES

    made = CORES[core](BusSettings(pseudonymisation_secret=PSEUDONYMISATION_SECRET, content_store="file:///nonexistent"))
    return tuple(getattr(made, "core", made).inputs)


async def wait_done(settings: BusSettings, group: str, topics: Sequence[str],
                    processes: Sequence[subprocess.Popen[bytes]], *, timeout: float) -> None:
    """Until ``group`` committed the end of every partition of ``topics`` (a bare loop: until it exits)."""
    deadline = time.monotonic() + timeout
    admin = admin_client(settings)
    await admin.start()
    try:
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in processes):
                if all(p.poll() == 0 for p in processes):
                    return
                raise RuntimeError(f"a process of {group} exited with {[p.poll() for p in processes]}")
            ends = await end_offsets(settings, topics)
            committed = await admin.list_consumer_group_offsets(group)
            if all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items()):
                return
            await asyncio.sleep(0.2)  # poll interval of the group's commits
    finally:
        await admin.close()
    raise RuntimeError(f"{group} did not consume {', '.join(topics)} within {timeout:g}s")


async def send_paced(settings: BusSettings, records: Sequence[tuple[str, Record]], rate: float) -> list[float]:
    """Send records at ``rate`` per second (an open-loop load); returns each send's wall time."""
    producer = AIOKafkaProducer(**kafka_args(settings), acks="all", linger_ms=0, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futures, sent = [], []
        begin = time.monotonic()
        for i, (topic, r) in enumerate(records):
            delay = begin + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # the pacing of the offered load
            sent.append(time.time())
            futures.append(await producer.send(topic, r.value, key=r.key, headers=list(r.headers)))
        await asyncio.gather(*futures)
        return sent
    finally:
        await producer.stop()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def entry(value: float | None, baseline: float | None, unit: str, method: str, *,
          ratio: float | None = None, digits: int = 1) -> dict[str, Any]:
    if ratio is None and value is not None and baseline:
        ratio = value / baseline
    return {"value": None if value is None else round(value, digits),
            "baseline": None if baseline is None else round(baseline, digits),
            "ratio": None if ratio is None else round(ratio, 3), "unit": unit, "method": method}


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


LATENCY_CORE = "tell-us-once"


ALTERNATION = (1, 2, 1, 2, 1, 2)  # workers of each ingest run of two_workers_vs_one, in order


async def run_processors(env: BenchEnv, corpus: Path, quick: bool,
                         progress: Any = lambda message: None) -> dict[str, dict[str, Any]]:
    """ingest_vs_bare, processors_vs_bare (+ one entry per core), two_workers_vs_one, latency_*.

    First the ingest runs of two_workers_vs_one, one at a time: one worker, two, one, two, one,
    two, each on its own prefix with freshly started workers, measured once its workers have
    joined and the previous run's workers have exited, so no other worker process starts, stops
    or runs during a measurement (the next run's workers start while the previous ones stop).
    The bare ingest loop runs right after the first one-worker run, on its topics. Then every
    core's stage (prefix) is connected and its faust worker started, all together so their
    start-up overlaps, and each stage is measured alone: faust first, then the bare loop on the
    same topics (it starts at their end, so it sees only its own inputs).
    """
    n_ingest, n_core, latency_s, rate_hz = (600, 1500, 5, 200) if quick else (4000, 4000, 60, 200)
    out: dict[str, dict[str, Any]] = {}
    progress("writing documents to the content store")
    paths = ubl_documents(corpus, env.root / "documents", n_ingest)
    refs = await asyncio.to_thread(store_documents, env.settings("docs"), paths)
    ingest = ingest_inputs(refs)

    stages: dict[str, Stage] = {}
    runs: dict[int, list[Run]] = {1: [], 2: []}
    stage: Stage | None = None
    loads: list[float] = []  # 1-minute load average as each run starts
    try:
        stage = await Stage.open(env, "ingest-0", "ingress", ALTERNATION[0])
        for i, workers in enumerate(ALTERNATION):
            progress(f"ingest: run {i + 1}/{len(ALTERNATION)}, {workers} faust worker(s)")
            loads.append(os.getloadavg()[0])
            runs[workers].append(await stage.faust(ingest))
            if i == 0:
                stage.close()
                progress("ingest: bare aiokafka loop")
                bare = await stage.bare(ingest)
            if i + 1 < len(ALTERNATION):
                following = await Stage.open(env, f"ingest-{i + 1}", "ingress", ALTERNATION[i + 1])
                stage.close()  # exited before the next measurement starts
                stage = following
    finally:
        if stage is not None:
            stage.close()
    one, best_one, best_two = runs[1][0], max(runs[1], key=lambda r: r.rate), max(runs[2], key=lambda r: r.rate)
    out["ingest_vs_bare"] = entry(one.rate, bare.rate, "events/s", (
        f"DocumentSubmitted → claim-checked UBL invoice read from the content store → adapter → "
        f"InvoiceReceived, through `bus worker --processor ingress` (faust, 1 process, the first one-worker run "
        f"of two_workers_vs_one; {one.describe()}) vs the same per-event work in a bare aiokafka consume→produce "
        f"loop, 1 process, run right after it on the same topics with no worker running (open, DocumentReader, "
        f"core, seal, send without awaiting each, JSON state to a compacted topic, commit per batch; "
        f"{bare.describe()}); rates from the broker's append times of the outputs, 10th–90th percentile "
        f"window{'; quick mode: small batches' if quick else ''}; {_load()}"))

    def rates(side: list[Run]) -> str:
        return ", ".join(f"{r.rate:.1f}" for r in side)

    out["two_workers_vs_one"] = entry(best_two.rate, best_one.rate, "events/s", (
        f"the ingest workload of ingest_vs_bare ({len(ingest)} DocumentSubmitted) through two `bus worker "
        f"--processor ingress` processes in one group vs one; six runs alternated one, two, one, two, one, two, "
        f"each on its own topic prefix with freshly started workers, measured only once all its workers had "
        f"joined (group stable) and the previous run's workers had exited, with no other worker process "
        f"starting, stopping or running; each side is the best of its 3 runs (one: {rates(runs[1])}; two: "
        f"{rates(runs[2])} events/s; best one: {best_one.describe()}; best two: {best_two.describe()}); rates from "
        f"the broker's append times of the outputs, 10th–90th percentile window; the processes share "
        f"{os.cpu_count()} cores with the broker and the bench{'; quick mode: small batches' if quick else ''}; "
        f"load average {min(loads):.1f}–{max(loads):.1f} at the start of the runs; {_load()}"))

    progress("creating topics, starting every other faust worker")
    plan = [*((c, c, 1) for c in PROCESSOR_WORKLOADS), ("latency", LATENCY_CORE, 1)]
    try:
        for tag, core, workers in plan:
            stages[tag] = await Stage.open(env, tag, core, workers)

        worst: tuple[str, float] | None = None
        for core, make in PROCESSOR_WORKLOADS.items():
            inputs = make(n_core)
            progress(f"{core}: one faust worker")
            f = await stages[core].faust(inputs)
            progress(f"{core}: bare aiokafka loop")
            b = await stages[core].bare(inputs)
            key = f"processor_{core.replace('-', '_')}_vs_bare"
            out[key] = entry(f.rate, b.rate, "events/s", (
                f"{inputs[0][1].type} through `bus worker --processor {core}` (faust, {f.describe()}) vs the bare "
                f"aiokafka loop ({b.describe()}), same inputs, rates from output append times; {_load()}"))
            if worst is None or f.rate / b.rate < worst[1]:
                worst = (key, f.rate / b.rate)
        assert worst is not None
        slowest = dict(out[worst[0]])
        slowest["method"] = (f"the slowest of tell-us-once, accounting-chain, acts-lifecycle, archiving: {worst[0]}: "
                             + slowest["method"])
        out["processors_vs_bare"] = slowest

        latency_inputs = PROCESSOR_WORKLOADS[LATENCY_CORE](int(latency_s * rate_hz))
        progress(f"latency: one faust worker, {rate_hz}/s for {latency_s}s")
        lf = await stages["latency"].faust(latency_inputs, offered_rate=rate_hz)
        progress(f"latency: bare loop, {rate_hz}/s for {latency_s}s")
        lb = await stages["latency"].bare(latency_inputs, offered_rate=rate_hz)
    finally:
        for stage in stages.values():
            stage.close()
    how = (f"{LATENCY_CORE} path (CandidatureSubmitted sent by the bench → CandidatureEnriched appended by the "
           f"worker; send wall time to the output's LogAppendTime, one clock) at {rate_hz} events/s offered for "
           f"{latency_s}s{' (quick mode: shortened from 60 s)' if quick else ''}; faust worker: "
           f"{len(lf.latencies_ms)} events; baseline = the bare aiokafka loop, same inputs and pace: "
           f"{len(lb.latencies_ms)} events; ingest was not used because its capacity measured above "
           f"({one.rate:.0f}/s faust, {bare.rate:.0f}/s bare) is what bounds it; {_load()}")
    out["latency_p99_ms"] = entry(percentile(lf.latencies_ms, 99), percentile(lb.latencies_ms, 99), "ms",
                                  "p99 of the " + how)
    out["latency_p50_ms"] = entry(percentile(lf.latencies_ms, 50), percentile(lb.latencies_ms, 50), "ms",
                                  "p50 of the " + how)
    return out


async def _standalone(quick: bool, corpus: Path) -> dict[str, dict[str, Any]]:
    import tempfile

    from bench.suite import broker

    with tempfile.TemporaryDirectory(prefix="bench-processors-") as tmp, broker(Path(tmp)) as bootstrap:
        env = BenchEnv(bootstrap, Path(tmp))
        return await run_processors(env, corpus, quick, lambda m: print(m, file=sys.stderr))


def main() -> None:
    import argparse
    import json

    if sys.argv[1:2] == ["bare"]:
        bare_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_standalone(args.quick, args.corpus)), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
