"""The SDK against the real broker: topics, publish/consume, commits, dead letters, key directory.

The bad-input test is the wire contract's promise: records in = records handled + records
dead-lettered, and each dead-letter record keeps the original key, value and headers byte for
byte, with headers naming the error, the processor and the source offset.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from bus import BusContext, BusSettings, Event, KeyDirectory, Wire, generate_key
from bus._envelope import Envelope
from bus._topics import describe_topics, ensure_topics, topic_map
from bus._wire import Record
from bus.client import DLQ_PREFIX, Publisher, Subscriber, admin_client, read_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = dt.datetime.now(dt.UTC)


def company(siret: str, n: int = 0) -> Event:
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}",
                 schema="fr.dcant.reference.Company",
                 data={"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret,
                       "name": f"ACME {n}", "administrative_state": "ACTIVE", "diffusion_status": "DIFFUSIBLE",
                       "source_format": "sirene-json"})


@pytest.fixture(scope="module")
def settings(wire_settings):  # type: ignore[no-untyped-def]
    """This module's own topics, on the plaintext then the secure broker (the wire set: conftest.py)."""
    return wire_settings


async def signed_context(settings: BusSettings) -> BusContext:
    """A context on the cluster signing with a fresh key of the test commune (213105554), published first.

    Its events name the commune as their source: a key signs only for its own SIREN.
    """
    context = await BusContext.connect(settings.model_copy(update={"source": "urn:siren:213105554:test"}))
    key = generate_key("213105554", "Commune de test", valid_from=NOW - dt.timedelta(days=1))
    await context.publish_keys([key])
    context.signer = key
    return context


@pytest.fixture(scope="module")
async def ctx(settings):
    return await signed_context(settings)


async def test_topics_are_created_idempotently_with_their_configuration(settings, ctx):
    admin = admin_client(settings)
    await admin.start()
    try:
        specs = topic_map(settings)
        again = await ensure_topics(admin, specs.values())
        live = await describe_topics(admin, specs.values())
    finally:
        await admin.close()
    assert set(again.values()) == {"exists"}, again
    assert live[specs["reference.companies"].name]["cleanup.policy"] == "compact"
    assert live[specs["invoices"].name]["cleanup.policy"] == "delete"
    assert live[specs["invoices"].name]["retention.ms"] == "-1"
    assert live[specs["invoices"].name]["message.timestamp.type"] == "LogAppendTime"
    assert live[specs["invoices"].name]["partitions"] == "6"


async def test_catalog_topic_holds_every_shipped_schema(settings, ctx):
    records = await read_topic(settings, ctx.topic("catalog"))
    published = {r.key.decode() for r in records}
    assert {s.fingerprint.hex() for s in ctx.catalog} <= published


async def catalog_keys(settings) -> list[bytes]:
    return [r.key for r in await read_topic(settings, topic_map(settings)["catalog"].name)]


async def test_a_second_connect_publishes_no_schema_again(settings):
    own = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}it-{uuid.uuid4().hex[:8]}."})
    first = await BusContext.connect(own)
    after_first = await catalog_keys(own)
    assert sorted(after_first) == sorted(s.fingerprint.hex().encode() for s in first.catalog)
    await BusContext.connect(own)
    assert await catalog_keys(own) == after_first


async def test_connect_publishes_only_the_versions_the_catalog_topic_lacks(settings):
    own = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}it-{uuid.uuid4().hex[:8]}."})
    offline = BusContext.offline(own)
    shipped = sorted(offline.catalog, key=lambda s: s.fingerprint)
    admin = admin_client(own)
    await admin.start()
    try:
        await ensure_topics(admin, topic_map(own).values())
    finally:
        await admin.close()
    async with Publisher(own, offline.wire()) as publisher:
        for schema in shipped[::2]:  # every other version is on the topic already
            await publisher.send_raw(offline.topic("catalog"), Record(schema.fingerprint.hex().encode(),
                                                                      schema.to_catalog_record(), ()))
    await BusContext.connect(own)
    keys = await catalog_keys(own)
    assert len(keys) == len(set(keys)) == len(shipped)
    assert set(keys) == {s.fingerprint.hex().encode() for s in shipped}


async def test_key_directory_is_learnt_from_the_administrations_topic(settings, ctx):
    fresh = await BusContext.connect(settings, create_topics=False)
    assert ctx.signer.key_id in fresh.directory
    assert fresh.directory.get(ctx.signer.key_id).owner == "Commune de test"


