"""One fault trial: its own topics, group and workers on the harness's broker, one fault, the accounting.

A trial publishes wave 1 of :mod:`tests.faults._workload`, waits (observing the family topics
with the demo's :class:`~bus.demo._stage.Watcher`) until the mandats of the paid invoices show,
publishes wave 2, and waits until every expected effect shows. In parallel a fault task waits
until ``trigger`` effects are visible (drawn from the trial's seed) and injects its fault:

- ``kill``: the worker SIGKILLed, then restarted;
- ``rebalance``: a second worker started in the same group; once the group leaves ``Stable``
  (the rebalance the join causes) or holds both, one of the two, drawn, is SIGKILLed;
- ``broker``: the broker stopped and restarted on the same state directory and ports, the
  workers left running.

Nothing waits a fixed time: every wait is on something read from the bus (effects seen, the
group's state) with a deadline that names what it was waiting for. Workers are ``bus worker``
processes (:class:`~bus.demo._worker.DemoWorker`, with the trial's environment); every one
started is killed if still alive and reaped when the trial ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
import contextlib
import dataclasses
import datetime as dt
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError

from bus import BusContext, BusSettings, generate_key
from bus._broker import EmbeddedBroker
from bus._content import LocalContentStore
from bus._errors import BusError
from bus._keys import KeyStore
from bus.client import Publisher
from bus.demo._stage import Watcher
from bus.demo._worker import DemoWorker

from ._workload import (COMMUNE_SIREN, INTEREST, MANDAT, SUPPLIER_SIREN, WORKER_SIREN, YEAR, Accounting, Workload, account,
                        build, effects, progress)

__all__ = ["FAULTS", "TrialResult", "run_trial"]

FAULTS = ("kill", "rebalance", "broker")
ROOT = Path(__file__).resolve().parents[2]
TRIAL_TIMEOUT = float(os.environ.get("FAULTS_TIMEOUT", "240"))  # seconds for the workload to complete after its fault
SESSION_TIMEOUT = "6"  # seconds: a SIGKILLed member leaves its group this long after (broker minimum)


class TrialTimeout(BusError):
    """Something a trial waited for did not happen before its deadline."""

    default_hint = "read the worker logs named in the trial's details"


class TrialWorker(DemoWorker):
    """``bus worker`` (every default core) with the trial's environment and its own faust data dir."""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update({"BUS_LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT),
                    # faust reads these: a SIGKILLed member leaves the group after seconds, not a minute
                    "BROKER_SESSION_TIMEOUT": SESSION_TIMEOUT, "BROKER_HEARTBEAT_INTERVAL": "1"})
        return env

    # The demo's command: timers on event time, so a payment is late or not by the stream's dates,
    # not by which of a contract's and an invoice's topics the worker happened to read first (on
    # the wall clock, an invoice held for its contract restarted its period today: a 2025 payment
    # was then on time and its interest "lost" — seen in trial 5 of seed 5's run).


@dataclasses.dataclass
class TrialResult:
    index: int
    seed: int
    fault: str
    trigger: int
    injected: bool
    seconds: float
    accounting: Accounting | None
    error: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    logs: list[Path] = dataclasses.field(default_factory=list)

    @property
    def lost(self) -> int:
        if self.accounting is None:
            return 0
        return len(self.accounting.lost)

    @property
    def duplicates(self) -> int:
        return 0 if self.accounting is None else self.accounting.duplicate_count

    @property
    def ok(self) -> bool:
        return self.error is None and self.lost == 0 and self.duplicates == 0


