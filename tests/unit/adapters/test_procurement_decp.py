"""Unit tests of the DECP v2 adapter: reading, writing, the round trip, the schema checker, `bus adapt|export`."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import decp
from adapters._base import Sniff
from adapters._decp_jsonschema import check
from bus._errors import AdapterError, NonConformantError, UnknownFormatError

MARCHE = {
    "id": "2024-0042",
    "acheteur": {"id": "21690123100014"},
    "nature": "Marché",
    "objet": "Entretien des espaces verts",
    "codeCPV": "77310000",
    "techniques": {"technique": ["Sans objet"]},
    "modalitesExecution": {"modaliteExecution": ["Bons de commande"]},
    "marcheInnovant": False,
    "ccag": "Fournitures courantes et services",
    "offresRecues": 3,
    "attributionAvance": False,
    "tauxAvance": 0.05,
    "typeGroupementOperateurs": "Pas de groupement",
    "sousTraitanceDeclaree": False,
    "procedure": "Procédure adaptée",
    "lieuExecution": {"code": "69123", "typeCode": "Code commune"},
    "dureeMois": 24,
    "dateNotification": "2024-02-15",
    "datePublicationDonnees": "2024-02-20",
    "montant": 125000.50,
    "typesPrix": {"typePrix": ["Définitif ferme"]},
    "formePrix": "Unitaire",
    "titulaires": [{"titulaire": {"typeIdentifiant": "SIRET", "id": "55210055400012"}}],
    "considerationsSociales": {"considerationSociale": ["Pas de considération sociale"]},
    "considerationsEnvironnementales": {"considerationEnvironnementale": ["Clause environnementale"]},
}


def package(*contracts: dict, kind: str = "marche") -> bytes:
    return json.dumps({"marches": {kind: list(contracts)}}, ensure_ascii=False).encode()


def test_one_marche_becomes_contract_data_keyed_by_its_id() -> None:
    pivot = decp.to_pivot(package(MARCHE))
    assert pivot.type == "fr.dcant.procurement.ContractDataPublished"
    assert pivot.subject == "contract:2024-0042"
    data = pivot.data
    assert (data["kind"], data["buyer_id"], data["amount"], data["advance_rate"]) == (
        "marche", "21690123100014", "125000.5", "0.05")
    assert data["notification_date"] == dt.date(2024, 2, 15)
    assert data["holders"] == [{"id_type": "SIRET", "id": "55210055400012"}]
    assert data["modifications"] is None


def test_amounts_keep_the_digits_written() -> None:
    raw = package(MARCHE).replace(b"125000.5", b"125000.50")
    assert decp.to_pivot(raw).data["amount"] == "125000.50"
    assert b'"montant": 125000.50' in decp.from_pivot(decp.to_pivot(raw))


def test_round_trip_keeps_every_field() -> None:
    raw = package(MARCHE)
    again = decp.from_pivot(decp.to_pivot(raw))
    assert json.loads(again, parse_float=Decimal) == json.loads(raw, parse_float=Decimal)


def test_multi_contract_package_needs_to_pivots() -> None:
    other = dict(MARCHE, id="2024-0043")
    with pytest.raises(NonConformantError) as info:
        decp.to_pivot(package(MARCHE, other))
    assert info.value.context["rule"] == "DECP-one-contract"
    assert [p.subject for p in decp.to_pivots(package(MARCHE, other))] == ["contract:2024-0042", "contract:2024-0043"]


def test_wrong_types_are_non_conformant_with_a_json_pointer() -> None:
    with pytest.raises(NonConformantError) as info:
        decp.to_pivot(package(dict(MARCHE, montant="beaucoup")))
    assert info.value.context["xpath"] == "/marches/marche/0/montant"


def test_v15_packages_are_refused() -> None:
    with pytest.raises(UnknownFormatError) as info:
        decp.to_pivot(b'{"marches": [{"id": "1"}]}')
    assert "v1.5" in info.value.message


def test_schema_checker_reports_keyword_and_pointer() -> None:
    schema = {
        "type": "object",
        "required": ["a"],
        "additionalProperties": False,
        "properties": {"a": {"type": "string", "pattern": "^[0-9]{14}$"}, "n": {"type": "number", "minimum": 1}},
    }
    assert check({"a": "12345678901234", "n": 2}, schema) == []
    findings = check({"a": "x", "n": 0, "z": 1}, schema)
    found = {(f.rule, f.location) for f in findings}
    # jsonschema reports an unexpected property on the object that holds it, naming it in the message.
    assert found == {("DECP-pattern", "/a"), ("DECP-minimum", "/n"), ("DECP-additionalProperties", "/")}
    assert any("'z'" in f.message for f in findings if f.rule == "DECP-additionalProperties")
    assert [f.rule for f in check({}, schema)] == ["DECP-required"]


def test_detect_needs_json_with_marches() -> None:
    assert decp.detect(Sniff("json", head=b'{"marches": {}}'))
    assert not decp.detect(Sniff("json", head=b'{"siret": "1"}'))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["marches", "marche", "contrat-concession", "id", "montant", "titulaires", "titulaire",
                         "dateNotification", "techniques", "technique", "acheteur"]), children, max_size=5),
    max_leaves=20,
))
def test_fuzz_json_values_raise_only_adapter_errors(value: object) -> None:
    try:
        decp.to_pivots(json.dumps({"marches": value}).encode())
    except AdapterError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_bytes_raise_only_adapter_errors(data: bytes) -> None:
    try:
        decp.to_pivots(data)
    except AdapterError:
        pass


def _bus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from bus.cli import main; main()", *args], capture_output=True,
                          text=True, timeout=120)


def test_bus_adapt_prints_every_contract_of_a_package_and_export_writes_them_back(tmp_path) -> None:
    (tmp_path / "decp.json").write_bytes(package(MARCHE, dict(MARCHE, id="2024-0043")))
    adapted = _bus("adapt", str(tmp_path / "decp.json"))
    assert adapted.returncode == 0, adapted.stderr
    lines = [json.loads(line) for line in adapted.stdout.splitlines()]
    assert [p["subject"] for p in lines] == ["contract:2024-0042", "contract:2024-0043"]
    (tmp_path / "pivots.jsonl").write_text(adapted.stdout)
    back = _bus("export", "decp", str(tmp_path / "pivots.jsonl"), "--out", str(tmp_path / "back.json"))
    assert back.returncode == 0, back.stderr
    assert json.loads((tmp_path / "back.json").read_bytes(), parse_float=Decimal) == json.loads(
        package(MARCHE, dict(MARCHE, id="2024-0043")), parse_float=Decimal)
    one_format = _bus("export", "ubl", str(tmp_path / "pivots.jsonl"))
    assert one_format.returncode == 2 and len(one_format.stderr.strip().splitlines()) == 1, one_format.stderr
    assert "holds 2 pivot events" in one_format.stderr


def test_bus_export_into_a_missing_folder_is_one_line(tmp_path) -> None:
    (tmp_path / "decp.json").write_bytes(package(MARCHE))
    adapted = _bus("adapt", str(tmp_path / "decp.json"))
    assert adapted.returncode == 0, adapted.stderr
    (tmp_path / "pivot.json").write_text(adapted.stdout)
    target = tmp_path / "missing" / "out.json"
    out = _bus("export", "decp", str(tmp_path / "pivot.json"), "--out", str(target))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines() == [f"bus: error: {target}: No such file or directory — "
                                               "check the path and its permissions"]


MODIFIED = dict(MARCHE, dureeMois=24, modifications=[
    {"modification": {"id": 2, "dureeMois": 30, "montant": 150000,
                      "titulaires": [{"titulaire": {"typeIdentifiant": "SIRET", "id": "73282932000074"}}],
                      "dateNotificationModification": "2025-01-10", "datePublicationDonneesModification": "2025-01-12"}},
    {"modification": {"id": 1, "montant": 130000.25, "dateNotificationModification": "2024-09-02",
                      "datePublicationDonneesModification": "2024-09-05"}},
])


def test_decp_modifications_become_contract_modified_after_their_contract() -> None:
    pivots = decp.to_pivots(package(MODIFIED))
    assert [p.type.rsplit(".", 1)[1] for p in pivots] == ["ContractDataPublished", "ContractModified", "ContractModified"]
    assert {p.subject for p in pivots} == {"contract:2024-0042"}
    first, second = (p.data for p in pivots[1:])
    assert (first["modification_id"], first["new_amount"], first["new_end_date"]) == ("1", "130000.25", None)
    assert (second["modification_id"], second["new_amount"], second["new_duration_months"]) == ("2", "150000", 30)
    # Notified on 15 February 2024, the contract now lasts 30 months: it ends on 14 August 2026.
    assert second["new_end_date"] == dt.date(2026, 8, 14)
    assert second["new_holder_sirets"] == ["73282932000074"]
    assert second["notification_date"] == dt.date(2025, 1, 10)


def test_a_modified_contract_still_reads_and_round_trips_as_one_contract() -> None:
    raw = package(MODIFIED)
    assert decp.to_pivot(raw).type == "fr.dcant.procurement.ContractDataPublished"
    again = decp.from_pivots(decp.to_pivots(raw))
    assert json.loads(again, parse_float=Decimal) == json.loads(raw, parse_float=Decimal)
