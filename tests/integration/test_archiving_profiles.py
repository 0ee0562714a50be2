"""The archiving profile bank on the real broker: publish → approve → a transfer validated and routed.

The collectivity publishes a RelaxNG profile and names its (mutualised) archive service on the
directory with ``bus profiles``; the archive service approves the version with its own key. The
bank and the directory are then read back from Kafka, verified, and the archiving core, given
them, validates its transfer against the approved version and addresses it to that service.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest

from bus._profiles import read_profile_bank
from bus._runtime import BusContext
from processors import CORES
from tests.unit.processors.acts_factories import SIREN
from tests.unit.processors.seda_profiles import act_profile
from tests.unit.processors.test_archiving import STATE, TRANSFER, Harness, act_with_documents, digested, executory, of

BUS = [sys.executable, "-c", "from bus.cli import main; main()"]
SERVICE = "250000002"  # a mutualised archive service
PROFILE = "PR-DCANT-ACTE-V1"  # the act profile's archival_profile


def bus(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*BUS, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert out.returncode == 0, f"bus {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture
def own(settings, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Settings with this test's own topics and state directory."""
    return settings.model_copy(update={
        "topic_prefix": f"{settings.topic_prefix}prof-{uuid.uuid4().hex[:6]}.",
        "state_dir": tmp_path_factory.mktemp("profiles-state")})


def test_publish_approve_then_a_transfer_is_validated_and_routed(own, env_of, tmp_path):
    env = {**os.environ, **env_of(own), "COLUMNS": "200"}
    collectivity = {**env, "BUS_SOURCE": f"urn:siren:{SIREN}:archives"}
    service = {**env, "BUS_SOURCE": f"urn:siren:{SERVICE}:archives"}
    bus(collectivity, "keys", "generate", SIREN, "--owner", "Commune de test")
    bus(service, "keys", "generate", SERVICE, "--owner", "Service d'archives mutualisé")

    good, bad = tmp_path / "actes.rng", tmp_path / "externe.rng"
    good.write_text(act_profile(), encoding="utf-8")
    bad.write_text(act_profile(head='<include href="http://example.org/seda.rng"/>'), encoding="utf-8")
    refused = bus(collectivity, "profiles", "publish", str(bad), "--id", PROFILE, "--version", "0", check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "refers outside itself" in refused.stderr and "Traceback" not in refused.stderr

    bus(collectivity, "profiles", "publish", str(good), "--id", PROFILE, "--version", "1", "--label", "Actes")
    bus(collectivity, "profiles", "archive-service", SERVICE)
    assert "non approuvé" in bus(collectivity, "profiles", "list").stdout
    missing = bus(service, "profiles", "approve", PROFILE, "2", check=False)
    assert missing.returncode == 2 and "not published (published: 1)" in missing.stderr
    bus(service, "profiles", "approve", PROFILE, "1")
    listed = bus(collectivity, "profiles", "list").stdout
    assert SERVICE in listed and "non approuvé" not in listed

    async def read() -> tuple:
        bank, refusals = await read_profile_bank(own)
        ctx = await BusContext.connect(own, create_topics=False)
        return bank, refusals, dict(ctx.directory.archive_services)

    bank, refusals, routes = asyncio.run(read())
    assert refusals == [] and routes == {SIREN: SERVICE}
    assert bank.approved(PROFILE, SERVICE).version == "1"

    # The worker's binding (BUS_ARCHIVE_PROFILE_BANK): its shell step reads the same bank and routes.
    binding = CORES["archiving"](own.model_copy(update={"archive_profile_bank": True}))
    asyncio.run(binding.prepare.refresh())
    assert binding.core.routes == {SIREN: SERVICE}
    assert binding.core.bank.approved(PROFILE, SERVICE).sha256 == bank.approved(PROFILE, SERVICE).sha256

    h = Harness(binding.core)
    h.pipe("acts", act_with_documents(), executory())
    h.pipe("archives", digested())
    out = h.advance_days(360)
    (transfer,) = of(out, TRANSFER)
    assert transfer.data["archival_agency_identifier"] == SERVICE
    assert [o.data["state"] for o in of(out, STATE)] == ["TRANSFER_REQUESTED"]
