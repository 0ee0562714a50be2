"""The topology test driver runs a core through the real wire with a fake clock."""

from __future__ import annotations

import dataclasses
import datetime as dt

from bus import Context, Event, Received, follow_up
from bus.testing import TopologyTestDriver

from .conftest import company_event


@dataclasses.dataclass
class CountingCore:
    """Counts companies per SIREN and announces a closed establishment a day after it closed."""

    name: str = "counting"
    inputs: tuple[str, ...] = ("reference.companies",)
    tables: tuple[str, ...] = ()

    def key(self, event: Received, ctx: Context):
        return event.subject

    def initial_state(self):
        return {"count": 0, "closed_at": None, "announced": False}

    def process(self, state, event: Received, ctx: Context):
        state["count"] += 1  # no list of processed ids: the step skips redeliveries
        if event.data["administrative_state"] == "CLOSED":
            state["closed_at"] = ctx.now.isoformat()
        return state, [follow_up(event, type="fr.dcant.reference.CompanyRegistered", schema=event.schema.name,
                                 data={**event.data, "name": f"seen {state['count']}"})]

    def on_time(self, state, key, ctx: Context):
        closed = state["closed_at"]
        if closed and not state["announced"] and ctx.now - dt.datetime.fromisoformat(closed) >= dt.timedelta(days=1):
            state["announced"] = True
            return state, [Event(type="fr.dcant.reference.CompanyClosed", subject=key,
                                 schema="fr.dcant.reference.Company",
                                 data={**company_event().data, "administrative_state": "CLOSED"})]
        return state, []


def test_outputs_are_sealed_signed_and_linked_to_their_cause():
    driver = TopologyTestDriver(CountingCore())
    sent = driver.input_topic("reference.companies").pipe(company_event())
    out = driver.output_topic("reference.companies").read()
    assert out.data["name"] == "seen 1"
    assert out.envelope.causationid == dict(sent.headers)["ce_id"].decode()
    assert out.envelope.sigkeyid.startswith("130000000:")


def test_the_same_record_twice_yields_one_output():
    driver = TopologyTestDriver(CountingCore())
    topic = driver.input_topic("reference.companies")
    record = topic.pipe(company_event())
    topic.pipe_record(record)
    assert len(driver.output_topic("reference.companies").read_all()) == 1


def test_fake_clock_fires_timers():
    driver = TopologyTestDriver(CountingCore())
    driver.input_topic("reference.companies").pipe(company_event(administrative_state="CLOSED"))
    driver.advance(dt.timedelta(hours=23))
    assert not any(r.type == "fr.dcant.reference.CompanyClosed"
                   for r in driver.output_topic("reference.companies").read_all())
    driver.advance(dt.timedelta(hours=1))
    closed = [r for r in driver.output_topic("reference.companies").read_all()
              if r.type == "fr.dcant.reference.CompanyClosed"]
    assert len(closed) == 1


def test_tampered_input_goes_to_dead_letters_with_its_bytes():
    driver = TopologyTestDriver(CountingCore())
    topic = driver.input_topic("reference.companies")
    record = driver.seal_as("213100000", company_event(), topic="reference.companies")
    tampered = dataclasses.replace(record, value=record.value[:-1] + bytes([record.value[-1] ^ 1]))
    topic.pipe_record(tampered)
    assert driver.output_topic("reference.companies").is_empty()
    (bad, error), = driver.dead_letters
    assert bad.value == tampered.value and type(error).__name__ == "SignatureError"


@dataclasses.dataclass
class ClosedOnlyCore(CountingCore):
    """The counting core, declaring that it reads CompanyClosed events only."""

    types: frozenset[str] = frozenset({"fr.dcant.reference.CompanyClosed"})


def tampered(driver: TopologyTestDriver, event: Event):
    record = driver.seal_as("213100000", event, topic="reference.companies")
    return dataclasses.replace(record, value=record.value[:-1] + bytes([record.value[-1] ^ 1]))


def test_a_core_declaring_its_types_skips_other_records_unread():
    driver = TopologyTestDriver(ClosedOnlyCore())
    topic = driver.input_topic("reference.companies")
    topic.pipe(company_event())  # a CompanyRegistered, valid: not read, so no output
    topic.pipe_record(tampered(driver, company_event()))  # not read, so not even verified
    assert driver.output_topic("reference.companies").is_empty() and driver.dead_letters == []
    closed = dataclasses.replace(company_event(administrative_state="CLOSED"), type="fr.dcant.reference.CompanyClosed")
    topic.pipe(closed)
    assert driver.output_topic("reference.companies").read().data["name"] == "seen 1"


def test_records_of_its_types_or_without_a_type_are_still_verified():
    driver = TopologyTestDriver(ClosedOnlyCore())
    topic = driver.input_topic("reference.companies")
    closed = dataclasses.replace(company_event(), type="fr.dcant.reference.CompanyClosed")
    bad = tampered(driver, closed)
    untyped = dataclasses.replace(bad, headers=tuple(h for h in bad.headers if h[0] != "ce_type"))
    topic.pipe_record(bad)
    topic.pipe_record(untyped)
    assert [type(error).__name__ for _, error in driver.dead_letters] == ["SignatureError", "EnvelopeError"]
