"""The catalog: loading the shipped schemas, historic versions, JSON conversion."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bus import Catalog, SchemaError, UnknownSchemaError
from bus._catalog import from_json_value


def test_every_shipped_schema_loads_with_a_unique_fingerprint(catalog):
    assert len(catalog) >= 3
    fingerprints = [s.fingerprint for s in catalog]
    assert len(set(fingerprints)) == len(fingerprints)
    for schema in catalog:
        assert schema.name.startswith("fr.dcant.")
        assert schema.path is not None and schema.path.name == f"{schema.name.rsplit('.', 1)[1]}.v{schema.version}.avsc"


def test_every_field_of_every_shipped_schema_is_documented(catalog):
    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "record":
                for field in node["fields"]:
                    assert field.get("doc"), f"{where}.{field['name']} has no doc naming its official term"
                    walk(field["type"], f"{where}.{field['name']}")
            for key in ("items", "values"):
                if key in node:
                    walk(node[key], where)
        elif isinstance(node, list):
            for branch in node:
                walk(branch, where)

    for schema in catalog:
        walk(schema.raw, schema.name)


def test_file_name_must_match_record(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "Other.v1.avsc").write_text(json.dumps({"type": "record", "name": "A", "fields": []}))
    with pytest.raises(SchemaError, match="defines"):
        Catalog.load(tmp_path)


def test_badly_named_file(tmp_path):
    (tmp_path / "A.avsc").write_text("{}")
    with pytest.raises(SchemaError, match="v<N>"):
        Catalog.load(tmp_path)


def test_same_version_twice_with_other_content():
    cat = Catalog()
    cat.add({"type": "record", "name": "A", "fields": []}, version=1)
    with pytest.raises(SchemaError, match="twice"):
        cat.add({"type": "record", "name": "A", "fields": [{"name": "x", "type": "int"}]}, version=1)


def test_catalog_record_round_trip(catalog):
    company = catalog.latest("fr.dcant.reference.Company")
    fresh = Catalog()
    assert fresh.add_catalog_record(company.to_catalog_record()).fingerprint == company.fingerprint
    tampered = json.loads(company.to_catalog_record())
    tampered["fingerprint"] = "00" * 8
    with pytest.raises(SchemaError):
        fresh.add_catalog_record(json.dumps(tampered).encode())


def test_unknown_name(catalog):
    with pytest.raises(UnknownSchemaError):
        catalog.latest("fr.dcant.nope.Nope")


def test_json_values_come_back_as_avro_values(catalog):
    schema = catalog.latest("fr.dcant.reference.Attestation")
    value = from_json_value(schema.parsed, {
        "attestation_id": "A1", "kind": "URSSAF_VIGILANCE", "siren": "420820078", "issuer": "URSSAF",
        "issued_on": "2026-01-31", "valid_until": "2026-07-31", "status": "UP_TO_DATE",
        "document": {"sha256": "ab", "size": 3, "media_type": "application/pdf", "file_name": "a.pdf", "uri": "x"}})
    assert value["issued_on"] == dt.date(2026, 1, 31)
    assert value["document"]["size"] == 3
