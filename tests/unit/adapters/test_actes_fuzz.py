"""Hypothesis fuzzing of the ACTES adapters: whatever comes in, only AdapterError escapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters import Pivot, actes, actes_envelope
from adapters._actes_common import ACTES_NS, INSEE_NS, MESSAGE_CODES
from bus._errors import AdapterError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ROOTS = sorted({*MESSAGE_CODES, "AnomalieEnveloppe", "EnveloppeCLMISILL", "EnveloppeMISILLCL"})
CHILDREN = sorted(
    {
        "ActeRecu", "Acte", "Annexe", "Annexes", "ClassificationDateVersion", "ClassificationDateVersionEnCours",
        "CodeMatiere1", "CodeMatiere2", "CodeMatiere3", "Date", "DateClassification", "DateDepot", "Destinataire",
        "Detail", "Document", "Documents", "Email", "Emetteur", "EnveloppeRecue", "FormulairesEnvoyes", "Formulaire",
        "IDCL", "IDPref", "IDSousPref", "InfosCourrierPref", "Matiere1", "Matiere2", "Matieres", "Motif", "Nature",
        "NatureActe", "NatureIllegalite", "NaturesActes", "NomFichier", "Objet", "PieceJointe", "PiecesJointes",
        "PrecedentIdentifiantActe", "Referent", "AdressesRetour", "TypePJNatureActe",
    }
)
ATTRS = sorted(
    {"Date", "NumeroInterne", "CodeNatureActe", "CodeMatiere", "IDActe", "DateReception", "DateCourrierPref", "Nombre",
     "Departement", "Arrondissement", "Nature", "Libelle", "TypeAbrege", "CodeTypePJ"}
)
VALUES = st.one_of(
    st.sampled_from(["2017-07-01", "034-000000000-20170701-20170725A-AI", "3", "042", "D201717", "", " ", "99999999999", "1.5", "0"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
)
NAMES = st.sampled_from(["034-000000000-20170701-20170721D-AI-1-3_0.xml", "045-214502494-20170717-D201717-DE-1-1_0.xml", "x.xml", "<bytes>"])


@st.composite
def element(draw: st.DrawFn, local: str, depth: int) -> etree._Element:
    node = etree.Element(f"{{{ACTES_NS}}}{local}", nsmap={"actes": ACTES_NS, "insee": INSEE_NS})
    for attr in draw(st.lists(st.sampled_from(ATTRS), max_size=4, unique=True)):
        node.set(f"{{{ACTES_NS}}}{attr}", draw(VALUES))
    if draw(st.booleans()):
        node.set(f"{{{INSEE_NS}}}SIREN", draw(st.sampled_from(["214502494", "12", ""])))
    if depth < 3:
        for child in draw(st.lists(st.sampled_from(CHILDREN), max_size=4)):
            node.append(draw(element(child, depth + 1)))
    if draw(st.booleans()):
        node.text = draw(VALUES)
    return node


@st.composite
def actes_documents(draw: st.DrawFn) -> bytes:
    root = draw(element(draw(st.sampled_from(ROOTS)), 0))
    return etree.tostring(root, xml_declaration=True, encoding=draw(st.sampled_from(["UTF-8", "ISO-8859-1"])))


def read(data: bytes, name: str) -> None:
    for module in (actes, actes_envelope):
        try:
            module.to_pivot(data, name=name)
        except AdapterError:
            pass


@FUZZ
@given(actes_documents(), NAMES)
def test_structured_actes_documents_raise_only_adapter_errors(data: bytes, name: str) -> None:
    read(data, name)


@FUZZ
@given(st.binary(max_size=2000), NAMES)
def test_arbitrary_bytes_raise_only_adapter_errors(data: bytes, name: str) -> None:
    read(data, name)


@FUZZ
@given(actes_documents(), st.integers(min_value=0, max_value=400), st.binary(max_size=8))
def test_truncated_or_corrupted_documents_raise_only_adapter_errors(data: bytes, cut: int, junk: bytes) -> None:
    read(data[: max(1, len(data) - cut)] + junk, "045-214502494-20170717-D201717-DE-1-1_0.xml")


ANY = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=30), st.dates(min_value=dt.date(1900, 1, 1)),
    st.lists(st.integers(min_value=-5, max_value=20), max_size=6), st.lists(st.text(max_size=10), max_size=3),
    st.lists(st.dictionaries(st.sampled_from(["role", "file_name", "name", "email"]), st.one_of(st.sampled_from(["MAIN", "ANNEX"]), st.text(max_size=12), st.none()), max_size=3), max_size=3),
    st.dictionaries(st.sampled_from(["name", "phone", "email"]), st.one_of(st.none(), st.text(max_size=12))),
)
FIELDS = ["act_id", "siren", "department", "arrondissement", "collectivity_nature", "number", "decision_date", "nature_code",
          "matiere_codes", "object", "classification_date", "previous_act_id", "documents", "referent", "return_addresses",
          "direction", "emitter_kind", "emitter_siren", "recipient_siren", "forms"]


@FUZZ
@given(st.fixed_dictionaries({}, optional={f: ANY for f in FIELDS}), st.sampled_from(["fr.dcant.acts.Act", "fr.dcant.acts.ActEnvelope"]))
def test_writers_raise_only_adapter_errors_on_any_pivot(data: dict[str, Any], schema: str) -> None:
    pivot = Pivot(type="t", schema=schema, subject="s", data=data, format="actes")
    for module in (actes, actes_envelope):
        try:
            module.from_pivot(pivot)
        except AdapterError:
            pass
