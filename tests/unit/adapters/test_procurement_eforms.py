"""Unit tests of the eForms adapter on small hand-built notices (no corpus)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import eforms
from adapters._base import Sniff
from adapters._eforms_rules import check_notice, rule_id
from adapters._xml import parse_xml
from bus._errors import AdapterError, NonConformantError, UnknownFormatError, UnsafeDocumentError

NS = (
    'xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
    'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2" '
    'xmlns:ext="urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2" '
    'xmlns:efac="http://data.europa.eu/p27/eforms-ubl-extension-aggregate-components/1" '
    'xmlns:efbc="http://data.europa.eu/p27/eforms-ubl-extension-basic-components/1" '
    'xmlns:efext="http://data.europa.eu/p27/eforms-ubl-extensions/1"'
)
CN_NS = "urn:oasis:names:specification:ubl:schema:xsd:ContractNotice-2"
CAN_NS = "urn:oasis:names:specification:ubl:schema:xsd:ContractAwardNotice-2"
PIN_NS = "urn:oasis:names:specification:ubl:schema:xsd:PriorInformationNotice-2"
PROCEDURE = "1b6a4e2c-3d4f-4a5b-8c6d-7e8f9a0b1c2d"
NOTICE = "2c7b5f3d-4e5a-4b6c-9d7e-8f9a0b1c2d3e"

ORGS = """
<efac:Organizations>
  <efac:Organization><efac:Company>
    <cac:PartyIdentification><cbc:ID schemeName="organization">ORG-0001</cbc:ID></cac:PartyIdentification>
    <cac:PartyName><cbc:Name languageID="FRA">Commune de Test</cbc:Name></cac:PartyName>
    <cac:PostalAddress><cbc:CityName>Lyon</cbc:CityName><cac:Country><cbc:IdentificationCode listName="country">FRA</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
    <cac:PartyLegalEntity><cbc:CompanyID>216 901 231 00014</cbc:CompanyID></cac:PartyLegalEntity>
  </efac:Company></efac:Organization>
  <efac:Organization><efac:Company>
    <cac:PartyIdentification><cbc:ID schemeName="organization">ORG-0002</cbc:ID></cac:PartyIdentification>
    <cac:PartyName><cbc:Name>Entreprise Gagnante</cbc:Name></cac:PartyName>
    <cac:PostalAddress><cac:Country><cbc:IdentificationCode listName="country">FRA</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
    <cac:PartyLegalEntity><cbc:CompanyID>552 100 554</cbc:CompanyID></cac:PartyLegalEntity>
  </efac:Company></efac:Organization>
  <efac:Organization><efac:Company>
    <cac:PartyIdentification><cbc:ID schemeName="organization">ORG-0003</cbc:ID></cac:PartyIdentification>
    <cac:PartyName><cbc:Name>Firma GmbH</cbc:Name></cac:PartyName>
    <cac:PostalAddress><cac:Country><cbc:IdentificationCode listName="country">DEU</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
    <cac:PartyLegalEntity><cbc:CompanyID>123456789</cbc:CompanyID></cac:PartyLegalEntity>
  </efac:Company></efac:Organization>
