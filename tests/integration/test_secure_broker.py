"""The secure broker (``bus broker start --secure``): mutual TLS, SCRAM over TLS, the StandardAuthorizer.

Every test runs against the session's second, secure embedded broker (``secure_broker`` fixture)
with its own certificate authority. Refusals come from that real broker; each must surface as the
bus's typed error naming the setting to check, and leave what is on the bus as it was.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import subprocess
import sys
import time
import uuid

import pytest
from aiokafka.admin import NewTopic

from bus import (AuthenticationError, AuthorizationError, BrokerError, EmbeddedBroker, Event, KeyDirectory, Wire,
                 default_catalog, generate_key, wait_until_ready)
from bus._admin import Acl, create_acls, set_scram_password
from bus._quotas import alter_quotas
from bus._pki import CertificateAuthority
from bus._settings import BusSettings
from bus.client import Publisher, Subscriber, admin_client, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

NOW = dt.datetime.now(dt.UTC)
KEY = generate_key("219990017", "Commune de Saint-Exemple", valid_from=NOW - dt.timedelta(days=1))


def company(n: int, name: str = "ACME") -> Event:
    siret = f"21999001700{n:03d}"
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}",
                 schema="fr.dcant.reference.Company",
                 data={"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret,
                       "name": f"{name} {n}", "administrative_state": "ACTIVE", "diffusion_status": "DIFFUSIBLE",
                       "source_format": "sirene-json"})


def wire() -> Wire:
    return Wire(default_catalog(), KeyDirectory([KEY.public]), KEY)


async def new_topic(operator: BusSettings, *, readers: tuple[str, ...] = (), writers: tuple[str, ...] = ()) -> str:
    """A fresh topic created by the operator, with READ/WRITE ACLs for the given principals."""
    name = f"secure-{uuid.uuid4().hex[:10]}"
    admin = admin_client(operator)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    acls = [Acl(p, "WRITE", "topic", name) for p in writers] + [Acl(p, op, "topic", name)
                                                                 for p in readers for op in ("READ", "DESCRIBE")]
    create_acls(operator, acls)
    return name


async def publish(settings: BusSettings, topic: str, *events: Event) -> None:
    async with Publisher(settings, wire()) as publisher:
        await publisher.publish_many(events, topic=topic)


@pytest.fixture(scope="module")
def operator(secure_broker):
    return secure_broker.client("operator")


async def test_an_authorised_tenant_publishes_and_reads_over_mutual_tls(secure_broker, operator):
    tenant = secure_broker.client("219990017")
    topic = await new_topic(operator, readers=("User:219990017",), writers=("User:219990017",))

    await publish(tenant, topic, company(1), company(2))

    records = await read_topic(tenant, topic)
    assert [wire().open(r).envelope.subject for r in records] == ["company:21999001700001", "company:21999001700002"]


@pytest.mark.parametrize("case", ["no certificate", "expired", "foreign CA"])
async def test_a_client_the_broker_does_not_trust_is_refused_with_the_setting_to_check(
        secure_broker, operator, tmp_path, case):
    topic = await new_topic(operator, writers=("User:219990017",))
    await publish(operator, topic, company(1))
    if case == "no certificate":
        client = secure_broker.client(None)
        expected = "requires a client certificate"
    elif case == "expired":
        issued = secure_broker.ca.issue("219990017", tmp_path, days=1, not_before=NOW - dt.timedelta(days=3),
                                        passphrase=secure_broker.PASSPHRASE.encode())
        client = secure_broker.client("219990017", certfile=issued.certfile, keyfile=issued.keyfile)
        expected = "expired on"
    else:
        foreign = CertificateAuthority.init(tmp_path / "foreign", site="elsewhere")
        issued = foreign.issue("219990017", tmp_path / "out")
        client = secure_broker.client("219990017", certfile=issued.certfile, keyfile=issued.keyfile)
        expected = "not by the site's authority"

    with pytest.raises(AuthenticationError) as caught:
        await publish(client, topic, company(2))

    line = str(caught.value)
    assert expected in line and "BUS_SSL_CERTFILE" in line and "\n" not in line
    assert len(await read_topic(operator, topic)) == 1  # only the operator's record


async def test_a_principal_without_an_acl_for_the_topic_is_refused_and_the_topic_is_unchanged(
        secure_broker, operator):
    mine = await new_topic(operator, writers=("User:219990017",))
    theirs = await new_topic(operator, writers=("User:219990018",))
    await publish(secure_broker.client("219990018"), theirs, company(7))
    before = await read_topic(operator, theirs)

    with pytest.raises(AuthorizationError) as caught:
        await publish(secure_broker.client("219990017"), theirs, company(8))

    assert "User:219990017" in str(caught.value) and theirs in str(caught.value)
    assert await read_topic(operator, theirs) == before
    assert await read_topic(operator, mine) == []


async def test_a_tenant_over_its_produce_quota_is_throttled_and_nothing_on_the_bus_changes(
        secure_broker, operator, caplog):
    greedy = "219990099"  # a tenant of its own: the quota stays on it for the session
    topic = await new_topic(operator, writers=("User:219990017", f"User:{greedy}"))
    await publish(secure_broker.client("219990017"), topic, company(1), company(2))
    before = await read_topic(operator, topic)
    alter_quotas(operator, greedy, {"producer_byte_rate": 1024})  # bytes per second
    sent = 0
    deadline = time.monotonic() + 120  # the broker applies the quota from its metadata log, soon

    with caplog.at_level(logging.WARNING, logger="bus.client"):
        async with Publisher(secure_broker.client(greedy), wire()) as publisher:
            while not publisher.throttled_ms:
                assert time.monotonic() < deadline, "the broker never throttled the tenant over its quota"
                await publisher.publish_many([company(sent + i, "ACME" + "-" * 1000) for i in range(8)], topic=topic)
                sent += 8

    throttled = [r.getMessage() for r in caplog.records if "produce quota is exceeded" in r.getMessage()]
    assert throttled and f"User:{greedy}" in throttled[0] and "\n" not in throttled[0]
    after = await read_topic(operator, topic)
    assert after[:len(before)] == before  # what was on the bus is as it was
    assert len(after) == len(before) + sent  # and the throttled tenant's records are delayed, not lost


async def test_a_tenant_over_its_fetch_quota_is_throttled_and_still_reads_every_record(
        secure_broker, operator, caplog):
    reader = "219990098"  # a tenant of its own: the quota stays on it for the session
    group = f"quota-{uuid.uuid4().hex[:8]}"
    topic = await new_topic(operator, readers=(f"User:{reader}",))
    sent = [company(i, "ACME" + "-" * 2000) for i in range(40)]  # ~85 KB: many seconds at 4 KiB/s
    async with Publisher(operator, wire()) as publisher:
        for event in sent:  # one record batch each: a fetch answer holds at least one whole batch
            await publisher.publish(event, topic=topic)
    before = await read_topic(operator, topic)
    create_acls(operator, [Acl(f"User:{reader}", "READ", "group", group)])
    # 4 KiB/s; each fetch asks for 8 KiB at most (a fetch answer larger than the quota allows over its
    # 11 s window is never served: the broker answers it empty and throttled, again and again)
    alter_quotas(operator, reader, {"consumer_byte_rate": 4096})
    seen: list[str] = []

    async def handler(received) -> None:  # type: ignore[no-untyped-def]
        seen.append(received.subject)

    with caplog.at_level(logging.WARNING, logger="bus.client"):
        async with Publisher(operator, wire()) as dead_letter, Subscriber(
                secure_broker.client(reader, fetch_max_bytes=8192), wire(), [topic], handler,
                processor="it-fetch-quota", group=group,
                dead_letter=dead_letter) as subscriber:
            try:
                await asyncio.wait_for(subscriber.run(until=lambda: len(seen) >= len(sent)), 90)
            except TimeoutError:
                pytest.fail(f"read {len(seen)} of {len(sent)}; stats {dict(subscriber.stats)}, "
                            f"throttled {subscriber.throttled_ms} ms")

    assert subscriber.throttled_ms > 0, "the broker never throttled the tenant over its fetch quota"
    throttled = [r.getMessage() for r in caplog.records if "fetch quota is exceeded" in r.getMessage()]
    assert throttled and f"User:{reader}" in throttled[0] and "\n" not in throttled[0]
    assert seen == [e.subject for e in sent]  # delayed, in order, none lost
    assert await read_topic(operator, topic) == before


async def test_scram_over_tls_with_the_right_password_works_and_a_wrong_one_is_refused(secure_broker, operator):
    user = f"svc-{uuid.uuid4().hex[:8]}"
    set_scram_password(operator, user, "correct horse battery staple")
    topic = await new_topic(operator, readers=(f"User:{user}",), writers=(f"User:{user}",))

    await publish(secure_broker.scram_client(user, "correct horse battery staple"), topic, company(3))
    assert len(await read_topic(operator, topic)) == 1

    with pytest.raises(AuthenticationError) as caught:
        await publish(secure_broker.scram_client(user, "wrong password"), topic, company(4))
    assert "BUS_SASL_PASSWORD" in str(caught.value)
    assert len(await read_topic(operator, topic)) == 1


async def test_the_command_line_reports_a_refused_handshake_in_one_line(secure_broker):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUS_")}
    env |= {"BUS_BOOTSTRAP_SERVERS": secure_broker.broker.bootstrap, "BUS_SECURITY_PROTOCOL": "SSL",
            "BUS_SSL_CAFILE": str(secure_broker.ca.cafile), "BUS_STATE_DIR": str(secure_broker.certs.parent / "cli")}
    out = subprocess.run([sys.executable, "-c", "from bus.cli import main; main()", "topics"],
                         capture_output=True, text=True, env=env, timeout=120)

    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "BUS_SSL_CERTFILE" in out.stderr, out.stderr


async def test_starting_plain_over_the_running_secure_broker_is_refused_and_leaves_it_running(secure_broker):
    plain = EmbeddedBroker(secure_broker.broker.settings.model_copy(update={"broker_secure": False}))

    with pytest.raises(BrokerError, match="a secure broker of this state directory runs already"):
        plain.start(timeout=10)
    assert secure_broker.broker.status().running


async def test_the_readiness_probe_reports_a_refused_certificate_at_once(secure_broker):
    with pytest.raises(AuthenticationError, match="requires a client certificate"):
        wait_until_ready(secure_broker.broker.bootstrap, 600, settings=secure_broker.client(None))


async def test_the_command_line_works_as_the_operator_over_mutual_tls(secure_broker):
    operator = secure_broker.client("operator")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUS_")}
    env |= {"BUS_BOOTSTRAP_SERVERS": operator.bootstrap, "BUS_SECURITY_PROTOCOL": "SSL",
            "BUS_SSL_CAFILE": str(operator.ssl_cafile), "BUS_SSL_CERTFILE": str(operator.ssl_certfile),
            "BUS_SSL_KEYFILE": str(operator.ssl_keyfile), "BUS_SSL_KEY_PASSWORD": secure_broker.PASSPHRASE,
            "BUS_TOPIC_PREFIX": operator.topic_prefix, "BUS_STATE_DIR": str(operator.state_dir), "COLUMNS": "300"}
    for command in (["broker", "status"], ["topics"]):
        out = subprocess.run([sys.executable, "-c", "from bus.cli import main; main()", *command],
                             capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
    assert f"{operator.topic_prefix}dcant.invoices" in out.stdout
