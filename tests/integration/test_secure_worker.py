"""``bus worker`` on the secure broker: the faust worker speaks mutual TLS with its own certificate.

The worker runs as ``User:worker`` (not the super user) with prefixed ACLs on this test's topics
and consumer groups, which is all it needs: its faust app id, changelogs and rekey topics carry
the topic prefix. A SIRENE file submitted on ingress must come out as company pivots.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bus import BusContext, generate_key
from bus._admin import Acl, create_acls
from bus._keys import KeyStore
from bus.client import Publisher, read_topic
from processors.ingress import submit
from tests.integration.gateway_support import stop

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime.now(dt.UTC)
WORKER_SIREN = "130000000"


async def test_the_worker_runs_over_mutual_tls_as_user_worker(secure_broker, corpus, tmp_path):
    operator = secure_broker.client("operator")
    worker = secure_broker.client("worker", state_dir=tmp_path / "worker", source=f"urn:siren:{WORKER_SIREN}:worker",
                                  consumer_group=f"ingress-{uuid.uuid4().hex[:6]}")
    prefix = worker.topic_prefix
    create_acls(operator, [Acl("User:worker", "ALL", "topic", prefix, prefixed=True),
                           Acl("User:worker", "ALL", "group", prefix, prefixed=True),
                           Acl("User:worker", "ALL", "group", worker.consumer_group, prefixed=True)])
    keys = [generate_key(WORKER_SIREN, "Bus workers", valid_from=NOW - dt.timedelta(days=1))]
    KeyStore(worker.resolved_keys_dir).save(keys[0])
    ctx = await BusContext.connect(worker)  # topics created and keys published as User:worker
    await ctx.publish_keys(keys)

    env = {k: v for k, v in os.environ.items() if not k.startswith("BUS_")}
    env |= {"BUS_BOOTSTRAP_SERVERS": worker.bootstrap, "BUS_TOPIC_PREFIX": prefix, "BUS_STATE_DIR": str(worker.state_dir),
            "BUS_SOURCE": worker.source, "BUS_CONSUMER_GROUP": worker.consumer_group, "BUS_SECURITY_PROTOCOL": "SSL",
            "BUS_SSL_CAFILE": str(worker.ssl_cafile), "BUS_SSL_CERTFILE": str(worker.ssl_certfile),
            "BUS_SSL_KEYFILE": str(worker.ssl_keyfile), "BUS_SSL_KEY_PASSWORD": secure_broker.PASSPHRASE,
            "PYTHONPATH": str(ROOT)}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "bus.cli._worker", "worker", "--timer-interval", "0",
                                    "--processor", "ingress"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        async with Publisher(worker, ctx.wire()) as publisher:
            submitted = await submit(ctx, publisher, corpus / "reference/sirene/sample_etablissements_OK.csv")
        cause = dict(submitted.headers)["ce_id"].decode()
        wire = ctx.wire()
        deadline = asyncio.get_running_loop().time() + 180
        while True:
            found = [wire.open(r) for r in await read_topic(worker, ctx.topic("reference.companies"))]
            companies = sorted(e.subject for e in found if e.envelope.causationid == cause)
            if len(companies) >= 3 or asyncio.get_running_loop().time() > deadline:
                break
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            await asyncio.sleep(0.5)  # poll interval of a condition on the broker
        assert companies == ["company:00588003400011", "company:00600356000015", "company:00600465900014"], \
            log.read_text(errors="replace")[-3000:]
    finally:
        stop(process, timeout=90)
