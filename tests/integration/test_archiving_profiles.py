"""The archiving profile bank on the real broker: publish → approve → a transfer validated and routed.

The collectivity publishes a RelaxNG profile and names its (mutualised) archive service on the
directory with ``bus profiles``; the archive service approves the version with its own key. The
bank and the directory are then read back from Kafka, verified, and the archiving core, given
them, validates its transfer against the approved version and addresses it to that service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import subprocess
import sys
import uuid

import pytest

from bus._profiles import read_profile_bank
from bus._runtime import BusContext
from bus.client import Publisher, read_topic
from processors import CORES
from tests.unit.processors.acts_factories import SIREN, subject, transmitted
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


def keys(own, env_of) -> tuple[dict[str, str], dict[str, str]]:  # type: ignore[no-untyped-def]
    """The environments of the collectivity and of its archive service, each with its published key."""
    env = {**os.environ, **env_of(own), "COLUMNS": "200"}
    collectivity = {**env, "BUS_SOURCE": f"urn:siren:{SIREN}:archives"}
    service = {**env, "BUS_SOURCE": f"urn:siren:{SERVICE}:archives"}
    bus(collectivity, "keys", "generate", SIREN, "--owner", "Commune de test")
    bus(service, "keys", "generate", SERVICE, "--owner", "Service d'archives mutualisé")
    return collectivity, service


def test_publish_approve_then_a_transfer_is_validated_and_routed(own, env_of, tmp_path):
    collectivity, service = keys(own, env_of)

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


def test_bus_worker_with_the_bank_routes_an_approved_transfer_and_reports_an_unassigned_collectivity(
        own, env_of, tmp_path, monkeypatch):
    from tests.integration.test_worker import WORKER_SIREN, Workers, eventually

    collectivity, service = keys(own, env_of)
    worker_env = {**collectivity, "BUS_SOURCE": f"urn:siren:{WORKER_SIREN}:worker"}
    bus(worker_env, "keys", "generate", WORKER_SIREN, "--owner", "Bus workers")
    profile = tmp_path / "actes.rng"
    profile.write_text(act_profile(), encoding="utf-8")
    bus(collectivity, "profiles", "publish", str(profile), "--id", PROFILE, "--version", "1")
    bus(collectivity, "profiles", "archive-service", SERVICE)
    bus(service, "profiles", "approve", PROFILE, "1")

    other = "200000008"  # a collectivity the directory assigns to no archive service
    routed, unrouted = subject("2025-001"), subject("2025-002", other)
    closed = dt.date(2025, 3, 10)  # retention start 31 December 2025: transferred at once
    events = [transmitted("2025-001", documents=[]), dataclasses.replace(executory(closed), subject=routed),
              transmitted("2025-002", siren=other, documents=[]), dataclasses.replace(executory(closed), subject=unrouted)]
    monkeypatch.setenv("BUS_ARCHIVE_PROFILE_BANK", "true")
    workers = Workers(own.model_copy(update={"source": f"urn:siren:{SIREN}:archives"}), tmp_path)
    try:
        workers.start("archivist", "archiving")

        async def run() -> tuple[list, list]:
            ctx = await BusContext.connect(own.model_copy(update={"source": f"urn:siren:{SIREN}:archives"}))
            async with Publisher(ctx.settings, ctx.wire()) as publisher:
                await publisher.publish_many(events, topic="acts")

            async def outcome() -> tuple[list, list] | None:
                workers.assert_alive()
                found = [ctx.wire().open(r) for r in await read_topic(own, ctx.topic("archives"))]
                transfers = [e for e in found if e.envelope.type == TRANSFER]
                unassigned = [e for e in found if e.envelope.type == STATE and e.subject == unrouted
                              and e.data["state"] == "NO_ARCHIVE_SERVICE"]
                return (transfers, unassigned) if transfers and unassigned else None

            return await eventually(outcome, "the routed transfer and the unassigned dossier",
                                    detail=lambda: workers.log("archivist")[-2000:])

        transfers, unassigned = asyncio.run(run())
    finally:
        workers.kill_all()
    (transfer,) = transfers
    assert transfer.subject == f"transfer:{routed}/transfer-1"
    assert transfer.data["archival_agency_identifier"] == SERVICE
    assert other in unassigned[0].data["reason"]