</efac:Organizations>"""

RESULT = """
<efac:NoticeResult>
  <cbc:TotalAmount currencyID="EUR">1250.50</cbc:TotalAmount>
  <efac:LotResult>
    <cbc:ID schemeName="result">RES-0001</cbc:ID>
    <cbc:TenderResultCode listName="winner-selection-status">selec-w</cbc:TenderResultCode>
    <efac:LotTender><cbc:ID schemeName="tender">TEN-0001</cbc:ID></efac:LotTender>
    <efac:SettledContract><cbc:ID schemeName="contract">CON-0001</cbc:ID></efac:SettledContract>
    <efac:TenderLot><cbc:ID schemeName="Lot">LOT-0001</cbc:ID></efac:TenderLot>
  </efac:LotResult>
  <efac:LotTender>
    <cbc:ID schemeName="tender">TEN-0001</cbc:ID>
    <cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="EUR">1250.50</cbc:PayableAmount></cac:LegalMonetaryTotal>
    <efac:TenderingParty><cbc:ID schemeName="tendering-party">TPA-0001</cbc:ID></efac:TenderingParty>
    <efac:TenderLot><cbc:ID schemeName="Lot">LOT-0001</cbc:ID></efac:TenderLot>
  </efac:LotTender>
  <efac:SettledContract>
    <cbc:ID schemeName="contract">CON-0001</cbc:ID>
    <cbc:AwardDate>2024-02-01+01:00</cbc:AwardDate>
    <cbc:IssueDate>2024-02-15+01:00</cbc:IssueDate>
    <efac:ContractReference><cbc:ID>MP-2024-007</cbc:ID></efac:ContractReference>
    <efac:LotTender><cbc:ID schemeName="tender">TEN-0001</cbc:ID></efac:LotTender>
  </efac:SettledContract>
  <efac:TenderingParty>
    <cbc:ID schemeName="tendering-party">TPA-0001</cbc:ID>
    <efac:Tenderer><cbc:ID schemeName="organization">ORG-0002</cbc:ID><efbc:GroupLeadIndicator>true</efbc:GroupLeadIndicator></efac:Tenderer>
    <efac:Tenderer><cbc:ID schemeName="organization">ORG-0003</cbc:ID><efbc:GroupLeadIndicator>false</efbc:GroupLeadIndicator></efac:Tenderer>
  </efac:TenderingParty>
</efac:NoticeResult>"""


def notice(*, root: str = "ContractNotice", ns: str = CN_NS, subtype: str = "16", notice_id: str = NOTICE,
           result: str = "", extra_root: str = "") -> bytes:
    id_element = f'<cbc:ID schemeName="notice-id">{notice_id}</cbc:ID>' if notice_id else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<{root} xmlns="{ns}" {NS}>
<ext:UBLExtensions><ext:UBLExtension><ext:ExtensionContent><efext:EformsExtension>
{result}
<efac:NoticeSubType><cbc:SubTypeCode listName="notice-subtype">{subtype}</cbc:SubTypeCode></efac:NoticeSubType>
{ORGS}
</efext:EformsExtension></ext:ExtensionContent></ext:UBLExtension></ext:UBLExtensions>
<cbc:UBLVersionID>2.3</cbc:UBLVersionID>
<cbc:CustomizationID>eforms-sdk-1.10</cbc:CustomizationID>
{id_element}
<cbc:ContractFolderID>{PROCEDURE}</cbc:ContractFolderID>
<cbc:IssueDate>2024-01-10+01:00</cbc:IssueDate>
<cbc:IssueTime>09:30:00+01:00</cbc:IssueTime>
<cbc:VersionID>01</cbc:VersionID>
<cbc:RegulatoryDomain>32014L0024</cbc:RegulatoryDomain>
<cbc:NoticeTypeCode listName="competition">cn-standard</cbc:NoticeTypeCode>
<cbc:NoticeLanguageCode>FRA</cbc:NoticeLanguageCode>
{extra_root}
<cac:ContractingParty>
  <cac:ContractingPartyType><cbc:PartyTypeCode listName="buyer-legal-type">la</cbc:PartyTypeCode></cac:ContractingPartyType>
  <cac:ContractingActivity><cbc:ActivityTypeCode listName="authority-activity">gen-pub</cbc:ActivityTypeCode></cac:ContractingActivity>
  <cac:Party><cac:PartyIdentification><cbc:ID schemeName="organization">ORG-0001</cbc:ID></cac:PartyIdentification></cac:Party>
</cac:ContractingParty>
<cac:TenderingTerms><cbc:RecurringProcurementIndicator>false</cbc:RecurringProcurementIndicator></cac:TenderingTerms>
<cac:TenderingProcess><cbc:ProcedureCode listName="procurement-procedure-type">open</cbc:ProcedureCode></cac:TenderingProcess>
<cac:ProcurementProject>
  <cbc:Name languageID="FRA">Entretien des espaces verts</cbc:Name>
  <cbc:Description languageID="FRA">Tonte et taille</cbc:Description>
  <cbc:ProcurementTypeCode listName="contract-nature">services</cbc:ProcurementTypeCode>
  <cac:RequestedTenderTotal><cbc:EstimatedOverallContractAmount currencyID="EUR">100000.00</cbc:EstimatedOverallContractAmount></cac:RequestedTenderTotal>
  <cac:MainCommodityClassification><cbc:ItemClassificationCode listName="cpv">77310000</cbc:ItemClassificationCode></cac:MainCommodityClassification>
</cac:ProcurementProject>
<cac:ProcurementProjectLot>
  <cbc:ID schemeName="Lot">LOT-0001</cbc:ID>
  <cac:TenderingProcess>
    <cac:TenderSubmissionDeadlinePeriod><cbc:EndDate>2024-02-20+01:00</cbc:EndDate><cbc:EndTime>12:00:00+01:00</cbc:EndTime></cac:TenderSubmissionDeadlinePeriod>
  </cac:TenderingProcess>
  <cac:ProcurementProject>
    <cbc:Name languageID="FRA">Lot unique</cbc:Name>
    <cbc:ProcurementTypeCode listName="contract-nature">services</cbc:ProcurementTypeCode>
    <cac:MainCommodityClassification><cbc:ItemClassificationCode listName="cpv">77311000</cbc:ItemClassificationCode></cac:MainCommodityClassification>
  </cac:ProcurementProject>
</cac:ProcurementProjectLot>
</{root}>""".encode()


