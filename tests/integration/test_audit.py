"""The audit ledger against the real broker: tampering forged on real topics is named by ``verify``.

Each forged copy is a real topic written with the original records' bytes and timestamps
(``CreateTime``), altered as the test says, and verified against the ORIGINAL topic's signed
checkpoints (``as_topic``). The original is checkpointed by a real :class:`LedgerProcessor`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic

from bus import BusContext, BusError, Event, generate_key
from bus._wire import Record
from bus.client import Publisher, admin_client, kafka_args
from bus.ledger import Checkpoint, sign
from bus.ledger._pool import plan_slices
from bus.ledger._processor import LedgerProcessor
import bus.ledger._replay as replay_module
from bus.ledger._replay import ReplayPool, ReplayQuery, ReplayStats, read_all, replay
from bus.ledger._verify import verify_topics
from tests.integration.replay_support import help_with

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = dt.datetime.now(dt.UTC)


def company(n: int, siret: str = "42082007800012") -> Event:
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}",
                 schema="fr.dcant.reference.Company",
                 data={"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret,
                       "name": f"ACME {n}", "administrative_state": "ACTIVE", "diffusion_status": "DIFFUSIBLE",
                       "source_format": "sirene-json"})


async def new_topic(settings, name: str, partitions: int = 1) -> str:
    topic = f"{settings.topic_prefix}{name}-{uuid.uuid4().hex[:6]}"
    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


@pytest.fixture(scope="module")
def settings(wire_settings):  # type: ignore[no-untyped-def]
    """On the plaintext then the secure broker (the wire set: conftest.py)."""
    return wire_settings


@pytest.fixture(scope="module")
async def ctx(settings):
    context = await BusContext.connect(settings.model_copy(update={"source": "urn:siren:213105554:test"}))
    producer = generate_key("213105554", "Commune de test", valid_from=NOW - dt.timedelta(days=1))
    ledger = generate_key("130025265", "Bus ledger", valid_from=NOW - dt.timedelta(days=1), purpose="LEDGER")
    await context.publish_keys([producer, ledger])
    context.signer = producer
    context.ledger_key = ledger  # type: ignore[attr-defined]
    return context


async def checkpointed_topic(settings, ctx, count: int = 12, every: int = 4) -> tuple[str, list[Record]]:
    """A fresh topic with ``count`` signed events, checkpointed by the ledger processor."""
    topic = await new_topic(settings, "audit")
    async with Publisher(settings, ctx.wire()) as publisher:
        await publisher.publish_many([company(i) for i in range(count)], topic=topic)
    processor = LedgerProcessor(settings, ctx.ledger_key, ctx.directory, topics=[topic], reference_topics=[],
                                every_records=every, every_seconds=3600)
    published = await processor.catch_up()
    assert [c.size for c in published] == list(range(every, count + 1, every))
    return topic, await read_all(settings, topic)


async def forged_copy(settings, records: list[Record]) -> str:
    """Write ``records`` (bytes and timestamps untouched) into a new topic, in the given order."""
    topic = await new_topic(settings, "forged")
    producer = AIOKafkaProducer(**kafka_args(settings), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for r in records:
            await (await producer.send(topic, value=r.value, key=r.key, headers=list(r.headers),
                                       timestamp_ms=r.timestamp_ms))
    finally:
        await producer.stop()
    return topic


async def verify_copy(settings, ctx, copy: str, original: str):
    return await verify_topics(settings, ctx.catalog, ctx.directory, [copy], as_topic={copy: original})


def located(report) -> set[tuple[str, str, int | None, int | None]]:
    return {(f.kind, f.topic, f.partition, f.offset) for f in report.errors()}


@pytest.fixture(scope="module")
async def original(settings, ctx):
    return await checkpointed_topic(settings, ctx)


async def test_an_untouched_stream_and_a_faithful_copy_verify_clean(settings, ctx, original):
    topic, records = original
    report = await verify_topics(settings, ctx.catalog, ctx.directory, [topic])
    assert report.ok, report.findings
    assert (report.records, report.partitions, report.checkpoints) == (12, 1, 3)
    copy = await forged_copy(settings, records)
    assert (await verify_copy(settings, ctx, copy, topic)).ok


async def test_an_altered_record_is_named(settings, ctx, original):
    topic, records = original
    value = bytearray(records[6].value)
    value[-1] ^= 0x01
    copy = await forged_copy(settings, [*records[:6], dataclasses.replace(records[6], value=bytes(value)),
                                        *records[7:]])
    found = located(await verify_copy(settings, ctx, copy, topic))
    assert {("altered", copy, 0, 6), ("bad-event", copy, 0, 6), ("root-mismatch", copy, 0, 4)} == found


async def test_a_deleted_record_is_named(settings, ctx, original):
    topic, records = original
    copy = await forged_copy(settings, records[:5] + records[6:])
    found = located(await verify_copy(settings, ctx, copy, topic))
    assert found == {("deleted", copy, 0, 5), ("root-mismatch", copy, 0, 4)}


async def test_an_inserted_record_is_named(settings, ctx, original):
    topic, records = original
    async with Publisher(settings, ctx.wire()) as publisher:
        scratch = await new_topic(settings, "scratch")
        intruder = await publisher.publish(company(99), topic=scratch)
    copy = await forged_copy(settings, records[:9] + [intruder] + records[9:])
    found = located(await verify_copy(settings, ctx, copy, topic))
    assert found == {("inserted", copy, 0, 9), ("root-mismatch", copy, 0, 8)}


async def test_reordered_records_are_named(settings, ctx, original):
    topic, records = original
    copy = await forged_copy(settings, records[:2] + [records[3], records[2]] + records[4:])
    report = await verify_copy(settings, ctx, copy, topic)
    kinds = {f.kind for f in report.errors()}
    assert kinds == {"reordered", "root-mismatch"}
    assert {f.offset for f in report.errors("reordered")} <= {2, 3} and report.errors("reordered")[0].topic == copy


async def test_a_truncated_tail_is_named(settings, ctx, original):
    topic, records = original
    copy = await forged_copy(settings, records[:10])
    report = await verify_copy(settings, ctx, copy, topic)
    assert located(report) == {("truncated", copy, 0, 10)}
    assert "2 signed record(s) missing" in report.errors("truncated")[0].detail


async def test_a_conflicting_checkpoint_is_a_split_view(settings, ctx):
    topic, _records = await checkpointed_topic(settings, ctx, count=8, every=4)
    cps = [Checkpoint.from_bytes(r.value) for r in await read_all(settings, ctx.topic("ledger.checkpoints"))]
    honest = next(c for c in cps if c.log_id == f"{topic}/0" and c.size == 4)
    forged = sign(dataclasses.replace(honest.unsigned(), root=bytes(32), extensions=honest.extensions[:1]),
                  ctx.ledger_key.key_id, ctx.ledger_key.sign)
    async with Publisher(settings, ctx.wire()) as publisher:
        await publisher.send_raw(ctx.topic("ledger.checkpoints"), Record(honest.log_id.encode(), forged.to_bytes(), ()))
    report = await verify_topics(settings, ctx.catalog, ctx.directory, [topic])
    assert ("split-view", topic, 0, 3) in located(report)
    assert not report.ok


async def test_the_processor_resumes_from_its_checkpoints(settings, ctx):
    topic, _ = await checkpointed_topic(settings, ctx, count=5, every=5)
    async with Publisher(settings, ctx.wire()) as publisher:
        await publisher.publish_many([company(i) for i in range(5, 8)], topic=topic)
    again = LedgerProcessor(settings, ctx.ledger_key, ctx.directory, topics=[topic], reference_topics=[],
                            every_records=100, every_seconds=3600)
    await again.resume()
    assert again.logs[(topic, 0)].log.size == 5
    assert [c.size for c in await again.catch_up()] == [8]
    report = await verify_topics(settings, ctx.catalog, ctx.directory, [topic])
    assert report.ok and report.checkpoints == 2, report.findings


async def test_replay_filters_verifies_and_decodes(settings, ctx, original):
    topic, records = original
    query = ReplayQuery(topics=(topic,), from_offset=3, to_offset=8)
    got = [item async for item in replay(settings, ctx.wire(), query)]
    assert [g.offset for g in got] == [3, 4, 5, 6, 7, 8]
    assert all(g.ok and g.writer == "fr.dcant.reference.Company" for g in got)
    assert [g.data["name"] for g in got] == [f"ACME {i}" for i in range(3, 9)]
    none = ReplayQuery(topics=(topic,), subjects=frozenset({"company:00000000000000"}))
    assert [item async for item in replay(settings, ctx.wire(), none)] == []
    pooled = [item async for item in replay(settings, ctx.wire(), ReplayQuery(topics=(topic,)), workers=2)]
    assert [g.offset for g in pooled] == list(range(12)) and all(g.ok for g in pooled)


@pytest.fixture(scope="module")
async def forged_in_partitions(settings, ctx) -> str:
    """30 signed events over 3 partitions; the 8th has one payload bit flipped (its signature fails)."""
    sealed = [ctx.wire().seal(company(i, siret=f"420820078{i % 5:05d}")) for i in range(30)]
    value = bytearray(sealed[7].value)
    value[-1] ^= 0x01
    topic = await new_topic(settings, "pooled", partitions=3)
    producer = AIOKafkaProducer(**kafka_args(settings), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for i, r in enumerate(sealed):
            await (await producer.send(topic, value=bytes(value) if i == 7 else r.value, key=r.key,
                                       headers=list(r.headers)))
    finally:
        await producer.stop()
    return topic


async def test_helpers_read_their_own_slices_and_report_what_one_process_reports(settings, ctx, forged_in_partitions,
                                                                                  monkeypatch):
    monkeypatch.setattr(replay_module, "SLICE", 3)  # many slices: the processes share every partition
    topic = forged_in_partitions

    async def run(**options):
        stats = ReplayStats()
        got = [item async for item in replay(settings, ctx.wire(), ReplayQuery(topics=(topic,)), stats=stats,
                                             **options)]
        return got, (stats.read, stats.opened, stats.refused)

    alone, counts = await run()
    assert counts == (30, 30, 1) and [(g.partition, g.offset) for g in alone] == sorted(
        (g.partition, g.offset) for g in alone)
    [bad] = [g for g in alone if not g.ok]
    assert bad.error_class == "SignatureError" and bad.subject == "company:42082007800002"
    assert await run(workers=2) == (alone, counts)
    assert await run(workers=2, refused_only=True) == ([bad], counts)
    async with ReplayPool(settings, 1) as pool:  # one pool, several replays
        assert await run(pool=pool, refused_only=True) == ([bad], counts)
        again, _ = await run(pool=pool)
        assert again == alone

    # A helper's side alone (in a thread here), handed every slice: it reads them from Kafka itself.
    ends = {p: 1 + max(g.offset for g in alone if g.partition == p) for p in {g.partition for g in alone}}
    slices = plan_slices([(topic, p, 0, end) for p, end in ends.items()], 3)
    outcomes = await help_with(settings, slices, ReplayQuery(topics=(topic,)),
                               (ctx.catalog, ctx.directory, settings.max_event_bytes, ctx.wire().dossier_keys, False))
    assert [item for outcome in outcomes for item in outcome.items] == alone


async def test_bus_replay_verify_prints_the_refused_records_only_and_exits_1(settings, forged_in_partitions,
                                                                           tmp_path, env_of):
    env = {**os.environ, **env_of(settings), "BUS_STATE_DIR": str(tmp_path)}
    for workers in ("1", "2"):
        command = [sys.executable, "-c", "from bus.cli import main; main()", "replay", forged_in_partitions,
                   "--verify", "--workers", workers]
        out = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 1, out.stderr
        [line] = out.stdout.splitlines()
        refused = json.loads(line)
        assert (refused["verified"], refused["error_class"]) == (False, "SignatureError")
        assert "30 record(s) opened, 1 refused" in out.stderr


async def test_an_evidence_bundle_from_a_real_stream_verifies_offline(settings, ctx, original):
    from bus.ledger._evidence import collect_evidence, verify_bundle

    topic, _records = original
    bundle = await collect_evidence(settings, ctx.catalog, ctx.directory, "company:42082007800012", topics=[topic])
    report = verify_bundle(bundle)
    assert [e.offset for e in report.events] == list(range(12)) and report.checkpoints == 3
    for pos in range(0, len(bundle), max(1, len(bundle) // 150)):
        flipped = bytearray(bundle)
        flipped[pos] ^= 0x20
        with pytest.raises(BusError):
            verify_bundle(bytes(flipped))


async def test_the_verify_command_exits_0_when_clean_and_1_with_findings(settings, ctx, original, tmp_path, env_of):
    import asyncio

    import typer
    from typer.testing import CliRunner

    from bus.cli._audit import register

    topic, records = original
    value = bytearray(records[2].value)
    value[-1] ^= 0x01
    copy = await forged_copy(settings, [*records[:2], dataclasses.replace(records[2], value=bytes(value)),
                                        *records[3:]])
    app = typer.Typer()
    register(app)
    env = env_of(settings)
    runner = CliRunner()
    clean = await asyncio.to_thread(runner.invoke, app, ["verify", topic], env=env)
    assert clean.exit_code == 0, clean.output
    dirty = await asyncio.to_thread(runner.invoke, app, ["verify", copy, "--as-topic", f"{copy}={topic}", "--json"],
                                    env=env)
    assert dirty.exit_code == 1
    lines = [json.loads(line) for line in dirty.stdout.splitlines() if line.startswith("{")]
    assert {(f["kind"], f["offset"]) for f in lines} >= {("altered", 2), ("bad-event", 2)}
    out = tmp_path / "bundle.zip"
    built = await asyncio.to_thread(runner.invoke, app, ["evidence", "build", "company:42082007800012", "--out",
                                                         str(out), "--topic", topic], env=env)
    assert built.exit_code == 0, built.output
    checked = await asyncio.to_thread(runner.invoke, app, ["evidence", "verify", str(out)], env={})
    assert checked.exit_code == 0 and "verified" in checked.output
