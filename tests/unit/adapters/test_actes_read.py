"""Reading ACTES messages into pivots (adapters.actes, adapters.actes_envelope).

The messages here are written for the tests (not official samples) to reach the branches the
corpus does not: annexes, signatures, every prefecture message kind, deep classifications.
Every pivot is also checked against its Avro schema.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate

from adapters import actes, actes_envelope, detect
from bus._errors import MalformedDocumentError, NonConformantError, UnknownFormatError, UnsafeDocumentError

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas" / "avro" / "acts"
NS = 'xmlns:actes="http://www.interieur.gouv.fr/ACTES#v1.1-20040216" xmlns:insee="http://xml.insee.fr/schema"'
ID = "034-000000000-20170701-20170725A-AI"


@cache
def schema(full_name: str) -> Any:
    with (SCHEMAS / f"{full_name.rsplit('.', 1)[1]}.v1.avsc").open(encoding="utf-8") as fh:
        return fastavro.parse_schema(json.load(fh))


def conforms(pivot: Any) -> None:
    assert validate(pivot.data, schema(pivot.schema), raise_errors=True)


def xml(root: str, attrs: str = "", body: str = "") -> bytes:
    return f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<actes:{root} {NS} {attrs}>{body}</actes:{root}>'.encode("latin-1")


ACT_BODY = (
    '<actes:CodeMatiere1 actes:CodeMatiere="3"/><actes:CodeMatiere2 actes:CodeMatiere="1"/>'
    '<actes:CodeMatiere3 actes:CodeMatiere="12"/>'
    "<actes:Objet>Cession d'une parcelle à la commune</actes:Objet>"
    '<actes:PrecedentIdentifiantActe actes:IDActe="034-000000000-20170601-20170601B-DE"/>'
    "<actes:ClassificationDateVersion>2017-04-19</actes:ClassificationDateVersion>"
    "<actes:Document><actes:NomFichier>034-000000000-20170701-D42-DE-1-1_1.pdf</actes:NomFichier>"
    "<actes:Signature><sig/></actes:Signature></actes:Document>"
    '<actes:Annexes actes:Nombre="2"><actes:Annexe><actes:NomFichier>034-000000000-20170701-D42-DE-1-1_2.pdf</actes:NomFichier></actes:Annexe>'
    "<actes:Annexe><actes:NomFichier>plan.png</actes:NomFichier></actes:Annexe></actes:Annexes>"
)
ACT_ATTRS = 'actes:Date="2017-07-01" actes:NumeroInterne="D42" actes:CodeNatureActe="1"'
ACT_NAME = "034-000000000-20170701-D42-DE-1-1_0.xml"


def test_act_message_becomes_act_transmitted() -> None:
    pivot = actes.to_pivot(xml("Acte", ACT_ATTRS, ACT_BODY), name=ACT_NAME)
    conforms(pivot)
    assert (pivot.type, pivot.schema, pivot.subject) == ("fr.dcant.acts.ActTransmitted", "fr.dcant.acts.Act", "act:000000000:D42")
    data = pivot.data
    assert data["act_id"] == "034-000000000-20170701-D42-DE"
    assert (data["siren"], data["department"], data["number"]) == ("000000000", "034", "D42")
    assert data["decision_date"] == dt.date(2017, 7, 1)
    assert (data["nature_code"], data["nature_abbreviation"], data["nature_label"]) == (1, "DE", "Délibérations")
    assert data["matiere_codes"] == [3, 1, 12]
    assert data["classification_code"] == "3.1.12"
    assert data["object"] == "Cession d'une parcelle à la commune"
    assert data["previous_act_id"] == "034-000000000-20170601-20170601B-DE"
    assert data["classification_date"] == dt.date(2017, 4, 19)
    assert [(d["role"], d["file_name"], d["media_type"], d["signed"]) for d in data["documents"]] == [
        ("MAIN", "034-000000000-20170701-D42-DE-1-1_1.pdf", "application/pdf", True),
        ("ANNEX", "034-000000000-20170701-D42-DE-1-1_2.pdf", "application/pdf", False),
        ("ANNEX", "plan.png", "image/png", False),
    ]
    assert data["personal_data"] is None and all(d["personal_data"] is None for d in data["documents"])
    assert pivot.warnings == ()


def test_act_message_needs_its_actes_file_name() -> None:
    with pytest.raises(NonConformantError) as info:
        actes.to_pivot(xml("Acte", ACT_ATTRS, ACT_BODY), name="upload.xml")
    assert info.value.context["rule"] == "ACTES-FILE-NAME"
    assert "SIREN" in info.value.hint


def test_act_message_disagreeing_with_its_name_keeps_the_name_identifier_and_warns() -> None:
    pivot = actes.to_pivot(xml("Acte", ACT_ATTRS.replace('"1"', '"4"'), ACT_BODY), name=ACT_NAME)
    assert pivot.data["act_id"] == "034-000000000-20170701-D42-DE"
    assert pivot.data["nature_abbreviation"] == "CC"
    assert any("nature DE" in w for w in pivot.warnings)


def test_act_message_tolerates_unqualified_attributes_and_unknown_elements_with_warnings() -> None:
    body = ACT_BODY.replace('actes:CodeMatiere="12"', 'CodeMatiere="12"') + "<actes:Extra/>"
    pivot = actes.to_pivot(xml("Acte", ACT_ATTRS, body), name=ACT_NAME)
    conforms(pivot)
    assert pivot.data["matiere_codes"] == [3, 1, 12]
    assert any("not namespace-qualified" in w for w in pivot.warnings)
    assert any("actes:Extra" in w for w in pivot.warnings)


def test_missing_required_attribute_names_its_xpath() -> None:
    with pytest.raises(NonConformantError) as info:
        actes.to_pivot(xml("Acte", 'actes:Date="2017-07-01" actes:CodeNatureActe="1"', ACT_BODY), name=ACT_NAME)
    assert info.value.context["xpath"] == "/actes:Acte/@NumeroInterne"
    assert info.value.context["rule"] == "XSD"


@pytest.mark.parametrize(
    ("attrs", "fragment"),
    [
        (ACT_ATTRS.replace("2017-07-01", "01/07/2017"), "Date"),
        (ACT_ATTRS.replace('CodeNatureActe="1"', 'CodeNatureActe="un"'), "CodeNatureActe"),
        (ACT_ATTRS.replace('CodeNatureActe="1"', 'CodeNatureActe="99999999999"'), "CodeNatureActe"),
    ],
)
def test_unreadable_values_are_non_conformant(attrs: str, fragment: str) -> None:
    with pytest.raises(NonConformantError) as info:
        actes.to_pivot(xml("Acte", attrs, ACT_BODY), name=ACT_NAME)
    assert fragment in str(info.value)


def test_acknowledgement() -> None:
    received = f'<actes:ActeRecu {ACT_ATTRS}>{ACT_BODY}</actes:ActeRecu>'
    body = received + "<actes:ClassificationDateVersionEnCours>2017-06-30</actes:ClassificationDateVersionEnCours>"
    pivot = actes.to_pivot(xml("ARActe", f'actes:IDActe="{ID}" actes:DateReception="2017-07-26"', body))
    conforms(pivot)
    assert (pivot.type, pivot.subject) == ("fr.dcant.acts.ActAcknowledged", "act:000000000:20170725A")
    assert pivot.data["reception_date"] == dt.date(2017, 7, 26)
    assert pivot.data["classification_version_in_force"] == dt.date(2017, 6, 30)
    assert pivot.data["received_act"]["file_names"] == [
        "034-000000000-20170701-D42-DE-1-1_1.pdf",
        "034-000000000-20170701-D42-DE-1-1_2.pdf",
        "plan.png",
    ]


def test_acknowledgement_with_a_malformed_idacte_is_refused() -> None:
    with pytest.raises(NonConformantError) as info:
        actes.to_pivot(xml("ARActe", 'actes:IDActe="34-000000000-20170701-X-AI" actes:DateReception="2017-07-26"'))
    assert info.value.context["xpath"] == "/actes:ARActe/@IDActe"


@pytest.mark.parametrize(("root", "stage", "reception"), [("Annulation", "REQUESTED", None), ("ARAnnulation", "ACKNOWLEDGED", dt.date(2017, 8, 2))])
def test_cancellation(root: str, stage: str, reception: dt.date | None) -> None:
    attrs = f'actes:IDActe="{ID}"' + (' actes:DateReception="2017-08-02"' if reception else "")
    pivot = actes.to_pivot(xml(root, attrs))
    conforms(pivot)
    assert (pivot.type, pivot.subject) == ("fr.dcant.acts.ActCancelled", "act:000000000:20170725A")
    assert (pivot.data["stage"], pivot.data["reception_date"], pivot.data["number"]) == (stage, reception, "20170725A")


LETTER = f'actes:IDActe="{ID}" actes:DateCourrierPref="2017-07-25"'
DOC = "<actes:Document><actes:NomFichier>lettre.pdf</actes:NomFichier></actes:Document>"


@pytest.mark.parametrize(
    ("root", "attrs", "body", "kind", "code", "direction", "text", "files"),
    [
        ("ReponseCourrierSimple", LETTER, DOC, "REPONSE_COURRIER_SIMPLE", "2-2", "COLLECTIVITY_TO_PREFECTURE", None, ["lettre.pdf"]),
        ("DemandePieceComplementaire", LETTER, "<actes:DescriptionPieces>Le plan cadastral</actes:DescriptionPieces>" + DOC,
         "PIECES_COMPLEMENTAIRES", "3-1", "PREFECTURE_TO_COLLECTIVITY", "Le plan cadastral", ["lettre.pdf"]),
        ("ARDemandePieceComplementaire", LETTER, "", "AR_PIECES_COMPLEMENTAIRES", "3-2", "COLLECTIVITY_TO_PREFECTURE", None, []),
        ("RefusPieceComplementaire", LETTER, DOC, "REFUS_PIECES_COMPLEMENTAIRES", "3-3", "COLLECTIVITY_TO_PREFECTURE", None, ["lettre.pdf"]),
        ("PieceComplementaire", LETTER,
         "<actes:Documents><actes:Document><actes:NomFichier>a.pdf</actes:NomFichier></actes:Document>"
         "<actes:Document><actes:NomFichier>b.jpg</actes:NomFichier></actes:Document></actes:Documents>",
         "REPONSE_PIECES_COMPLEMENTAIRES", "3-4", "COLLECTIVITY_TO_PREFECTURE", None, ["a.pdf", "b.jpg"]),
        ("LettreObservations", LETTER, "<actes:Motif>Incompétence</actes:Motif>" + DOC,
         "LETTRE_OBSERVATIONS", "4-1", "PREFECTURE_TO_COLLECTIVITY", "Incompétence", ["lettre.pdf"]),
        ("ARLettreObservations", LETTER, "", "AR_LETTRE_OBSERVATIONS", "4-2", "COLLECTIVITY_TO_PREFECTURE", None, []),
        ("RejetLettreObservations", LETTER, DOC, "REJET_LETTRE_OBSERVATIONS", "4-3", "COLLECTIVITY_TO_PREFECTURE", None, ["lettre.pdf"]),
        ("ReponseLettreObservations", LETTER, DOC, "REPONSE_LETTRE_OBSERVATIONS", "4-4", "COLLECTIVITY_TO_PREFECTURE", None, ["lettre.pdf"]),
    ],
)
def test_prefecture_dialogue(root: str, attrs: str, body: str, kind: str, code: str, direction: str, text: str | None, files: list[str]) -> None:
    pivot = actes.to_pivot(xml(root, attrs, body))
    conforms(pivot)
    assert (pivot.type, pivot.subject) == ("fr.dcant.acts.PrefectureMessageReceived", "act:000000000:20170725A")
    data = pivot.data
    assert (data["kind"], data["message_code"], data["direction"], data["text"]) == (kind, code, direction, text)
    assert data["message_date"] == dt.date(2017, 7, 25)
    assert [d["file_name"] for d in data["documents"]] == files
    assert pivot.warnings == ()


@pytest.mark.parametrize(("root", "kind", "code"), [("ARPieceComplementaire", "AR_REPONSE_PIECES_COMPLEMENTAIRES", "3-5"), ("ARReponseRejetLettreObservations", "AR_REPONSE_LETTRE_OBSERVATIONS", "4-5")])
def test_prefecture_acknowledgement_of_an_answer(root: str, kind: str, code: str) -> None:
    pivot = actes.to_pivot(xml(root, 'actes:DateReception="2017-08-10"', f"<actes:InfosCourrierPref {LETTER}/>"))
    conforms(pivot)
    assert (pivot.data["kind"], pivot.data["message_code"], pivot.data["direction"]) == (kind, code, "PREFECTURE_TO_COLLECTIVITY")
    assert (pivot.data["reception_date"], pivot.data["message_date"]) == (dt.date(2017, 8, 10), dt.date(2017, 7, 25))
    assert pivot.data["act_id"] == ID


def test_deep_classification_is_flattened_with_parent_codes() -> None:
    body = (
        "<actes:DateClassification>2020-01-01</actes:DateClassification><actes:NaturesActes>"
        '<actes:NatureActe actes:CodeNatureActe="1" actes:Libelle="Délibérations" actes:TypeAbrege="DE"/></actes:NaturesActes>'
        '<actes:Matieres><actes:Matiere1 actes:CodeMatiere="7" actes:Libelle="Finances locales">'
        '<actes:Matiere2 actes:CodeMatiere="1" actes:Libelle="Décisions budgétaires">'
        '<actes:Matiere3 actes:CodeMatiere="2" actes:Libelle="M3"><actes:Matiere4 actes:CodeMatiere="4" actes:Libelle="M4">'
        '<actes:Matiere5 actes:CodeMatiere="5" actes:Libelle="M5"/></actes:Matiere4></actes:Matiere3></actes:Matiere2>'
        '<actes:Matiere2 actes:CodeMatiere="2" actes:Libelle="Fiscalité"/></actes:Matiere1></actes:Matieres>'
    )
    pivot = actes.to_pivot(xml("RetourClassification", "", body))
    conforms(pivot)
    assert (pivot.type, pivot.subject) == ("fr.dcant.acts.ClassificationPublished", "classification:2020-01-01")
    assert [(m["code"], m["level"], m["own_code"], m["parent_code"]) for m in pivot.data["matieres"]] == [
        ("7", 1, 7, None),
        ("7.1", 2, 1, "7"),
        ("7.1.2", 3, 2, "7.1"),
        ("7.1.2.4", 4, 4, "7.1.2"),
        ("7.1.2.4.5", 5, 5, "7.1.2.4"),
        ("7.2", 2, 2, "7"),
    ]
    assert pivot.data["natures"] == [{"code": 1, "label": "Délibérations", "abbreviation": "DE", "attachment_types": []}]


def test_unchanged_classification() -> None:
    pivot = actes.to_pivot(xml("ReponseClassificationSansChangement", "", "<actes:DateClassification>2019-03-01</actes:DateClassification>"))
    conforms(pivot)
    assert (pivot.data["status"], pivot.data["natures"], pivot.data["matieres"]) == ("UNCHANGED", [], [])


def test_envelope_without_conventional_form_names_falls_back_to_the_siren() -> None:
    body = (
        '<actes:Emetteur><actes:IDCL insee:SIREN="214502494" actes:Departement="045" actes:Arrondissement="1" actes:Nature="31"/></actes:Emetteur>'
        "<actes:AdressesRetour><actes:Email>a@b.fr</actes:Email></actes:AdressesRetour>"
        "<actes:FormulairesEnvoyes><actes:Formulaire><actes:NomFichier>acte.xml</actes:NomFichier></actes:Formulaire></actes:FormulairesEnvoyes>"
    )
    data = xml("EnveloppeCLMISILL", "", body)
    assert detect(data) is actes_envelope
    pivot = actes_envelope.to_pivot(data)
    conforms(pivot)
    assert pivot.subject == "envelope:214502494"
    assert pivot.data["forms"] == [{"file_name": "acte.xml", "act_id": None, "message_code": None}]
    assert any("falls back" in w for w in pivot.warnings)


def test_prefecture_envelope_needs_an_emitter() -> None:
    body = "<actes:Emetteur/><actes:FormulairesEnvoyes/>" '<actes:Destinataire insee:SIREN="000000000"/>'
    with pytest.raises(NonConformantError):
        actes_envelope.to_pivot(xml("EnveloppeMISILLCL", "", body))


def test_roots_are_dispatched_to_the_right_adapter() -> None:
    assert detect(xml("Annulation", f'actes:IDActe="{ID}"')) is actes
    with pytest.raises(NonConformantError) as info:
        actes.to_pivot(xml("EnveloppeCLMISILL"))
    assert "actes-envelope" in info.value.hint
    with pytest.raises(UnknownFormatError):
        actes_envelope.to_pivot(xml("Annulation", f'actes:IDActe="{ID}"'))


def test_demande_classification_has_no_pivot() -> None:
    with pytest.raises(NonConformantError) as info:
        actes.to_pivot(xml("DemandeClassification"))
    assert info.value.context["rule"] == "ACTES-MESSAGE"


def test_foreign_namespace_is_unknown_format() -> None:
    with pytest.raises(UnknownFormatError):
        actes.to_pivot(b'<Acte xmlns="urn:other"/>')


def test_hostile_and_broken_xml_raise_adapter_errors() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><actes:Annulation xmlns:actes="http://www.interieur.gouv.fr/ACTES#v1.1-20040216">&x;</actes:Annulation>'
    with pytest.raises(UnsafeDocumentError):
        actes.to_pivot(bomb)
    with pytest.raises(MalformedDocumentError):
        actes.to_pivot(xml("Annulation")[:-5])