def award(**kwargs: str) -> bytes:
    return notice(root="ContractAwardNotice", ns=CAN_NS, subtype=kwargs.pop("subtype", "29"), result=RESULT, **kwargs)


def test_competition_notice_becomes_a_notice_pivot_keyed_by_the_procedure() -> None:
    pivot = eforms.to_pivot(notice())
    assert pivot.type == "fr.dcant.procurement.NoticePublished"
    assert pivot.schema == "fr.dcant.procurement.Notice"
    assert pivot.subject == f"notice:{PROCEDURE}"
    data = pivot.data
    assert (data["notice_id"], data["notice_version"], data["notice_subtype"]) == (NOTICE, "01", "16")
    assert data["dispatch_date"] == dt.date(2024, 1, 10)
    assert data["dispatch_time"] == "09:30:00+01:00"
    assert (data["estimated_value"], data["estimated_value_currency"]) == ("100000.00", "EUR")
    assert data["main_cpv"] == "77310000"
    [lot] = data["lots"]
    assert lot["lot_id"] == "LOT-0001"
    assert lot["main_cpv"] == "77311000"
    assert lot["submission_deadline_date"] == dt.date(2024, 2, 20)
    assert lot["submission_deadline_time"] == "12:00:00+01:00"


def test_a_french_buyer_siret_is_recognised_whatever_its_spacing() -> None:
    [buyer] = eforms.to_pivot(notice()).data["buyers"]
    assert buyer["name"] == "Commune de Test"
    assert buyer["company_id"] == "216 901 231 00014"
    assert (buyer["french_id_type"], buyer["french_id"]) == ("SIRET", "21690123100014")
    assert (buyer["legal_type"], buyer["activity"]) == ("la", "gen-pub")


def test_award_resolves_winners_down_to_their_organisations() -> None:
    pivot = eforms.to_pivot(award())
    assert pivot.type == "fr.dcant.procurement.AwardPublished"
    data = pivot.data
    assert (data["total_value"], data["total_value_currency"]) == ("1250.50", "EUR")
    [result] = data["lot_results"]
    assert (result["lot_id"], result["winner_chosen"]) == ("LOT-0001", "selec-w")
    [contract] = data["contracts"]
    assert contract["contract_reference"] == "MP-2024-007"
    assert contract["conclusion_date"] == dt.date(2024, 2, 15)
    leader, member = data["winners"]
    assert leader["role"] == "group-leader"
    assert leader["organization"]["french_id_type"] == "SIREN"
    assert leader["organization"]["french_id"] == "552100554"
    assert leader["contract_id"] == "CON-0001"
    assert leader["value"] == "1250.50"
    # A 9-digit number of a German company is not a SIREN.
    assert member["role"] == "group-member"
    assert member["organization"]["french_id_type"] is None


