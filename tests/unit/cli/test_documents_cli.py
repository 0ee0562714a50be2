"""``bus adapt|export|validate`` from the command line: JSON out, typed errors as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BUS = [sys.executable, "-c", "from bus.cli import main; main()"]


def bus(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BUS, *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, **env} if env else None)


def test_adapt_prints_the_pivot(corpus):
    out = bus("adapt", str(corpus / "reference/sirene/unite_legale.json"))
    assert out.returncode == 0, out.stderr
    pivot = json.loads(out.stdout)
    assert pivot["schema"] == "fr.dcant.reference.Company"
    assert pivot["subject"] == "company:026280206"
    assert pivot["data"]["legal_form"] == "5710"


def test_adapt_terms_of_an_invoice(corpus):
    out = bus("adapt", "--terms", str(corpus / "invoices/en16931-ubl/ubl-tc434-example1.xml"))
    assert out.returncode == 0, out.stderr
    terms = json.loads(out.stdout)
    assert terms["BT-1"] == "12115118"
    assert terms["lines"] >= 1


@pytest.mark.parametrize("content", [
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    b"<Invoice xmlns='urn:nobody'><ID>1</ID></Invoice>",
    b"%PDF-1.7\n truncated",
    b"\x00\x01\x02 not a document",
])
def test_bad_input_exits_2_with_one_line(tmp_path, content):
    path = tmp_path / "doc.bin"
    path.write_bytes(content)
    out = bus("adapt", str(path))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("bus: error:") and str(path) in lines[0]
    assert "Traceback" not in out.stderr
    assert "root:" not in out.stderr  # /etc/passwd was never read


def adapted_json(native: Path, tmp_path: Path) -> tuple[Path, dict]:
    """``bus adapt native`` written to a JSON file for ``bus export``, and the pivot it holds."""
    pivot = bus("adapt", str(native))
    assert pivot.returncode == 0, pivot.stderr
    (tmp_path / "p.json").write_text(pivot.stdout)
    return tmp_path / "p.json", json.loads(pivot.stdout)


def test_export_signs_a_pes_aller_and_adapt_verifies_it(corpus, tmp_path):
    from bus._pki import CertificateAuthority

    issued = CertificateAuthority.init(tmp_path / "ca").issue("219990017", tmp_path / "issued")
    pivot, _ = adapted_json(corpus / "accounting/pes-samples/HELIOS_SIMU_ALR2_1496987735_826268894.xml", tmp_path)
    signed = tmp_path / "signed.xml"
    out = bus("export", "pes-aller", str(pivot), "--out", str(signed),
              "--sign-cert", str(issued.certfile), "--sign-key", str(issued.keyfile))
    assert out.returncode == 0, out.stderr
    back = bus("adapt", str(signed), "--trust-ca", str(issued.cafile), "--require-signature")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["data"]["dematerialised"] is True
    signed.write_bytes(signed.read_bytes().replace(b'<MtHT V="', b'<MtHT V="1', 1))
    tampered = bus("adapt", str(signed))
    assert tampered.returncode == 2
    assert tampered.stderr.strip().count("\n") == 0 and "Bordereau[1]" in tampered.stderr
    unsigned = bus("export", "cii", str(pivot), "--sign-cert", str(issued.certfile),
                   "--sign-key", str(issued.keyfile))
    assert unsigned.returncode == 2 and "apply to pes-aller" in unsigned.stderr


def test_signature_settings_apply_to_pes_aller_only(corpus, tmp_path):
    strict = {"BUS_PES_REQUIRE_SIGNATURE": "true", "BUS_PES_TRUST_CA": str(tmp_path / "none.pem")}
    unsigned = bus("adapt", str(corpus / "accounting/pes-samples/HELIOS_SIMU_ALR2_1496987735_826268894.xml"), env=strict)
    assert unsigned.returncode == 2 and "PES-SIGNATURE-MISSING" in unsigned.stderr, unsigned.stderr
    invoice = bus("adapt", str(corpus / "invoices/en16931-cii/CII_example1.xml"), env=strict)
    assert invoice.returncode == 0, invoice.stderr


def test_export_facturx_writes_a_pdf_that_adapt_reads_back(corpus, tmp_path):
    pivot, expected = adapted_json(corpus / "invoices/en16931-cii/CII_example2.xml", tmp_path)
    out = bus("export", "facturx", str(pivot), "--out", str(tmp_path / "f.pdf"))
    assert out.returncode == 0, out.stderr
    back = bus("adapt", str(tmp_path / "f.pdf"))
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["format"] == "facturx"
    assert json.loads(back.stdout)["data"] == expected["data"]


def test_export_cdar_writes_the_lifecycle_status(tmp_path):
    import datetime as dt

    from adapters import invoice_status

    status = invoice_status.status_event(invoice_number="F-2026-001", status_code="212",
                                         status_time=dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC),
                                         seller_id="99999999800019", seller_id_scheme="0009",
                                         invoice_issue_date=dt.date(2026, 2, 1), invoice_type_code="380",
                                         amounts=[{"type_code": "MEN", "amount": "10.00", "currency": "EUR",
                                                   "vat_rate": "20.00"}])
    (tmp_path / "cdar.xml").write_bytes(invoice_status.from_pivot(status))
    pivot, _ = adapted_json(tmp_path / "cdar.xml", tmp_path)
    out = bus("export", "cdar", str(pivot), "--out", str(tmp_path / "again.xml"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "again.xml").read_bytes() == (tmp_path / "cdar.xml").read_bytes()


def test_export_writes_the_native_document_back(corpus, tmp_path):
    pivot, _ = adapted_json(corpus / "invoices/en16931-cii/CII_example1.xml", tmp_path)
    out = bus("export", "cii", str(pivot), "--out", str(tmp_path / "back.xml"))
    assert out.returncode == 0, out.stderr
    again = bus("adapt", "--terms", str(tmp_path / "back.xml"))
    first = bus("adapt", "--terms", str(corpus / "invoices/en16931-cii/CII_example1.xml"))
    assert json.loads(again.stdout) == json.loads(first.stdout)


def test_validate_reports_rule_and_location(corpus, tmp_path):
    ok = bus("validate", "--schema-dir", str(corpus), str(corpus / "invoices/en16931-ubl/ubl-tc434-example1.xml"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = (corpus / "invoices/en16931-ubl/ubl-tc434-example1.xml").read_bytes().replace(
        b"<cbc:ID>12115118</cbc:ID>", b"<cbc:Identifier>12115118</cbc:Identifier>", 1)
    (tmp_path / "broken.xml").write_bytes(broken)
    bad = bus("validate", "--schema-dir", str(corpus), str(tmp_path / "broken.xml"))
    assert bad.returncode == 2
    assert "XSD" in bad.stderr or "BR-" in bad.stderr


def test_validate_an_invoice_needs_no_setting(corpus, tmp_path, monkeypatch, official_packages):
    monkeypatch.delenv("BUS_SCHEMA_DIR", raising=False)
    out = bus("validate", str(corpus / "invoices/en16931-ubl/ubl-tc434-example1.xml"))
    assert out.returncode == 0, out.stdout + out.stderr
    broken = (corpus / "invoices/en16931-ubl/ubl-tc434-example1.xml").read_bytes().replace(
        b'<cbc:PayableAmount currencyID="EUR">', b'<cbc:PayableAmount currencyID="EUR">1', 1)
    (tmp_path / "broken.xml").write_bytes(broken)
    bad = bus("validate", str(tmp_path / "broken.xml"))
    assert bad.returncode == 2
    assert "BR-CO-16" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_validate_an_eforms_notice_needs_no_setting(corpus, monkeypatch, official_packages):
    monkeypatch.delenv("BUS_SCHEMA_DIR", raising=False)
    eforms = corpus / "procurement/eforms"
    out = bus("validate", str(eforms / "notices/cn_24_maximal.xml"))
    assert out.returncode == 0, out.stdout + out.stderr
    bad = bus("validate", str(eforms / "notices-invalid/INVALID_cn_24_empty.xml"))
    assert bad.returncode == 2
    assert "first P-0002 at /cn:ContractNotice[1]" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "ND-ProcedureTerms-16" in bad.stdout  # every official finding is listed, with its rule id
    fr_ctc = bus("validate", "--fr-ctc", str(eforms / "notices/cn_24_maximal.xml"))
    assert fr_ctc.returncode == 2 and "--fr-ctc" in fr_ctc.stderr and "Traceback" not in fr_ctc.stderr


def test_validate_without_schema_dir_names_the_unpublished_package(corpus, monkeypatch):
    monkeypatch.delenv("BUS_SCHEMA_DIR", raising=False)
    out = bus("validate", str(corpus / "accounting/pes-samples/pes_acquit.xml"))
    assert out.returncode == 2
    assert "PES V2" in out.stderr and "BUS_SCHEMA_DIR" in out.stderr and "README" in out.stderr


@pytest.mark.parametrize("attack", ["xxe", "billion-laughs", "external-dtd"])
def test_validate_hostile_invoice_exits_2_with_one_line(tmp_path, attack, official_packages):
    secret = tmp_path / "secret.txt"
    secret.write_text("dcant-secret-marker")
    doctype = {"xxe": f'<!DOCTYPE Invoice [<!ENTITY x SYSTEM "{secret.as_uri()}">]>',
               "billion-laughs": '<!DOCTYPE Invoice [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>',
               "external-dtd": f'<!DOCTYPE Invoice SYSTEM "{secret.as_uri()}">'}[attack]
    path = tmp_path / "hostile.xml"
    path.write_text(f'<?xml version="1.0"?>{doctype}<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:'
                    f'Invoice-2"><ID>&amp;</ID></Invoice>')
    out = bus("validate", "--format", "ubl", str(path))
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert "dcant-secret-marker" not in out.stdout + out.stderr


def test_schemas_check_passes_on_the_shipped_schemas():
    out = bus("schemas", "check")
    assert out.returncode == 0, out.stdout + out.stderr


def test_schemas_check_names_a_breaking_change(tmp_path):
    import json as _json

    folder = tmp_path / "t"
    folder.mkdir()
    v1 = {"type": "record", "name": "Doc", "namespace": "fr.dcant.t", "compatibility": "BACKWARD",
          "fields": [{"name": "number", "type": "string", "doc": "BT-1"}]}
    v2 = {**v1, "fields": [*v1["fields"], {"name": "due_date", "type": "string", "doc": "BT-9 Payment due date"}]}
    (folder / "Doc.v1.avsc").write_text(_json.dumps(v1))
    (folder / "Doc.v2.avsc").write_text(_json.dumps(v2))
    out = bus("schemas", "check", "--root", str(tmp_path))
    assert out.returncode == 2
    assert "due_date" in out.stdout + out.stderr and "BACKWARD" in out.stdout + out.stderr
    v2["fields"][1]["type"] = ["null", "string"]
    v2["fields"][1]["default"] = None
    (folder / "Doc.v2.avsc").write_text(_json.dumps(v2))
    assert bus("schemas", "check", "--root", str(tmp_path)).returncode == 0


def test_config_masks_secrets(tmp_path):
    import os as _os

    env = {**_os.environ, "BUS_SASL_PASSWORD": "hunter2-secret", "BUS_PSEUDONYMISATION_SECRET": "s3cr3t-s3cr3t-s3cr3t",
           "BUS_TOPIC_PREFIX": "t1.", "COLUMNS": "200"}
    out = subprocess.run([*BUS, "config"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "hunter2" not in out.stdout and "s3cr3t" not in out.stdout
    assert "BUS_SASL_PASSWORD" in out.stdout and "**********" in out.stdout
    assert "t1." in out.stdout


def test_export_eforms_writes_the_award_notice_back_and_refuses_a_pin_in_one_line(corpus, tmp_path):
    notices = corpus / "procurement/eforms/notices"
    pivot, _ = adapted_json(notices / "can_24_minimal.xml", tmp_path)
    out = bus("export", "eforms", str(pivot), "--out", str(tmp_path / "back.xml"))
    assert out.returncode == 0, out.stderr
    again = bus("adapt", "--terms", str(tmp_path / "back.xml"))
    assert json.loads(again.stdout) == json.loads(bus("adapt", "--terms", str(notices / "can_24_minimal.xml")).stdout)
    pin, _ = adapted_json(notices / "pin-only_81_FRA.xml", tmp_path)
    refused = bus("export", "eforms", str(pin))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert "notice subtype 6 cannot be written" in refused.stderr
