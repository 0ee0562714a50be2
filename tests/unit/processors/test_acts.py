"""The acts lifecycle core through the topology test driver: real Avro and signatures at every hop."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bus import ConfigurationError, NonConformantError
from bus.testing import TopologyTestDriver
from processors.acts import ActsLifecycle, legality_window_end, pseudonym

from .acts_factories import (
    KEY,
    OTHER_KEY,
    SIREN,
    acknowledged,
    anomaly,
    cancelled,
    prefecture,
    publication,
    subject,
    transmitted,
)

D = dt.date
STATE = "fr.dcant.acts.ActStateChanged"
EXECUTORY = "fr.dcant.acts.ActBecameExecutory"
PUBLISHED = "fr.dcant.acts.ActPublished"


class Harness(TopologyTestDriver):
    """The driver with one reader of the acts topic: ``new()`` gives what was emitted since last read."""

    def __init__(self, core: ActsLifecycle) -> None:
        super().__init__(core)
        self.reader = self.output_topic("acts")

    def new(self) -> list:
        return self.reader.read_all()


def driver(key: bytes = KEY) -> Harness:
    return Harness(ActsLifecycle({SIREN: key}))


def pipe(d: Harness, *events) -> list:
    d.input_topic("acts").pipe_all(events)
    return d.new()


def of(outputs: list, event_type: str) -> list:
    return [o for o in outputs if o.type == event_type]


def states(outputs: list) -> list[str]:
    return [o.data["state"] for o in of(outputs, STATE)]


# -- executory status (CGCT L2131-1) -----------------------------------------------------------

@pytest.mark.parametrize(("ar", "published", "expected"), [
    (D(2026, 1, 5), D(2026, 1, 3), D(2026, 1, 5)),  # published first: executory from the AR
    (D(2026, 1, 2), D(2026, 1, 4), D(2026, 1, 4)),  # transmitted first: executory from the publication
])
def test_executory_from_the_later_of_transmission_and_publication(ar, published, expected):
    d = driver()
    out = pipe(d, transmitted(), acknowledged(ar), publication(published))
    (executory,) = of(out, EXECUTORY)
    assert executory.data["executory_date"] == expected
    assert executory.data["transmission_date"] == ar and executory.data["publicity_date"] == published
    assert states(out) == ["TRANSMITTED", "ACKNOWLEDGED", "EXECUTORY"]
    assert of(out, STATE)[-1].data["date"] == expected and of(out, STATE)[-1].data["executory"] is True


def test_not_executory_without_publication_nor_without_transmission():
    d = driver()
    assert of(pipe(d, transmitted(), acknowledged(D(2026, 1, 5))), EXECUTORY) == []
    other = driver()
    assert of(pipe(other, transmitted(), publication(D(2026, 1, 4))), EXECUTORY) == []


def test_publication_on_a_later_date_makes_the_act_executory_on_that_date():
    d = driver()
    out = pipe(d, transmitted(), acknowledged(D(2026, 1, 5)), publication(D(2026, 1, 8)))
    assert of(out, EXECUTORY) == []
    d.advance(dt.timedelta(days=2))
    assert of(d.new(), EXECUTORY) == []
    d.advance(dt.timedelta(days=1))
    later = d.new()
    (executory,) = of(later, EXECUTORY)
    assert executory.data["executory_date"] == D(2026, 1, 8)
    assert of(later, STATE)[0].data["cause_type"] == "clock"


def test_a_notified_individual_act_is_executory_but_not_published():
    d = driver()
    out = pipe(d, transmitted(nature_code=3), acknowledged(D(2026, 1, 5)), publication(D(2026, 1, 5), mode="NOTIFIED"))
    assert of(out, EXECUTORY)[0].data["publicity_mode"] == "NOTIFIED"
    assert of(out, PUBLISHED) == []


def test_the_same_record_twice_gives_one_output():
    d = driver()
    topic = d.input_topic("acts")
    topic.pipe(transmitted())
    ar = topic.pipe(acknowledged(D(2026, 1, 5)))
    publish = topic.pipe(publication(D(2026, 1, 5)))
    first = d.new()
    topic.pipe_record(ar)
    topic.pipe_record(publish)
    assert d.new() == []
    assert len(of(first, EXECUTORY)) == 1 and len(of(first, PUBLISHED)) == 1


def test_ignores_its_own_outputs_and_a_repeated_transmission_changes_nothing():
    d = driver()
    pipe(d, transmitted(), acknowledged(D(2026, 1, 5)), publication(D(2026, 1, 5)))
    before = json.dumps(d.state(subject()), sort_keys=True)
    d.input_topic("acts").pipe_record(d.outputs["acts"][-1])  # its own ActPublished comes back on the topic
    assert json.dumps(d.state(subject()), sort_keys=True) == before
    assert pipe(d, transmitted()) == []  # read (a new ce_id), but no state changed


# -- prefecture exchanges ----------------------------------------------------------------------

def test_lettre_d_observations_keeps_the_act_executory_but_flagged():
    d = driver()
    pipe(d, transmitted(), acknowledged(D(2026, 1, 5)), publication(D(2026, 1, 5)))
    out = pipe(d, prefecture("LETTRE_OBSERVATIONS", D(2026, 1, 20), text="Incompétence"))
    (change,) = of(out, STATE)
    assert change.data["state"] == "UNDER_OBSERVATION" and change.data["previous_state"] == "EXECUTORY"
    assert change.data["executory"] is True and change.data["under_observation"] is True
    assert change.data["message_code"] == "4-1" and change.data["detail"] == "Incompétence"
    assert change.data["date"] == D(2026, 1, 20)


@pytest.mark.parametrize(("event", "state"), [
    (prefecture("DEFERE", D(2026, 2, 1), code="5-1"), "DEFERRED"),
    (cancelled("ACKNOWLEDGED", D(2026, 2, 1)), "CANCELLED"),
])
def test_defere_and_cancellation_end_the_executory_status(event, state):
    d = driver()
    pipe(d, transmitted(), acknowledged(D(2026, 1, 5)), publication(D(2026, 1, 5)))
    (change,) = of(pipe(d, event), STATE)
    assert change.data["state"] == state and change.data["executory"] is False
    assert change.data["date"] == D(2026, 2, 1) and change.data["cause_id"] is not None


def test_a_cancelled_act_never_becomes_executory_and_a_request_alone_changes_nothing():
    d = driver()
    out = pipe(d, transmitted(), acknowledged(D(2026, 1, 5)), cancelled("REQUESTED"))
    assert states(out) == ["TRANSMITTED", "ACKNOWLEDGED"]
    out = pipe(d, cancelled("ACKNOWLEDGED", D(2026, 1, 5)), publication(D(2026, 1, 5)))
    assert states(out) == ["CANCELLED"] and of(out, EXECUTORY) == [] and of(out, PUBLISHED) == []


def test_pieces_requested_then_answered_goes_back_to_the_previous_state():
    d = driver()
    pipe(d, transmitted(), acknowledged(D(2026, 1, 5)))
    asked = of(pipe(d, prefecture("PIECES_COMPLEMENTAIRES", D(2026, 1, 20), code="3-1")), STATE)
    assert [(c.data["state"], c.data["legality_window_end"]) for c in asked] == [("PIECES_REQUESTED", None)]
    answered = of(pipe(d, prefecture("REPONSE_PIECES_COMPLEMENTAIRES", D(2026, 4, 1), code="3-4")), STATE)
    assert [c.data["state"] for c in answered] == ["ACKNOWLEDGED"]
    assert answered[0].data["legality_window_end"] == D(2026, 6, 2)  # 1 April + 2 months, franc


def test_anomaly_then_retransmission():
    d = driver()
    out = pipe(d, transmitted(), anomaly(D(2026, 1, 5)))
    assert states(out) == ["TRANSMITTED", "IN_ANOMALY"]
    assert of(out, STATE)[-1].data["detail"] == "Classification inconnue"
    assert states(pipe(d, transmitted())) == ["TRANSMITTED"]


# -- the déféré window (CGCT L2131-6) ----------------------------------------------------------

def _clock_states(d: Harness, days: int) -> list:
    d.advance(dt.timedelta(days=days))
    return of(d.new(), STATE)


def test_legality_window_closes_two_months_after_the_ar_without_defere():
    d = driver()
    out = pipe(d, transmitted(), acknowledged(D(2026, 1, 5)))
    assert of(out, STATE)[-1].data["legality_window_end"] == D(2026, 3, 6)  # 5 March + 1 (délai franc)
    assert _clock_states(d, 60) == []  # 6 March 2026, 09:00 UTC: still the last day
    (closed,) = _clock_states(d, 1)
    assert closed.data["state"] == "LEGALITY_WINDOW_CLOSED" and closed.data["date"] == D(2026, 3, 6)
    assert closed.data["cause_type"] == "clock" and closed.data["cause_id"] is None
    assert _clock_states(d, 30) == []


def test_no_window_closing_after_a_defere():
    d = driver()
    pipe(d, transmitted(), acknowledged(D(2026, 1, 5)), prefecture("DEFERE", D(2026, 2, 2), code="5-1"))
    assert _clock_states(d, 120) == []


def test_a_lettre_d_observations_without_answer_prolongs_the_window():
    d = driver()
    pipe(d, transmitted(), acknowledged(D(2026, 1, 5)))
    (change,) = of(pipe(d, prefecture("LETTRE_OBSERVATIONS", D(2026, 1, 20))), STATE)
    # implicit rejection on 20 March, then two months: 20 May + 1
    assert change.data["legality_window_end"] == D(2026, 5, 21)
    assert _clock_states(d, 120) == []  # 5 May
    assert [c.data["state"] for c in _clock_states(d, 17)] == ["LEGALITY_WINDOW_CLOSED"]


def test_a_pieces_request_suspends_the_window():
    d = driver()
    pipe(d, transmitted(), acknowledged(D(2026, 1, 5)), prefecture("PIECES_COMPLEMENTAIRES", D(2026, 1, 20)))
    assert _clock_states(d, 200) == []


@pytest.mark.parametrize(("start", "end"), [
    (D(2026, 3, 15), D(2026, 5, 18)),  # 16 May is a Saturday
    (D(2026, 3, 13), D(2026, 5, 15)),  # 14 May 2026 is Ascension Day
    (D(2025, 12, 31), D(2026, 3, 2)),  # 28 February, + 1 = 1 March, a Sunday
])
def test_window_end_is_franc_and_moves_to_the_next_working_day(start, end):
    assert legality_window_end(start) == end


# -- publication with pseudonymised personal data ----------------------------------------------

def _published(d: Harness, number: str, title: str, names: list[tuple[str, str]], text=None):
    out = pipe(d, transmitted(number, title=title), acknowledged(D(2026, 1, 5), number),
               publication(D(2026, 1, 5), number=number, text=text, personal_data=names))
    (published,) = of(out, PUBLISHED)
    return published


def test_published_deliberation_hides_names_behind_stable_keyed_tokens():
    d = driver()
    first = _published(d, "2026-001", "Nomination de M. Jean DUPONT au poste de DGS",
                       [("title", "Jean DUPONT"), ("text", "Jean Dupont")], text="Article 1 : jean  dupont est nommé.")
    token = pseudonym(KEY, "Jean Dupont")
    assert first.data["title"] == f"Nomination de M. {token} au poste de DGS"
    assert first.data["text"] == f"Article 1 : {token} est nommé."
    assert first.data["pseudonymised_count"] == 2 and first.data["pseudonymisation"] == "hmac-sha256-v1"
    assert first.data["nature_abbreviation"] == "DE" and first.data["decision_date"] == D(2026, 1, 2)
    second = _published(d, "2026-002", "Indemnités de Jean Dupont", [("title", "Jean Dupont")])
    assert token in second.data["title"]  # same person, same collectivity: same token
    assert "dupont" not in json.dumps(d.state(subject("2026-002"))).lower()  # not kept once published


def test_another_key_gives_another_token_and_the_key_never_travels():
    names = [("title", "Jean Dupont")]
    ours = _published(driver(KEY), "2026-001", "Nomination de Jean Dupont", names)
    theirs_driver = driver(OTHER_KEY)
    theirs = _published(theirs_driver, "2026-001", "Nomination de Jean Dupont", names)
    assert ours.data["title"] != theirs.data["title"]
    assert "Dupont" not in ours.data["title"]
    everything = b"".join(r.value + b"".join(v for _, v in r.headers) for r in theirs_driver.outputs["acts"])
    assert OTHER_KEY not in everything and OTHER_KEY.hex().encode() not in everything
    assert OTHER_KEY.hex() not in json.dumps(theirs_driver.state(subject())) and "OTHER" not in repr(ActsLifecycle(
        {SIREN: OTHER_KEY}))


def test_a_regulatory_act_is_published_and_a_contract_is_not():
    d = driver()
    assert of(pipe(d, transmitted("R1", nature_code=2), publication(D(2026, 1, 5), number="R1")), PUBLISHED)
    assert not of(pipe(d, transmitted("C1", nature_code=4), publication(D(2026, 1, 5), number="C1")), PUBLISHED)


def test_publication_before_transmission_is_published_when_the_act_arrives():
    d = driver()
    assert of(pipe(d, publication(D(2026, 1, 4), title="Règlement du cimetière")), PUBLISHED) == []
    (published,) = of(pipe(d, transmitted(nature_code=2)), PUBLISHED)
    assert published.data["title"] == "Règlement du cimetière"


def test_a_listed_name_absent_from_the_text_is_refused_not_published():
    d = driver()
    d.input_topic("acts").pipe(transmitted())
    d.input_topic("acts").pipe(publication(D(2026, 1, 5), title="Nomination de J. Dupont",
                                           personal_data=[("title", "Jean Dupont")]))
    (_record, error), = d.dead_letters
    assert isinstance(error, NonConformantError) and error.context["rule"] == "PUBLICATION-PERSONAL-DATA"
    assert of(d.new(), PUBLISHED) == []


def test_personal_data_of_a_collectivity_without_key_is_refused():
    d = Harness(ActsLifecycle({}))
    d.input_topic("acts").pipe(publication(D(2026, 1, 5), title="Nomination de Jean Dupont",
                                           personal_data=[("title", "Jean Dupont")]))
    (_record, error), = d.dead_letters
    assert isinstance(error, ConfigurationError)


def test_a_short_key_is_refused():
    with pytest.raises(ConfigurationError, match="16 random bytes"):
        ActsLifecycle({SIREN: b"short"})


def test_derived_pseudonym_keys_are_stable_per_collectivity_and_distinct_between_them():
    from bus import ConfigurationError
    from processors.acts import ActsLifecycle, derived_pseudonym_keys

    key_for = derived_pseudonym_keys(b"0123456789abcdef0123456789abcdef")
    assert key_for("213105554") == key_for("213105554")
    assert key_for("213105554") != key_for("219990017")
    assert derived_pseudonym_keys(b"another secret of 32 bytes......")("213105554") != key_for("213105554")
    assert "secret" in repr(ActsLifecycle(key_for)) and "0123" not in repr(ActsLifecycle(key_for))
    with pytest.raises(ConfigurationError):
        derived_pseudonym_keys(b"short")
