"""One step, three shells: a real worker and the test driver give the same outputs for the same records.

The accounting chain runs a past year's dossier (2024: a contract, an invoice, its service fait,
and a payment 44 days late) on the real broker with ``bus worker --clock event``. The records the
worker consumed are then fed, byte for byte, to :class:`bus.testing.TopologyTestDriver` in event
time: every output (``ce_id`` included) must be the same. And the late interest of that replay
must be what the live run computed: the driver on the processing clock, moved day by day
through 2024 as the worker's periodic timer would have been.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import pytest

from bus import BusContext, BusSettings, Event, Received, generate_key
from bus._keys import KeyStore
from bus.client import Publisher, read_topic
from bus.testing import FakeClock, TopologyTestDriver
from processors.accounting import AccountingChain
from tests.integration.test_processors_e2e import (
    ACC,
    COMMUNE_SIREN,
    SUPPLIER_SIREN,
    WORKER_SIREN,
    Bus,
    Tail,
    Worker,
    contracts_known,
)
from tests.unit.processors.accounting_factories import decp, invoice, payment, service_fait

pytestmark = pytest.mark.asyncio(loop_scope="session")

SINCE = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)  # the keys' validity: before the dossier's year
CONTRACT = "2024M-PARITY"


def at(day: str, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), dt.UTC)


def dossier() -> list[tuple[str, Event]]:
    """(signer, event) of the 2024 dossier, in the order they happened."""
    return [
        ("commune", dataclasses.replace(decp(CONTRACT, amount="500000.00"), time=at("2024-05-02", 8))),
        ("supplier", invoice("F-PAR-001", contract=CONTRACT, received=at("2024-05-02"))),  # deadline 1 June
        ("commune", dataclasses.replace(service_fait("F-PAR-001", contract=CONTRACT, exercise=2024),
                                        time=at("2024-05-03"))),
        ("commune", dataclasses.replace(payment("F-PAR-001", contract=CONTRACT, paid_on=dt.date(2024, 7, 15)),
                                        time=at("2024-07-15"))),
    ]


@pytest.fixture
async def past(settings: BusSettings, tmp_path: Path) -> Bus:
    own = settings.model_copy(update={
        "state_dir": tmp_path / "state", "topic_prefix": f"parity-{uuid.uuid4().hex[:8]}.",
        "consumer_group": f"parity-{uuid.uuid4().hex[:6]}", "source": f"urn:siren:{WORKER_SIREN}:worker"})
    store = KeyStore(own.resolved_keys_dir)
    keys = [generate_key(siren, owner, valid_from=SINCE) for siren, owner in
            ((WORKER_SIREN, "Bus workers"), (COMMUNE_SIREN, "Commune de test"), (SUPPLIER_SIREN, "ROUTES SA"))]
    for key in keys:
        store.save(key)
    ctx = await BusContext.connect(own)
    await ctx.publish_keys(keys)
    return Bus(own)


def outputs(events: list[Received]) -> dict[str, tuple[str, str, dict]]:
    return {e.id: (e.type, e.subject, e.data) for e in events}


async def test_a_worker_on_event_time_and_the_driver_agree_and_replay_the_live_late_interest(past, tmp_path):
    worker = Worker(past, tmp_path)
    worker.start("--processor", "accounting-chain", "--clock", "event")
    try:
        signers = {"commune": past.context(COMMUNE_SIREN, "finances"),
                   "supplier": past.context(SUPPLIER_SIREN, "facturation")}
        async with Publisher(past.settings, signers["commune"].wire()) as as_commune, \
                Publisher(past.settings, signers["supplier"].wire()) as as_supplier, \
                Tail(past, ["accounting"], alive=worker.assert_alive) as tail:
            publisher = {"commune": as_commune, "supplier": as_supplier}
            events = dossier()
            # One at a time, each once the worker acted on the one before: the order the driver replays.
            await publisher["commune"].publish(events[0][1])
            await contracts_known(past, [CONTRACT], worker.assert_alive)
            await publisher["supplier"].publish(events[1][1])
            await tail.until(lambda _: tail.of(ACC + "InvoiceChecked"), "the invoice checked")
            await publisher["commune"].publish(events[2][1])
            await tail.until(lambda _: tail.of(ACC + "BordereauIssued"), "the bordereau")
            await publisher["commune"].publish(events[3][1])
            await tail.until(lambda _: tail.of(ACC + "LatePaymentInterestDue"), "the late interest")
            replayed = [e for e in tail.events if e.envelope.sigkeyid.startswith(f"{WORKER_SIREN}:")]
        worker.assert_alive()
        assert worker.stop() == 0, worker.log()[-4000:]
    finally:
        if worker.process is not None:
            worker.kill()

    # (1) the same records through the driver, in event time: the same outputs, ids included
    consumed = []
    for topic in ("procurement", "invoices", "accounting"):
        consumed += [r for r in await read_topic(past.settings, past.topic(topic))
                     if not dict(r.headers)["ce_sigkeyid"].decode().startswith(f"{WORKER_SIREN}:")]
    consumed.sort(key=lambda r: dict(r.headers)["ce_time"])
    assert len(consumed) == 4
    driver = TopologyTestDriver(AccountingChain(), event_time=True, clock=FakeClock(at("2026-01-05")))
    for key in past.reader.directory:
        driver.directory.add(key)
    names = {past.topic(t): t for t in ("procurement", "invoices", "accounting")}
    for record in consumed:
        driver.input_topic(names[record.topic]).pipe_record(record)
    assert not driver.dead_letters
    by_driver = outputs(driver.output_topic("accounting").read_all())
    assert outputs(replayed) == by_driver

    # (2) the live run of 2024, on the processing clock with a daily timer: the same interest
    clock = FakeClock(at("2024-05-02", 7))
    live = TopologyTestDriver(AccountingChain(), clock=clock)
    for signer, event in dossier():
        while clock.now.date() < event.time.date():
            live.advance(dt.timedelta(days=1))
        clock.set(event.time)
        live.input_topic("procurement" if signer == "commune" and event.type.endswith("Published")
                         else "invoices" if event.type.endswith("InvoiceReceived") else "accounting").pipe(
            event, source_siren=COMMUNE_SIREN if signer == "commune" else SUPPLIER_SIREN)
    live_out = live.output_topic("accounting").read_all()

    def late(events: list[Received]) -> list[tuple[str, dict]]:
        return sorted(((e.type, e.data) for e in events
                       if e.type in (ACC + "PaymentDeadlineExceeded", ACC + "LatePaymentInterestDue")),
                      key=lambda pair: pair[0])

    assert late(replayed) == late(live_out)
    (due,) = [data for kind, data in late(replayed) if kind.endswith("LatePaymentInterestDue")]
    assert (due["days_late"], due["interest_amount"], due["indemnity"]) == (44, "180.82", "40.00")
    assert [data["days_late"] for kind, data in late(replayed) if kind.endswith("Exceeded")] == [1]