def test_terms_are_keyed_by_bt_ids_with_values_as_written() -> None:
    found = eforms.terms(eforms.to_pivot(award()))
    assert found["BT-04"] == PROCEDURE
    assert found["BT-701"] == NOTICE
    assert found["BT-757"] == "01"
    assert found["BT-13713"] == ["LOT-0001"]
    assert found["BT-142"] == ["selec-w"]
    assert found["BT-720"] == ["1250.50"]
    assert found["BT-145"] == ["2024-02-15"]
    assert found["BT-500"] == ["Commune de Test", "Entreprise Gagnante", "Firma GmbH"]
    assert found["BT-501"] == ["216 901 231 00014", "552 100 554", "123456789"]
    for key in ("BT-02", "BT-03", "BT-05", "BT-21", "BT-262", "BT-27", "BT-105"):
        assert key in found


def test_missing_notice_identifier_is_rejected_under_the_subtype_rule() -> None:
    with pytest.raises(NonConformantError) as info:
        eforms.to_pivot(notice(notice_id=""))
    assert info.value.context["rule"] == "BR-BT-00701-0022"
    with pytest.raises(NonConformantError) as info:
        eforms.to_pivot(award(notice_id=""))
    assert info.value.context["rule"] == "BR-BT-00701-0036"


def modification(*, contract: str = "CON-0001", sections: int = 1, reason: str = "mod-cirinc") -> bytes:
    section = f"""
<efac:ContractModification>
  <efbc:ChangedNoticeIdentifier schemeName="ojs-notice-id">123456-2024</efbc:ChangedNoticeIdentifier>
  <efbc:ModifiedContractIdentifier schemeName="contract">{contract}</efbc:ModifiedContractIdentifier>
  <efac:Change><efbc:ChangeDescription languageID="FRA">Reprise des réseaux après inondation</efbc:ChangeDescription></efac:Change>
  <efac:ChangeReason><cbc:ReasonCode listName="modification-justification">{reason}</cbc:ReasonCode></efac:ChangeReason>
</efac:ContractModification>"""
    return notice(root="ContractAwardNotice", ns=CAN_NS, subtype="38", result=section * sections + RESULT)


def test_modification_notice_becomes_contract_modified_keyed_by_the_contract() -> None:
    pivot = eforms.to_pivot(modification())
    assert pivot.type == "fr.dcant.procurement.ContractModified"
    assert pivot.subject == "contract:MP-2024-007"
    data = pivot.data
    assert (data["contract_id"], data["source"], data["modification_id"]) == ("MP-2024-007", "eforms", f"{NOTICE}-01")
    assert (data["new_amount"], data["new_amount_currency"]) == ("1250.50", "EUR")
    assert (data["legal_basis"], data["legal_basis_article"]) == ("mod-cirinc", "R2194-5")
    assert data["description"] == "Reprise des réseaux après inondation"
    assert data["modified_notice_id"] == "123456-2024"
    assert data["notification_date"] == dt.date(2024, 1, 10)
    assert data["new_holder_sirets"] == []  # not a replacement of the contractor
    terms = eforms.terms(pivot)
    assert (terms["BT-150"], terms["BT-200"], terms["BT-720"], terms["BT-1501(n)"]) == (
        "MP-2024-007", "mod-cirinc", "1250.50", "123456-2024")


def test_a_replaced_contractor_is_the_new_holder() -> None:
    # ORG-0002 (group leader) with a SIRET; ORG-0003, the German group member, has no French number.
    replaced = modification(reason="mod-repl").replace(b">552 100 554<", b">552 100 554 00013<")
    data = eforms.to_pivot(replaced).data
    assert (data["new_holder_sirets"], data["legal_basis_article"]) == (["55210055400013"], "R2194-6")


def test_modification_of_a_contract_the_notice_does_not_settle_is_non_conformant() -> None:
    with pytest.raises(NonConformantError) as info:
        eforms.to_pivot(modification(contract="CON-0099"))
    assert info.value.context["rule"] == "BR-BT-01501"
    with pytest.raises(NonConformantError, match="no ContractModification"):
        eforms.to_pivot(award(subtype="38"))


def test_a_notice_modifying_twice_needs_to_pivots() -> None:
    pivots = eforms.to_pivots(modification(sections=2))
    assert [p.data["modification_id"] for p in pivots] == [f"{NOTICE}-01-1", f"{NOTICE}-01-2"]
    with pytest.raises(NonConformantError, match="to_pivots"):
        eforms.to_pivot(modification(sections=2))


