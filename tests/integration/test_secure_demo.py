"""``bus demo --secure`` on the session's secure broker: every party on its own certificate, keys approved.

The demo runs as the command does (a subprocess starting ``bus worker`` as ``User:worker``, the
ledger's checkpoints written as ``User:ledger``), with
the site CA of the secure broker, a registration authority made with ``bus ra init`` and its
anchor configured: each administration's key must be approved and each of its writes allowed by
the ACLs the demo applies from the directory, or the demo fails; the addressed events are sealed
to the parties' encryption keys, which the authority approves with the signing keys.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.test_demo import ROOT, summary

pytestmark = [pytest.mark.integration]

BUS = [sys.executable, "-c", "from bus.cli import main; main()"]


def test_the_demo_plays_on_the_secure_broker_with_a_certificate_and_an_approved_key_per_party(
        secure_broker, tmp_path):
    operator = secure_broker.client("operator")
    state = tmp_path / "state"
    state.mkdir()
    (state / "pki").symlink_to(secure_broker.broker.settings.resolved_pki_dir)  # the site's CA
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUS_")}
    env |= {"BUS_BOOTSTRAP_SERVERS": operator.bootstrap, "BUS_SECURITY_PROTOCOL": "SSL",
            "BUS_SSL_CAFILE": str(operator.ssl_cafile), "BUS_SSL_CERTFILE": str(operator.ssl_certfile),
            "BUS_SSL_KEYFILE": str(operator.ssl_keyfile), "BUS_SSL_KEY_PASSWORD": secure_broker.PASSPHRASE,
            "BUS_KEY_PASSPHRASE": secure_broker.PASSPHRASE, "BUS_TOPIC_PREFIX": f"sdemo-{uuid.uuid4().hex[:6]}.",
            "BUS_STATE_DIR": str(state), "BUS_SOURCE": "urn:siren:219990017:webdelib", "COLUMNS": "200",
            "PYTHONPATH": str(ROOT)}

    def bus(*args: str, timeout: float = 300, **more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*BUS, *args], capture_output=True, text=True, env=env | more, cwd=ROOT,
                              timeout=timeout)

    init = bus("ra", "init")
    assert init.returncode == 0, init.stderr
    (anchor,) = Path(state / "ra").glob("*.pub.pem")
    env["BUS_TRUST_ANCHOR"] = str(anchor)

    done = bus("demo", "--secure", timeout=900)

    assert done.returncode == 0, f"bus demo --secure failed:\n{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    assert "approved 10 keys" in done.stdout  # nine parties' signing keys and the ledger's
    assert "approved 9 keys" in done.stdout  # then their encryption keys, published signed by approved keys
    figures = summary(done.stdout)
    assert figures["companies verified"] == figures["companies published"]
    assert figures["archived"] == figures["dossiers closed"] == "3"
    assert figures["transfers not requested"] == figures["transfers waiting for digests"] == "0"
    assert figures["contract paid in full"] == "True"
    assert int(figures["events encrypted"]) > 0 and int(figures["invoices events unread by a non-recipient"]) > 0
    assert "the ledger connects as User:ledger" in done.stdout  # its own principal, its own ACLs
    assert int(figures["ledger checkpoints"]) > 0
    issued = {p.name for p in (state / "pki" / "issued").iterdir()}
    assert {"operator", "worker", "ledger", "219990017", "800000010"} <= issued
    plan = bus("acl", "plan")
    assert plan.returncode == 0, plan.stderr
    assert [line for line in plan.stdout.splitlines() if line[:2] in ("+ ", "- ")] == []
