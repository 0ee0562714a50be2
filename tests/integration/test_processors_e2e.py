"""The default processors end to end on the real broker, run by ``bus worker`` processes.

Each test gets its own topic prefix, consumer group and state directory, shared by the test and
its worker (keys, content store), and runs every default core (``BUS_PSEUDONYMISATION_SECRET``
is set, so the acts lifecycle runs too). Inputs are signed by the administrations that produce
them (a commune, a supplier), whose keys are published on the administrations topic.

- the accounting chain: DECP contract → invoice (EN 16931 pivot naming the contract in BT-12)
  → InvoiceChecked accepted, and the supplier's statuses 202 and 204 on the invoices topic
  → service fait → BordereauIssued, whose PES_Aller validates against the PES V2 XSD;
- the issue's idempotence acceptance test: a duplicated input never makes a second mandat, a
  second register entry or a second archive transfer, even when the worker is SIGKILLed in the
  middle of a backlog and restarted. The shell is at-least-once, so a record whose outputs
  reached Kafka before its state's changelog may run again after the kill: its outputs then
  carry the same ``ce_id`` (derived from the cause), so "one" means one event identity per
  business key, whatever the number of deliveries.

Every wait polls a real condition (records on a topic, a state in a changelog) until a deadline.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from adapters import pes_aller
from bus import BusContext, BusSettings, Event, Received, Record, generate_key
from bus._content import LocalContentStore
from bus._keys import KeyStore
from bus.client import Publisher, kafka_args, read_topic
from processors.register import verify_chain
from tests.unit.processors.accounting_factories import BUYER, HOLDER, decp, invoice, service_fait
from tests.unit.processors.acts_factories import acknowledged, publication, transmitted

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime.now(dt.UTC)
WORKER_SIREN, COMMUNE_SIREN, SUPPLIER_SIREN = "130000000", BUYER[:9], HOLDER[:9]
A, ACC, ACTS = "fr.dcant.archives.", "fr.dcant.accounting.", "fr.dcant.acts."
STATUS = "fr.dcant.invoices.InvoiceStatusChanged"
# A year already closed: the acts become executory at once and the archiving profile's
# retention start (31 December of the closing year) is reached, so transfers are immediate.
YEAR = NOW.year - 1


# -- the bus of one test ------------------------------------------------------------------------

class Bus:
    """Topics, keys and publishers of one test: the commune and the supplier sign what they send."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self.reader = BusContext.offline(settings)  # knows every test key: opens what the worker signs

    def context(self, siren: str, system: str) -> BusContext:
        return BusContext.offline(self.settings.model_copy(update={"source": f"urn:siren:{siren}:{system}"}))

    def topic(self, key: str) -> str:
        return self.reader.topic(key)

    def changelog(self, core: str) -> str:
        return f"{self.settings.topic_prefix}{self.settings.consumer_group}-{core}-state-changelog"

    async def states(self, core: str) -> dict[str, Any]:
        """The latest state of every key of ``core`` as its changelog holds it."""
        latest: dict[str, Any] = {}
        for record in await read_topic(self.settings, self.changelog(core)):
            if record.key is not None and record.value is not None:
                latest[record.key.decode()] = json.loads(record.value)["state"]
        return latest


@pytest.fixture
async def bus(settings: BusSettings, tmp_path: Path) -> Bus:
    """A fresh topic prefix and state directory; the worker's, commune's and supplier's keys published."""
    own = settings.model_copy(update={
        "state_dir": tmp_path / "state", "topic_prefix": f"e2e-{uuid.uuid4().hex[:8]}.",
        "consumer_group": f"e2e-{uuid.uuid4().hex[:6]}", "source": f"urn:siren:{WORKER_SIREN}:worker"})
    store = KeyStore(own.resolved_keys_dir)
    keys = [generate_key(WORKER_SIREN, "Bus workers", valid_from=NOW - dt.timedelta(days=1)),
            generate_key(COMMUNE_SIREN, "Commune de test", valid_from=NOW - dt.timedelta(days=1)),
            generate_key(SUPPLIER_SIREN, "ROUTES SA", valid_from=NOW - dt.timedelta(days=1))]
    for key in keys:
        store.save(key)
    ctx = await BusContext.connect(own)
    await ctx.publish_keys(keys)
    return Bus(own)


