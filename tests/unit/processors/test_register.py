"""The register of deliberations through the topology test driver: a signed, verifiable hash chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from bus import Event, SecurityError
from bus.testing import TopologyTestDriver
from processors.register import GENESIS_HASH, DeliberationsRegister, canonical_entry, verify_chain

from .acts_factories import SIREN, act_id, subject

D = dt.date
ADDED = "fr.dcant.acts.RegisterEntryAdded"


def published(number: str, decision: D, *, nature_code: int = 1, siren: str = SIREN,
              title: str = "Budget primitif") -> Event:
    data = {"act_id": act_id(number, decision, "DE" if nature_code == 1 else "AR", siren), "siren": siren,
            "number": number, "nature_code": nature_code, "nature_abbreviation": "DE" if nature_code == 1 else "AR",
            "decision_date": decision, "classification_code": "7.1", "title": title, "text": None,
            "publication_date": decision + dt.timedelta(days=2), "url": None, "pseudonymisation": "hmac-sha256-v1",
            "pseudonymised_count": 0}
    return Event(type="fr.dcant.acts.ActPublished", subject=subject(number, siren), schema="fr.dcant.acts.ActPublished",
                 data=data)


def register(*events: Event) -> tuple[TopologyTestDriver, list]:
    driver = TopologyTestDriver(DeliberationsRegister())
    driver.input_topic("acts").pipe_all(events)
    return driver, driver.output_topic("acts").read_all()


def test_entries_are_numbered_chained_and_signed():
    driver, out = register(published("D1", D(2026, 1, 12)), published("D2", D(2026, 1, 12)),
                           published("D3", D(2026, 2, 9)))
    entries = [o.data for o in out]
    assert [o.type for o in out] == [ADDED] * 3 and {o.subject for o in out} == {f"register:{SIREN}"}
    assert [e["sequence"] for e in entries] == [1, 2, 3]
    assert entries[0]["previous_hash"] == GENESIS_HASH
    assert [e["previous_hash"] for e in entries[1:]] == [e["entry_hash"] for e in entries[:-1]]
    assert entries[0]["entry_hash"] == hashlib.sha256(canonical_entry(entries[0])).hexdigest()
    assert out[0].envelope.sigkeyid.startswith("130000000:")  # signed by the register's processor key
    verify_chain(entries)


def test_canonical_encoding_is_sorted_compact_json_with_iso_dates():
    _driver, (out,) = register(published("D1", D(2026, 1, 12), title="Délibération n°1"))
    assert canonical_entry(out.data).decode() == (
        '{"act_id":"031-213105554-20260112-D1-DE","decision_date":"2026-01-12","late_registration":false,'
        f'"number":"D1","previous_hash":"{GENESIS_HASH}","publication_date":"2026-01-14","sequence":1,'
        '"siren":"213105554","title":"Délibération n°1"}'
    )


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("title", "Budget supplémentaire", "REGISTER-HASH"),
    ("decision_date", D(2026, 1, 13), "REGISTER-HASH"),
    ("previous_hash", "f" * 64, "REGISTER-LINK"),
])
def test_a_tampered_entry_fails_verification(field, value, rule):
    _driver, out = register(*(published(f"D{i}", D(2026, 1, 10 + i)) for i in range(1, 4)))
    entries = [dict(o.data) for o in out]
    entries[1][field] = value
    with pytest.raises(SecurityError) as caught:
        verify_chain(entries)
    assert caught.value.context["rule"] == rule and caught.value.context["sequence"] == 2


def test_a_removed_or_reordered_entry_fails_verification():
    _driver, out = register(*(published(f"D{i}", D(2026, 1, 10 + i)) for i in range(1, 4)))
    entries = [o.data for o in out]
    with pytest.raises(SecurityError, match="expected"):
        verify_chain([entries[0], entries[2]])
    with pytest.raises(SecurityError):
        verify_chain([entries[1], entries[0], entries[2]])
    rehashed = dict(entries[1], title="Autre", entry_hash="0" * 64)
    with pytest.raises(SecurityError, match="altered"):
        verify_chain([entries[0], rehashed, entries[2]])


def test_a_slice_verifies_from_a_trusted_entry():
    _driver, out = register(*(published(f"D{i}", D(2026, 1, 10 + i)) for i in range(1, 4)))
    entries = [o.data for o in out]
    verify_chain(entries[1:], previous_hash=entries[0]["entry_hash"], first_sequence=2)


def test_an_older_deliberation_arriving_late_is_appended_and_marked():
    _driver, out = register(published("D5", D(2026, 3, 2)), published("D4", D(2026, 2, 9)),
                            published("D6", D(2026, 3, 2)))
    entries = [o.data for o in out]
    assert [(e["number"], e["sequence"], e["late_registration"]) for e in entries] == [
        ("D5", 1, False), ("D4", 2, True), ("D6", 3, False)]
    verify_chain(entries)


def test_an_act_is_never_registered_twice():
    driver = TopologyTestDriver(DeliberationsRegister())
    topic = driver.input_topic("acts")
    record = topic.pipe(published("D1", D(2026, 1, 12)))
    topic.pipe_record(record)  # the same record redelivered
    topic.pipe(published("D1", D(2026, 1, 12)))  # the same act published again (another ce_id)
    assert len(driver.output_topic("acts").read_all()) == 1
    assert driver.state(f"register:{SIREN}")["sequence"] == 1


def test_registers_are_per_collectivity_and_only_hold_deliberations():
    other = "200054781"
    _driver, out = register(published("D1", D(2026, 1, 12)), published("R1", D(2026, 1, 12), nature_code=2),
                            published("D1", D(2026, 1, 12), siren=other))
    assert [(o.subject, o.data["sequence"]) for o in out] == [(f"register:{SIREN}", 1), (f"register:{other}", 1)]
    with pytest.raises(SecurityError, match="another register"):
        verify_chain([o.data for o in out])


def test_verify_accepts_entries_read_back_as_json():
    _driver, out = register(published("D1", D(2026, 1, 12)), published("D2", D(2026, 1, 13)))
    as_json = [json.loads(json.dumps(o.data, default=str)) for o in out]
    assert isinstance(as_json[0]["decision_date"], str)
    verify_chain(as_json)
