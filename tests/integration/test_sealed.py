"""Addressed, encrypted events on the real broker (issue 12): a recipient reads, others pass, an auditor verifies.

A Publisher sends events encrypted to two administrations. A Subscriber holding one recipient's
decryption key handles them decrypted; one holding no key skips them unread (they are not for it:
neither retried nor dead-lettered, issue 12 item 3). ``verify_topics`` with no key at all (an
auditor) finds every record verified.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from bus import BusContext, DecryptionKeyring, Event, Wire, generate_encryption_key
from bus.client import Publisher, Subscriber, read_topic
from bus.ledger._verify import verify_topics

from tests.integration.test_client import company, new_topic, signed_context

pytestmark = pytest.mark.asyncio(loop_scope="session")

PREFECTURE, DGFIP, OTHER = "130006000", "130004005", "220200010"


@pytest.fixture(scope="module")
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"topic_prefix": f"sealed-{uuid.uuid4().hex[:8]}."})


@pytest.fixture(scope="module")
async def ctx(settings):
    return await signed_context(settings)


@pytest.fixture(scope="module")
def enc():
    return {PREFECTURE: generate_encryption_key(PREFECTURE),
            DGFIP: generate_encryption_key(DGFIP, suite="MLKEM768_X25519"), OTHER: generate_encryption_key(OTHER)}


def addressed(n: int) -> Event:
    return dataclasses.replace(company("42082007800012", n), recipients=(PREFECTURE, DGFIP))


async def _sent(settings, ctx, enc) -> tuple[str, list]:
    topic = await new_topic(settings, "sealed")
    wire = ctx.wire()
    wire.encryption_keys = {s: k.public for s, k in enc.items()}
    records = [wire.seal(addressed(i)) for i in range(3)]
    async with Publisher(settings, wire) as publisher:
        for record in records:
            await publisher.send_raw(topic, record)
    return topic, records


async def _consume(settings, ctx, topic: str, reader: Wire, name: str):
    handled = []

    async def handler(received):
        handled.append(received)

    async with Subscriber(settings, reader, [topic], handler, processor=name,
                          group=f"g-{uuid.uuid4().hex[:6]}") as sub:
        await sub.run(until=lambda: sub.stats["handled"] + sub.stats["skipped"] + sub.stats["dead_lettered"] >= 3)
    return sub.stats, handled


async def test_a_recipient_reads_a_non_recipient_passes_and_an_auditor_verifies(settings, ctx, enc):
    topic, records = await _sent(settings, ctx, enc)
    stored = await read_topic(settings, topic)
    assert [r.value for r in stored] == [r.value for r in records]
    assert all(b"ACME" not in r.value for r in stored)
    dlq_before = len(await read_topic(settings, ctx.topic("deadletter")))

    recipient = Wire(ctx.catalog, ctx.directory, None, decryption=DecryptionKeyring([enc[DGFIP]]))
    stats, handled = await _consume(settings, ctx, topic, recipient, "it-sealed-dgfip")
    assert stats["handled"] == 3 and stats["dead_lettered"] == 0
    assert [r.data["name"] for r in handled] == ["ACME 0", "ACME 1", "ACME 2"]

    stranger = Wire(ctx.catalog, ctx.directory, None, decryption=DecryptionKeyring([enc[OTHER]]))
    stats, handled = await _consume(settings, ctx, topic, stranger, "it-sealed-other")
    assert stats["skipped"] == 3 and not handled and stats["dead_lettered"] == 0
    dead = (await read_topic(settings, ctx.topic("deadletter")))[dlq_before:]
    assert not [r for r in dead if dict(r.headers).get("dlq_source_topic") == topic.encode()]

    report = await verify_topics(settings, ctx.catalog, ctx.directory, [topic])  # no decryption key at all
    assert report.records == 3
    assert not [f for f in report.findings if f.kind == "bad-event"], report.findings


async def test_bus_tail_decrypts_for_a_recipient_and_shows_the_envelope_to_others(settings, tmp_path_factory):
    """``bus keys encryption`` publishes the key; ``bus tail`` reads with it, or without it shows the envelope."""
    import json
    import os
    from pathlib import Path

    from bus import BusSettings

    from tests.integration.test_cli import bus

    env = {**os.environ, "BUS_BOOTSTRAP_SERVERS": settings.bootstrap, "BUS_TOPIC_PREFIX": f"cli-{uuid.uuid4().hex[:6]}.",
           "BUS_STATE_DIR": str(tmp_path_factory.mktemp("sealed-recipient")), "BUS_SOURCE": "urn:siren:213105554:test",
           "COLUMNS": "200"}
    bus(env, "keys", "generate", "213105554")
    bus(env, "keys", "generate", OTHER)
    out = bus(env, "keys", "encryption", OTHER, "--suite", "MLKEM768_X25519")
    assert f"{OTHER}:enc:" in out.stdout

    async def publish() -> None:
        s = BusSettings(bootstrap_servers=env["BUS_BOOTSTRAP_SERVERS"], topic_prefix=env["BUS_TOPIC_PREFIX"],
                        state_dir=Path(env["BUS_STATE_DIR"]), source=env["BUS_SOURCE"])
        ctx = await BusContext.connect(s)
        async with Publisher(s, ctx.wire()) as publisher:
            await publisher.publish(dataclasses.replace(company("42082007800012", 7), recipients=(OTHER,)))

    await publish()
    read = [json.loads(line) for line in bus(env, "tail", "reference.companies").stdout.splitlines()]
    assert [e["data"]["name"] for e in read] == ["ACME 7"]
    stranger = {**env, "BUS_STATE_DIR": str(tmp_path_factory.mktemp("sealed-stranger"))}
    shown = bus(stranger, "tail", "reference.companies")
    (event,) = [json.loads(line) for line in shown.stdout.splitlines()]
    assert event["data"] == "not a recipient" and event["recipients"] == [OTHER]
    assert event["subject"] == "company:42082007800012" and event["signed_by"].startswith("213105554:")
    assert "ACME" not in shown.stdout + shown.stderr


async def test_a_replay_helper_decrypts_with_the_key_store_its_parent_reads(settings, tmp_path_factory):
    """Issue 12 item 6: the helper processes of ``replay(workers=N)`` decrypt what their parent's wire decrypts.

    The helper's side alone (in a thread, as in test_audit), handed every slice of a topic of addressed events:
    its outcomes carry the decrypted payloads, read with the keys of the settings' key store.
    """
    from bus._runtime import encryption_key_store
    from bus.ledger import ReplayQuery
    from bus.ledger._pool import plan_slices

    from tests.integration.replay_support import help_with

    own = settings.model_copy(update={"state_dir": tmp_path_factory.mktemp("sealed-replay")})
    ctx = await signed_context(own)
    key = generate_encryption_key(OTHER)
    encryption_key_store(own).save(key)
    topic = await new_topic(own, "replayed")
    wire = ctx.wire()
    wire.encryption_keys = {OTHER: key.public}
    async with Publisher(own, wire) as publisher:
        await publisher.publish_many([dataclasses.replace(company("42082007800012", i), recipients=(OTHER,))
                                      for i in range(6)], topic=topic)

    outcomes = await help_with(own, plan_slices([(topic, 0, 0, 6)], 2), ReplayQuery(topics=(topic,)),
                               (ctx.catalog, ctx.directory, own.max_event_bytes, wire.dossier_keys, True))
    opened = [item for outcome in outcomes for item in outcome.items]
    assert [item.data["name"] for item in opened] == [f"ACME {i}" for i in range(6)]
    assert all(item.ok for item in opened)
