"""The barometer core through the topology test driver, on events other cores really emit.

The accounting chain and tell-us-once run under their own drivers; what they read and emit is
piped, re-signed by its producer, into the barometer's driver, and the figures are checked
against hand computations (dates, days, euros written out in the comments).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from bus import Event, Received
from bus.testing import FakeClock, TopologyTestDriver
from processors.barometer import Barometer, grade
from processors.tell_us_once import TellUsOnce

from .accounting_factories import Chain, decp, invoice, payment, service_fait
from .acts_factories import transmitted
from .test_tell_us_once import NOW, attestation, candidature, establishment, legal_unit

COMMUNE = "213105554"  # SIREN of the BUYER SIRET 21310555400017 in the factories


def again(received: Received) -> Event:
    """The same event, to be sealed again by the barometer driver's producers."""
    return Event(type=received.type, subject=received.subject, schema=received.schema.name, data=received.data,
                 time=received.time)


def cells(driver: TopologyTestDriver) -> dict[str, dict]:
    """The latest figures per subject on the barometer topic."""
    latest: dict[str, dict] = {}
    for out in driver.output_topic("barometer").read_all():
        assert out.type == "fr.dcant.barometer.BarometerUpdated"
        latest[out.subject] = out.data
    return latest


def accounting_events() -> list[Event]:
    """An invoice received 2 May 2024 (deadline 1 June), paid 15 July 2024, as the chain sees it."""
    chain = Chain("2024-05-02")
    opened = chain.driver.wire.open
    events: list[Event] = []

    def pipe(event: Event) -> None:
        events.append(again(opened(chain.pipe(event))))
        events.extend(again(r) for r in chain.read())

    pipe(decp())
    pipe(invoice())  # 10 000 € HT, 12 000 € TTC
    pipe(service_fait())
    chain.on("2024-06-02")
    events.extend(again(r) for r in chain.read())
    chain.on("2024-07-15")
    pipe(payment(amount="12000.00", paid_on=dt.date(2024, 7, 15)))
    return events


def candidature_events() -> list[Event]:
    """Two candidatures for the commune: one company known with both attestations, one unknown."""
    driver = TopologyTestDriver(TellUsOnce(), clock=FakeClock(NOW))
    for event in (establishment(), legal_unit(), attestation("URSSAF_VIGILANCE"),
                  attestation("DGFIP_FISCAL_REGULARITY")):
        topic = "reference.attestations" if event.schema.endswith("Attestation") else "reference.companies"
        driver.input_topic(topic).pipe(event)
    driver.input_topic("procurement").pipe(candidature())
    driver.input_topic("procurement").pipe(candidature("55203253400646", espd_id="ESPD-2"))
    return [again(r) for r in driver.output_topic("procurement").read_all()]


def executory(number: str, sent: dt.date, executory_on: dt.date) -> Event:
    return Event(type="fr.dcant.acts.ActBecameExecutory", subject=f"act:{COMMUNE}:{number}",
                 schema="fr.dcant.acts.ActExecutory",
                 data={"act_id": None, "siren": COMMUNE, "number": number, "nature_code": 1, "decision_date": None,
                       "transmission_date": sent, "publicity_mode": "PUBLISHED", "publicity_date": sent,
                       "executory_date": executory_on})


def archive(dossier: str, state: str, at: dt.datetime, closing: dt.date | None = None) -> Event:
    return Event(type="fr.dcant.archives.ArchiveStateChanged", subject=dossier,
                 schema="fr.dcant.archives.ArchiveStateChanged",
                 data={"dossier": dossier, "dossier_type": dossier.split(":")[0], "state": state, "date": at,
                       "closing_date": closing, "retention_start": None, "transfer_identifier": None,
                       "reply_code": None, "reason": None})


def barometer(events: list[Event]) -> TopologyTestDriver:
    driver = TopologyTestDriver(Barometer(), clock=FakeClock(dt.datetime(2026, 1, 5, tzinfo=dt.UTC)))
    for event in events:
        driver.input_topic(event.schema.split(".")[2]).pipe(event)
    return driver


def test_grades_follow_the_national_observatory():
    assert [grade(n) for n in (0, 1, 2, 4, 5, 9)] == ["optimal", "optimal", "partial", "partial", "weak", "weak"]