class Trial:
    def __init__(self, index: int, seed: int, broker: EmbeddedBroker, root: Path, bootstrap: str) -> None:
        self.index, self.seed, self.broker = index, seed, broker
        self.rng = random.Random(seed)
        self.fault = self.rng.choice(FAULTS)
        self.tag = f"{index:02d}{self.rng.randrange(36 ** 3):03x}".upper()
        self.root = root / f"trial-{index:03d}"
        shared = self.root / "shared"
        self.settings = BusSettings(
            bootstrap_servers=bootstrap, state_dir=shared, keys_dir=shared / "keys",
            content_store=(shared / "content").as_uri(), topic_prefix=f"faults-{self.tag.lower()}.",
            consumer_group=f"faults-{self.tag.lower()}", source=f"urn:siren:{WORKER_SIREN}:worker")
        self.workers: list[TrialWorker] = []
        self.notes: list[str] = []

    def worker(self) -> TrialWorker:
        n = len(self.workers) + 1
        own = self.settings.model_copy(update={"state_dir": self.root / f"worker-{n}"})
        made = TrialWorker(own, source=self.settings.source, log_path=self.root / f"worker-{n}.log")
        self.workers.append(made)
        return made

    def alive(self) -> list[TrialWorker]:
        return [w for w in self.workers if w.process is not None]

    def check_workers(self) -> None:
        for w in self.alive():
            w.assert_alive()

    async def run(self) -> TrialResult:
        started = time.monotonic()
        result = TrialResult(self.index, self.seed, self.fault, 0, False, 0.0, None, notes=self.notes)
        try:
            await self._run(result)
        except (BusError, OSError, KafkaError) as exc:  # a trial that cannot finish is reported, not raised
            result.error = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        finally:
            for w in self.workers:
                with contextlib.suppress(Exception):
                    await w.stop(kill=True, timeout=30)  # nothing outlives the trial
            result.seconds = time.monotonic() - started
            result.logs = [w.log_path for w in self.workers]
            await self._delete_topics()
        return result

    async def _delete_topics(self) -> None:
        """Delete the trial's topics (its prefix: family, rekey and changelog topics).

        One broker serves every trial: without this, 84 trials left 13,446 partition directories,
        and a restart of the broker (the ``broker`` fault) then spent minutes loading them
        (server.log: "Exceptionally slow controller event"); trial 80 timed out waiting for it
        and trial 84 found no broker at all.
        """
        from bus.client import admin_client

        admin = admin_client(self.settings)
        try:
            await admin.start()
            mine = [t for t in await admin.list_topics() if t.startswith(self.settings.topic_prefix)]
            if mine:
                await admin.delete_topics(mine)
        except (KafkaError, OSError) as exc:  # the next trials still run; the note says why it is slower
            self.notes.append(f"the trial's topics were not deleted: {exc!r}")
        finally:
            await admin.close()

    async def _keys(self) -> BusContext:
        since = dt.datetime(YEAR - 1, 1, 1, tzinfo=dt.UTC)  # the workload's events are dated in YEAR
        store = KeyStore(self.settings.resolved_keys_dir)
        keys = [generate_key(WORKER_SIREN, "Bus workers", valid_from=since),
                generate_key(COMMUNE_SIREN, "Commune de test", valid_from=since),
                generate_key(SUPPLIER_SIREN, "ROUTES SA", valid_from=since)]
        for key in keys:
            store.save(key)
        ctx = await BusContext.connect(self.settings)
        await ctx.publish_keys(keys)
        return ctx

    async def _run(self, result: TrialResult) -> None:
        ctx = await self._keys()
        store = LocalContentStore.from_uri(self.settings.resolved_content_store)
        workload = build(self.tag, store)
        # A point within what wave 1 causes: wave 2 goes out once the fault is in, so the stream
        # always has records in flight through and after it.
        first_wave = workload.effects - len(workload.expected[INTEREST])
        result.trigger = self.rng.randrange(1, first_wave - first_wave // 10)
        signers = {role: BusContext.offline(self.settings.model_copy(update={"source": f"urn:siren:{siren}:{system}"}))
                   for role, siren, system in (("commune", COMMUNE_SIREN, "finances"),
                                               ("supplier", SUPPLIER_SIREN, "facturation"))}
        async with await self._watcher(ctx) as watcher, \
                Publisher(self.settings, signers["commune"].wire()) as as_commune, \
                Publisher(self.settings, signers["supplier"].wire()) as as_supplier:
            publishers = {"commune": as_commune, "supplier": as_supplier}
            await self.worker().start(timeout=120)
            fault = asyncio.ensure_future(self._inject(watcher, workload, result))
            try:
                await self._publish(publishers, workload.wave1)
                mandated = await self._until(
                    watcher, lambda: workload.paid <= effects(watcher.events)[MANDAT].keys(),
                    lambda: f"the mandats of the {len(workload.paid)} invoices to pay "
                            f"(seen {len(workload.paid & effects(watcher.events)[MANDAT].keys())})")
                if mandated:
                    await asyncio.wait_for(asyncio.shield(fault), TRIAL_TIMEOUT)  # the fault is in
                    await self._publish(publishers, workload.wave2)
                    await self._until(watcher, lambda: progress(watcher.events, workload) >= workload.effects,
                                      lambda: f"all {workload.effects} effects (seen "
                                              f"{progress(watcher.events, workload)}; late interests "
                                              f"{len(effects(watcher.events)[INTEREST])})")
            except BusError as exc:  # reported with the accounting of what was seen until then
                result.error = f"{type(exc).__name__}: {exc.message}"
            finally:
                if not fault.done():
                    fault.cancel()
                try:
                    await fault
                except asyncio.CancelledError:
                    pass
                except BusError as exc:
                    result.error = f"the fault: {type(exc).__name__}: {exc.message}"
            # Every copy the workers wrote is read before counting: the watcher catches up to the end offsets.
            await self._drain(watcher)
            result.accounting = account(workload, watcher.events, watcher.dead)
            if result.accounting.lost or result.accounting.duplicates:
                seen = Counter(e.type.rsplit(".", 1)[-1] for e in {e.id: e for e in watcher.events}.values())
                self.notes.append(f"distinct events seen: {dict(sorted(seen.items()))}")
            if watcher.dead:
                self.notes.append(f"{len(watcher.dead)} record(s) dead-lettered")
            if watcher.rejected:
                self.notes.append(f"{watcher.rejected} record(s) did not verify")

    async def _watcher(self, ctx: BusContext) -> Watcher:
        """The demo's watcher from the topics' end offsets (asked again while fresh partitions elect leaders)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            try:
                return await Watcher.from_now(ctx)
            except (KafkaError, TimeoutError) as exc:
                if loop.time() > deadline:
                    raise TrialTimeout(f"the end offsets of the trial's fresh topics: {exc!r}") from exc

    async def _publish(self, publishers: dict[str, Publisher], inputs: list[Any]) -> None:
        for role in ("supplier", "commune"):
            mine = [i for i in inputs if i.role == role]
            records = await publishers[role].publish_many([i.event for i in mine])
            for i, record in zip(mine, records, strict=True):
                i.ce_id = dict(record.headers)["ce_id"].decode()

    async def _until(self, watcher: Watcher, check: Callable[[], bool], what: Callable[[], str]) -> bool:
        """Wait for ``check``; a timeout is a note (the accounting then says what is lost)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TRIAL_TIMEOUT
        while not check():
            self.check_workers()  # a worker that died by itself is an error of the trial
            if loop.time() > deadline:
                self.notes.append(f"timed out after {TRIAL_TIMEOUT:.0f} s waiting for {what()}")
                self.notes.append(f"group offsets at the timeout (topic: committed/end): {await self._lag()}")
                return False
            await watcher.until(check, timeout=1.0)  # wakes on every batch read, at most a second apart
        return True

    async def _inject(self, watcher: Watcher, workload: Workload, result: TrialResult) -> None:
        reached = await watcher.until(lambda: progress(watcher.events, workload) >= result.trigger,
                                      timeout=TRIAL_TIMEOUT)
        if not reached:  # the main wait times out too and the accounting names what is missing
            self.notes.append(f"fault not injected: {result.trigger} effects never seen "
                              f"(seen {progress(watcher.events, workload)})")
            return
        at = progress(watcher.events, workload)
        if self.fault == "kill":
            (victim,) = self.alive()
            await victim.stop(kill=True)
            self.notes.append(f"worker-{self.workers.index(victim) + 1} SIGKILLed at {at} effects, restarted")
            await self.worker().start(timeout=120)
        elif self.fault == "rebalance":
            (first,) = self.alive()
            second = self.worker()
            await self._start_joining(second)
            victim = self.rng.choice([first, second])
            await victim.stop(kill=True)
            self.notes.append(f"worker-{self.workers.index(victim) + 1} of 2 SIGKILLed during the rebalance at "
                              f"{at} effects")
        else:
            await asyncio.to_thread(self.broker.stop)
            self.notes.append(f"broker stopped at {at} effects, restarted")
            await asyncio.to_thread(self.broker.start, 120)
        result.injected = True

    async def _start_joining(self, second: TrialWorker) -> None:
        """Start ``second`` and return once its join moved the group out of Stable (or it is a member)."""
        _state, before = await second._members()
        second.log_path.parent.mkdir(parents=True, exist_ok=True)
        second._log = second.log_path.open("wb")
        import subprocess

        second.process = subprocess.Popen(second.command(), env=second.environment(), stdout=second._log,
                                          stderr=subprocess.STDOUT, start_new_session=True)

        async def joining() -> bool:
            state, members = await second._members()
            return state in ("PreparingRebalance", "CompletingRebalance") or bool(members - before)

        await second._poll(joining, "the second worker's join to start a rebalance", 120)

    async def _lag(self) -> str:
        """The group's committed offset and the end offset of every topic it reads, summed over partitions."""
        from aiokafka import AIOKafkaConsumer

        from bus.client import admin_client, kafka_args

        admin = admin_client(self.settings)
        probe = AIOKafkaConsumer(**kafka_args(self.settings), group_id=None, enable_auto_commit=False)
        try:
            await admin.start()
            await probe.start()
            committed = await admin.list_consumer_group_offsets(f"{self.settings.topic_prefix}{self.settings.consumer_group}")
            ends = await probe.end_offsets(list(committed))
        except (KafkaError, TimeoutError) as exc:
            return f"unavailable ({exc!r})"
        finally:
            await probe.stop()
            await admin.close()
        by_topic: dict[str, list[int]] = {}
        for tp, meta in committed.items():
            pair = by_topic.setdefault(tp.topic.removeprefix(self.settings.topic_prefix), [0, 0])
            pair[0] += max(meta.offset, 0)
            pair[1] += ends.get(tp, 0)
        return ", ".join(f"{t}: {c}/{e}" for t, (c, e) in sorted(by_topic.items())) or "none committed"

    async def _drain(self, watcher: Watcher) -> None:
        from aiokafka import AIOKafkaConsumer

        from bus.client import kafka_args

        probe = AIOKafkaConsumer(**kafka_args(self.settings), group_id=None, enable_auto_commit=False)
        await probe.start()
        try:
            ends = await probe.end_offsets(list(watcher.start))
        finally:
            await probe.stop()
        consumer = watcher._consumer
        assert consumer is not None

        async def caught_up() -> bool:
            for tp, end in ends.items():
                if await consumer.position(tp) < end:
                    return False
            return True

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not await caught_up():
            if loop.time() > deadline:
                raise TrialTimeout("the watcher to read the topics to their end offsets")
            await watcher.until(lambda: False, timeout=0.5)


async def run_trial(index: int, seed: int, broker: EmbeddedBroker, root: Path, bootstrap: str) -> TrialResult:
    return await Trial(index, seed, broker, root, bootstrap).run()
