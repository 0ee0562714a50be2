"""Unit tests of the PES_ACQUIT adapter: states, errors with their location, subject, fuzzing."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import pes_acquit
from adapters._registry import sniff
from bus._errors import AdapterError, NonConformantError

NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"

# A dépense bordereau in anomaly with an error on the element, on a pièce and on a line,
# and an accepted pièce justificative.
DOC = f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<n:PES_ACQUIT xmlns:n="{NS}">
 <Enveloppe>
  <Parametres><Version V="2"/><TypFic V="PESALR2"/><NomFic V="PESALR2_ville.xml"/></Parametres>
  <Emetteur><Sigle V="HELIOS"/><Adresse V="DGFIP"/></Emetteur>
 </Enveloppe>
 <EnTetePES><DteStr V="2024-03-05"/><IdPost V="031000"/><IdColl V="21310555400017"/><CodCol V="001"/><CodBud V="01"/></EnTetePES>
 <ACQUIT>
  <EnTeteAcquit><IdVer V="2"/></EnTeteAcquit>
  <ElementACQUIT>
   <DomaineAck V="5"/><EtatAck V="0"/><NumBord V="0000042"/><ExerciceBord V="2024"/>
   <Erreur><NumAnoAck V="ERREUR_CUMUL_MONTANTS"/><LibelleAnoAck V="Cumul érroné"/></Erreur>
   <DetailPiece>
    <NumPiece V="101"/>
    <Erreur><NumAnoAck V="ERREUR_DOUBLON_PIECE"/><LibelleAnoAck V="Pièce en doublon"/></Erreur>
    <DetailLigne><NumLigne V="2"/><Erreur><NumAnoAck V="ERREUR_DOUBLON_LIGNE"/></Erreur></DetailLigne>
   </DetailPiece>
  </ElementACQUIT>
  <ElementACQUIT><DomaineAck V="4"/><EtatAck V="1"/><IdUnique V="FAC2024001"/></ElementACQUIT>
 </ACQUIT>
</n:PES_ACQUIT>
""".encode("iso-8859-1")


def test_detect() -> None:
    assert pes_acquit.detect(sniff(DOC))
    assert not pes_acquit.detect(sniff(b"<n:PES_Aller xmlns:n='http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller'/>"))


def test_anomaly_with_located_errors() -> None:
    pivot = pes_acquit.to_pivot(DOC, name="ack.xml")
    assert pivot.type == "fr.dcant.accounting.AcquittementReceived"
    assert pivot.subject == "bordereau:21310555400017:2024:42"
    data = pivot.data
    assert data["accepted"] is False
    assert data["file_name"] == "PESALR2_ville.xml"
    assert data["structure_date"] == dt.date(2024, 3, 5)
    assert [(e["domain_label"], e["accepted"]) for e in data["elements"]] == [("Dépense", False), ("PJ", True)]
    element = "/PES_ACQUIT/ACQUIT/ElementACQUIT[1]"
    assert data["errors"] == [
        {"element_index": 0, "piece_number": None, "line_number": None, "code": "ERREUR_CUMUL_MONTANTS",
         "label": "Cumul érroné", "location": f"{element}/Erreur[1]"},
        {"element_index": 0, "piece_number": "101", "line_number": None, "code": "ERREUR_DOUBLON_PIECE",
         "label": "Pièce en doublon", "location": f"{element}/DetailPiece[1]/Erreur[1]"},
        {"element_index": 0, "piece_number": "101", "line_number": "2", "code": "ERREUR_DOUBLON_LIGNE",
         "label": None, "location": f"{element}/DetailPiece[1]/DetailLigne[1]/Erreur[1]"},
    ]


def test_subject_falls_back_to_the_file_when_several_bordereaux() -> None:
    doc = DOC.replace(
        b"<ElementACQUIT><DomaineAck V=\"4\"/>",
        b'<ElementACQUIT><DomaineAck V="5"/><EtatAck V="1"/><NumBord V="43"/><ExerciceBord V="2024"/></ElementACQUIT>'
        b'<ElementACQUIT><DomaineAck V="4"/>',
    )
    pivot = pes_acquit.to_pivot(doc)
    assert pivot.subject == "pes:PESALR2_ville.xml"
    assert len(pivot.data["elements"]) == 3


def test_missing_required_value_is_located() -> None:
    with pytest.raises(NonConformantError) as info:
        pes_acquit.to_pivot(DOC.replace(b'<EtatAck V="1"/>', b""))
    assert info.value.context["xpath"] == "/PES_ACQUIT/ACQUIT/ElementACQUIT[2]/EtatAck"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(min_value=0, max_value=len(DOC) - 1), st.integers(min_value=0, max_value=40), st.binary(max_size=12))
def test_fuzz_mutated_document(start: int, length: int, insert: bytes) -> None:
    try:
        pes_acquit.to_pivot(DOC[:start] + insert + DOC[start + length :], name="fuzz")
    except AdapterError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=1000))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        pes_acquit.to_pivot(data)
    except AdapterError:
        pass