class Worker:
    """``bus worker`` with the default cores, as a process sharing the test's state directory."""

    def __init__(self, bus: Bus, logs: Path) -> None:
        self.bus = bus
        self.logs = logs
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.secret = secrets.token_hex(32)  # kept across restarts: the same pseudonyms

    def start(self, *options: str) -> None:
        s = self.bus.settings
        env = {**os.environ, "BUS_BOOTSTRAP_SERVERS": s.bootstrap, "BUS_TOPIC_PREFIX": s.topic_prefix,
               "BUS_STATE_DIR": str(s.state_dir), "BUS_SOURCE": s.source, "BUS_CONSUMER_GROUP": s.consumer_group,
               "BUS_PSEUDONYMISATION_SECRET": self.secret,
               "BUS_LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT),
               # faust reads these: a SIGKILLed member leaves the group after 10 s instead of 60 s
               "BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "1"}
        self.runs += 1
        with (self.logs / f"worker-{self.runs}.log").open("wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bus.cli._worker", "worker", "--timer-interval", "5", *options],
                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return (self.logs / f"worker-{self.runs}.log").read_text(errors="replace")

    def assert_alive(self) -> None:
        assert self.process is not None and self.process.poll() is None, f"the worker exited: {self.log()[-4000:]}"

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=90)
        self.process = None
        return code

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def worker(bus: Bus, tmp_path: Path) -> Iterator[Worker]:
    made = Worker(bus, tmp_path)
    yield made
    if made.process is not None and made.process.poll() is None:
        made.process.kill()
        made.process.wait(timeout=30)


class Tail:
    """Every event of some topics from their beginning, opened (verified) as they come."""

    def __init__(self, bus: Bus, topics: Iterable[str], *, alive: Callable[[], None]) -> None:
        self.wire = bus.reader.wire()
        self.alive = alive
        self.consumer = AIOKafkaConsumer(*(bus.topic(t) for t in topics), **kafka_args(bus.settings), group_id=None,
                                         enable_auto_commit=False, auto_offset_reset="earliest")
        self.events: list[Received] = []

    async def __aenter__(self) -> Tail:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    def of(self, event_type: str) -> list[Received]:
        return [e for e in self.events if e.type == event_type]

    async def until(self, check: Callable[[list[Received]], Any], what: str, timeout: float = 150) -> Any:
        """Read until ``check(events)`` is truthy; fail naming ``what`` and the types read at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check(self.events)
            if result:
                return result
            if loop.time() > deadline:
                seen = collections.Counter(e.type.rsplit(".", 1)[-1] for e in {e.id: e for e in self.events}.values())
                pytest.fail(f"timed out waiting for {what}; distinct events read: {dict(seen)}")
            self.alive()
            await self._read()

    async def drain(self) -> None:
        """Read every partition up to its end offset of now."""
        ends = await self.consumer.end_offsets(list(self.consumer.assignment()))
        behind = set(ends)
        while behind:
            await self._read()
            behind = {tp for tp in behind if await self.consumer.position(tp) < ends[tp]}

    async def _read(self) -> None:
        batch = await self.consumer.getmany(timeout_ms=200)
        for messages in batch.values():
            self.events += [self.wire.open(Record(m.key, m.value, tuple(m.headers or ()), m.topic, m.partition,
                                                  m.offset, m.timestamp)) for m in messages]


async def eventually(check: Callable[[], Any], what: str, *, alive: Callable[[], None], timeout: float = 150) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        alive()
        await asyncio.sleep(0.5)  # poll interval of a condition on the broker


async def contracts_known(bus: Bus, contract_ids: list[str], alive: Callable[[], None]) -> None:
    """Wait until the accounting chain holds each contract's DECP terms (inputs of two topics race)."""
    async def check() -> bool:
        states = await bus.states("accounting-chain")
        return all((states.get(f"contract:{c}") or {}).get("contract", {}).get("decp") for c in contract_ids)

    await eventually(check, f"the contracts {contract_ids} in the accounting chain's state", alive=alive)


def accepted(tail_events: list[Received], numbers: set[str]) -> bool:
    done = {e.data["invoice_number"] for e in tail_events
            if e.type == ACC + "InvoiceChecked" and e.data["outcome"] == "accepted"}
    return numbers <= done


# -- (a) the accounting chain -------------------------------------------------------------------