async def test_a_forged_key_record_is_rejected(settings, ctx):
    honest = generate_key("200000001", "Honest", valid_from=NOW - dt.timedelta(days=1))
    forged_public = dataclasses.replace(honest.public, owner="Forged owner")  # proof no longer matches
    wire = Wire(ctx.catalog, KeyDirectory([honest.public]), honest)
    event = dataclasses.replace(ctx.key_event(honest), data=forged_public.to_record())
    async with Publisher(settings, wire) as publisher:
        await publisher.publish(event, topic="reference.administrations")
    fresh = await BusContext.connect(settings, create_topics=False)
    assert honest.key_id not in fresh.directory
    assert fresh.rejected_keys >= 1


async def test_publish_consume_keeps_order_per_dossier_and_commits(settings, ctx):
    group = f"g-{uuid.uuid4().hex[:6]}"
    sirets = ["42082007800012", "32082007800013"]
    events = [company(sirets[i % 2], i) for i in range(20)]
    async with Publisher(settings, ctx.wire()) as publisher:
        stored = await publisher.publish_many(events, topic="reference.companies")
    assert all(r.offset is not None for r in stored)
    seen: list[tuple[str, str]] = []

    async def handler(received):
        seen.append((received.subject, received.data["name"]))

    async with Subscriber(settings, ctx.wire(), ["reference.companies"], handler, processor="it", group=group) as sub:
        await sub.run(until=lambda: len(seen) >= 20)
    for siret in sirets:
        names = [n for s, n in seen if s == f"company:{siret}"]
        assert names == sorted(names, key=lambda n: int(n.split()[1]))
        assert len(names) == 10
    # Committed: the same group starts after them.
    more: list[object] = []
    async with Publisher(settings, ctx.wire()) as publisher:
        await publisher.publish(company(sirets[0], 99), topic="reference.companies")
    async with Subscriber(settings, ctx.wire(), ["reference.companies"], lambda r: _append(more, r),
                          processor="it", group=group) as sub:
        await sub.run(until=lambda: len(more) >= 1)
    assert [r.data["name"] for r in more] == ["ACME 99"]


async def new_topic(settings, name: str, partitions: int = 1) -> str:
    """A scratch topic for one test (the broker does not auto-create topics)."""
    from aiokafka.admin import NewTopic

    topic = f"{settings.topic_prefix}{name}-{uuid.uuid4().hex[:6]}"
    admin = admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


async def _append(into: list, item) -> None:  # type: ignore[type-arg]
    into.append(item)


async def test_a_crashing_handler_gets_the_record_again(settings, ctx):
    group = f"g-{uuid.uuid4().hex[:6]}"
    topic = await new_topic(settings, "crash")
    async with Publisher(settings, ctx.wire()) as publisher:
        await publisher.publish_many([company("42082007800012", i) for i in range(3)], topic=topic)
    handled: list[str] = []

    async def flaky(received):
        if received.data["name"] == "ACME 1" and "crashed" not in handled:
            handled.append("crashed")
            raise RuntimeError("bug in the handler")
        handled.append(received.data["name"])

    with pytest.raises(RuntimeError):
        async with Subscriber(settings, ctx.wire(), [topic], flaky, processor="it", group=group) as sub:
            await sub.run(until=lambda: False)
    assert handled == ["ACME 0", "crashed"]
    async with Subscriber(settings, ctx.wire(), [topic], flaky, processor="it", group=group) as sub:
        await sub.run(until=lambda: len(handled) >= 4)
    assert handled == ["ACME 0", "crashed", "ACME 1", "ACME 2"]


