"""Erasure reaches the archive transfer (issue 12) on the real broker, with ``bus worker`` and ``bus erase``.

A commune transmits an act whose objet names a natural person, then its AR and publication; the
worker's acts core makes it executory and the archiving core transfers it (its title is the
objet) on ``transfer:<act>/transfer-1``. ``bus erase`` of the act dossier then makes the
transfer's title read ``[effacé]`` in ``bus replay`` and ``bus trace``, the name never travelled
in clear on the archives topic, and ``bus verify`` stays clean over the transfer's record.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

from bus import Received
from bus.client import Publisher, read_topic
from tests.integration.test_erasure import bus as run_bus
from tests.integration.test_erasure import lines
from tests.integration.test_processors_e2e import (  # noqa: F401 (fixtures: the bus of one test and its worker)
    A,
    COMMUNE_SIREN,
    YEAR,
    Tail,
    bus,
    worker,
)
from tests.unit.processors.acts_factories import acknowledged, publication, transmitted

pytestmark = pytest.mark.asyncio(loop_scope="session")

NAME = "Jeanne Martin"
NUMBER = "ERASE-001"
DOSSIER = f"act:{COMMUNE_SIREN}:{NUMBER}"
BASIS = "RGPD art. 17-1-a, demande du 2026-11-30"


async def test_erasing_an_act_erases_its_transfer_title_and_verify_stays_clean(bus, worker, env_of):  # noqa: F811
    commune = bus.context(COMMUNE_SIREN, "webdelib")
    title = f"Attribution d'une aide sociale à {NAME}"
    events = [transmitted(NUMBER, decision=dt.date(YEAR, 10, 2), title=title, documents=[]),
              acknowledged(dt.date(YEAR, 10, 3), NUMBER), publication(dt.date(YEAR, 10, 6), number=NUMBER)]
    worker.start()
    async with Publisher(bus.settings, commune.wire()) as as_commune, \
            Tail(bus, ["archives"], alive=worker.assert_alive) as tail:
        await as_commune.publish_many(events)
        transfers: list[Received] = await tail.until(lambda _: tail.of(A + "ArchiveTransferRequested"),
                                                     "the act's archive transfer")
    assert worker.stop() == 0, worker.log()[-4000:]
    transfer = transfers[0]
    assert transfer.subject == f"transfer:{DOSSIER}/transfer-1" and transfer.dossier == DOSSIER
    assert transfer.data["archive_units"][0]["title"] == title  # the key holder (the archives egress) reads it

    s = bus.settings
    env = {**os.environ, **env_of(s), "BUS_SOURCE": f"urn:siren:{COMMUNE_SIREN}:webdelib", "COLUMNS": "200"}
    await run_bus(env, "ledger", "keygen")
    await run_bus(env, "ledger", "checkpoint")  # the transfer is checkpointed before the erasure
    erased = await run_bus(env, "erase", DOSSIER, "--basis", BASIS)
    assert "personal data erased" in erased.stdout

    replayed = [e for e in lines(await run_bus(env, "replay", "archives"))
                if e.get("type") == A + "ArchiveTransferRequested"]
    assert [e["verified"] for e in replayed] == [True]
    (gone,) = replayed
    assert gone["data"]["archive_units"][0]["title"] == "[effacé]"
    assert gone["data"]["message_identifier"] == f"{DOSSIER}/transfer-1"  # what names nobody stays
    assert gone["personal_data"] == {**gone["personal_data"], "state": "erased", "basis": BASIS,
                                     "fields": ["archive_units[].title"]}

    trace = lines(await run_bus(env, "trace", DOSSIER, "--json"))
    (traced,) = [t for t in trace if t.get("type") == A + "ArchiveTransferRequested"]
    assert traced["data"]["archive_units"][0]["title"] == "[effacé]" and traced["personal_data"]["state"] == "erased"

    records = await read_topic(s, bus.topic("archives"))
    assert records and not any(NAME.encode() in (r.value or b"") for r in records)  # never in clear

    await run_bus(env, "ledger", "checkpoint")
    verified = await run_bus(env, "verify", "archives", "--json")
    assert lines(verified) == []  # no finding: the transfer's signature covers the ciphertext
    assert verified.stderr.strip().splitlines()[-1].startswith(f"verified: {len(records)} record(s)"), verified.stderr

