"""The one per-record step (:class:`bus.Step`): each decision, and the driver running all of them.

The step is pure, so its decisions are checked directly; the topology test driver is one of its
three shells, so what it does with a decision is what the worker and the subscriber do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from bus import (
    Action,
    Binding,
    Context,
    DeliveryError,
    Deliver,
    Emit,
    Entry,
    ErrorPolicy,
    Fail,
    Prepare,
    Received,
    Rekey,
    Skip,
    Step,
    Watermarks,
    derived_id,
    follow_up,
)
from bus._step import REKEY_HEADER, SEEN_PER_KEY
from bus.testing import TopologyTestDriver

from .conftest import T0, company_event

COMPANIES = "reference.companies"


@dataclasses.dataclass
class BySiren:
    """Keeps one state per SIREN (re-keying every establishment), echoes each event once."""

    name: str = "by-siren"
    inputs: tuple[str, ...] = (COMPANIES,)
    tables: tuple[str, ...] = ()
    types: frozenset[str] = frozenset({"fr.dcant.reference.CompanyRegistered"})
    fail_with: Exception | None = None

    def key(self, event: Received, ctx: Context):
        return f"siren:{event.data['siren']}"

    def initial_state(self):
        return {"count": 0, "extra": None}

    def process(self, state, event: Received, ctx: Context):
        if self.fail_with is not None:
            raise self.fail_with
        state["count"] += 1
        state["extra"] = dict(ctx.tables.get("extra", {}))
        return state, [follow_up(event, type="fr.dcant.reference.CompanyUpdated", schema=event.schema.name,
                                 data={**event.data, "name": f"n{state['count']}"})]

    def on_time(self, state, key, ctx: Context):
        return state, []


def ctx() -> Context:
    return Context(now=T0)


def step_for(core, wire, **options) -> Step:
    return Step(wire, name=core.name, core=core, rekey_topic="rekey.by-siren", **options)


def test_another_type_is_skipped_unread(wire):
    record = wire.seal(dataclasses.replace(company_event(), type="fr.dcant.reference.CompanyClosed"))
    forged = dataclasses.replace(record, value=b"not even avro")
    assert step_for(BySiren(), wire).run(forged, ctx=ctx(), lookup=lambda k: None) == Skip("other-type")


def test_a_record_keyed_otherwise_is_rekeyed_with_its_bytes_untouched(wire):
    record = dataclasses.replace(wire.seal(company_event()), topic=COMPANIES)
    decision = step_for(BySiren(), wire).run(record, ctx=ctx(), lookup=lambda k: None)
    assert isinstance(decision, Rekey)
    assert decision.record.key == b"siren:420820078" and decision.record.topic == "rekey.by-siren"
    assert decision.record.value == record.value
    assert dict(decision.record.headers)[REKEY_HEADER] == record.key
    # read back from the rekey topic, it is the original record again and is processed
    back = dataclasses.replace(decision.record, topic="rekey.by-siren")
    emitted = step_for(BySiren(), wire).run(back, ctx=ctx(), lookup=lambda k: None)
    assert isinstance(emitted, Emit) and emitted.key == "siren:420820078"


def test_a_processed_id_is_skipped_as_duplicate(wire):
    record = wire.seal(company_event())
    event_id = dict(record.headers)["ce_id"].decode()
    step = Step(wire, name="by-siren", core=BySiren())  # no rekey topic: processed in place
    first = step.run(record, ctx=ctx(), lookup=lambda k: None)
    assert isinstance(first, Emit) and first.entry.seen == (event_id,)
    again = step.run(record, ctx=ctx(), lookup={first.key: first.entry}.get)
    assert again == Skip("duplicate")


def test_processed_ids_are_bounded_per_state():
    entry = Entry({"count": 0})
    for n in range(SEEN_PER_KEY + 10):
        entry = entry.after(entry.state, f"id-{n}")
    assert len(entry.seen) == SEEN_PER_KEY and entry.seen[-1] == f"id-{SEEN_PER_KEY + 9}"
    assert Entry.from_json(entry.to_json()) == entry


def test_outputs_get_ids_derived_from_their_cause(wire):
    record = wire.seal(company_event())
    cause = dict(record.headers)["ce_id"].decode()
    step = Step(wire, name="by-siren", core=BySiren(), topics={COMPANIES: "p.dcant.reference.companies"})
    decision = step.run(record, ctx=ctx(), lookup=lambda k: None)
    (out,) = decision.outputs
    assert dict(out.headers)["ce_id"].decode() == derived_id("by-siren", "siren:420820078", cause, 0,
                                                               clock_id=cause, now=T0)
    assert out.topic == "p.dcant.reference.companies"
    assert step.run(record, ctx=ctx(), lookup=lambda k: None).outputs[0].headers[0] == out.headers[0]


def test_a_core_with_a_prepare_step_asks_for_it_then_resumes(wire):
    step = Step(wire, name="by-siren", core=BySiren(), prepares=True)
    decision = step.run(wire.seal(company_event()), ctx=ctx(), lookup=lambda k: None)
    assert isinstance(decision, Prepare)
    done = step.resume(decision, {"extra": {"a": 1}}, ctx=ctx(), lookup=lambda k: None)
    assert isinstance(done, Emit) and done.entry.state["extra"] == {"a": 1}


def test_failures_follow_the_policy(wire):
    record = wire.seal(company_event())
    flaky = Step(wire, name="by-siren", core=BySiren(fail_with=DeliveryError("broker away")),
                 policy=ErrorPolicy(max_retries=2, backoff_ms=100))
    retry = flaky.run(record, ctx=ctx(), lookup=lambda k: None, attempt=2)
    assert isinstance(retry, Fail) and retry.action is Action.RETRY and retry.delay == pytest.approx(0.2)
    exhausted = flaky.run(record, ctx=ctx(), lookup=lambda k: None, attempt=3)
    assert exhausted.action is Action.DEAD_LETTER
    assert exhausted.dead_letter.value == record.value and exhausted.dead_letter.topic == "deadletter"
    headers = dict(exhausted.dead_letter.headers)
    assert headers["dlq_error_class"] == b"DeliveryError" and headers["dlq_attempts"] == b"3"
    bug = Step(wire, name="by-siren", core=BySiren(fail_with=KeyError("bug")))
    assert bug.run(record, ctx=ctx(), lookup=lambda k: None).action is Action.RAISE


def test_a_handler_is_delivered_once_and_its_errors_are_wrapped(wire):
    record = wire.seal(company_event())
    step = Step(wire, name="handler")
    decision = step.run(record, ctx=ctx(), lookup=lambda k: None)
    assert isinstance(decision, Deliver) and decision.key == "company:42082007800012"
    assert step.run(record, ctx=ctx(), lookup={decision.key: decision.entry}.get) == Skip("duplicate")
    assert step.failure(record, ValueError("handler bug"), 1, now=T0, handler=True).action is Action.RAISE
    lenient = Step(wire, name="handler", policy=ErrorPolicy().with_rule(ValueError, Action.DEAD_LETTER))
    failed = lenient.failure(record, ValueError("bad value"), 1, now=T0, handler=True)
    assert failed.action is Action.DEAD_LETTER
    assert dict(failed.dead_letter.headers)["dlq_error_class"] == b"HandlerError"


def test_on_event_time_the_core_sees_the_event_time_and_outputs_keep_it(wire):
    event = dataclasses.replace(company_event(), time=dt.datetime(2026, 2, 20, 10, tzinfo=dt.UTC))
    step = Step(wire, name="by-siren", core=BySiren(), event_time=True)
    decision = step.run(wire.seal(event), ctx=ctx(), lookup=lambda k: None)
    assert decision.time == event.time
    (out,) = decision.outputs
    assert dict(out.headers)["ce_time"].decode().startswith("2026-02-20T10:00:00")


def test_watermarks_follow_the_slowest_partition_still_behind():
    marks = Watermarks(dt.timedelta(hours=1))
    assert marks.now() is None
    marks.observe(("t", 0), T0)
    marks.observe(("t", 1), T0 + dt.timedelta(days=3))
    marks.observe(("t", 0), T0 - dt.timedelta(days=1))  # older than what partition 0 showed: no step back
    assert marks.now(behind=[("t", 0), ("t", 1)]) == T0 - dt.timedelta(hours=1)
    assert marks.now(behind=[("t", 1)]) == T0 + dt.timedelta(days=3, hours=-1)
    assert marks.now() == T0 + dt.timedelta(days=3, hours=-1)  # everything read: the newest time
    assert marks.now(behind=[("t", 2)]) is None  # a partition behind whose time is unknown holds back
    marks.keep({("t", 0)})
    assert marks.now() == T0 - dt.timedelta(hours=1)


# -- the driver runs what the worker runs --------------------------------------------------------


def test_the_driver_rekeys_like_the_worker():
    driver = TopologyTestDriver(BySiren())
    driver.input_topic(COMPANIES).pipe_all([company_event("42082007800012"), company_event("42082007800020")])
    assert list(driver.states) == ["siren:420820078"] and driver.state("siren:420820078")["count"] == 2
    assert len(driver.outputs["rekey.by-siren"]) == 2
    assert driver.stats["rekeyed"] == 2


def test_the_driver_runs_the_prepare_step_of_a_binding():
    async def prepare(received):
        return {"extra": {"siret": received.data["siret"]}}

    driver = TopologyTestDriver(Binding(BySiren(), prepare))
    driver.input_topic(COMPANIES).pipe(company_event())
    assert driver.state("siren:420820078")["extra"] == {"siret": "42082007800012"}


def test_the_driver_retries_then_dead_letters_as_the_policy_says():
    driver = TopologyTestDriver(BySiren(fail_with=DeliveryError("broker away")),
                                policy=ErrorPolicy(max_retries=2, backoff_ms=0))
    sent = driver.input_topic(COMPANIES).pipe(company_event())
    assert driver.stats["retried"] == 2
    ((record, error),) = driver.dead_letters
    assert record.value == sent.value and type(error).__name__ == "DeliveryError"
    assert dict(driver.outputs["deadletter"][0].headers)["dlq_attempts"] == b"3"


@dataclasses.dataclass
class Deadline:
    """Announces, once, that a dossier is still open the day after its deadline (its first event + 30 days)."""

    name: str = "deadline"
    inputs: tuple[str, ...] = (COMPANIES,)
    tables: tuple[str, ...] = ()

    def key(self, event: Received, ctx: Context):
        return event.subject

    def initial_state(self):
        return {"deadline": None, "announced": None, "closed": None}

    def process(self, state, event: Received, ctx: Context):
        if state["deadline"] is None:
            state["deadline"] = (ctx.now.date() + dt.timedelta(days=30)).isoformat()
        elif event.data["administrative_state"] == "CLOSED":
            state["closed"] = ctx.now.date().isoformat()
        return state, []

    def on_time(self, state, key, ctx: Context):
        if state["closed"] is None and state["announced"] is None and ctx.now.date().isoformat() > state["deadline"]:
            state["announced"] = ctx.now.date().isoformat()
        return state, []


def test_on_event_time_a_states_timers_catch_up_day_by_day_before_its_next_event(wire):
    step = Step(wire, name="deadline", core=Deadline(), event_time=True)
    opened = dataclasses.replace(company_event(), time=dt.datetime(2026, 2, 1, 9, tzinfo=dt.UTC))
    closed = dataclasses.replace(company_event(administrative_state="CLOSED"), time=dt.datetime(2026, 3, 20, 9, tzinfo=dt.UTC))
    first = step.run(wire.seal(opened), ctx=ctx(), lookup=lambda k: None)
    assert first.entry.timers_at == opened.time
    second = step.run(wire.seal(closed), ctx=ctx(), lookup={first.key: first.entry}.get)
    # the deadline (3 March) passed while no event came: announced on 4 March, as live
    assert second.entry.state == {"deadline": "2026-03-03", "announced": "2026-03-04", "closed": "2026-03-20"}
    assert second.entry.timers_at == closed.time
    again = step.tick(second.key, second.entry, Context(now=closed.time + dt.timedelta(hours=2)))
    assert again is None  # the same day: timers do not run twice