def test_payment_delay_late_interest_and_indemnity():
    figures = cells(barometer(accounting_events()))
    july = figures[f"barometer:{COMMUNE}:invoices:2024-07"]
    assert (july["payments"], july["paid_within_deadline"], july["paid_within_deadline_share"]) == (1, 0, "0.000")
    # received 2 May, paid 15 July: 29 + 30 + 15 = 74 days; deadline 1 June: 44 days late
    assert (july["payment_delay_days_total"], july["payment_delay_days_average"]) == (74, "74.0")
    assert (july["late_payments"], july["days_late_total"]) == (1, 44)
    # 12 000 € × 12.5 % × 44 / 365 = 180.82 €, and the fixed 40 € indemnity
    assert (july["late_interest"], july["late_indemnities"]) == ("180.82", "40.00")
    may = figures[f"barometer:{COMMUNE}:invoices:2024-05"]
    assert (may["invoices_received"], may["invoices_rejected"], may["invoices_suspended"]) == (1, 0, 0)


def test_rejected_invoice_counts_its_reason():
    chain = Chain("2024-05-02")
    contract = again(chain.driver.wire.open(chain.pipe(decp())))
    stranger = invoice("F-2026-009", seller="81234567800015")  # not the contract holder
    received = again(chain.driver.wire.open(chain.pipe(stranger)))
    checks = [again(r) for r in chain.read("InvoiceChecked")]
    assert [c.data["outcome"] for c in checks] == ["rejected"]
    may = cells(barometer([contract, received, *checks]))[f"barometer:{COMMUNE}:invoices:2024-05"]
    assert (may["invoices_received"], may["invoices_rejected"], may["invoices_suspended"]) == (1, 1, 0)
    assert may["rejection_reasons"] == [{"reason": "CONTRACT-HOLDER", "count": 1}]


def test_candidatures_siret_alone_and_documents_reused_versus_requested():
    figures = cells(barometer(candidature_events()))
    (cell,) = figures.values()
    assert cell["administration"] == COMMUNE and cell["flow"] == "procurement"
    # known company: 2 reused, 0 asked (optimal); unknown SIRET: identification asked (1: optimal)
    assert (cell["candidatures"], cell["candidatures_siret_only"]) == (2, 1)
    assert (cell["documents_reused"], cell["documents_requested"]) == (2, 1)
    assert (cell["grade_optimal"], cell["grade_partial"], cell["grade_weak"]) == (2, 0, 0)


def test_acts_transmission_to_executory():
    events = [transmitted("2024-001"), transmitted("2024-002"),
              executory("2024-001", dt.date(2024, 3, 4), dt.date(2024, 3, 6)),   # 2 days
              executory("2024-002", dt.date(2024, 3, 4), dt.date(2024, 3, 9))]   # 5 days
    events[:2] = [dataclasses.replace(e, time=dt.datetime(2024, 3, 4, 10, tzinfo=dt.UTC)) for e in events[:2]]
    figures = cells(barometer(events))
    march = figures[f"barometer:{COMMUNE}:acts:2024-03"]
    assert (march["acts_transmitted"], march["acts_executory"]) == (2, 2)
    assert (march["transmission_to_executory_days_total"], march["events"]) == (7, 4)
    assert march["transmission_to_executory_days_average"] == "3.5"


def test_archive_transfers_accepted_refused_and_delay():
    closed = dt.date(2024, 9, 2)
    events = [archive(f"act:{COMMUNE}:2024-001", "CLOSED", dt.datetime(2024, 9, 2, tzinfo=dt.UTC), closed),
              archive(f"act:{COMMUNE}:2024-001", "ARCHIVED", dt.datetime(2024, 10, 1, 8, tzinfo=dt.UTC)),
              archive(f"act:{COMMUNE}:2024-002", "REOPENED", dt.datetime(2024, 10, 3, 8, tzinfo=dt.UTC))]
    october = cells(barometer(events))[f"barometer:{COMMUNE}:archives:2024-10"]
    # closed 2 September, archived 1 October: 29 days
    assert (october["transfers_accepted"], october["transfers_refused"]) == (1, 1)
    assert (october["closure_to_archive_days_total"], october["closure_to_archive_days_average"]) == (29, "29.0")


def test_a_redelivered_event_is_counted_once():
    driver = barometer([])
    record = driver.input_topic("acts").pipe(executory("2024-001", dt.date(2024, 3, 4), dt.date(2024, 3, 6)))
    driver.input_topic("acts").pipe_record(record)
    (out,) = driver.output_topic("barometer").read_all()
    assert (out.data["acts_executory"], out.data["events"]) == (1, 1)
    assert len(driver.outputs["barometer"]) == 1
