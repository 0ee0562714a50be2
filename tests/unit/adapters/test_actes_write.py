"""Writing the ACTES act message and its envelope from an Act pivot (strict writers).

XSD validity of what is written is checked against the official schema in
tests/conformance/test_acts.py; here: content, round trips and refusals.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from adapters import Pivot, actes, actes_envelope
from bus._errors import NonConformantError


def act(**changes: Any) -> Pivot:
    data: dict[str, Any] = {
        "act_id": None,
        "siren": "214502494",
        "department": "045",
        "arrondissement": "1",
        "collectivity_nature": "31",
        "number": "2024_DEL_12",
        "decision_date": dt.date(2024, 3, 14),
        "nature_code": 1,
        "nature_label": "Délibérations",
        "nature_abbreviation": "DE",
        "matiere_codes": [7, 1, 2],
        "classification_code": "7.1.2",
        "object": "Budget primitif 2024 – approbation (coût : 12 000 €)",
        "classification_date": dt.date(2019, 3, 1),
        "previous_act_id": None,
        "documents": [
            {"role": "MAIN", "file_name": "deliberation.pdf", "media_type": "application/pdf", "signed": False, "content": None, "personal_data": None},
            {"role": "ANNEX", "file_name": "budget.pdf", "media_type": "application/pdf", "signed": False,
             "content": {"sha256": "ab" * 32, "size": 1024, "uri": "file:///store/ab"}, "personal_data": True},
        ],
        "personal_data": None,
        "referent": {"name": "Jeanne Dupont", "phone": "02 38 00 00 00", "email": "jeanne.dupont@mairie.example.fr"},
        "return_addresses": ["actes@mairie.example.fr"],
    }
    data.update(changes)
    return Pivot(type="fr.dcant.acts.ActTransmitted", schema="fr.dcant.acts.Act", subject="act:214502494:2024_DEL_12", data=data, format="actes")


def test_act_message_round_trips_through_the_reader() -> None:
    pivot = act()
    name = actes.act_message_name(pivot.data)
    assert name == "045-214502494-20240314-2024_DEL_12-DE-1-1_0.xml"
    written = actes.from_pivot(pivot)
    assert written.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    back = actes.to_pivot(written, name=name)
    assert back.warnings == ()
    assert back.subject == pivot.subject
    for field in ("siren", "department", "number", "decision_date", "nature_code", "matiere_codes", "classification_code", "object", "classification_date"):
        assert back.data[field] == pivot.data[field], field
    assert back.data["act_id"] == "045-214502494-20240314-2024_DEL_12-DE"
    assert [(d["role"], d["file_name"]) for d in back.data["documents"]] == [("MAIN", "deliberation.pdf"), ("ANNEX", "budget.pdf")]
    assert b'actes:Nombre="1"' in written


def test_pivot_read_back_from_json_with_iso_dates_is_written() -> None:
    pivot = act(decision_date="2024-03-14", classification_date="2019-03-01", previous_act_id="045-214502494-20240101-2024_DEL_1-DE")
    written = actes.from_pivot(pivot)
    assert b'actes:Date="2024-03-14"' in written
    assert b'<actes:PrecedentIdentifiantActe actes:IDActe="045-214502494-20240101-2024_DEL_1-DE"/>' in written


def test_envelope_lists_the_act_message_and_round_trips() -> None:
    written = actes_envelope.from_pivot(act())
    back = actes_envelope.to_pivot(written, name="EACT--214502494--20240314-1.xml")
    assert back.subject == "act:214502494:2024_DEL_12"
    assert back.data["forms"] == [{"file_name": "045-214502494-20240314-2024_DEL_12-DE-1-1_0.xml", "act_id": "045-214502494-20240314-2024_DEL_12-DE", "message_code": "1-1"}]
    assert (back.data["emitter_siren"], back.data["arrondissement"], back.data["collectivity_nature"]) == ("214502494", "1", "31")
    assert back.data["referent"] == {"name": "Jeanne Dupont", "phone": "02 38 00 00 00", "email": "jeanne.dupont@mairie.example.fr"}
    assert back.data["return_addresses"] == ["actes@mairie.example.fr"]


def test_given_act_id_is_kept_for_the_envelope() -> None:
    written = actes_envelope.from_pivot(act(act_id="045-214502494-20240314-2024_DEL_12-AU"))
    assert b"045-214502494-20240314-2024_DEL_12-AU-1-1_0.xml" in written


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"number": "2024/12"}, "number"),
        ({"number": "A" * 16}, "number"),
        ({"matiere_codes": [7]}, "matiere_codes"),
        ({"matiere_codes": [1, 2, 3, 4, 5, 6]}, "matiere_codes"),
        ({"object": "x" * 501}, "object"),
        ({"object": "bell \x07"}, "Objet"),
        ({"nature_code": "1"}, "nature_code"),
        ({"decision_date": "14/03/2024"}, "decision_date"),
        ({"documents": []}, "documents"),
        ({"documents": [{"role": "ANNEX", "file_name": "a.pdf"}]}, "documents"),
        ({"documents": [{"role": "MAIN", "file_name": ""}]}, "documents[MAIN].file_name"),
        ({"previous_act_id": "not-an-id"}, "previous_act_id"),
        ({"classification_date": None}, "classification_date"),
    ],
)
def test_act_writer_refuses_what_would_not_validate(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(NonConformantError) as info:
        actes.from_pivot(act(**changes))
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"return_addresses": []}, "return_addresses"),
        ({"return_addresses": ["not an address"]}, "return_addresses"),
        ({"arrondissement": None}, "arrondissement"),
        ({"arrondissement": "12"}, "arrondissement"),
        ({"collectivity_nature": "3"}, "collectivity_nature"),
        ({"siren": "21450249"}, "siren"),
        ({"department": "45A1"}, "department"),
        ({"referent": {"name": None, "phone": None, "email": "x@"}}, "referent.email"),
    ],
)
def test_envelope_writer_refuses_what_would_not_validate(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(NonConformantError) as info:
        actes_envelope.from_pivot(act(**changes))
    assert field.lower() in str(info.value).lower()


def test_empty_referent_is_left_out() -> None:
    written = actes_envelope.from_pivot(act(referent={"name": None, "phone": None, "email": None}))
    assert b"Referent" not in written


def test_prefecture_envelope_pivot_is_written_back() -> None:
    data = {
        "direction": "PREFECTURE_TO_COLLECTIVITY", "emitter_kind": "PREFECTURE", "emitter_siren": None, "department": "045",
        "arrondissement": None, "collectivity_nature": None, "recipient_siren": "214502494", "referent": None,
        "return_addresses": [], "forms": [{"file_name": "045-214502494-20240314-2024_DEL_12-DE-2-1_0.xml", "act_id": None, "message_code": None}],
    }
    pivot = Pivot(type="fr.dcant.acts.ActEnvelopeReceived", schema="fr.dcant.acts.ActEnvelope", subject="x", data=data, format="actes-envelope")
    back = actes_envelope.to_pivot(actes_envelope.from_pivot(pivot))
    assert back.data["emitter_kind"] == "PREFECTURE"
    assert back.data["recipient_siren"] == "214502494"
    assert back.subject == "act:214502494:2024_DEL_12"
    with pytest.raises(NonConformantError):
        actes_envelope.from_pivot(Pivot(type="t", schema="fr.dcant.acts.ActEnvelope", subject="x", data={**data, "emitter_kind": "COLLECTIVITY"}, format="f"))
    with pytest.raises(NonConformantError):
        actes_envelope.from_pivot(Pivot(type="t", schema="fr.dcant.acts.ActEnvelope", subject="x", data={**data, "forms": []}, format="f"))


def test_writers_refuse_other_pivots() -> None:
    other = Pivot(type="fr.dcant.acts.ActCancelled", schema="fr.dcant.acts.ActCancelled", subject="x", data={}, format="actes")
    with pytest.raises(NonConformantError):
        actes.from_pivot(other)
    with pytest.raises(NonConformantError):
        actes_envelope.from_pivot(other)
