"""The contract for other languages: regenerated and diffed, and checked against outside oracles."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bus._catalog import default_catalog
from bus._contract import asyncapi, check_contract, contract_files, json_schema
from bus._topics import topic_map
from bus._settings import BusSettings

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ROOT / "contract"
VECTORS = sorted((CONTRACT / "vectors").glob("*.json"))


def test_the_committed_contract_is_what_the_sources_generate():
    assert check_contract(CONTRACT) == [], "run `bus asyncapi --out contract` and commit"


def test_a_changed_file_is_reported(tmp_path):
    for path, text in contract_files(CONTRACT).items():
        target = tmp_path / path.relative_to(CONTRACT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for source in (CONTRACT / "vectors" / "inputs").glob("*.json"):
        (tmp_path / "vectors" / "inputs").mkdir(parents=True, exist_ok=True)
        (tmp_path / "vectors" / "inputs" / source.name).write_text(source.read_text())
    assert check_contract(tmp_path) == []
    (tmp_path / "asyncapi.json").write_text("{}\n")
    assert check_contract(tmp_path) == [tmp_path / "asyncapi.json"]


def signed_bytes_from_headers(headers: list[list[str]], payload: bytes) -> bytes:
    """The signing rule as a vendor reads it in the docs: an independent re-implementation."""
    order = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "content-type",
             "ce_dataschema", "ce_correlationid", "ce_causationid", "ce_sigkeyid"]
    values = dict(headers)

    def field(name: str) -> bytes:
        return struct.pack(">I", 0xFFFFFFFF) if name not in values else \
            struct.pack(">I", len(values[name].encode())) + values[name].encode()

    if "ce_actor" in values:  # v3: then the recipients' place and the actor
        out = b"dcant-bus-sig-v3\x00" + b"".join(field(n) for n in (*order, "ce_recipients", "ce_actor"))
    elif "ce_recipients" in values:
        out = b"dcant-bus-sig-v2\x00" + b"".join(field(n) for n in (*order, "ce_recipients"))
    else:
        out = b"dcant-bus-sig-v1\x00" + b"".join(field(n) for n in order)
    return out + struct.pack(">Q", len(payload)) + payload


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_each_vector_verifies_with_an_independent_implementation(path):
    vector = json.loads(path.read_text())
    payload = bytes.fromhex(vector["payload_hex"])
    signed = signed_bytes_from_headers(vector["headers"], payload)
    assert signed.hex() == vector["signed_bytes_hex"]
    signature = base64.urlsafe_b64decode(vector["signature_b64url"] + "=" * (-len(vector["signature_b64url"]) % 4))
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(vector["signing_key"]["public_key_raw_hex"]))
    public.verify(signature, signed)  # raises InvalidSignature when the vector is wrong
    assert dict(vector["headers"])["ce_sig"] == vector["signature_b64url"]


def test_vectors_cover_absent_and_present_optional_attributes():
    present = [set(json.loads(p.read_text())["attributes"]) for p in VECTORS]
    assert any("causationid" in attrs for attrs in present) and any("causationid" not in attrs for attrs in present)
    assert any("actor" in attrs for attrs in present)


def test_the_json_schema_accepts_a_pivot_and_refuses_a_wrong_one():
    pivot = json.loads((ROOT / "examples" / "invoice-pivot.json").read_text())
    schema = json.loads((CONTRACT / "jsonschema" / f"{pivot['schema']}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    validator.validate(pivot["data"])
    broken = {**pivot["data"], "issue_date": "2 janvier"}
    assert not validator.is_valid(broken)
    assert not validator.is_valid({k: v for k, v in pivot["data"].items() if k != "number"})


def test_every_schema_has_a_json_schema_that_is_itself_valid():
    catalog = default_catalog()
    for name in catalog.names():
        jsonschema.Draft202012Validator.check_schema(json_schema(catalog.latest(name).raw))


def test_asyncapi_has_a_channel_per_topic_and_a_message_per_routed_schema():
    doc = asyncapi()
    assert doc["asyncapi"] == "3.0.0"
    topics = topic_map(BusSettings(topic_prefix=""))
    assert {c["address"] for c in doc["channels"].values()} == {t.name for t in topics.values()}
    invoices = doc["channels"]["invoices"]["messages"]
    assert "fr_dcant_invoices_Invoice" in invoices
    for ref in (m["$ref"] for c in doc["channels"].values() for m in c["messages"].values()):
        assert ref.rsplit("/", 1)[-1] in doc["components"]["messages"]