async def test_contract_invoice_service_fait_become_a_valid_pes_bordereau(bus, worker, corpus):
    contract = "2026M-E2E-A"
    worker.start()
    commune, supplier = bus.context(COMMUNE_SIREN, "finances"), bus.context(SUPPLIER_SIREN, "facturation")
    async with Publisher(bus.settings, commune.wire()) as as_commune, \
            Publisher(bus.settings, supplier.wire()) as as_supplier, \
            Tail(bus, ["accounting", "invoices"], alive=worker.assert_alive) as tail:
        await as_commune.publish(decp(contract, amount="500000.00"))
        await contracts_known(bus, [contract], worker.assert_alive)
        sent = await as_supplier.publish(invoice("F-E2E-001", contract=contract, excl="10000.00", vat="2000.00"))
        await tail.until(lambda events: accepted(events, {"F-E2E-001"}), "the invoice checked and accepted")
        (checked,) = tail.of(ACC + "InvoiceChecked")
        assert checked.envelope.causationid == dict(sent.headers)["ce_id"].decode()
        assert (checked.data["contract_id"], checked.data["findings"]) == (contract, [])
        assert checked.envelope.sigkeyid.startswith(f"{WORKER_SIREN}:")
        # The supplier hears it on the invoices flow, on the invoice's dossier: received, taken in charge.
        statuses = await tail.until(lambda _: len(tail.of(STATUS)) >= 2 and tail.of(STATUS), "the supplier's statuses")
        assert [(s.data["status_code"], s.subject, s.record.topic) for s in statuses] == [
            (code, f"invoice:{HOLDER}:F-E2E-001", bus.topic("invoices")) for code in ("202", "204")]
        assert {s.envelope.causationid for s in statuses} == {checked.envelope.causationid}

        await as_commune.publish(service_fait("F-E2E-001", contract=contract, certified="10000.00",
                                              bordereau="7", mandat="1007", exercise=NOW.year))
        (issued,) = await tail.until(lambda _: tail.of(ACC + "BordereauIssued"), "the bordereau")
    assert issued.subject == f"bordereau:{BUYER}:{NOW.year}:7"
    (mandat,) = issued.data["mandats"]
    assert mandat["invoices"][0]["number"] == "F-E2E-001"
    assert (mandat["amount_excl_tax"], mandat["vat_amount"], mandat["amount_incl_tax"]) == (
        "10000.00", "2000.00", "12000.00")
    assert mandat["lignes"][0]["contract_id"] == contract
    written = pes_aller.from_pivot(issued.data, schema_dir=corpus)
    assert pes_aller.validate(written, schema_dir=corpus, name="bordereau from the worker") == []
    assert pes_aller.to_pivot(written).subject == issued.subject
    worker.assert_alive()
    assert worker.stop() == 0, worker.log()[-4000:]


# -- (b) idempotence across a killed worker -----------------------------------------------------

INVOICES, ACTS_COUNT = 60, 30


def act_events(store: LocalContentStore, n: int) -> tuple[str, list[Event]]:
    """An act's transmission (its PDF in the content store), AR and publication: a deliberation of YEAR."""
    number = f"E2E-{n:03d}"
    pdf = f"%PDF-1.4 délibération {n} du conseil municipal\n".encode() * 40
    ref = store.put(pdf, media_type="application/pdf", file_name=f"delib-{n}.pdf")
    documents = [{"role": "MAIN", "file_name": ref.file_name, "media_type": ref.media_type, "signed": False,
                  "content": {"sha256": ref.sha256, "size": ref.size, "uri": ref.uri}, "personal_data": None}]
    decision = dt.date(YEAR, 10, 2)
    events = [transmitted(number, decision=decision, title=f"Subvention n°{n} au club de rugby", documents=documents),
              acknowledged(dt.date(YEAR, 10, 3), number),
              publication(dt.date(YEAR, 10, 6), number=number)]
    return f"act:{COMMUNE_SIREN}:{number}", events


def identities(events: list[Received], event_type: str, business_key: Callable[[Received], str]) -> dict[str, set[str]]:
    """Distinct ``ce_id`` values of ``event_type`` by business key."""
    out: dict[str, set[str]] = collections.defaultdict(set)
    for e in events:
        if e.type == event_type:
            out[business_key(e)].add(e.id)
    return out


def mandat_invoice(e: Received) -> str:
    (mandat,) = e.data["mandats"]
    return str(mandat["invoices"][0]["number"])


