"""The trust anchor on the real broker: a verifier that learns the directory from its topic refuses what it must.

One registration authority, one approved commune key, a key self-registered for the same SIREN
a year back-dated, a key revoked from a date, and an approval signed by an authority key of
the attacker's own. The events they sign sit on a real topic; a fresh context (what a worker,
``bus verify`` or replay starts from) refuses each with its own error class, as do replay and
a subscriber (the workers' per-record step, which dead-letters them), and reading never
changes a byte of what is on the bus. In the wire set: on the plaintext broker, then on the
secure one over mutual TLS.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from bus import BusContext, Event, Wire, generate_key
from bus._authority import Authority, AuthorityKey, fingerprint
from bus._directory import approval_event, approval_for, authority_event
from bus._errors import ForgedApprovalError, RevokedKeyError, UnapprovedKeyError
from bus._registration import approve, revoke
from bus.client import DLQ_PREFIX, Publisher, Subscriber
from bus.ledger._replay import ReplayQuery, read_all, replay
from bus.ledger._verify import verify_topics

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = dt.datetime.now(dt.UTC)
SIREN = "213105554"


def company(n: int, at: dt.datetime) -> Event:
    siret = "42082007800012"
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}",
                 schema="fr.dcant.reference.Company", time=at,
                 data={"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret,
                       "name": f"ACME {n}", "administrative_state": "ACTIVE", "diffusion_status": "DIFFUSIBLE",
                       "source_format": "sirene-json"})


@pytest.fixture(scope="module")
def settings(wire_settings):  # type: ignore[no-untyped-def]
    """On the plaintext then the secure broker (the wire set: conftest.py)."""
    return wire_settings


@pytest.fixture(scope="module")
async def world(settings, tmp_path_factory):
    state = tmp_path_factory.mktemp("trust")
    authority = Authority(state / "ra")
    ra = authority.create(NOW - dt.timedelta(days=2))
    authority.save(ra)
    s = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}trust-{uuid.uuid4().hex[:6]}.", "state_dir": state,
                                    "trust_anchor": fingerprint(ra.public.public_der)})
    ctx = await BusContext.connect(s)
    await ctx.publish_directory([authority_event(AuthorityKey(ra.key_id, ra.public.public_der, ra.public.valid_from),
                                                 NOW)], ra)
    day = dt.timedelta(days=1)
    honest = generate_key(SIREN, "Commune", valid_from=NOW - day)
    pirate = generate_key(SIREN, "Commune (pirate)", valid_from=NOW - 365 * day)
    revoked = generate_key(SIREN, "Commune (stolen laptop)", valid_from=NOW - day)
    lured = generate_key(SIREN, "Commune (fake approval)", valid_from=NOW - day)
    await ctx.publish_keys([honest, pirate, revoked, lured])
    for key in (honest, revoked):
        await approve(ctx, authority, key.key_id, at=NOW, companies=None)
    fake_ra = Authority(state / "fake").create(NOW - day)
    fake = approval_for(lured.public, purposes=("EVENTS",), valid_from=None, valid_until=None,
                        legal_category="7210", at=NOW)
    await ctx.publish_directory([approval_event(fake)], fake_ra)  # refused as it is folded (warning)
    topic = ctx.topic("acts")
    later = NOW + dt.timedelta(minutes=30)
    signed = [(honest, NOW), (pirate, NOW), (revoked, NOW), (lured, NOW)]
    for key, at in signed:
        async with Publisher(s, Wire(ctx.catalog, ctx.directory, key, source=f"urn:siren:{SIREN}:test")) as pub:
            await pub.publish(company(len(key.key_id), at), topic=topic)
    await revoke(ctx, authority, revoked.key_id, reason="laptop stolen", at=NOW, revoked_from=later)
    async with Publisher(s, Wire(ctx.catalog, ctx.directory, revoked, source=f"urn:siren:{SIREN}:test")) as pub:
        await pub.publish(company(99, later + dt.timedelta(minutes=1)), topic=topic)
    return s, topic, {"honest": honest, "pirate": pirate, "revoked": revoked, "lured": lured}


async def test_a_fresh_verifier_refuses_each_untrusted_key_with_its_class(world):
    s, topic, keys = world
    verifier = await BusContext.connect(s, create_topics=False)  # learns the directory from the topic
    before = await read_all(s, topic)
    wire = verifier.wire()
    outcome = {}
    for record in before:
        sigkeyid = dict(record.headers)["ce_sigkeyid"].decode()
        try:
            wire.open(record)
            outcome.setdefault(sigkeyid, []).append("ok")
        except Exception as err:  # noqa: BLE001 - the class is what the test asserts
            outcome.setdefault(sigkeyid, []).append(type(err).__name__)
    assert outcome[keys["honest"].key_id] == ["ok"]
    assert outcome[keys["pirate"].key_id] == [UnapprovedKeyError.__name__]
    assert outcome[keys["lured"].key_id] == [ForgedApprovalError.__name__]
    # Signed before the revocation date: still valid; after it: refused.
    assert outcome[keys["revoked"].key_id] == ["ok", RevokedKeyError.__name__]
    assert verifier.rejected_keys == 1  # the approval by the attacker's authority key
    assert await read_all(s, topic) == before  # refusing changes nothing on the bus


async def test_bus_verify_names_the_untrusted_records_and_the_directory_verifies(world):
    s, topic, keys = world
    verifier = await BusContext.connect(s, create_topics=False)
    report = await verify_topics(s, verifier.catalog, verifier.directory, [topic])
    bad = sorted(f.detail.split(":")[0] for f in report.errors() if f.kind == "bad-event")
    assert bad == sorted([UnapprovedKeyError.__name__, ForgedApprovalError.__name__, RevokedKeyError.__name__])
    directory_topic = verifier.topic("reference.administrations")
    report = await verify_topics(s, verifier.catalog, verifier.directory, [directory_topic])
    refused = [f.detail for f in report.errors() if f.kind == "bad-event"]
    # On the directory itself: the pirate's self-signed registration (never approved), the
    # lured key's registration (its only approval is forged) and that forged approval.
    assert len(refused) == 3, refused
    assert all(d.startswith(("UnapprovedKeyError", "ForgedApprovalError")) for d in refused), refused


async def test_bus_keys_show_at_a_date_lists_the_keys_that_could_sign_then(world, env_of):
    import asyncio

    from typer.testing import CliRunner

    from bus.cli import app

    s, _topic, keys = world
    env = {**env_of(s), "COLUMNS": "300"}

    def show(at: dt.datetime) -> set[str]:
        out = CliRunner().invoke(app, ["keys", "show", SIREN, "--at", at.isoformat()], env=env)
        assert out.exit_code == 0, out.output
        return {name for name, key in keys.items() if key.key_id in out.output}

    assert await asyncio.to_thread(show, NOW) == {"honest", "revoked"}
    assert await asyncio.to_thread(show, NOW + dt.timedelta(hours=1)) == {"honest"}  # after the revocation


async def test_keys_valid_at_a_date_from_the_topic(world):
    s, _topic, keys = world
    verifier = await BusContext.connect(s, create_topics=False)
    now = [k.key_id for k in verifier.directory.valid_keys(SIREN, NOW)]
    assert sorted(now) == sorted([keys["honest"].key_id, keys["revoked"].key_id])
    later = [k.key_id for k in verifier.directory.valid_keys(SIREN, NOW + dt.timedelta(hours=1))]
    assert later == [keys["honest"].key_id]


async def test_replay_and_a_subscriber_refuse_the_same_records_and_the_subscriber_dead_letters_them(world):
    s, topic, _keys = world
    verifier = await BusContext.connect(s, create_topics=False)
    before = await read_all(s, topic)
    untrusted = sorted([UnapprovedKeyError.__name__, ForgedApprovalError.__name__, RevokedKeyError.__name__])

    refused = [g async for g in replay(s, verifier.wire(), ReplayQuery(topics=(topic,)), refused_only=True)]
    handled: list[str] = []

    async def handler(received):  # type: ignore[no-untyped-def]
        handled.append(received.id)

    async with Subscriber(s, verifier.wire(), [topic], handler, processor="it-trust",
                          group=f"g-{uuid.uuid4().hex[:6]}") as sub:
        await sub.run(until=lambda: sub.stats["handled"] + sub.stats["dead_lettered"] >= len(before))

    assert sorted(g.error_class for g in refused) == untrusted
    assert (len(handled), sub.stats["dead_lettered"]) == (len(before) - 3, 3)
    dead = [dict(r.headers) for r in await read_all(s, verifier.topic("deadletter"))]
    assert sorted(h[f"{DLQ_PREFIX}error_class"].decode() for h in dead
                  if h.get(f"{DLQ_PREFIX}source_topic") == topic.encode()) == untrusted
    assert await read_all(s, topic) == before  # refusing changes nothing on the bus
