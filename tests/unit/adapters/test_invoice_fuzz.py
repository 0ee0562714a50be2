"""Hypothesis fuzzing of the invoice adapters: whatever the input, only AdapterError escapes,
and what the UBL and CII readers return is a complete pivot record (every schema field, in schema
order), since the pivot is built from it without a defaults pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import _en16931, cii, facturx, parse_xml, ubl
from bus import AdapterError

CORPUS = Path(os.environ.get("BUS_CORPUS_DIR", Path(__file__).resolve().parents[4] / "shared" / "corpus"))
SEEDS = {
    "ubl": CORPUS / "invoices/en16931-ubl/ubl-tc434-example2.xml",
    "cii": CORPUS / "invoices/en16931-cii/CII_example2.xml",
}
PDF_SEED = CORPUS / "invoices/factur-x/fnfe-samples/Facture_FR_MINIMUM.pdf"
ADAPTERS = (ubl, cii, facturx)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

UBL_ROOT = b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2">'
CII_ROOT = b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">'
UBL_TAGS = ["cbc:ID", "cbc:IssueDate", "cbc:DueDate", "cbc:Amount", "cbc:PayableAmount", "cac:InvoiceLine", "cac:Price",
            "cbc:PriceAmount", "cac:TaxTotal", "cac:TaxSubtotal", "cbc:TaxAmount", "cac:LegalMonetaryTotal", "cac:Party",
            "cac:AccountingSupplierParty", "cac:PostalAddress", "cbc:ChargeIndicator", "cac:AllowanceCharge", "cbc:Percent"]
CII_TAGS = ["rsm:ExchangedDocument", "ram:ID", "ram:IssueDateTime", "udt:DateTimeString", "rsm:SupplyChainTradeTransaction",
            "ram:ApplicableHeaderTradeSettlement", "ram:SpecifiedTradeSettlementHeaderMonetarySummation", "ram:GrandTotalAmount",
            "ram:IncludedSupplyChainTradeLineItem", "ram:BilledQuantity", "ram:ApplicableTradeTax", "ram:BasisAmount"]
TEXTS = st.sampled_from(["", "1", "-0.5", "abc", "2024-02-30", "20240230", "NaN", "1e999", "true", "  ", "é", "99999999999999999999.999"])


def _only_adapter_errors(adapter, data: bytes) -> None:
    try:
        adapter.to_pivot(data, name="fuzz")
    except AdapterError:
        pass


def _shape(value: object) -> object:
    """The keys of every record in ``value``, in order."""
    if isinstance(value, dict):
        return [(key, _shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return None


def _read_is_complete(adapter, data: bytes) -> None:
    try:
        record = adapter.read(parse_xml(data, name="fuzz"), name="fuzz")
    except AdapterError:
        return
    completed = _en16931.complete(record)
    assert record == completed
    assert _shape(record) == _shape(completed)


@st.composite
def trees(draw: st.DrawFn, tags: list[str], depth: int = 3) -> bytes:
    tag = draw(st.sampled_from(tags))
    if depth == 0 or draw(st.booleans()):
        return f"<{tag}>".encode() + draw(TEXTS).encode() + f"</{tag}>".encode()
    children = draw(st.lists(trees(tags, depth - 1), max_size=4))
    return f"<{tag}>".encode() + b"".join(children) + f"</{tag}>".encode()


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    for adapter in ADAPTERS:
        _only_adapter_errors(adapter, data)


@FUZZ
@given(body=st.lists(trees(UBL_TAGS), max_size=6))
def test_random_ubl_trees(body: list[bytes]) -> None:
    data = UBL_ROOT + b"".join(body) + b"</Invoice>"
    _only_adapter_errors(ubl, data)
    _read_is_complete(ubl, data)


@FUZZ
@given(body=st.lists(trees(CII_TAGS), max_size=6))
def test_random_cii_trees(body: list[bytes]) -> None:
    data = CII_ROOT + b"".join(body) + b"</rsm:CrossIndustryInvoice>"
    _only_adapter_errors(cii, data)
    _read_is_complete(cii, data)


@pytest.mark.skipif(not SEEDS["ubl"].is_file(), reason=f"official corpus not found at {CORPUS}")
@pytest.mark.parametrize("fmt", sorted(SEEDS))
@FUZZ
@given(cuts=st.lists(st.tuples(st.integers(0, 40000), st.integers(0, 64), st.binary(max_size=16)), min_size=1, max_size=4))
def test_mutated_real_xml(fmt: str, cuts: list[tuple[int, int, bytes]]) -> None:
    data = SEEDS[fmt].read_bytes()
    for position, length, insert in cuts:
        position %= len(data)
        data = data[:position] + insert + data[position + length :]
    for adapter in (ubl, cii):
        _only_adapter_errors(adapter, data)
        _read_is_complete(adapter, data)


@pytest.mark.skipif(not PDF_SEED.is_file(), reason=f"official corpus not found at {CORPUS}")
@FUZZ
@given(cuts=st.lists(st.tuples(st.integers(0, 100000), st.integers(0, 256), st.binary(max_size=16)), min_size=1, max_size=3))
def test_mutated_pdf(cuts: list[tuple[int, int, bytes]]) -> None:
    data = PDF_SEED.read_bytes()
    for position, length, insert in cuts:
        position %= len(data)
        data = data[:position] + insert + data[position + length :]
    _only_adapter_errors(facturx, data)


@pytest.mark.parametrize("payload", [
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + UBL_ROOT + b"<cbc:ID>&e;</cbc:ID></Invoice>",
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>' + CII_ROOT + b"&b;</rsm:CrossIndustryInvoice>",
    b'<Invoice xmlns="urn:wrong"><ID>1</ID></Invoice>',
])
def test_hostile_xml_is_refused(payload: bytes) -> None:
    for adapter in (ubl, cii):
        with pytest.raises(AdapterError):
            adapter.to_pivot(payload, name="hostile")