def _bad_records(ctx: BusContext, good: Record) -> dict[str, tuple[Record, str]]:
    """Every kind of bad input of the wire contract, with the error class it must produce."""
    headers = dict(good.headers)
    env = Envelope.from_headers(good.headers)
    key = ctx.signer

    def resign(envelope: Envelope, payload: bytes, signer=key) -> Record:
        signed = envelope.with_signature(signer.sign(envelope.signing_bytes(payload)))
        return Record(envelope.subject.encode(), payload, tuple(signed.to_headers()))

    def with_header(name: str, value: bytes | None) -> Record:
        kept = tuple((k, value if k == name else v) for k, v in good.headers if not (k == name and value is None))
        return Record(good.key, good.value, kept)

    altered = bytearray(good.value)
    altered[-1] ^= 0xFF
    stranger = generate_key("999999999", "Stranger", valid_from=NOW - dt.timedelta(days=1))
    retired = generate_key("213105554", "Commune de test", valid_from=NOW - dt.timedelta(days=10))
    ctx.directory.add(retired.retire(NOW - dt.timedelta(hours=1)).public)
    return {
        "not-avro": (resign(env, b"<xml>not avro</xml>"), "PayloadDecodeError"),
        "unknown-fingerprint": (resign(dataclasses.replace(env, dataschema="urn:avro:x:v1:crc64:" + "ab" * 8),
                                       b"\xc3\x01" + b"\xab" * 8 + b"\x00"), "UnknownSchemaError"),
        "missing-header": (with_header("ce_type", None), "EnvelopeError"),
        "malformed-header": (with_header("ce_time", b"last tuesday"), "EnvelopeError"),
        "payload-altered": (Record(good.key, bytes(altered), good.headers), "SignatureError"),
        "header-altered": (with_header("ce_source", headers["ce_source"] + b"x"), "SignatureError"),
        "unknown-key": (resign(dataclasses.replace(env, sigkeyid=stranger.key_id), good.value, stranger),
                        "UnknownKeyError"),
        "retired-key": (resign(dataclasses.replace(env, sigkeyid=retired.key_id, id=str(uuid.uuid4())), good.value,
                               retired), "KeyNotValidError"),
        "oversized": (resign(env, good.value + b"\x00" * (300 * 1024)), "RecordTooLargeError"),
    }


async def test_bad_input_is_dead_lettered_with_its_original_bytes(settings, ctx):
    topic = await new_topic(settings, "bad")
    wire = ctx.wire()
    good = [wire.seal(company("42082007800012", i)) for i in range(3)]
    bad = _bad_records(ctx, good[0])
    sent: dict[int, tuple[str, Record]] = {}
    async with Publisher(settings, wire) as publisher:
        for record in good:
            stored = await publisher.send_raw(topic, record)
            sent[stored.offset] = ("good", record)
        for kind, (record, _expected) in bad.items():
            stored = await publisher.send_raw(topic, record)
            sent[stored.offset] = (kind, record)
    dlq_before = len(await read_topic(settings, ctx.topic("deadletter")))
    handled: list[str] = []

    async def handler(received):
        handled.append(received.id)

    async with Subscriber(settings, wire, [topic], handler, processor="it-bad-input",
                          group=f"g-{uuid.uuid4().hex[:6]}") as sub:
        await sub.run(until=lambda: sub.stats["handled"] + sub.stats["dead_lettered"] >= len(sent))
        assert sub.stats["handled"] == len(good)
        assert sub.stats["dead_lettered"] == len(bad)
    dead = (await read_topic(settings, ctx.topic("deadletter")))[dlq_before:]
    dead = [r for r in dead if dict(r.headers).get(f"{DLQ_PREFIX}source_topic") == topic.encode()]
    assert len(handled) + len(dead) == len(sent)  # nothing lost
    by_offset = {int(dict(r.headers)[f"{DLQ_PREFIX}source_offset"]): r for r in dead}
    for offset, (kind, original) in sent.items():
        if kind == "good":
            assert offset not in by_offset
            continue
        record = by_offset[offset]
        info = {k[len(DLQ_PREFIX):]: v.decode() for k, v in record.headers if k.startswith(DLQ_PREFIX)}
        assert info["error_class"] == bad[kind][1], kind
        assert info["processor"] == "it-bad-input"
        assert info["source_partition"].isdigit()
        assert info["error_hint"], kind
        assert record.key == original.key and record.value == original.value, kind
        assert tuple(h for h in record.headers if not h[0].startswith(DLQ_PREFIX)) == original.headers, kind


async def test_a_redelivered_event_is_handled_once_and_not_dead_lettered(settings, ctx):
    topic = await new_topic(settings, "dup")
    wire = ctx.wire()
    first, second = wire.seal(company("42082007800012", 1)), wire.seal(company("42082007800013", 2))
    async with Publisher(settings, wire) as publisher:
        for record in (first, second, first):  # the same bytes, ce_id included, a second time
            await publisher.send_raw(topic, record)
    handled: list[str] = []

    async def handler(received):
        handled.append(received.id)

    async with Subscriber(settings, wire, [topic], handler, processor="it-dup",
                          group=f"g-{uuid.uuid4().hex[:6]}") as sub:
        await sub.run(until=lambda: sub.stats["handled"] + sub.stats["duplicates"] >= 3)
        assert sub.stats["dead_lettered"] == 0
    assert sorted(handled) == sorted({dict(first.headers)["ce_id"].decode(), dict(second.headers)["ce_id"].decode()})
    assert sub.stats["duplicates"] == 1
