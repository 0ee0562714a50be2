"""CDAR lifecycle messages written by the bus, checked by the official BR-FR-CDV schematron.

The bus's own BR-FR-CDV checks (:mod:`adapters._cdar`) are a Python reading of the FNFE-MPE
schematron; here every status code the bus writes (``bus export cdar``) also goes through the
published ``BR-FR-CDV-Schematron-CDAR.sch`` itself, compiled by SchXslt and run by Saxon, and
through the CDAR D22B XSD. One difference is pinned: the published
BR-FR-CDV-CL-09_MDT-113_210B2G refuses every non-B2G REFUSÉE (see :mod:`adapters._cdar`).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from adapters import _cdar, adapter_for, invoice_status, parse_xml
from adapters._schematron import SCHXSLT, schematron_findings

SCH = Path("invoices") / "fr-ctc" / "cdar" / "BR-FR-CDV-Schematron-CDAR.sch"
WHEN = dt.datetime(2026, 3, 2, 14, 30, 5, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
REASONS = {"206": "PU_ERR", "207": "DOUBLON", "208": "JUSTIF_ABS", "210": "DOUBLON", "213": "REJ_SEMAN",
           "501": "IRR_SYNTAX"}
#: Official rules that fail on a message the bus writes, by status code: the schematron's defect.
KNOWN_DEFECTS = {"210": {"BR-FR-CDV-CL-09_MDT-113_210B2G"}}


def _message(code: str, **overrides: object) -> bytes:
    values: dict[str, object] = {
        "invoice_number": "F-2026-001", "status_code": code, "status_time": WHEN,
        "seller_id": "99999999800019", "seller_id_scheme": "0009",
        "buyer_id": "21310555400017", "buyer_id_scheme": "0009",
        "invoice_issue_date": dt.date(2026, 2, 1), "invoice_type_code": "380",
        "reason_code": REASONS.get(code),
        "amounts": [{"type_code": "MEN", "amount": "1000.00", "currency": "EUR", "vat_rate": "20.00"}] if code == "212" else (),
    }
    values.update(overrides)
    return adapter_for("cdar").from_pivot(invoice_status.status_event(**values))


def _official(corpus: Path, packages: Path, data: bytes) -> set[str]:
    findings = schematron_findings(corpus / SCH, parse_xml(data, name="cdar.xml"), schxslt=packages / SCHXSLT)
    return {f.rule for f in findings if f.severity == "fatal"}


def test_cdar_is_the_invoice_status_format() -> None:
    assert adapter_for("cdar") is invoice_status


@pytest.mark.parametrize("code", sorted(_cdar.STATUS_CODES))
def test_cdar_official_rules(corpus: Path, official_packages: Path, code: str) -> None:
    data = _message(code)
    assert invoice_status.validate(data, schema_dir=corpus, name=f"{code}.xml") == []  # XSD + the bus's rules
    assert _official(corpus, official_packages, data) == KNOWN_DEFECTS.get(code, set())


def test_b2g_refusal_passes_the_official_rules(corpus: Path, official_packages: Path) -> None:
    """Sent by Chorus Pro (0238/9999), the same REFUSÉE passes: the defect is the non-B2G case only."""
    data = _message("210", seller_id="9999", seller_id_scheme="0238", issuer_role="SE")
    assert b'schemeID="0238">9999<' in data
    assert _official(corpus, official_packages, data) == set()


def test_official_rules_catch_what_the_bus_refuses(corpus: Path, official_packages: Path) -> None:
    """A message broken after writing (a reason 207 does not allow) fails both engines."""
    data = _message("207").replace(b">DOUBLON<", b">IRR_SYNTAX<")
    assert "BR-FR-CDV-CL-09_MDT-113_207" in _official(corpus, official_packages, data)
    assert "BR-FR-CDV-CL-09_MDT-113_207" in {f.rule for f in invoice_status.validate(data, schema_dir=corpus)}


def test_the_accounting_chain_statuses_pass_the_official_rules(corpus: Path, official_packages: Path) -> None:
    """What the accounting chain tells the supplier, written as CDAR: the official rules pass but the pinned defect."""
    from adapters._base import Pivot
    from tests.unit.processors.accounting_factories import every_status

    for status in every_status():
        code = status.data["status_code"]
        data = invoice_status.from_pivot(Pivot(status.type, invoice_status.SCHEMA, status.subject, status.data,
                                               invoice_status.FORMAT))
        assert _official(corpus, official_packages, data) == KNOWN_DEFECTS.get(code, set()), (code, status.subject)

