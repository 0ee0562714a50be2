"""Conformance of the SEDA adapter on the official corpus: every manifest and SIP converts to a
pivot valid against its avsc, golden values read by hand from specific samples, and what the
bus writes (SEDA 2.2 and 2.3) validates against the official XSDs.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import zoneinfo
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings

from adapters import seda
from adapters._registry import detect as registry_detect
from bus._errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
AVSC = ROOT / "schemas" / "avro" / "archives"
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
MANIFESTS = [
    "manifests/vitam-sip2_2.xml",
    "manifests/vitam-manifestContainsPersistentIdentifierOK-2.2.xml",
    "manifests/vitam-manifestContainsPersistentIdentifierOK-2.3.xml",
    "manifests/vitam-cookbook-signing-1-cas-simple.xml",
    "manifests/vitam-cookbook-signing-7-extensions.xml",
    "manifests/sedatools-seda2_1ArchiveTransfer.xml",
    "manifests/sedatools-SampleWithLinkFlatManifest.xml",
    "manifests/from-sip/OK_SEDA_2.1_Signature.manifest.xml",
    "manifests/from-sip/OK_SEDA_2.2_Signature.manifest.xml",
    "manifests/from-sip/OK_SIP_sans_objet.manifest.xml",
    "manifests/from-sip/sedatools-SIP_OK.manifest.xml",
    "manifests/from-sip/sip_all_metadata_with_custodialhistoryfile.manifest.xml",
]
SIPS = [
    "vitam-sip/OK_SEDA_2.1_Signature.zip",
    "vitam-sip/OK_SEDA_2.2_Signature.zip",
    "vitam-sip/OK_SIP_sans_objet.zip",
    "vitam-sip/sedatools-SIP_OK.zip",
    "vitam-sip/sip_all_metadata_with_custodialhistoryfile.zip",
]


def _factories() -> Any:
    # the pivot factories live beside the unit tests; load them by path (tests are not a package)
    path = ROOT / "tests" / "unit" / "adapters" / "seda_factories.py"
    spec = importlib.util.spec_from_file_location("seda_factories_for_conformance", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FACTORIES = _factories()


@pytest.fixture(scope="module")
def avro_schemas() -> dict[str, Any]:
    return {
        f"fr.dcant.archives.{name}": fastavro.parse_schema(json.loads((AVSC / f"{name}.v1.avsc").read_text()))
        for name in ("ArchiveTransfer", "ArchiveTransferReply", "Acknowledgement")
    }


def _archives(corpus: Path) -> Path:
    return corpus / "archives"


def test_corpus_lists_are_complete(corpus: Path) -> None:
    on_disk = {str(p.relative_to(_archives(corpus))) for p in (_archives(corpus) / "manifests").rglob("*.xml")}
    assert on_disk == set(MANIFESTS)
    assert {str(p.relative_to(_archives(corpus))) for p in (_archives(corpus) / "vitam-sip").glob("*.zip")} == set(SIPS)


@pytest.mark.parametrize("sample", MANIFESTS + SIPS)
def test_every_sample_converts_and_fits_its_avsc(corpus: Path, sample: str, avro_schemas: dict[str, Any]) -> None:
    pivot = seda.to_pivot((_archives(corpus) / sample).read_bytes(), name=sample)
    assert pivot.type == "fr.dcant.archives.ArchiveTransferRequested"
    assert pivot.subject == f"transfer:{pivot.data['message_identifier']}"
    assert fastavro.validation.validate(dict(pivot.data), avro_schemas[pivot.schema], raise_errors=True)


@pytest.mark.parametrize("sample", MANIFESTS + SIPS)
def test_registry_routes_every_sample_to_seda(corpus: Path, sample: str) -> None:
    assert registry_detect((_archives(corpus) / sample).read_bytes(), name=sample) is seda


@pytest.mark.parametrize("sample", MANIFESTS)
@pytest.mark.parametrize("version", ["2.2", "2.3"])
def test_read_write_read_keeps_every_field_and_validates(corpus: Path, sample: str, version: str) -> None:
    pivot = seda.to_pivot((_archives(corpus) / sample).read_bytes(), name=sample)
    record = {**pivot.data, "seda_version": version}
    written = seda.from_pivot(record)
    assert seda.validate(written, schema_dir=corpus, name=f"{sample} as {version}") == []
    assert dict(seda.to_pivot(written).data) == record


def test_sip_and_its_extracted_manifest_agree(corpus: Path) -> None:
    from_zip = seda.to_pivot((_archives(corpus) / "vitam-sip/sedatools-SIP_OK.zip").read_bytes())
    from_xml = seda.to_pivot((_archives(corpus) / "manifests/from-sip/sedatools-SIP_OK.manifest.xml").read_bytes())
    assert from_zip.data == from_xml.data


def test_golden_vitam_sip2_2(corpus: Path) -> None:
    data = seda.to_pivot((_archives(corpus) / "manifests/vitam-sip2_2.xml").read_bytes()).data
    assert data["seda_version"] == "2.2"
    assert data["message_identifier"] == "Entrée_avec_groupe_d_objet"
    assert data["date"] == dt.datetime(2016, 6, 23, 9, 45, 51, tzinfo=PARIS)
    assert (data["archival_agreement"], data["archival_profile"], data["service_level"]) == (
        "ArchivalAgreement0", "ArchivalProfile0", "ServiceLevel0")
    assert (data["archival_agency_identifier"], data["transferring_agency_identifier"]) == (
        "ArchivalAgency1", "TransferringAgency1")
    odp = data["binary_data_objects"][0]
    assert odp["id"] == "ID011" and odp["data_object_group_id"] == "ID006"
    assert odp["message_digest"].startswith("e726e114f302c871b645") and odp["digest_algorithm"] == "SHA-512"
    assert (odp["size"], odp["format_id"], odp["mime_type"]) == (
        100646, "fmt/293", "application/vnd.oasis.opendocument.presentation")
    assert odp["filename"] == "Vitam-Sensibilisation-API-V1.0.odp"
    assert [o["id"] for o in data["binary_data_objects"]] == ["ID011", "ID012", "ID013", "ID014"]
    assert data["physical_data_objects"] == [
        {"id": "ID009", "data_object_group_id": "ID006", "data_object_version": "PhysicalMaster",
         "physical_id": "1500W03"}]
    [unit] = data["archive_units"]
    assert (unit["id"], unit["description_level"], unit["title"]) == ("ID015", "Item", "Sensibilisation API")
    assert unit["transacted_date"] == "2016-05-05" and unit["created_date"] == "2016-05-05T20:45:20"
    assert unit["data_object_group_refs"] == ["ID006"]
    rules = unit["management"]
    assert rules["appraisal_rule"]["rules"] == [{"rule_id": "Rule2", "start_date": None}]
    assert rules["appraisal_rule"]["final_action"] == "Keep"
    assert rules["storage_rule"]["final_action"] == "RestrictAccess"
    assert [r["rule_id"] for r in rules["reuse_rule"]["rules"]] == ["Rule8", "Rule9"]
    assert rules["need_authorization"] is False


def test_golden_sedatools_sip_ok_rules(corpus: Path) -> None:
    data = seda.to_pivot((_archives(corpus) / "manifests/from-sip/sedatools-SIP_OK.manifest.xml").read_bytes()).data
    assert data["seda_version"] == "2.1"
    assert data["archival_agreement"] == "IC-000001"
    assert (data["legal_status"], data["acquisition_information"]) == ("Public Archive", "Versement")
    assert data["originating_agency_identifier"] == "RATP"
    package = data["management"]
    assert package["access_rule"]["rules"] == [{"rule_id": "ACC-00002", "start_date": dt.date(2000, 1, 1)}]
    assert package["appraisal_rule"] == {"rules": [], "prevent_inheritance": None, "ref_non_rule_ids": [],
                                         "final_action": "Keep"}
    assert package["need_authorization"] is True
    units = {u["id"]: u for u in data["archive_units"]}
    pleyel = units["ID8"]
    assert pleyel["title"] == "Carrefour Pleyel"
    assert pleyel["management"]["appraisal_rule"]["rules"] == [
        {"rule_id": "APP-00001", "start_date": dt.date(2001, 1, 1)}]
    assert pleyel["management"]["appraisal_rule"]["final_action"] == "Destroy"
    assert units["ID9"]["archive_unit_ref_id"] == "ID8"
    assert units["ID9"]["parent_id"] == "ID6"
    assert units["ID6"]["management"]["access_rule"]["prevent_inheritance"] is True


def test_golden_seda_22_signature_tree(corpus: Path) -> None:
    data = seda.to_pivot((_archives(corpus) / "manifests/from-sip/OK_SEDA_2.2_Signature.manifest.xml").read_bytes()).data
    assert [(u["id"], u["parent_id"], u["archive_unit_ref_id"]) for u in data["archive_units"]] == [
        ("ID3", None, None), ("ID5", "ID3", "ID4"), ("ID4", None, None)]
    assert data["archive_units"][0]["data_object_group_refs"] == ["ID6"]
    assert data["originating_agency_identifier"] == "FRAN_NP_009913"
    assert data["binary_data_objects"][1]["data_object_group_id"] == "ID30"


def test_golden_cookbook_23(corpus: Path) -> None:
    data = seda.to_pivot((_archives(corpus) / "manifests/vitam-cookbook-signing-1-cas-simple.xml").read_bytes()).data
    assert data["seda_version"] == "2.3"
    assert data["date"] == dt.datetime(2023, 6, 20, 16, 52, 49, 596000, tzinfo=PARIS)
    [obj] = data["binary_data_objects"]
    assert (obj["id"], obj["data_object_group_id"], obj["size"], obj["format_id"]) == ("ID11", "ID10", 370989, "fmt/19")
    assert obj["filename"] == "SignedDocumentWithEmbeddedSignatureAndTimestamp.pdf"


@pytest.mark.parametrize("version", ["2.2", "2.3"])
def test_factory_messages_validate(corpus: Path, version: str) -> None:
    for kind, record in (
        ("ArchiveTransfer", FACTORIES.transfer(seda_version=version)),
        ("ArchiveTransferReply", FACTORIES.reply(seda_version=version)),
        ("Acknowledgement", FACTORIES.acknowledgement(seda_version=version)),
    ):
        assert seda.validate(seda.from_pivot(record, kind=kind), schema_dir=corpus, name=kind) == []


def test_validate_reports_xsd_errors_with_their_location(corpus: Path) -> None:
    data = (_archives(corpus) / "manifests/from-sip/OK_SEDA_2.2_Signature.manifest.xml").read_bytes()
    findings = seda.validate(data, schema_dir=corpus, name="sig")
    assert findings and all(f.rule == "XSD" for f in findings)
    assert any("PersistentIdentifier" in f.message and f.location.startswith("/") for f in findings)


def test_validate_without_the_xsd_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as err:
        seda.validate(seda.from_pivot(FACTORIES.transfer()), schema_dir=tmp_path)
    assert "culturecommunication/seda" in err.value.hint


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(FACTORIES.transfers())
def test_random_pivots_write_valid_seda(corpus: Path, record: dict[str, Any]) -> None:
    findings = seda.validate(seda.from_pivot(record), schema_dir=corpus, name="random")
    assert findings == []
