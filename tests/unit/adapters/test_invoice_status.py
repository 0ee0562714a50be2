"""Lifecycle statuses on CDAR D22B: writing valid messages, reading them back, each BR-FR-CDV rule, fuzzing."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from copy import deepcopy
from pathlib import Path
from typing import Any

import fastavro
import fastavro.validation
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters import _cdar, invoice_status, ubl
from adapters._base import Pivot
from adapters._registry import detect, sniff
from adapters._xml import parse_xml
from bus._errors import AdapterError, ConfigurationError, NonConformantError, UnsafeDocumentError

ROOT = Path(__file__).resolve().parents[3]
AVSC = ROOT / "schemas/avro/invoices/InvoiceStatusChanged.v1.avsc"
SCH = "invoices/fr-ctc/cdar/BR-FR-CDV-Schematron-CDAR.sch"
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
WHEN = dt.datetime(2026, 3, 2, 14, 30, 5, tzinfo=PARIS)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: A reason each status requiring one accepts (BR-FR-CDV-15, BR-FR-CDV-CL-09_MDT-113_<code>).
REASONS = {"206": "PU_ERR", "207": "DOUBLON", "208": "JUSTIF_ABS", "210": "DOUBLON", "213": "REJ_SEMAN",
           "501": "IRR_SYNTAX"}
MEN = [{"type_code": "MEN", "amount": "1000.00", "currency": "EUR", "vat_rate": "20.00"}]


@pytest.fixture(scope="module")
def avro_schema() -> Any:
    return fastavro.parse_schema(json.loads(AVSC.read_text(encoding="utf-8")))


def assert_avro(schema: Any, pivot: Pivot) -> None:
    assert fastavro.validation.validate(dict(pivot.data), schema, raise_errors=True)


def event(code: str = "205", **overrides: Any) -> Pivot:
    values: dict[str, Any] = {
        "invoice_number": "F-2026-001", "status_code": code, "status_time": WHEN,
        "seller_id": "99999999800019", "seller_id_scheme": "0009",
        "buyer_id": "21310555400017", "buyer_id_scheme": "0009",
        "invoice_issue_date": dt.date(2026, 2, 1), "invoice_type_code": "380",
        "reason_code": REASONS.get(code), "amounts": MEN if code == "212" else (),
    }
    values.update(overrides)
    return invoice_status.status_event(**values)


def rules_of(findings: list[Any]) -> set[str]:
    return {f.rule for f in findings}


# ---------------------------------------------------------------------------- writing then reading


@pytest.mark.parametrize("code", sorted(_cdar.STATUS_CODES))
def test_every_status_code_writes_a_message_valid_against_the_xsd_and_the_rules(code: str, corpus: Path,
                                                                                avro_schema: Any) -> None:
    pivot = event(code)
    written = invoice_status.from_pivot(pivot)
    assert invoice_status.validate(written, schema_dir=corpus, name=f"{code}.xml") == []
    back = invoice_status.to_pivot(written, name=f"{code}.xml")
    assert back.data["status_code"] == code
    assert back.data["reason_code"] == REASONS.get(code)
    assert back.data["status_time"] == WHEN
    assert back.subject == pivot.subject == "invoice:999999998:F-2026-001"
    assert_avro(avro_schema, back)


def test_payment_status_round_trips_with_amounts(corpus: Path, avro_schema: Any) -> None:
    amounts = [*MEN, {"type_code": "MEN", "amount": "52.75", "currency": "EUR", "vat_rate": "5.5"}]
    pivot = event("212", amounts=amounts, reason_text="paiement reçu")
    assert pivot.data["amount_paid"] == "1052.75"
    written = invoice_status.from_pivot(pivot)
    assert invoice_status.validate(written, schema_dir=corpus) == []
    back = invoice_status.to_pivot(written)
    expected = {**pivot.data, "source": "CDAR", "phase": "23", "issuer_role": "SE", "business_process": "REGULATED",
                "message_id": "CDV-212-F-2026-001-20260302143005"}
    assert back.data == expected
    assert back.data["status_label"] == "Encaissée"
    assert back.type == "fr.dcant.invoices.InvoiceStatusChanged"
    assert_avro(avro_schema, back)


def test_platform_statuses_are_written_in_the_transmission_phase(corpus: Path) -> None:
    written = invoice_status.from_pivot(event("213"))
    root = parse_xml(written)
    assert root.findtext(f"{{{_cdar.RSM}}}AcknowledgementDocument/{{{_cdar.RAM}}}TypeCode") == "305"
    assert invoice_status.validate(written, schema_dir=corpus) == []
    assert invoice_status.to_pivot(written).data["issuer_role"] == "WK"


def test_irrecevable_needs_neither_issue_date_nor_seller(corpus: Path) -> None:
    pivot = event("501", invoice_issue_date=None, seller_id=None, seller_id_scheme=None, buyer_id=None)
    assert pivot.subject == "invoice:unknown:F-2026-001"
    written = invoice_status.from_pivot(pivot)
    assert invoice_status.validate(written, schema_dir=corpus) == []
    assert invoice_status.to_pivot(written).data["invoice_issue_date"] is None


def test_detect_and_registry() -> None:
    written = invoice_status.from_pivot(event())
    assert invoice_status.detect(sniff(written))
    assert detect(written) is invoice_status
    assert not invoice_status.detect(sniff(b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>"))


def test_status_lands_on_the_invoice_dossier(corpus: Path) -> None:
    invoice = ubl.to_pivot((corpus / "invoices/fr-ctc/ubl-21-en16931.xml").read_bytes())
    status = event(invoice_number=invoice.data["number"], seller_id=invoice.data["seller_siret"])
    assert status.subject == invoice.subject


# ---------------------------------------------------------------------------- reading details

def _message(code: str = "207", blocks: str = "", header_time: str = '<udt:DateTimeString format="102">20260302</udt:DateTimeString>') -> bytes:
    return f"""<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="{_cdar.RSM}" xmlns:ram="{_cdar.RAM}"
 xmlns:qdt="{_cdar.QDT}" xmlns:udt="{_cdar.UDT}">
 <rsm:ExchangedDocumentContext>
  <ram:BusinessProcessSpecifiedDocumentContextParameter><ram:ID>REGULATED</ram:ID></ram:BusinessProcessSpecifiedDocumentContextParameter>
  <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
 </rsm:ExchangedDocumentContext>
 <rsm:ExchangedDocument>
  <ram:ID>MSG-1</ram:ID>
  <ram:IssueDateTime>{header_time}</ram:IssueDateTime>
  <ram:SenderTradeParty><ram:GlobalID schemeID="0002">213105554</ram:GlobalID><ram:RoleCode>BY</ram:RoleCode></ram:SenderTradeParty>
  <ram:IssuerTradeParty><ram:GlobalID schemeID="0002">213105554</ram:GlobalID><ram:RoleCode>BY</ram:RoleCode></ram:IssuerTradeParty>
  <ram:RecipientTradeParty><ram:RoleCode>WK</ram:RoleCode></ram:RecipientTradeParty>
 </rsm:ExchangedDocument>
 <rsm:AcknowledgementDocument>
  <ram:TypeCode>23</ram:TypeCode>
  <ram:ReferenceReferencedDocument>
   <ram:IssuerAssignedID>F-9</ram:IssuerAssignedID>
   <ram:FormattedIssueDateTime><qdt:DateTimeString format="102">20260115</qdt:DateTimeString></ram:FormattedIssueDateTime>
   <ram:ProcessConditionCode>{code}</ram:ProcessConditionCode>
   <ram:IssuerTradeParty><ram:GlobalID schemeID="0009">99999999800019</ram:GlobalID><ram:GlobalID schemeID="0002">999999998</ram:GlobalID><ram:RoleCode>SE</ram:RoleCode></ram:IssuerTradeParty>
   <ram:RecipientTradeParty><ram:GlobalID schemeID="0002">213105554</ram:GlobalID><ram:RoleCode>BY</ram:RoleCode></ram:RecipientTradeParty>
   {blocks}
  </ram:ReferenceReferencedDocument>
 </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>""".encode()


DISPUTE = ("<ram:SpecifiedDocumentStatus><ram:ReasonCode>QTE_ERR</ram:ReasonCode><ram:Reason>3 livrés sur 5</ram:Reason>"
           "<ram:SequenceNumeric>1</ram:SequenceNumeric></ram:SpecifiedDocumentStatus>")


def test_read_a_hand_written_dispute(corpus: Path, avro_schema: Any) -> None:
    data = _message(blocks=DISPUTE)
    assert invoice_status.validate(data, schema_dir=corpus) == []
    pivot = invoice_status.to_pivot(data, name="litige.xml")
    assert pivot.subject == "invoice:999999998:F-9"  # a SIRET is reduced to its SIREN, as for invoices
    d = pivot.data
    assert (d["status_code"], d["status_label"], d["reason_code"], d["reason_text"]) == ("207", "Litige", "QTE_ERR", "3 livrés sur 5")
    assert (d["buyer_id"], d["buyer_id_scheme"], d["issuer_role"], d["message_id"]) == ("213105554", "0002", "BY", "MSG-1")
    assert d["invoice_issue_date"] == dt.date(2026, 1, 15)
    assert d["status_time"] == dt.datetime(2026, 3, 2, tzinfo=PARIS)  # format 102: midnight, Paris time
    assert_avro(avro_schema, pivot)


def test_history_blocks_do_not_leak_into_the_current_status() -> None:
    history = ("<ram:SpecifiedDocumentStatus><ram:ReferenceDateTime><udt:DateTimeString format=\"204\">20260210080000"
               "</udt:DateTimeString></ram:ReferenceDateTime><ram:ReasonCode>AUTRE</ram:ReasonCode>"
               "<ram:ProcessConditionCode>204</ram:ProcessConditionCode><ram:SequenceNumeric>1</ram:SequenceNumeric>"
               "</ram:SpecifiedDocumentStatus>")
    current = DISPUTE.replace("<ram:ReasonCode>", "<ram:ReferenceDateTime><udt:DateTimeString format=\"204\">"
                              "20260301091500</udt:DateTimeString></ram:ReferenceDateTime><ram:ReasonCode>")
    d = invoice_status.to_pivot(_message(blocks=history + current)).data
    assert d["reason_code"] == "QTE_ERR"
    assert d["status_time"] == dt.datetime(2026, 3, 1, 9, 15, tzinfo=PARIS)


def test_several_statuses_in_one_message() -> None:
    data = invoice_status.from_pivot(event("205"))
    root = parse_xml(data)
    ack = root.find(f"{{{_cdar.RSM}}}AcknowledgementDocument")
    ref = ack.find(f"{{{_cdar.RAM}}}ReferenceReferencedDocument")
    second = deepcopy(ref)
    second.find(f"{{{_cdar.RAM}}}IssuerAssignedID").text = "F-2026-002"
    ack.append(second)
    pivots = list(invoice_status.to_pivots(etree.tostring(root)))
    assert [p.subject for p in pivots] == ["invoice:999999998:F-2026-001", "invoice:999999998:F-2026-002"]


def test_unknown_status_code_is_a_warning_not_a_rejection(corpus: Path) -> None:
    data = _message(code="999")
    findings = invoice_status.validate(data, schema_dir=corpus)
    assert [(f.rule, f.severity) for f in findings] == [("BR-FR-CDV-CL-06_MDT-105", "warning")]
    pivot = invoice_status.to_pivot(data)
    assert pivot.data["status_code"] == "999" and pivot.data["status_label"] is None
    assert any("BR-FR-CDV-CL-06" in w for w in pivot.warnings)


def test_dtd_is_refused() -> None:
    with pytest.raises(UnsafeDocumentError):
        invoice_status.to_pivot(b'<!DOCTYPE x [<!ENTITY e "e">]>' + _message(blocks=DISPUTE))


def test_bad_date_is_located() -> None:
    with pytest.raises(NonConformantError) as info:
        invoice_status.to_pivot(_message(blocks=DISPUTE, header_time='<udt:DateTimeString format="102">20260230</udt:DateTimeString>'))
    assert info.value.context["rule"] == "XSD"
    assert info.value.context["xpath"].endswith("rsm:ExchangedDocument/ram:IssueDateTime")


# ---------------------------------------------------------------------------- BR-FR-CDV rules

BROKEN = [
    ("BR-FR-CDV-15_MDT-113", lambda x: x.replace(DISPUTE.encode(), b"")),
    ("BR-FR-CDV-CL-09_MDT-113", lambda x: x.replace(b">QTE_ERR<", b">PAS_CONTENT<")),
    ("BR-FR-CDV-CL-09_MDT-113_207", lambda x: x.replace(b">QTE_ERR<", b">IRR_SYNTAX<")),
    ("BR-FR-CDV-16_MDT-124-2", lambda x: x.replace(b"<ram:SequenceNumeric>1</ram:SequenceNumeric>", b"")),
    ("BR-FR-CDV-02_MDT-3", lambda x: x.replace(b"CDV:invoice", b"CDV:other")),
    ("BR-FR-CDV-CL-01_MDT-2", lambda x: x.replace(b"<ram:ID>REGULATED", b"<ram:ID>FOO")),
    ("BR-FR-CDV-03_MDT-4", lambda x: x.replace(b"<ram:ID>MSG-1</ram:ID>", b"")),
    ("BR-FR-CDV-09_MDT-77", lambda x: x.replace(b"<ram:TypeCode>23<", b"<ram:TypeCode>24<")),
    ("BR-FR-CDV-CL-02_MDT-21_305", lambda x: x.replace(b"<ram:TypeCode>23<", b"<ram:TypeCode>305<")),
    ("BR-FR-CDV-CL-03_MDT-40_23", lambda x: x.replace(b"<ram:RoleCode>BY</ram:RoleCode></ram:IssuerTradeParty>",
                                                      b"<ram:RoleCode>WK</ram:RoleCode></ram:IssuerTradeParty>", 1)),
    ("BR-FR-CDV-07_MDT-38", lambda x: x.replace(b'<ram:IssuerTradeParty><ram:GlobalID schemeID="0002">213105554</ram:GlobalID>',
                                                b"<ram:IssuerTradeParty>")),
    ("BR-FR-CDV-08_MDT-73", lambda x: x.replace(b"<ram:RoleCode>WK</ram:RoleCode></ram:RecipientTradeParty>",
                                                b"<ram:RoleCode>SE</ram:RoleCode></ram:RecipientTradeParty>")),
    ("BR-FR-CDV-CL-04_MDT-59", lambda x: x.replace(b"<ram:RoleCode>WK</ram:RoleCode></ram:RecipientTradeParty>",
                                                   b"<ram:RoleCode>XX</ram:RoleCode></ram:RecipientTradeParty>")),
    ("BR-FR-CDV-10_MDT-87", lambda x: x.replace(b"<ram:IssuerAssignedID>F-9</ram:IssuerAssignedID>", b"")),
    ("BR-FR-CDV-11_MDG-35", lambda x: x.replace(b'<ram:FormattedIssueDateTime><qdt:DateTimeString format="102">20260115'
                                                b"</qdt:DateTimeString></ram:FormattedIssueDateTime>", b"")),
    ("BR-FR-CDV-12_MDT-105", lambda x: x.replace(b"<ram:ProcessConditionCode>207</ram:ProcessConditionCode>", b"")),
    ("BR-FR-CDV-13_MDT-129", lambda x: x.replace(b'<ram:GlobalID schemeID="0009">99999999800019</ram:GlobalID>'
                                                 b'<ram:GlobalID schemeID="0002">999999998</ram:GlobalID>', b"")),
    ("BR-FR-CDV-CL-07_MDT-132", lambda x: x.replace(b"<ram:RoleCode>SE</ram:RoleCode>", b"<ram:RoleCode>BY</ram:RoleCode>")),
    ("BR-FR-CDV-CL-08_MDT-158", lambda x: x.replace(b"<ram:RoleCode>BY</ram:RoleCode></ram:RecipientTradeParty>\n",
                                                    b"<ram:RoleCode>ZZ</ram:RoleCode></ram:RecipientTradeParty>\n")),
    ("BR-FR-04_MDT-91", lambda x: x.replace(b"<ram:FormattedIssueDateTime>", b"<ram:TypeCode>999</ram:TypeCode><ram:FormattedIssueDateTime>")),
    ("BR-FR-CDV-CL-05_MDT-88_23", lambda x: x.replace(b"<ram:FormattedIssueDateTime>", b"<ram:StatusCode>10</ram:StatusCode><ram:FormattedIssueDateTime>", 1)),
    ("BR-FR-CDV-CL-10_MDT-121", lambda x: x.replace(b"<ram:SequenceNumeric>", b"<ram:RequestedActionCode>XYZ</ram:RequestedActionCode><ram:SequenceNumeric>")),
    ("BR-FR-CDV-CL-11_MDT-207", lambda x: x.replace(b"</ram:SequenceNumeric>", b"</ram:SequenceNumeric><ram:SpecifiedDocumentCharacteristic>"
                                                    b"<ram:TypeCode>XXX</ram:TypeCode></ram:SpecifiedDocumentCharacteristic>")),
]


@pytest.mark.parametrize(("rule", "breaks"), BROKEN, ids=[r for r, _ in BROKEN])
def test_each_rule_rejects_the_document_that_breaks_it(rule: str, breaks: Any, corpus: Path) -> None:
    good = _message(blocks=DISPUTE)
    bad = breaks(good)
    assert bad != good, "the test did not alter the document"
    assert rule in rules_of(invoice_status.validate(bad, schema_dir=corpus))
    with pytest.raises(NonConformantError) as info:
        invoice_status.to_pivot(bad, name="bad.xml")
    assert rule in info.value.message


def test_cashed_needs_men_amounts_with_vat_rate() -> None:
    with pytest.raises(NonConformantError) as info:
        invoice_status.from_pivot(event("212", amounts=()))
    assert info.value.context["rule"] == "BR-FR-CDV-14_MDT-207"
    with pytest.raises(NonConformantError):
        invoice_status.from_pivot(event("212", amounts=[{**MEN[0], "vat_rate": None}]))


@pytest.mark.parametrize(("code", "reason", "rule"), [
    ("210", None, "BR-FR-CDV-15_MDT-113"),
    ("213", "JUSTIF_ABS", "BR-FR-CDV-CL-09_MDT-113_213"),
    ("200", "DOUBLON", "BR-FR-CDV-CL-09_MDT-113_200"),
    ("208", "PU_ERR", "BR-FR-CDV-CL-09_MDT-113_208"),  # PU_ERR belongs to 206, partial approval
    ("221", "AUTRE", "BR-FR-CDV-CL-09_MDT-113_221"),
])
def test_writer_refuses_a_status_the_rules_forbid(code: str, reason: str | None, rule: str) -> None:
    with pytest.raises(NonConformantError) as info:
        invoice_status.from_pivot(event(code, reason_code=reason))
    assert info.value.context["rule"] == rule


def test_b2g_refusal_reasons_apply_when_chorus_pro_sends(corpus: Path) -> None:
    data = invoice_status.from_pivot(event("210", reason_code="DOUBLON"))
    b2g = data.replace(b'<ram:SenderTradeParty><ram:GlobalID schemeID="0009">21310555400017</ram:GlobalID>',
                       b'<ram:SenderTradeParty><ram:GlobalID schemeID="0238">9999</ram:GlobalID>')
    assert b2g != data
    assert invoice_status.validate(b2g, schema_dir=corpus) == []
    withdrawn = b2g.replace(b">DOUBLON<", b">RETRAIT_MAN_SERV<")
    assert invoice_status.validate(withdrawn, schema_dir=corpus) == []
    assert "BR-FR-CDV-CL-09_MDT-113_210" in rules_of(invoice_status.validate(
        data.replace(b">DOUBLON<", b">RETRAIT_MAN_SERV<"), schema_dir=corpus))
    assert "BR-FR-CDV-CL-09_MDT-113_210B2G" in rules_of(invoice_status.validate(
        b2g.replace(b">DOUBLON<", b">REJ_SEMAN<"), schema_dir=corpus))


def test_xsd_errors_are_reported_with_their_location(corpus: Path) -> None:
    data = invoice_status.from_pivot(event()).replace(b"<ram:IssuerAssignedID>", b"<ram:Bogus/><ram:IssuerAssignedID>")
    xsd = [f for f in invoice_status.validate(data, schema_dir=corpus) if f.rule == "XSD"]
    assert xsd and "ReferenceReferencedDocument" in xsd[0].location


def test_missing_xsd_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        invoice_status.validate(invoice_status.from_pivot(event()), schema_dir=tmp_path)
    assert "CDAR D22B" in info.value.hint


# ---------------------------------------------------------------------------- the tables against the schematron


def test_code_lists_are_the_schematrons(corpus: Path) -> None:
    text = (corpus / SCH).read_text(encoding="utf-8")
    root = parse_xml((corpus / SCH).read_bytes())
    xsl = "{http://www.w3.org/1999/XSL/Transform}"
    lists = {v.get("name"): set(v.get("select").strip("'").split()) for v in root.iter(f"{xsl}variable") if v.get("select")}
    assert lists["custom:invoice-status-codes"] == _cdar.STATUS_CODES
    assert lists["custom:status-reason-codes"] == _cdar.REASON_CODES
    # the labels kept are those of the per-code assertions (see adapters._cdar on 206/208)
    assert 'APPROUVÉE PARTIELLEMENT (206)' in text and 'SUSPENDUE (208)' in text
    assert _cdar.STATUS_LABELS["206"] == "Approuvée partiellement"
    assert _cdar.STATUS_LABELS["208"] == "Suspendue"
    assert set(_cdar.STATUS_LABELS) <= _cdar.STATUS_CODES


# ---------------------------------------------------------------------------- the helper


def test_status_event_for_the_bus(avro_schema: Any) -> None:
    pivot = invoice_status.status_event(invoice_number="F-7", status_code="211", status_time=WHEN,
                                        seller_id="999999998", seller_id_scheme="0002",
                                        amounts=[{"type_code": "MEN", "amount": "10.10"}])
    assert pivot.subject == "invoice:999999998:F-7"
    assert pivot.data["source"] == "BUS" and pivot.data["amount_paid"] == "10.10"
    assert pivot.format == "invoice-status" and pivot.warnings == ()
    assert_avro(avro_schema, pivot)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"status_time": dt.datetime(2026, 3, 1, 10)}, "status_time"),
    ({"invoice_number": " "}, "invoice_number"),
    ({"status_code": ""}, "status_code"),
    ({"amounts": [{"type_code": "MEN", "amount": "1,50"}]}, "amounts"),
    ({"invoice_issue_date": WHEN}, "invoice_issue_date"),
    ({"source": "FAX"}, "source"),
    ({"chorus_invoice_id": 2**63}, "chorus_invoice_id"),
])
def test_status_event_refuses_bad_values(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(NonConformantError) as info:
        event(**overrides)
    assert info.value.context["xpath"] == field


# ---------------------------------------------------------------------------- fuzzing

TAGS = ["rsm:ExchangedDocumentContext", "rsm:ExchangedDocument", "rsm:AcknowledgementDocument", "ram:ID",
        "ram:TypeCode", "ram:IssueDateTime", "udt:DateTimeString", "ram:ReferenceReferencedDocument",
        "ram:IssuerAssignedID", "ram:ProcessConditionCode", "ram:IssuerTradeParty", "ram:GlobalID", "ram:RoleCode",
        "ram:SpecifiedDocumentStatus", "ram:ReasonCode", "ram:SpecifiedDocumentCharacteristic", "ram:ValueAmount",
        "ram:FormattedIssueDateTime", "qdt:DateTimeString", "ram:ReferenceDateTime", "ram:RecipientTradeParty"]
TEXTS = st.sampled_from(["", "23", "305", "212", "MEN", "20260230", "20260301120000", "abc", "1e9", "-0.5", "SE", "é"])
ROOT_OPEN = (f'<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="{_cdar.RSM}" xmlns:ram="{_cdar.RAM}" '
             f'xmlns:qdt="{_cdar.QDT}" xmlns:udt="{_cdar.UDT}">').encode()


@st.composite
def trees(draw: st.DrawFn, depth: int = 3) -> bytes:
    tag = draw(st.sampled_from(TAGS))
    attr = draw(st.sampled_from(["", ' format="102"', ' format="204"', ' format="999"', ' currencyID="EUR"']))
    if depth == 0 or draw(st.booleans()):
        return f"<{tag}{attr}>".encode() + draw(TEXTS).encode() + f"</{tag}>".encode()
    return f"<{tag}>".encode() + b"".join(draw(st.lists(trees(depth - 1), max_size=4))) + f"</{tag}>".encode()


def _only_adapter_errors(data: bytes) -> None:
    try:
        list(invoice_status.to_pivots(data, name="fuzz"))
    except AdapterError:
        pass


@FUZZ
@given(data=st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    _only_adapter_errors(data)


@FUZZ
@given(body=st.lists(trees(), max_size=6))
def test_fuzz_random_cdar_trees(body: list[bytes]) -> None:
    _only_adapter_errors(ROOT_OPEN + b"".join(body) + b"</rsm:CrossDomainAcknowledgementAndResponse>")


@FUZZ
@given(cut=st.integers(min_value=0, max_value=4000), flip=st.integers(min_value=0, max_value=255))
def test_fuzz_mutated_valid_message(cut: int, flip: int) -> None:
    data = bytearray(_message(blocks=DISPUTE))
    data[cut % len(data)] = flip
    _only_adapter_errors(bytes(data))


WORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=12)


@FUZZ
@given(code=st.sampled_from(sorted(_cdar.STATUS_CODES)), number=WORDS,
       reason=st.none() | st.sampled_from(sorted(_cdar.REASON_CODES)) | WORDS,
       text=st.none() | st.text(max_size=20), seller=st.from_regex(r"\d{9}|\d{14}", fullmatch=True) | st.none(),
       moment=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31),
                           timezones=st.just(PARIS)),
       amount=st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**9, max_value=10**9))
def test_fuzz_write_then_read(code: str, number: str, reason: str | None, text: str | None, seller: str | None,
                              moment: dt.datetime, amount: Any, corpus: Path) -> None:
    """Whatever the pivot, the writer either refuses it with an AdapterError or writes a valid message that reads back."""
    try:
        pivot = event(code, invoice_number=number, reason_code=reason, reason_text=text, seller_id=seller,
                      status_time=moment, amounts=[{"type_code": "MEN", "amount": str(amount), "vat_rate": "20"}])
        written = invoice_status.from_pivot(pivot)
    except AdapterError:
        return
    assert invoice_status.validate(written, schema_dir=corpus) == []
    back = invoice_status.to_pivot(written).data
    assert (back["status_code"], back["invoice_number"], back["reason_code"]) == (code, number.strip(), reason)
    assert back["status_time"] == moment.replace(microsecond=0)
    assert back["amount_paid"] == pivot.data["amount_paid"]


def test_dates_keep_four_digit_years() -> None:
    early = dt.datetime(999, 6, 1, 12, tzinfo=dt.UTC)
    back = invoice_status.to_pivot(invoice_status.from_pivot(event(status_time=early, invoice_issue_date=dt.date(999, 5, 1)))).data
    assert back["invoice_issue_date"] == dt.date(999, 5, 1)
    assert back["status_time"] == early
