"""``bus acl plan|apply`` on the secure broker: the policy from a small directory, applied, then enforced.

Each test has its own topic prefix on the session's secure broker, hence its own namespace of
topics and groups: plan and apply look at nothing else.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from bus import AuthorizationError, Event, KeyDirectory, Wire, default_catalog, generate_key
from bus._acl import bus_directory, plan
from bus._admin import Acl, create_acls, describe_acls
from bus._quotas import MIB, describe_quotas
from bus._runtime import BusContext
from bus._settings import BusSettings
from bus.client import Publisher, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

NOW = dt.datetime.now(dt.UTC)
COMMUNE, SUPPLIER = "219990017", "800000011"  # a public body (starts with 2) and a company


def event(siren: str, n: int) -> Event:
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siren}{n:05d}",
                 schema="fr.dcant.reference.Company",
                 data={"kind": "ESTABLISHMENT", "siren": siren, "nic": f"{n:05d}", "siret": f"{siren}{n:05d}",
                       "name": f"ACME {n}", "administrative_state": "ACTIVE", "diffusion_status": "DIFFUSIBLE",
                       "source_format": "sirene-json"})


def cli(operator: BusSettings, passphrase: str, *command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUS_")}
    env |= {"BUS_BOOTSTRAP_SERVERS": operator.bootstrap, "BUS_SECURITY_PROTOCOL": "SSL",
            "BUS_SSL_CAFILE": str(operator.ssl_cafile), "BUS_SSL_CERTFILE": str(operator.ssl_certfile),
            "BUS_SSL_KEYFILE": str(operator.ssl_keyfile), "BUS_SSL_KEY_PASSWORD": passphrase,
            "BUS_TOPIC_PREFIX": operator.topic_prefix, "BUS_STATE_DIR": str(operator.state_dir), "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-c", "from bus.cli import main; main()", "acl", *command],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
async def bus_of_two(secure_broker):
    """The operator's settings on a fresh namespace whose directory holds a commune and a supplier."""
    operator = secure_broker.client("operator")
    ctx = await BusContext.connect(operator)  # topics and catalog, as the super user
    keys = [generate_key(s, f"party {s}", valid_from=NOW - dt.timedelta(days=1)) for s in (COMMUNE, SUPPLIER)]
    await ctx.publish_keys(keys)
    return operator, {k.public.siren: k for k in keys}


def names(operator: BusSettings, *keys: str) -> list[str]:
    return [f"{operator.topic_prefix}dcant.{k}" for k in keys]


async def test_plan_gives_each_principal_its_rights_and_apply_leaves_no_difference(secure_broker, bus_of_two):
    operator, _ = bus_of_two
    acts, invoices, ledger = names(operator, "acts", "invoices", "ledger.checkpoints")
    stale = Acl("User:999999999", "WRITE", "topic", acts)  # in the namespace, in no policy
    create_acls(operator, [stale])

    first = plan(operator, await bus_directory(operator), describe_acls(operator))

    assert Acl(f"User:{COMMUNE}", "WRITE", "topic", acts) in first.add
    assert Acl(f"User:{SUPPLIER}", "WRITE", "topic", invoices) in first.add
    assert not {a for a in first.add if a.principal == f"User:{SUPPLIER}" and a.name == acts}
    assert not {a for a in first.add if a.principal.startswith("User:") and a.principal[5:].isdigit()
                and a.operation == "READ" and a.name in (acts, invoices)}  # no tenant reads a family topic
    assert Acl("User:ledger", "WRITE", "topic", ledger) in first.add
    assert Acl("User:worker", "READ", "group", f"{operator.topic_prefix}{operator.consumer_group}",
               prefixed=True) in first.add
    assert first.remove == (stale,)

    printed = cli(operator, secure_broker.PASSPHRASE, "plan")
    assert printed.returncode == 0, printed.stderr
    assert f"+ User:{COMMUNE}" in printed.stdout and "- User:999999999" in printed.stdout

    applied = cli(operator, secure_broker.PASSPHRASE, "apply")
    assert applied.returncode == 0, applied.stderr
    again = cli(operator, secure_broker.PASSPHRASE, "plan")
    assert again.returncode == 0, again.stderr
    assert [line for line in again.stdout.splitlines() if line[:2] in ("+ ", "- ")] == []
    assert stale not in describe_acls(operator)
    assert not plan(operator, await bus_directory(operator), describe_acls(operator))


async def test_after_apply_a_tenant_writes_its_topic_and_is_refused_another(secure_broker, bus_of_two):
    operator, keys = bus_of_two
    assert cli(operator, secure_broker.PASSPHRASE, "apply").returncode == 0
    acts, invoices = names(operator, "acts", "invoices")
    supplier = secure_broker.client(SUPPLIER, topic_prefix=operator.topic_prefix)
    wire = Wire(default_catalog(), KeyDirectory([keys[SUPPLIER].public]), keys[SUPPLIER])
    before = await read_topic(operator, acts)

    async with Publisher(supplier, wire) as publisher:
        await publisher.publish(event(SUPPLIER, 1), topic=invoices)
    with pytest.raises(AuthorizationError) as refused:
        async with Publisher(supplier, wire) as publisher:
            await publisher.publish(event(SUPPLIER, 2), topic=acts)

    assert f"User:{SUPPLIER}" in str(refused.value) and acts in str(refused.value)
    assert len(await read_topic(operator, invoices)) == 1
    assert await read_topic(operator, acts) == before


async def test_apply_with_quotas_gives_each_tenant_the_quotas_of_its_kind(secure_broker, bus_of_two):
    operator, _ = bus_of_two

    applied = cli(operator, secure_broker.PASSPHRASE, "apply", "--quotas")

    assert applied.returncode == 0, applied.stderr
    live = describe_quotas(operator)
    assert live[COMMUNE] == {"producer_byte_rate": 4 * MIB, "consumer_byte_rate": 8 * MIB}
    assert live[SUPPLIER] == {"producer_byte_rate": 1 * MIB, "consumer_byte_rate": 2 * MIB}
    again = cli(operator, secure_broker.PASSPHRASE, "plan", "--quotas")
    assert again.returncode == 0, again.stderr
    assert [line for line in again.stdout.splitlines() if line[:2] in ("+ ", "- ", "~ ")] == []


async def test_a_tenant_cannot_plan_it_is_told_to_run_as_the_operator(secure_broker, bus_of_two):
    operator, _ = bus_of_two
    tenant = secure_broker.client(COMMUNE, topic_prefix=operator.topic_prefix)

    refused = cli(tenant, secure_broker.PASSPHRASE, "plan")

    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "run it as the operator" in refused.stderr