async def test_duplicates_and_a_killed_worker_make_one_mandat_one_entry_one_transfer(bus, worker):
    contracts = [f"2026M-E2E-B{c}" for c in range(3)]
    numbers = [f"F-E2E-B{i:03d}" for i in range(INVOICES)]
    contract_of = {number: contracts[i % len(contracts)] for i, number in enumerate(numbers)}
    commune, supplier = bus.context(COMMUNE_SIREN, "finances"), bus.context(SUPPLIER_SIREN, "facturation")
    store = LocalContentStore.from_uri(bus.settings.resolved_content_store)  # the worker's store too
    acts = [act_events(store, n) for n in range(ACTS_COUNT)]
    dossiers = {dossier for dossier, _ in acts}

    worker.start()
    async with Publisher(bus.settings, commune.wire()) as as_commune, \
            Publisher(bus.settings, supplier.wire()) as as_supplier, \
            Tail(bus, ["accounting", "acts", "archives"], alive=lambda: worker.assert_alive()) as tail:
        # Phase 1, worker running: contracts, then invoices checked against them.
        await as_commune.publish_many([decp(c, amount="5000000.00") for c in contracts])
        await contracts_known(bus, contracts, worker.assert_alive)
        await as_supplier.publish_many([invoice(n, contract=contract_of[n], excl="1000.00", vat="200.00")
                                        for n in numbers])
        await tail.until(lambda events: accepted(events, set(numbers)), f"{INVOICES} invoices accepted", timeout=120)
        assert worker.stop() == 0, worker.log()[-4000:]

        # Phase 2, worker stopped: a backlog with every service fait sent twice (same record, same
        # ce_id) and the acts' lifecycle events.
        faits = [as_commune.wire.seal(service_fait(n, contract=contract_of[n], certified="1000.00",
                                                   bordereau=str(100 + i), mandat=str(5000 + i), exercise=NOW.year))
                 for i, n in enumerate(numbers)]
        accounting_topic = bus.topic("accounting")
        for record in faits:
            await as_commune.send_raw(accounting_topic, record)
            await as_commune.send_raw(accounting_topic, record)  # the line-of-business system sent it twice
        await as_commune.publish_many([e for _, events in acts for e in events])

        # Restart on the backlog; SIGKILL as soon as its first outputs show, while the rest is in flight.
        worker.start()
        started = asyncio.get_running_loop().time()
        await tail.until(lambda _: tail.of(ACC + "BordereauIssued") or tail.of(ACTS + "ActStateChanged"),
                         "the first outputs of the backlog", timeout=120)
        worker.kill()
        at_kill = {"mandats": len(tail.of(ACC + "BordereauIssued")),
                   "entries": len(tail.of(ACTS + "RegisterEntryAdded")),
                   "transfers": len(tail.of(A + "ArchiveTransferRequested"))}
        worker.start()

        def complete(events: list[Received]) -> bool:
            return (len(identities(events, ACC + "BordereauIssued", mandat_invoice)) == INVOICES
                    and len(identities(events, ACTS + "RegisterEntryAdded", lambda e: e.data["number"])) == ACTS_COUNT
                    and len(identities(events, A + "ArchiveTransferRequested", lambda e: e.subject)) == ACTS_COUNT)

        await tail.until(complete, "every mandat, register entry and archive transfer", timeout=180)
        elapsed = asyncio.get_running_loop().time() - started
        worker.assert_alive()
        assert worker.stop() == 0, worker.log()[-4000:]
        await tail.drain()  # every copy the runs wrote is counted

    assert at_kill["mandats"] + at_kill["entries"] + at_kill["transfers"] < INVOICES + 2 * ACTS_COUNT, (
        "the worker finished the backlog before it was killed: the test did not exercise a restart", at_kill)

    mandats = identities(tail.events, ACC + "BordereauIssued", mandat_invoice)
    assert set(mandats) == set(numbers)
    assert {n: ids for n, ids in mandats.items() if len(ids) != 1} == {}, "a second mandat for an invoice"

    entries = identities(tail.events, ACTS + "RegisterEntryAdded", lambda e: e.data["number"])
    assert {f"act:{COMMUNE_SIREN}:{n}" for n in entries} == dossiers
    assert {n: ids for n, ids in entries.items() if len(ids) != 1} == {}, "a second register entry for an act"
    unique = {e.id: e for e in tail.of(ACTS + "RegisterEntryAdded")}
    verify_chain(sorted((e.data for e in unique.values()), key=lambda d: d["sequence"]))

    transfers = identities(tail.events, A + "ArchiveTransferRequested", lambda e: e.subject)
    assert {s.removeprefix("transfer:").rsplit("/transfer-", 1)[0] for s in transfers} == dossiers
    assert {s: ids for s, ids in transfers.items() if len(ids) != 1} == {}, "a second transfer for a dossier"
    for e in {e.id: e for e in tail.of(A + "ArchiveTransferRequested")}.values():
        (binary,) = e.data["binary_data_objects"]
        assert (binary["digest_algorithm"], len(binary["message_digest"])) == ("SHA-512", 128)

    delivered = collections.Counter(e.type for e in tail.events)
    distinct = collections.Counter(e.type for e in {e.id: e for e in tail.events}.values())
    replayed = {t: delivered[t] - distinct[t] for t in delivered if delivered[t] != distinct[t]}
    processed = 2 * INVOICES + 3 * ACTS_COUNT
    print(f"\nbacklog of {processed} inputs: outputs at kill {at_kill}; redelivered copies (same ce_id) {replayed}; "
          f"restart to completion {elapsed:.1f} s")
