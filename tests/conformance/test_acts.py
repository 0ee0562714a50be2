"""Conformance of the ACTES adapters with the official corpus (../shared/corpus/acts).

Every sample converts and its pivot validates against its Avro schema; golden values were
read by hand from the samples; what the bus writes validates against actesv1_1.xsd.

Official samples that do NOT validate against actesv1_1.xsd (read with pivot warnings):
- messages/ar-actes-fakeTdt.xml: an actes:Acte before actes:ActeRecu, then ActeRecu and
  ClassificationDateVersionEnCours repeated (the latter empty);
- classification/classification-actes-generique.xml and classification-exemple-2019.xml:
  actes:TypePJNatureActe children of actes:NatureActe, added to ACTES after v1.1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate

from adapters import actes, actes_envelope, detect, read_bounded
from adapters._actes_xsd import actes_schema
from bus._errors import ConfigurationError

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro" / "acts"

SAMPLES = {
    "classification/classification-actes-generique.xml": ("actes", "fr.dcant.acts.ClassificationPublished", "classification:2017-11-13"),
    "classification/classification-exemple-2019.xml": ("actes", "fr.dcant.acts.ClassificationPublished", "classification:2019-03-01"),
    "classification/classification-fakeTdt.xml": ("actes", "fr.dcant.acts.ClassificationPublished", "classification:2004-04-01"),
    "messages/ar-actes-fakeTdt.xml": ("actes", "fr.dcant.acts.ActAcknowledged", "act:123456789:20130623C"),
    "messages-s2low/034-000000000-20170701-20170721D-AI-1-3_0.xml": ("actes", "fr.dcant.acts.ActAnomalyReported", "act:000000000:20170721D"),
    "messages-s2low/034-000000000-20170701-20170725A-AI-2-1_0.xml": ("actes", "fr.dcant.acts.PrefectureMessageReceived", "act:000000000:20170725A"),
    "messages-s2low/034-000000000-20170701-20170725A-AI-5-1_0.xml": ("actes", "fr.dcant.acts.PrefectureMessageReceived", "act:000000000:20170725A"),
    "messages-s2low/045-214502494-20170717-D201717-DE-1-1_0.xml": ("actes", "fr.dcant.acts.ActTransmitted", "act:214502494:D201717"),
    "messages-s2low/ANO_EACT--210703385--20170612-2.xml": ("actes", "fr.dcant.acts.ActAnomalyReported", "act:210703385:2017_048"),
    "messages-s2low/EACT--214502494--20170717-6.xml": ("actes-envelope", "fr.dcant.acts.ActEnvelopeReceived", "act:214502494:D201717"),
    "messages-s2low/TACT--SPREF0011-000000000-20170725-1.xml": ("actes-envelope", "fr.dcant.acts.ActEnvelopeReceived", "act:000000000:20170725A"),
}
NOT_XSD_VALID = {
    "messages/ar-actes-fakeTdt.xml",
    "classification/classification-actes-generique.xml",
    "classification/classification-exemple-2019.xml",
}


@cache
def avro_schema(full_name: str) -> Any:
    with (SCHEMAS / f"{full_name.rsplit('.', 1)[1]}.v1.avsc").open(encoding="utf-8") as fh:
        return fastavro.parse_schema(json.load(fh))


def load(corpus: Path, relative: str) -> Any:
    path = corpus / "acts" / relative
    data = read_bounded(path)
    return detect(data, name=path.name).to_pivot(data, name=path.name)


def test_every_sample_is_listed(corpus: Path) -> None:
    found = {p.relative_to(corpus / "acts").as_posix() for p in (corpus / "acts").rglob("*.xml")}
    assert found == set(SAMPLES)


@pytest.mark.parametrize("relative", sorted(SAMPLES))
def test_sample_converts_and_validates_against_its_avro_schema(corpus: Path, relative: str) -> None:
    path = corpus / "acts" / relative
    data = read_bounded(path)
    module = detect(data, name=path.name)
    fmt, event_type, subject = SAMPLES[relative]
    assert module.FORMAT == fmt
    pivot = module.to_pivot(data, name=path.name)
    assert (pivot.type, pivot.subject, pivot.format) == (event_type, subject, fmt)
    assert validate(pivot.data, avro_schema(pivot.schema), raise_errors=True)
    # Samples that break the XSD are read with a warning; valid ones without, except the act
    # whose file name disagrees with its nature code (see test_golden_act).
    expect_warnings = relative in NOT_XSD_VALID or relative.endswith("D201717-DE-1-1_0.xml")
    assert bool(pivot.warnings) == expect_warnings


@pytest.mark.parametrize("relative", sorted(SAMPLES))
def test_xsd_verdict_on_official_samples(corpus: Path, relative: str) -> None:
    findings = actes.validate(read_bounded(corpus / "acts" / relative), schema_dir=corpus, name=relative)
    assert bool(findings) == (relative in NOT_XSD_VALID)
    assert all(f.rule == "XSD" and f.location.startswith("/actes:") for f in findings)


def test_golden_act(corpus: Path) -> None:
    pivot = load(corpus, "messages-s2low/045-214502494-20170717-D201717-DE-1-1_0.xml")
    d = pivot.data
    assert d["act_id"] == "045-214502494-20170717-D201717-DE"
    assert (d["siren"], d["department"], d["number"]) == ("214502494", "045", "D201717")
    assert (d["decision_date"], d["classification_date"]) == (dt.date(2017, 7, 17), dt.date(2017, 4, 19))
    assert (d["nature_code"], d["nature_abbreviation"], d["matiere_codes"], d["object"]) == (4, "CC", [1, 1], "test")
    assert [(x["role"], x["file_name"]) for x in d["documents"]] == [("MAIN", "045-214502494-20170717-D201717-DE-1-1_1.pdf")]
    # The sample's name says DE (délibération) while @CodeNatureActe is 4 (contrats): a real-world quirk.
    assert pivot.warnings == ("the file name says nature DE, @CodeNatureActe says CC",)


def test_golden_envelope(corpus: Path) -> None:
    d = load(corpus, "messages-s2low/EACT--214502494--20170717-6.xml").data
    assert (d["direction"], d["emitter_siren"], d["department"], d["arrondissement"], d["collectivity_nature"]) == (
        "COLLECTIVITY_TO_PREFECTURE", "214502494", "045", "1", "31")
    assert d["referent"] == {"name": "ETest", "phone": None, "email": "test@test.fr"}
    assert d["return_addresses"] == ["totoo@toto.org"]
    assert [f["file_name"] for f in d["forms"]] == ["045-214502494-20170717-D201717-DE-1-1_0.xml"]
    t = load(corpus, "messages-s2low/TACT--SPREF0011-000000000-20170725-1.xml").data
    assert (t["direction"], t["emitter_kind"], t["department"], t["arrondissement"], t["recipient_siren"]) == (
        "PREFECTURE_TO_COLLECTIVITY", "SUB_PREFECTURE", "001", "1", "000000000")


def test_golden_acknowledgement(corpus: Path) -> None:
    d = load(corpus, "messages/ar-actes-fakeTdt.xml").data
    assert (d["act_id"], d["reception_date"], d["classification_version_in_force"]) == (
        "069-123456789-20130601-20130623C-AI", dt.date(2013, 6, 23), dt.date(2008, 12, 31))
    assert d["received_act"]["object"] == "TESTC" and d["received_act"]["matiere_codes"] == [3, 1]


def test_golden_anomalies(corpus: Path) -> None:
    a = load(corpus, "messages-s2low/034-000000000-20170701-20170721D-AI-1-3_0.xml").data
    assert (a["scope"], a["anomaly_date"], a["nature_code"], a["detail"]) == ("ACT", dt.date(2017, 7, 1), "042", "Ca ne fonctionne pas")
    assert a["received_act"]["classification_date"] == dt.date(2017, 7, 13)
    e = load(corpus, "messages-s2low/ANO_EACT--210703385--20170612-2.xml").data
    assert (e["scope"], e["siren"], e["department"], e["nature_code"], e["anomaly_date"]) == ("ENVELOPE", "210703385", "007", "5", dt.date(2017, 6, 12))
    assert e["detail"].startswith("SLO-EACT--210703385--20170612-2.tar.gz -> PREF-VERIF-02 : Votre numéro de SIREN")
    assert e["received_forms"] == ["007-210703385-20170519-2017_048-DE-1-1_0.xml"]


def test_golden_prefecture_messages(corpus: Path) -> None:
    c = load(corpus, "messages-s2low/034-000000000-20170701-20170725A-AI-2-1_0.xml").data
    assert (c["kind"], c["message_date"], c["act_id"]) == ("COURRIER_SIMPLE", dt.date(2017, 7, 25), "034-000000000-20170701-20170725A-AI")
    assert [x["file_name"] for x in c["documents"]] == ["034-000000000-20170701-20170725A-AI-2-1_1.pdf"]
    t = load(corpus, "messages-s2low/034-000000000-20170701-20170725A-AI-5-1_0.xml").data
    assert (t["kind"], t["message_date"], t["text"]) == ("DEFERE", dt.date(2017, 7, 1), "NATURE_TEST")


def test_golden_classifications(corpus: Path) -> None:
    old = load(corpus, "classification/classification-fakeTdt.xml").data
    assert [(n["code"], n["abbreviation"]) for n in old["natures"]] == [(1, "DE"), (2, "AR"), (3, "AI"), (4, "CC"), (5, "BF"), (6, "AU")]
    assert old["matieres"][0] == {"code": "1", "level": 1, "own_code": 1, "label": "Commande Publique", "parent_code": None}
    assert old["matieres"][1] == {"code": "1.1", "level": 2, "own_code": 1, "label": "Marches publics", "parent_code": "1"}
    assert (sum(m["level"] == 1 for m in old["matieres"]), sum(m["level"] == 2 for m in old["matieres"])) == (9, 57)
    new = load(corpus, "classification/classification-exemple-2019.xml").data
    levels = [m["level"] for m in new["matieres"]]
    assert (levels.count(1), levels.count(2), levels.count(3), levels.count(4)) == (9, 57, 105, 10)
    assert new["natures"][0]["attachment_types"][:2] == [
        {"code": "99_AU", "label": "Autre document"},
        {"code": "99_SE", "label": "Fichier de signature électronique"},
    ]
    last = new["matieres"][-1]
    assert (last["code"], last["label"], last["parent_code"]) == ("9.4", "Voeux et motions", "9")


def test_act_to_pivot_to_act_message_and_envelope_validate_against_the_xsd(corpus: Path) -> None:
    pivot = load(corpus, "messages-s2low/045-214502494-20170717-D201717-DE-1-1_0.xml")
    envelope = load(corpus, "messages-s2low/EACT--214502494--20170717-6.xml").data
    data = {**pivot.data, **{k: envelope[k] for k in ("arrondissement", "collectivity_nature", "referent", "return_addresses")}}
    data["object"] = "Délibération – budget 2017 (12 000 €), œuvres"
    data["documents"] = [*data["documents"], {"role": "ANNEX", "file_name": "annexe_1.pdf"}]
    full = dataclasses.replace(pivot, data=data)
    message = actes.from_pivot(full)
    assert actes.validate(message, schema_dir=corpus, name="act") == []
    written_envelope = actes_envelope.from_pivot(full)
    assert actes_envelope.validate(written_envelope, schema_dir=corpus, name="envelope") == []
    again = actes.to_pivot(message, name=actes.act_message_name(data))
    assert again.data["object"] == data["object"]
    assert actes_envelope.to_pivot(written_envelope).data["forms"][0]["file_name"] == "045-214502494-20170717-D201717-DE-1-1_0.xml"


@pytest.mark.parametrize("relative", ["messages-s2low/EACT--214502494--20170717-6.xml", "messages-s2low/TACT--SPREF0011-000000000-20170725-1.xml"])
def test_envelopes_are_written_back_valid(corpus: Path, relative: str) -> None:
    pivot = load(corpus, relative)
    written = actes_envelope.from_pivot(pivot)
    assert actes_envelope.validate(written, schema_dir=corpus, name=relative) == []
    assert actes_envelope.to_pivot(written).data == pivot.data


def test_schema_is_compiled_once(corpus: Path) -> None:
    assert actes_schema(corpus) is actes_schema(corpus)


def test_missing_xsd_names_the_package_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        actes.validate(b"<x/>", schema_dir=tmp_path, name="x")
    assert "actesv1_1.xsd" in info.value.hint and str(tmp_path / "acts" / "xsd") in info.value.hint
