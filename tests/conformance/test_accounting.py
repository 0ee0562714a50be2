"""Conformance of the accounting adapters (PES V2) with the official DGFiP samples and XSD v5.17.

Every sample converts to a pivot that validates against its Avro schema; golden values are
read from specific samples; PES_Aller → pivot → PES_Aller keeps every pivot field and what the
bus writes validates against the PES V2 XSD. The samples' own XSD status is pinned: one
official sample (pes_creation-document.xml) does not validate, and is still read.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import ModuleType

import fastavro
import fastavro.validation
import pytest

from adapters import pes_acquit, pes_aller, pes_retour
from adapters._base import Pivot
from adapters._registry import sniff
from bus._errors import DocumentSignatureError, NonConformantError
from bus._pki import CertificateAuthority

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro" / "accounting"
SAMPLES = Path("accounting") / "pes-samples"

ALR2 = "HELIOS_SIMU_ALR2_1496987735_826268894.xml"
ACCENT = "HELIOS_SIMU_ALR2_LibelleColBud_avec_accent.xml"
CREATION = "pes_creation-document.xml"
ACQUIT = "pes_acquit.xml"
RETOUR = "HELIOS_SIMU_RETOUR_1565181244_184723364.xml"

CASES: list[tuple[str, ModuleType, str]] = [
    (ALR2, pes_aller, "Bordereau"),
    (ACCENT, pes_aller, "Bordereau"),
    (CREATION, pes_aller, "Bordereau"),
    (ACQUIT, pes_acquit, "Acquittement"),
    (RETOUR, pes_retour, "PesRetour"),
]


def _schema(record: str) -> dict:
    return fastavro.parse_schema(json.loads((SCHEMAS / f"{record}.v1.avsc").read_text(encoding="utf-8")))


def _read(corpus: Path, name: str) -> bytes:
    return (corpus / SAMPLES / name).read_bytes()


def test_every_sample_is_covered(corpus: Path) -> None:
    assert sorted(p.name for p in (corpus / SAMPLES).glob("*.xml")) == sorted(name for name, _, _ in CASES)


@pytest.mark.parametrize(("name", "module", "record"), CASES)
def test_sample_converts_to_a_valid_pivot(corpus: Path, name: str, module: ModuleType, record: str) -> None:
    data = _read(corpus, name)
    assert module.detect(sniff(data))
    pivot = module.to_pivot(data, name=name)
    assert pivot.schema == f"fr.dcant.accounting.{record}"
    assert fastavro.validation.validate(dict(pivot.data), _schema(record), raise_errors=True)


def test_golden_pes_aller(corpus: Path) -> None:
    pivot = pes_aller.to_pivot(_read(corpus, ALR2), name=ALR2)
    data = pivot.data
    assert pivot.subject == "bordereau:12345678912345:2009:1234567"
    assert data["header"]["collectivity_id"] == "12345678912345"
    assert (data["header"]["collectivity_code"], data["header"]["budget_code"]) == ("123", "12")
    assert (data["exercise"], data["number"], data["issue_date"]) == (2009, "1234567", dt.date(2009, 7, 16))
    assert len(data["mandats"]) == 1
    (mandat,) = data["mandats"]
    assert (mandat["id"], mandat["object"], mandat["amount_excl_tax"]) == ("832", "TEST HOMOLOGATION", "39724.75")
    assert mandat["lignes"][0]["imputation"]["nature"] == "6553"
    assert mandat["creditor"]["name"] == "PAIERIE DEPART. HERAULT"
    assert mandat["creditor"]["bank_account"]["bank_code"] == "30001"
    assert data["total_excl_tax"] == "75724.75"  # kept as written, although the lines sum to 39724.75
    assert any("MtBordHT is 75724.75" in w for w in pivot.warnings)


def test_golden_accented_label_read_from_iso_8859_1(corpus: Path) -> None:
    pivot = pes_aller.to_pivot(_read(corpus, ACCENT), name=ACCENT)
    assert pivot.data["header"]["budget_label"] == "Test é(-è_çà)="


def test_golden_acquittement(corpus: Path) -> None:
    pivot = pes_acquit.to_pivot(_read(corpus, ACQUIT), name=ACQUIT)
    assert pivot.subject == "bordereau:20004910400025:2015:1847"
    data = pivot.data
    assert data["file_name"] == "HELIOS_SIMU_ALR2_1477486132_1155762524.xml"
    assert data["accepted"] is True and data["errors"] == []
    assert [e["domain"] for e in data["elements"]] == ["5", "4", "4", "4", "4"]
    assert data["elements"][1]["unique_id"] == "200049104000252015DEPENSE0000087458"


def test_golden_pes_retour(corpus: Path) -> None:
    pivot = pes_retour.to_pivot(_read(corpus, RETOUR), name=RETOUR)
    assert pivot.subject == "bordereau:12345678900012:2009:1234567"
    (mandat,) = pivot.data["bordereaux"][0]["mandats"]
    assert mandat["object"] == "Test accent éÉÈÈêà"
    assert (mandat["state"], mandat["taken_in_charge_date"]) == ("01", dt.date(2008, 12, 12))
    assert mandat["lines"][0]["amount_excl_tax"] == "39724.75"
    assert pivot.data["accounting_office_name"] == "CORBARIEU "


# What the official samples themselves give against the XSD v5.17 (readers are tolerant).
SAMPLE_XSD_STATUS = {
    ALR2: [],
    ACCENT: [],
    CREATION: ["/n:PES_Aller", "/n:PES_Aller/PES_DepenseAller/Bordereau/BlocBordereau/IdBord"],
    ACQUIT: [],
    RETOUR: [],
}


@pytest.mark.parametrize(("name", "module", "record"), CASES)
def test_sample_xsd_status(corpus: Path, name: str, module: ModuleType, record: str) -> None:
    findings = module.validate(_read(corpus, name), schema_dir=corpus, name=name)
    assert [f.location for f in findings] == SAMPLE_XSD_STATUS[name]
    assert all(f.rule == "XSD" for f in findings)


@pytest.mark.parametrize("name", [ALR2, ACCENT])
def test_pes_aller_round_trip_validates(corpus: Path, name: str) -> None:
    pivot = pes_aller.to_pivot(_read(corpus, name), name=name)
    written = pes_aller.from_pivot(pivot, schema_dir=corpus)
    assert pes_aller.validate(written, schema_dir=corpus, name="written") == []
    assert written.startswith(b"<?xml version='1.0' encoding='ISO-8859-1'?>")
    assert pes_aller.to_pivot(written, name="written").data == pivot.data


@pytest.mark.parametrize("name", [ALR2, ACCENT])
def test_signed_pes_aller_validates_and_verifies(corpus: Path, name: str, tmp_path: Path) -> None:
    """A bordereau signed by the bus (XAdES, DGFiP policy) still validates against the PES XSD v5.17."""
    issued = CertificateAuthority.init(tmp_path / "ca").issue("219990017", tmp_path / "issued")
    pivot = pes_aller.to_pivot(_read(corpus, name), name=name)
    signer = pes_aller.PesSigner.from_files(issued.certfile, issued.keyfile)
    signed = pes_aller.from_pivot(pivot, schema_dir=corpus, signer=signer)
    assert pes_aller.validate(signed, schema_dir=corpus, name="signed") == []
    back = pes_aller.to_pivot(signed, name="signed", trust=issued.cafile, require_signature=True)
    assert back.warnings == pivot.warnings  # the sample's own total warning, nothing about the signature
    assert {**back.data, "dematerialised": pivot.data["dematerialised"]} == pivot.data
    with pytest.raises(DocumentSignatureError):
        pes_aller.to_pivot(signed.replace(b'IdBord V="', b'IdBord V="9', 1), name="tampered")


def test_writer_refuses_what_the_xsd_refuses(corpus: Path) -> None:
    pivot = pes_aller.to_pivot(_read(corpus, CREATION), name=CREATION)
    with pytest.raises(NonConformantError) as info:
        pes_aller.from_pivot(pivot)  # PES_Aller/@Id "3f80..." is not an xs:ID
    assert info.value.context["rule"] == "PES-ID"
    data = {**pivot.data, "file": {**pivot.data["file"], "id": None}}
    with pytest.raises(NonConformantError) as info:
        pes_aller.from_pivot(data, schema_dir=corpus)  # IdBord 733981751 has more than 7 digits
    assert info.value.context["rule"] == "XSD"
    assert info.value.context["xpath"].endswith("/BlocBordereau/IdBord")


def minimal_bordereau() -> dict:
    """A bordereau built by hand: one mandat, one line, one creditor paid by IBAN."""
    return {
        "header": {
            "structure_date": dt.date(2024, 5, 2),
            "accounting_office": "031000",
            "collectivity_id": "21310555400017",
            "collectivity_code": "001",
            "budget_code": "01",
        },
        "exercise": 2024,
        "number": "17",
        "issue_date": dt.date(2024, 5, 2),
        "type": "01",
        "mandats": [
            {
                "id": "240",
                "type": "01",
                "nature": "01",
                "object": "Fournitures scolaires",
                "invoices": [{"number": "FA-2024-0042", "line_id": "1", "seller_id": "44306184100047"}],
                "creditor": {
                    "id": "44306184100047",
                    "id_type": "01",
                    "legal_nature": "03",
                    "name": "PAPETERIE DU CENTRE",
                    "address": {"type": "1", "line2": "3 PLACE DU MARCHE", "postcode": "31000", "city": "TOULOUSE"},
                    "bank_account": {"iban": "FR7630004000031234567890143", "bic": "BNPAFRPPXXX", "holder": "PAPETERIE DU CENTRE"},
                },
                "lignes": [
                    {"id": "1", "imputation": {"nature": "6067", "function": "212"}, "amount_excl_tax": "410.00", "vat_amount": "82.00"}
                ],
            }
        ],
    }


def test_hand_built_pivot_writes_a_valid_pes_aller(corpus: Path) -> None:
    written = pes_aller.from_pivot(minimal_bordereau(), schema_dir=corpus)
    assert pes_aller.validate(written, schema_dir=corpus, name="minimal") == []
    pivot: Pivot = pes_aller.to_pivot(written, name="minimal")
    assert pivot.subject == "bordereau:21310555400017:2024:17"
    assert fastavro.validation.validate(dict(pivot.data), _schema("Bordereau"), raise_errors=True)
    (mandat,) = pivot.data["mandats"]
    assert (mandat["amount_excl_tax"], mandat["amount_incl_tax"]) == ("410.00", "492.00")
    assert mandat["invoices"][0]["number"] == "FA-2024-0042"
    assert mandat["creditor"]["bank_account"]["iban"] == "FR7630004000031234567890143"
    assert (pivot.data["piece_count"], pivot.data["total_excl_tax"]) == (1, "410.00")