def test_prior_information_notice_is_read_as_a_notice() -> None:
    pin = notice(root="PriorInformationNotice", ns=PIN_NS, subtype="6")
    pivot = eforms.to_pivot(pin)
    assert (pivot.type, pivot.schema) == ("fr.dcant.procurement.PriorInformationPublished", "fr.dcant.procurement.Notice")
    assert pivot.subject == f"notice:{PROCEDURE}"
    without_procedure = pin.replace(f"<cbc:ContractFolderID>{PROCEDURE}</cbc:ContractFolderID>".encode(), b"")
    assert eforms.to_pivot(without_procedure).subject == f"notice:{NOTICE}"
    assert eforms.terms(eforms.to_pivot(without_procedure))["BT-04"] is None
    assert eforms.terms(pivot)["BT-04"] == PROCEDURE


def test_unknown_subtypes_are_refused_naming_the_subtype() -> None:
    with pytest.raises(UnknownFormatError) as info:
        eforms.to_pivot(notice(subtype="41"))
    assert "subtype 41" in info.value.message


@pytest.mark.parametrize("subtype", ["6", "38"])
def test_a_subtype_in_the_wrong_root_is_non_conformant(subtype: str) -> None:
    with pytest.raises(NonConformantError) as info:
        eforms.to_pivot(notice(subtype=subtype))
    assert info.value.context["rule"] == "OPP-070-notice"


def test_result_subtype_in_a_contract_notice_root_is_non_conformant() -> None:
    with pytest.raises(NonConformantError) as info:
        eforms.to_pivot(notice(subtype="29"))
    assert info.value.context["rule"] == "OPP-070-notice"


def test_doctype_is_refused() -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>' + notice().split(b"?>", 1)[1]
    with pytest.raises(UnsafeDocumentError):
        eforms.to_pivot(hostile)


def test_detect_by_root_namespace() -> None:
    assert eforms.detect(Sniff("xml", root_ns=CN_NS, root_tag="ContractNotice"))
    assert eforms.detect(Sniff("xml", root_ns=CAN_NS, root_tag="ContractAwardNotice"))
    assert not eforms.detect(Sniff("xml", root_ns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"))
    assert not eforms.detect(Sniff("json"))


def test_rule_ids_carry_the_subtype_suffix_only_where_known() -> None:
    assert rule_id("BR-BT-00701", "16") == "BR-BT-00701-0022"
    assert rule_id("BR-BT-00005-b", "29") == "BR-BT-00005-0088"
    assert rule_id("BR-OPT-00300-buyer", "16") == "BR-OPT-00300-0122"
    assert rule_id("BR-BT-00701", "20") == "BR-BT-00701"


def test_business_rules_pass_a_complete_notice_and_flag_an_emptied_one() -> None:
    assert check_notice(parse_xml(notice()), "16") == []
    emptied = notice().replace(f"<cbc:ContractFolderID>{PROCEDURE}</cbc:ContractFolderID>".encode(),
                               b"<cbc:ContractFolderID></cbc:ContractFolderID>")
    rules = {f.rule for f in check_notice(parse_xml(emptied), "16")}
    assert {"element-not-empty", "BR-BT-00004-0052"} <= rules


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes_raise_only_adapter_errors(data: bytes) -> None:
    try:
        eforms.to_pivot(data)
    except AdapterError:
        pass


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_fuzz_mutated_notices_raise_only_adapter_errors(draw: st.DataObject) -> None:
    base = bytearray(draw.draw(st.sampled_from([award, notice, modification]))())
    for _ in range(draw.draw(st.integers(1, 8))):
        pos = draw.draw(st.integers(0, len(base) - 1))
        action = draw.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            base[pos] = draw.draw(st.integers(0, 255))
        elif action == "cut":
            del base[pos : pos + draw.draw(st.integers(1, 40))]
        else:
            base[pos:pos] = draw.draw(st.sampled_from([b"<", b">", b"&", b"2024-13-45", b"</cbc:ID>", b"\x00"]))
        if not base:
            break
    try:
        eforms.to_pivots(bytes(base))
    except AdapterError:
        pass
