"""``bus worker`` against the real broker: ingress end to end, and state that survives a worker.

Workers run as real processes (``python -m bus.cli._worker worker``, the command ``bus worker``
runs), each killed at teardown if a test left it alive. Every wait polls a real condition (a
record on a topic, a consumer group's membership) until a deadline.

The failover test is the issue's acceptance test: two workers in one group share the
partitions; when one is stopped its partitions, and the states in them, move to the other,
whose counts continue where they were instead of restarting from zero. Its counting core keys
companies by SIREN while records are keyed by SIRET, so the rekey topic is on the path too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import GroupCoordinatorNotAvailableError

from bus import Binding, BusContext, BusSettings, Context, Event, Received, generate_key
from bus._keys import KeyStore
from bus.client import Publisher, admin_client, read_topic
from processors.ingress import submit

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime.now(dt.UTC)
WORKER_SIREN, SUBMITTER_SIREN = "130000000", "213105554"
OBSERVED = "fr.dcant.reference.CompanyObserved"


class CountingCore:
    """Counts the companies observed per SIREN, noting which worker counted each; stamps on_time."""

    name = "counting"
    inputs = ("reference.companies",)
    tables = ()

    def __init__(self) -> None:
        self.worker = os.environ.get("COUNTING_WORKER", "?")  # test configuration, read once

    def key(self, event: Received, ctx: Context) -> str | None:
        return f"siren:{event.data['siren']}" if event.type == OBSERVED else None

    def initial_state(self) -> dict[str, Any]:
        return {"count": 0, "by": {}, "timed": False}

    def process(self, state: dict[str, Any], event: Received, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        state["count"] += 1
        state["by"][self.worker] = state["by"].get(self.worker, 0) + 1
        return state, []

    def on_time(self, state: dict[str, Any], key: str, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        state["timed"] = True
        return state, []


HOLDING = "holding the batch of"


def holding_core(settings: BusSettings) -> Binding:
    """The counting core behind a prepare step that never answers: its first batch stays in flight,
    so a clean stop waits for it (up to ``--stop-grace``) and the worker is held in its stop."""
    async def hold(event: Received) -> dict[str, dict[str, Any]]:
        print(f"{HOLDING} {event.id}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()  # never set: the batch ends only with the process
        return {}

    return Binding(CountingCore(), prepare=hold)


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 120,
                     detail: Callable[[], str] = lambda: "") -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` (and ``detail()``) at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what} {detail()}".rstrip())
        await asyncio.sleep(0.5)  # poll interval of a condition on the broker


class Workers:
    """``bus worker`` processes of one test, stopped by SIGTERM on request, killed at teardown."""

    def __init__(self, settings: BusSettings, root: Path) -> None:
        self.settings = settings
        self.root = root
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *processors: str, timer_interval: float = 0,
              options: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        state_dir = self.root / name  # faust's data dir per worker; keys and content are shared
        env = {**os.environ, "BUS_BOOTSTRAP_SERVERS": self.settings.bootstrap, "BUS_TOPIC_PREFIX": self.settings.topic_prefix,
               "BUS_STATE_DIR": str(state_dir), "BUS_KEYS_DIR": str(self.settings.resolved_keys_dir),
               "BUS_CONTENT_STORE": self.settings.resolved_content_store, "BUS_SOURCE": self.settings.source,
               "BUS_CONSUMER_GROUP": self.settings.consumer_group, "COUNTING_WORKER": name,
               "BUS_LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "bus.cli._worker", "worker", "--timer-interval", str(timer_interval),
                   *options]
        for processor in processors:
            command += ["--processor", processor]
        with (self.root / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.running[name] = process
        return process

    def stop(self, name: str) -> int:
        process = self.running.pop(name)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=90)

    def assert_alive(self) -> None:
        for name, process in self.running.items():
            assert process.poll() is None, f"worker {name} exited: {self.log(name)[-3000:]}"

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def kill_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
        self.running.clear()


@pytest.fixture(scope="module")
async def keyed(settings, tmp_path_factory) -> BusSettings:
    """Module settings: own state dir with the worker's and the submitter's keys, both published."""
    root = tmp_path_factory.mktemp("worker-state")
    worker_settings = settings.model_copy(update={"state_dir": root, "source": f"urn:siren:{WORKER_SIREN}:worker"})
    store = KeyStore(worker_settings.resolved_keys_dir)
    keys = [generate_key(WORKER_SIREN, "Bus workers", valid_from=NOW - dt.timedelta(days=1)),
            generate_key(SUBMITTER_SIREN, "Commune de test", valid_from=NOW - dt.timedelta(days=1))]
    for key in keys:
        store.save(key)
    ctx = await BusContext.connect(worker_settings)
    await ctx.publish_keys(keys)
    return worker_settings


@pytest.fixture
def workers(keyed, tmp_path) -> Iterator[Callable[[BusSettings], Workers]]:
    made: list[Workers] = []

    def make(settings: BusSettings) -> Workers:
        made.append(Workers(settings, tmp_path))
        return made[-1]

    yield make
    for group in made:
        group.kill_all()


def opened(ctx: BusContext, records: list, *, cause: str) -> list[Received]:  # type: ignore[type-arg]
    """The records caused by ``cause``, verified and decoded (the topics are shared with other tests, whose
    events may be addressed to others: they are not this test's to open)."""
    from bus.ledger._opening import peek

    wire = ctx.wire()
    return [wire.open(r) for r in records if getattr(peek(r), "causationid", None) == cause]


async def test_ingress_turns_submitted_documents_into_pivots_and_dead_letters_the_malformed(
        keyed, workers, corpus, tmp_path):
    settings = keyed.model_copy(update={"consumer_group": f"ingress-{uuid.uuid4().hex[:6]}"})
    group = workers(settings)
    group.start("ingress", "ingress")
    submitter = settings.model_copy(update={"source": f"urn:siren:{SUBMITTER_SIREN}:test"})
    ctx = await BusContext.connect(submitter, create_topics=False)
    malformed = tmp_path / "broken.xml"
    malformed.write_bytes(b'<?xml version="1.0"?><Invoice xmlns="urn:oasis:names:specification:ubl:schema:'
                          b'xsd:Invoice-2"><cbc:ID>unterminated')
    async with Publisher(submitter, ctx.wire()) as publisher:
        invoice = await submit(ctx, publisher, corpus / "invoices/en16931-ubl/ubl-tc434-example1.xml")
        sirene = await submit(ctx, publisher, corpus / "reference/sirene/sample_etablissements_OK.csv")
        broken = await submit(ctx, publisher, malformed)
    ids = {name: dict(r.headers)["ce_id"].decode() for name, r in
           {"invoice": invoice, "sirene": sirene, "broken": broken}.items()}

    async def caused_by(topic: str, cause: str) -> list[Received]:
        return opened(ctx, await read_topic(settings, ctx.topic(topic)), cause=cause)

    async def invoices() -> list[Received]:
        return await caused_by("invoices", ids["invoice"])

    async def companies() -> list[Received] | None:
        found = await caused_by("reference.companies", ids["sirene"])
        return found if len(found) >= 3 else None

    async def dead_letter() -> list[Any]:
        return [r for r in await read_topic(settings, ctx.topic("deadletter")) if dict(r.headers).get("ce_id") ==
                ids["broken"].encode()]

    (pivot,) = await eventually(invoices, "the invoice pivot")
    assert pivot.type == "fr.dcant.invoices.InvoiceReceived" and pivot.subject == "invoice:57151520:12115118"
    assert pivot.envelope.sigkeyid.startswith(f"{WORKER_SIREN}:")
    assert pivot.envelope.correlationid == ids["invoice"]
    found = await eventually(companies, "the three SIRENE establishments")
    assert sorted(c.subject for c in found) == ["company:00588003400011", "company:00600356000015",
                                                "company:00600465900014"]
    (dead,) = await eventually(dead_letter, "the malformed document on the dead-letter topic")
    headers = dict(dead.headers)
    assert (dead.key, dead.value) == (broken.key, broken.value)
    assert headers["dlq_error_class"] == b"MalformedDocumentError"
    assert headers["dlq_processor"] == b"ingress"
    assert headers["dlq_source_topic"].decode() == ctx.topic("ingress.raw")
    assert [h for h in dead.headers if not h[0].startswith("dlq_")] == list(broken.headers)
    assert group.running["ingress"].poll() is None, group.log("ingress")[-3000:]


async def stable_with(settings: BusSettings, app_id: str, members: int) -> bool:
    """Whether the consumer group ``app_id`` is Stable with ``members`` members."""
    admin = admin_client(settings)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([app_id])
    except GroupCoordinatorNotAvailableError:
        return False  # a fresh broker elects the group coordinator with the first group
    finally:
        await admin.close()
    # groups: (error, group, state, protocol_type, protocol, members, ...)
    (described,) = response.groups
    return bool(described[2] == "Stable" and len(described[5]) == members)


def observed(siren: str, n: int) -> Event:
    siret = f"{siren}{n % 3:05d}"
    return Event(type=OBSERVED, subject=f"company:{siret}", schema="fr.dcant.reference.Company",
                 data={"kind": "ESTABLISHMENT", "siren": siren, "nic": siret[9:], "siret": siret,
                       "name": f"observation {n}", "administrative_state": "ACTIVE",
                       "diffusion_status": "DIFFUSIBLE", "source_format": "sirene-json"})


async def test_a_stopped_workers_partitions_move_to_the_other_with_their_state(keyed, workers):
    settings = keyed.model_copy(update={"consumer_group": f"counting-{uuid.uuid4().hex[:6]}"})
    app_id = f"{settings.topic_prefix}{settings.consumer_group}"  # faust's group id and topic prefix
    changelog = f"{app_id}-counting-state-changelog"
    sirens = [f"{100000000 + 7919 * i}" for i in range(12)]
    per_phase = 5
    group = workers(settings)
    core = "tests.integration.test_worker:CountingCore"
    group.start("alpha", core, timer_interval=1)
    group.start("beta", core, timer_interval=1)

    async def both_members_assigned() -> bool:
        group.assert_alive()
        return await stable_with(settings, app_id, 2)

    async def states() -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for record in await read_topic(settings, changelog):
            if record.key is not None and record.value is not None:
                latest[record.key.decode()] = json.loads(record.value)["state"]
        return latest

    last: dict[str, dict[str, Any]] = {}

    def seen() -> str:
        return f"(changelog states: {json.dumps(last, sort_keys=True)})"

    def counted(expected: int, *, timed: bool = False) -> Callable[[], Awaitable[dict[str, dict[str, Any]] | None]]:
        async def check() -> dict[str, dict[str, Any]] | None:
            group.assert_alive()
            found = await states()
            last.clear()
            last.update(found)
            done = len(found) == len(sirens) and all(s["count"] == expected for s in found.values())
            # A stopping worker does not wait for its in-flight timer tick (stream_wait_empty=False):
            # the survivor's own timer marks the keys it took over on its next tick.
            done = done and (not timed or all(s["timed"] for s in found.values()))
            return found if done else None
        return check

    await eventually(both_members_assigned, "both workers in the group")
    submitter = settings.model_copy(update={"source": f"urn:siren:{SUBMITTER_SIREN}:test"})
    ctx = await BusContext.connect(submitter, create_topics=False)
    async with Publisher(submitter, ctx.wire()) as publisher:
        await publisher.publish_many([observed(s, n) for n in range(per_phase) for s in sirens])
        before = await eventually(counted(per_phase), "every SIREN counted by the two workers", detail=seen)
        by_worker = {w for state in before.values() for w in state["by"]}
        assert by_worker == {"alpha", "beta"}, before
        alpha_keys = {k for k, state in before.items() if "alpha" in state["by"]}

        assert group.stop("alpha") == 0, group.log("alpha")[-3000:]
        await publisher.publish_many([observed(s, n) for n in range(per_phase, 2 * per_phase) for s in sirens])
        after = await eventually(counted(2 * per_phase, timed=True),
                                 "beta continuing alpha's counts, its timer running on every key", detail=seen)
    for key in alpha_keys:
        assert after[key]["by"] == {"alpha": per_phase, "beta": per_phase}, (key, after[key])
    assert "Traceback" not in group.log("alpha")
    assert group.running["beta"].poll() is None, group.log("beta")[-3000:]


async def test_a_second_stop_signal_exits_at_once_saying_what_happens_to_the_input(keyed, workers):
    settings = keyed.model_copy(update={"consumer_group": f"stopping-{uuid.uuid4().hex[:6]}"})
    group = workers(settings)
    # A batch that never finishes holds the worker in its clean stop for the whole grace (10 min):
    # the second signal then surely comes while the worker stops, however slow this machine is.
    process = group.start("gamma", "tests.integration.test_worker:holding_core", options=("--stop-grace", "600"))
    submitter = settings.model_copy(update={"source": f"urn:siren:{SUBMITTER_SIREN}:test"})
    ctx = await BusContext.connect(submitter, create_topics=False)
    async with Publisher(submitter, ctx.wire()) as publisher:
        await publisher.publish(observed("356000000", 0))

    async def holding() -> bool:
        group.assert_alive()
        return HOLDING in group.log("gamma")

    await eventually(holding, "the worker holding its batch")
    group.running.pop("gamma")
    process.send_signal(signal.SIGTERM)
    # Two signals sent at once would merge into one pending signal: the second goes once the
    # worker said it is stopping (it stays stopping: its batch never ends).
    await eventually(lambda: _logged(group, "gamma", "worker: stopping"), "the worker saying it stops")
    assert process.poll() is None, group.log("gamma")[-3000:]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=90) == 1
    log = group.log("gamma")
    assert "a second stop signal: exiting without a clean stop" in log, log[-3000:]
    assert "Traceback" not in log


async def _logged(group: Workers, name: str, text: str) -> bool:
    return text in group.log(name)
