"""Unit tests of the eForms writer: pivots written as notices read back to the same pivots (no corpus)."""

from __future__ import annotations

import datetime as dt
import types
from typing import Any

import pytest
from fastavro.validation import validate as avro_validate
from lxml import etree

from adapters import Pivot, eforms
from adapters._ubl23 import NS
from bus._catalog import default_catalog
from bus._errors import NonConformantError
from bus.demo import _procurement as demo

P = "fr.dcant.procurement."


def _org(org_id: str, name: str, company_id: str, **extra: Any) -> dict[str, Any]:
    org = {"organization_id": org_id, "name": name, "company_id": company_id, "company_id_scheme": None,
           "french_id_type": None, "french_id": None, "city": None, "postal_code": None, "nuts": None,
           "country": None, "legal_type": None, "activity": None, "phone": None, "email": None, "company_size": None,
           "touch_points": []}
    return {**org, **extra}


REVIEW = _org("ORG-0009", "Tribunal administratif de Lyon", "130 008 032 00012", country="FRA",
              french_id_type="SIRET", french_id="13000803200012")
BUYER = _org("ORG-0001", "Commune d'Été & Cie <Sud>", "216 901 231 00014", city="Lyon", postal_code="69001",
             nuts="FRK26", country="FRA", french_id_type="SIRET", french_id="21690123100014",
             legal_type="la", activity="gen-pub", phone="+33 4 72 10 30 30", email="marches@lyon.example",
             touch_points=[{"touch_point_id": "TPO-0001", "name": "Service de la commande publique", "city": "Lyon",
                            "postal_code": "69003", "nuts": "FRK26", "country": "FRA", "phone": "+33 4 72 10 30 31",
                            "email": "depot@lyon.example"}])
COMMON = {
    "notice_id": "2c7b5f3d-4e5a-4b6c-9d7e-8f9a0b1c2d3e", "notice_version": "01",
    "procedure_id": "1b6a4e2c-3d4f-4a5b-8c6d-7e8f9a0b1c2d", "regulatory_domain": "32014L0024",
    "dispatch_date": dt.date(2025, 2, 3), "dispatch_time": "10:00:00+01:00", "notice_language": "FRA",
    "changed_notice_id": None, "change_reason": None, "buyers": [BUYER],
    "title": "Réfection de la voirie", "description": "Chaussées & trottoirs", "contract_nature": "works",
    "main_cpv": "45233141", "additional_cpv": ["45233142", "45233222"], "estimated_value": "50000.00",
    "estimated_value_currency": "EUR", "procedure_type": "open", "accelerated": "true",
    "accelerated_justification": "Urgence impérieuse (crue)", "other_organizations": [REVIEW],
    "places": [{"description": None, "street": None, "additional_street": None, "city": None, "postal_code": None,
                "nuts": "FRK26", "region": None, "country": "FRA"}],
}
_NO_TERMS = {
    **dict.fromkeys(("esubmission", "successive_reduction", "gpa", "no_esubmission_reason", "no_esubmission_description",
                     "limited_candidates", "max_candidates", "min_candidates", "auction", "framework_agreement", "dps",
                     "variants", "eu_funded", "reserved_procurement", "reserved_execution", "einvoicing", "ecatalog",
                     "no_negotiation", "award_method_description", "additional_info_organization_id", "submission_url",
                     "submission_organization_id", "tender_validity", "tender_validity_unit", "review_deadline",
                     "review_info_organization_id", "review_organization_id", "eordering", "epayment")),
    "selection_criteria": [], "documents": [], "selection_criteria_sources": [], "award_criteria": [], "languages": [],
}
#: the lot's tendering process and terms, every one set
TERMS = {
    "esubmission": "not-allowed", "successive_reduction": "false", "gpa": "true",
    "no_esubmission_reason": "phy-mod", "no_esubmission_description": "Maquette à déposer en mairie",
    "limited_candidates": "true", "max_candidates": "5", "min_candidates": "3", "auction": "false",
    "framework_agreement": "none", "dps": "none",
    "selection_criteria": [{"type": "slc-stand-other", "name": "Chiffre d'affaires", "description": "≥ 100 k€",
                            "second_stage": "true"}],
    "variants": "not-allowed", "eu_funded": "no-eu-funds",
    "documents": [{"document_id": "DCE-1", "document_type": "non-restricted-document",
                   "url": "https://marches.example/dce", "official_languages": ["FRA"], "unofficial_languages": ["ENG"]}],
    "reserved_procurement": "none", "selection_criteria_sources": ["epo-notice", "epo-procurement-document"],
    "reserved_execution": "no", "einvoicing": "required", "ecatalog": "not-allowed", "no_negotiation": "false",
    "award_method_description": "Note sur 100",
    "award_criteria": [{"type": "price", "name": "Prix", "description": "Prix global", "weight_code": "per-exa",
                        "weight": "60"},
                       {"type": "quality", "name": None, "description": "Valeur technique", "weight_code": None,
                        "weight": None}],
    "additional_info_organization_id": "ORG-0001", "submission_url": "https://marches.example/depot",
    "submission_organization_id": "TPO-0001", "tender_validity": "90", "tender_validity_unit": "DAY",
    "review_deadline": "Deux mois", "review_info_organization_id": "ORG-0001", "review_organization_id": "ORG-0009",
    "languages": ["FRA"], "eordering": "false", "epayment": "true",
}
NOTICE = {
    **COMMON, "notice_type": "cn-standard", "form_type": "competition", "notice_subtype": "16",
    "exclusion_grounds_sources": ["epo-notice"],
    "exclusion_grounds": [{"code": "exg-crim-fraud", "description": "Fraude"}, {"code": "exg-sitn-insolvency",
                                                                                "description": None}],
    "max_lots_submitted": "2", "max_lots_awarded": "1",
    "lots": [
        {"lot_id": "LOT-0001", "internal_id": "1", "title": "Voirie", "description": "Lot 1", "contract_nature": "works",
         "main_cpv": "45233141", "additional_cpv": ["45233142"], "estimated_value": "30000.00",
         "estimated_value_currency": "EUR", "submission_deadline_date": dt.date(2025, 3, 3),
         "submission_deadline_time": "12:00:00+01:00", "participation_deadline_date": None,
         "participation_deadline_time": None, "planned_start_date": dt.date(2025, 4, 1),
         "planned_end_date": dt.date(2025, 9, 30), "duration": None, "duration_unit": None,
         "places": [{"description": "Centre-ville", "street": "Rue de la République", "additional_street": "Bât. B",
                     "city": "Lyon", "postal_code": "69002", "nuts": "FRK26", "region": None, "country": "FRA"}],
         **TERMS},
        {"lot_id": "LOT-0002", "internal_id": None, "title": "Signalisation", "description": None,
         "contract_nature": "works", "main_cpv": "45233221", "additional_cpv": [], "estimated_value": None,
         "estimated_value_currency": None, "submission_deadline_date": None, "submission_deadline_time": None,
         "participation_deadline_date": dt.date(2025, 2, 28), "participation_deadline_time": "17:00:00+01:00",
         "planned_start_date": None, "planned_end_date": None, "duration": "6", "duration_unit": "MONTH",
         "places": [{"description": None, "street": None, "additional_street": None, "city": None,
                     "postal_code": None, "nuts": None, "region": "anyw-eea", "country": None}], **_NO_TERMS},
    ],
}
WINNER = _org("ORG-0002", "Travaux du Centre", "552 100 554", country="FRA", french_id_type="SIREN",
              french_id="552100554", company_size="small")
MEMBER = _org("ORG-0003", "Firma GmbH", "123456789", country="DEU")
AWARD = {
    **COMMON, "notice_type": "can-standard", "form_type": "result", "notice_subtype": "29",
    "total_value": "48000.00", "total_value_currency": "EUR", "lot_ids": ["LOT-0001", "LOT-0002"],
    "lots": NOTICE["lots"],
    "lot_results": [
        {"result_id": "RES-0001", "lot_id": "LOT-0001", "winner_chosen": "selec-w", "tender_ids": ["TEN-0001"],
         "contract_ids": ["CON-0001"], "received_tenders": "3", "no_winner_reason": None,
         "statistics": [{"type": "t-sme", "count": "2"}, {"type": "t-esubm", "count": "3"}]},
        {"result_id": "RES-0002", "lot_id": "LOT-0002", "winner_chosen": "clos-nw", "tender_ids": [],
         "contract_ids": [], "received_tenders": None, "no_winner_reason": "no-rece", "statistics": []},
    ],
    "tenders": [{"tender_id": "TEN-0001", "lot_id": "LOT-0001", "value": "48000.00", "value_currency": "EUR",
                 "rank": "1", "tendering_party_id": "TPA-0001", "tender_reference": "OFFRE-7",
                 "subcontracting": "no"}],
    "contracts": [{"contract_id": "CON-0001", "contract_reference": "2025VOI01", "title": "Marché de voirie",
                   "award_date": dt.date(2025, 4, 10), "conclusion_date": dt.date(2025, 4, 15),
                   "tender_ids": ["TEN-0001"]}],
    "tendering_parties": [{"tendering_party_id": "TPA-0001",
                           "members": [{"organization_id": "ORG-0002", "role": "group-leader"},
                                       {"organization_id": "ORG-0003", "role": "group-member"}]}],
    "winners": [
        {"lot_id": "LOT-0001", "tender_id": "TEN-0001", "contract_id": "CON-0001", "role": role, "value": "48000.00",
         "value_currency": "EUR", "organization": org}
        for role, org in (("group-leader", WINNER), ("group-member", MEMBER))
    ],
}


def _pivot(data: dict[str, Any], schema: str) -> Pivot:
    event = "AwardPublished" if schema == "Award" else "NoticePublished"
    return Pivot(type=P + event, schema=P + schema, subject=f"notice:{data.get('procedure_id')}", data=data,
                 format="eforms")


@pytest.mark.parametrize(("data", "schema", "root"), [(NOTICE, "Notice", "ContractNotice"),
                                                      (AWARD, "Award", "ContractAwardNotice")])
def test_a_written_notice_reads_back_to_the_same_pivot(data: dict[str, Any], schema: str, root: str) -> None:
    written = eforms.from_pivot(_pivot(data, schema))
    assert etree.QName(etree.fromstring(written)).localname == root
    back = eforms.to_pivot(written, name="written.xml")
    assert (back.type, back.schema, back.subject) == (_pivot(data, schema).type, P + schema,
                                                      f"notice:{data['procedure_id']}")
    assert back.data == data


def test_a_change_notice_keeps_what_it_changes() -> None:
    data = {**NOTICE, "changed_notice_id": "f42be27e-09cf-4f0e-a745-63ec689631e6-01", "change_reason": "cor-buy"}
    assert eforms.to_pivot(eforms.from_pivot(_pivot(data, "Notice"))).data == data


def test_text_is_escaped_by_the_tree_not_by_hand() -> None:
    written = eforms.from_pivot(_pivot(NOTICE, "Notice"))
    assert b"Commune d'\xc3\x89t\xc3\xa9 &amp; Cie &lt;Sud&gt;" in written
    assert eforms.to_pivot(written).data["buyers"][0]["name"] == "Commune d'Été & Cie <Sud>"


def test_a_bare_record_is_written_by_its_shape() -> None:
    assert eforms.to_pivot(eforms.from_pivot(AWARD)).data == AWARD
    assert eforms.to_pivot(eforms.from_pivot(NOTICE)).data == NOTICE


@pytest.mark.parametrize(("data", "schema", "subtype"), [(NOTICE, "Notice", "29"), (AWARD, "Award", "16"),
                                                         (NOTICE, "Notice", "6"), (AWARD, "Award", "38")])
def test_a_subtype_the_root_cannot_carry_is_refused(data: dict[str, Any], schema: str, subtype: str) -> None:
    with pytest.raises(NonConformantError, match=f"subtype {subtype} cannot be written") as caught:
        eforms.from_pivot(_pivot({**data, "notice_subtype": subtype}, schema))
    assert caught.value.context["rule"] == "OPP-070-notice"


def _carried(original: dict[str, Any], back: dict[str, Any]) -> dict[str, Any]:
    """``back`` restricted to what ``original`` carries (the demo's pivots leave optional fields out)."""
    def keep(value: Any, like: Any) -> Any:
        if isinstance(like, dict):
            return {k: keep(value.get(k), v) for k, v in like.items()}
        if isinstance(like, list) and like and isinstance(value, list):
            return [keep(v, lk) for v, lk in zip(value, like, strict=True)]
        return value
    return keep(back, original)  # type: ignore[no-any-return]


def test_the_demo_notice_and_award_round_trip() -> None:
    stage = types.SimpleNamespace(run="T1")
    notice = demo.notice_event(stage)  # type: ignore[arg-type]
    award = demo.award_event(stage, "12345678900011")  # type: ignore[arg-type]
    for event in (notice, award):
        pivot = Pivot(type=event.type, schema=event.schema, subject=event.subject, data=event.data, format="eforms")
        back = eforms.to_pivot(eforms.from_pivot(pivot))
        assert back.subject == event.subject
        assert _carried(dict(event.data), back.data) == event.data
    # The demo's award names its winner only: the result graph is derived from it.
    back = eforms.to_pivot(eforms.from_pivot(Pivot(type=award.type, schema=award.schema, subject=award.subject,
                                                   data=award.data, format="eforms"))).data
    assert [(r["lot_id"], r["winner_chosen"], r["tender_ids"]) for r in back["lot_results"]] == [
        ("LOT-0001", "selec-w", ["TEN-0001"])]
    assert back["lot_ids"] == ["LOT-0001"]


@pytest.mark.parametrize("field", ["notice_id", "notice_version", "procedure_id", "dispatch_date", "notice_subtype"])
def test_a_pivot_without_a_mandatory_field_is_refused_with_a_typed_error(field: str) -> None:
    with pytest.raises(NonConformantError, match=f"the pivot has no {field}"):
        eforms.from_pivot(_pivot({k: v for k, v in NOTICE.items() if k != field}, "Notice"))


def test_a_pivot_of_another_schema_is_refused() -> None:
    modified = Pivot(type=P + "ContractModified", schema=P + "ContractModified", subject="contract:X",
                     data={"contract_id": "X"}, format="eforms")
    with pytest.raises(NonConformantError, match="not fr.dcant.procurement.ContractModified"):
        eforms.from_pivot(modified)


def test_winners_without_technical_ids_still_resolve_to_their_organisations() -> None:
    winner = {"lot_id": "LOT-0001", "tender_id": None, "contract_id": None, "role": "tenderer", "value": "10.00",
              "value_currency": "EUR", "organization": {**WINNER, "organization_id": None}}
    data = {**{k: v for k, v in AWARD.items() if k not in ("lot_results", "tenders", "tendering_parties")},
            "winners": [winner], "buyers": [{**BUYER, "organization_id": None}]}
    back = eforms.to_pivot(eforms.from_pivot(data)).data
    assert [b["name"] for b in back["buyers"]] == [BUYER["name"]]
    assert [(w["organization"]["organization_id"], w["organization"]["name"], w["value"]) for w in back["winners"]] == [
        ("ORG-0002", WINNER["name"], "10.00")]


_LOT = "cac:ProcurementProjectLot[cbc:ID='LOT-0001']"
_RESULT = "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/efext:EformsExtension/efac:NoticeResult"


@pytest.mark.parametrize(("xpath", "expected"), [
    ("cac:TenderingProcess/cac:ProcessJustification/cbc:ProcessReasonCode[@listName='accelerated-procedure']", "true"),
    ("cac:TenderingProcess/cac:ProcessJustification/cbc:ProcessReason", "Urgence impérieuse (crue)"),
    ("cac:TenderingTerms/cac:TendererQualificationRequest/cac:SpecificTendererRequirement"
     "/cbc:TendererRequirementTypeCode[@listName='exclusion-grounds-source']", "epo-notice"),
    ("cac:TenderingTerms/cac:LotDistribution/cbc:MaximumLotsSubmittedNumeric", "2"),
    ("cac:ProcurementProject/cac:RealizedLocation/cac:Address/cbc:CountrySubentityCode[@listName='nuts']", "FRK26"),
    ("ext:UBLExtensions//efac:Company[cac:PartyIdentification/cbc:ID='ORG-0001']/cac:Contact/cbc:Telephone",
     "+33 4 72 10 30 30"),
    ("ext:UBLExtensions//efac:Company[cac:PartyIdentification/cbc:ID='ORG-0009']/cac:PartyName/cbc:Name",
     "Tribunal administratif de Lyon"),
    (f"{_LOT}/cac:TenderingProcess/cbc:SubmissionMethodCode[@listName='esubmission']", "not-allowed"),
    (f"{_LOT}/cac:TenderingProcess/cac:EconomicOperatorShortList/cbc:MinimumQuantity", "3"),
    (f"{_LOT}/cac:TenderingProcess/cac:AuctionTerms/cbc:AuctionConstraintIndicator", "false"),
    (f"{_LOT}/cac:TenderingProcess/cac:ContractingSystem/cbc:ContractingSystemTypeCode[@listName='dps-usage']", "none"),
    (f"{_LOT}/cac:TenderingTerms/cbc:FundingProgramCode[@listName='eu-funded']", "no-eu-funds"),
    (f"{_LOT}/cac:TenderingTerms/cac:CallForTendersDocumentReference/cac:Attachment/cac:ExternalReference/cbc:URI",
     "https://marches.example/dce"),
    (f"{_LOT}/cac:TenderingTerms/cac:AwardingTerms/cac:AwardingCriterion/cac:SubordinateAwardingCriterion"
     "//efac:AwardCriterionParameter/efbc:ParameterNumeric", "60"),
    (f"{_LOT}/cac:TenderingTerms/cac:TenderRecipientParty/cbc:EndpointID", "https://marches.example/depot"),
    ("ext:UBLExtensions//efac:Organization[efac:Company/cac:PartyIdentification/cbc:ID='ORG-0001']"
     "/efac:TouchPoint/cac:PartyIdentification/cbc:ID[@schemeName='touchpoint']", "TPO-0001"),
    (f"{_LOT}/cac:TenderingTerms/cac:AppealTerms/cac:AppealReceiverParty/cac:PartyIdentification/cbc:ID", "ORG-0009"),
    (f"{_LOT}/cac:TenderingTerms/cac:TenderValidityPeriod/cbc:DurationMeasure[@unitCode='DAY']", "90"),
    ("cac:ProcurementProjectLot[cbc:ID='LOT-0002']/cac:ProcurementProject/cac:PlannedPeriod"
     "/cbc:DurationMeasure[@unitCode='MONTH']", "6"),
])
def test_the_notice_carries_each_new_term_in_its_eforms_place(xpath: str, expected: str) -> None:
    root = etree.fromstring(eforms.from_pivot(_pivot(NOTICE, "Notice")))
    assert [node.text for node in root.xpath(xpath, namespaces=NS)] == [expected]


@pytest.mark.parametrize(("xpath", "expected"), [
    (f"{_RESULT}/efac:LotResult[cbc:ID='RES-0002']/efac:DecisionReason/efbc:DecisionReasonCode", ["no-rece"]),
    (f"{_RESULT}/efac:LotResult[cbc:ID='RES-0001']/efac:ReceivedSubmissionsStatistics/efbc:StatisticsCode",
     ["tenders", "t-sme", "t-esubm"]),
    (f"{_RESULT}/efac:LotTender/efac:SubcontractingTerm/efbc:TermCode[@listName='applicability']", ["no"]),
    ("ext:UBLExtensions//efac:Company[cac:PartyIdentification/cbc:ID='ORG-0002']"
     "/efbc:CompanySizeCode[@listName='economic-operator-size']", ["small"]),
    (f"{_LOT}/cac:ProcurementProject/cbc:Name", ["Voirie"]),
])
def test_the_award_notice_carries_each_new_term_in_its_eforms_place(xpath: str, expected: list[str]) -> None:
    root = etree.fromstring(eforms.from_pivot(_pivot(AWARD, "Award")))
    assert [node.text for node in root.xpath(xpath, namespaces=NS)] == expected


def test_the_pivots_fit_the_newest_schemas() -> None:
    for data, name in ((NOTICE, "Notice"), (AWARD, "Award")):
        schema = default_catalog().latest(P + name)
        assert schema.version == 2
        assert avro_validate(dict(data), schema.parsed, raise_errors=True)


def test_an_organisation_the_pivot_does_not_name_is_left_out() -> None:
    # an eSender, a mediator...: roles the pivot does not carry; written without them, the notice
    # would hold an organisation without a role (BR-OPT-00200-0103)
    root = etree.fromstring(eforms.from_pivot(_pivot(NOTICE, "Notice")))
    [organizations] = root.xpath("ext:UBLExtensions//efac:Organizations", namespaces=NS)
    extra = etree.SubElement(etree.SubElement(organizations, f"{{{NS['efac']}}}Organization"), f"{{{NS['efac']}}}Company")
    etree.SubElement(etree.SubElement(extra, f"{{{NS['cac']}}}PartyIdentification"), f"{{{NS['cbc']}}}ID").text = "ORG-0077"
    data = eforms.to_pivot(etree.tostring(root), name="with-esender.xml").data
    assert [org["organization_id"] for org in data["other_organizations"]] == ["ORG-0009"]
    assert [t["touch_point_id"] for t in data["buyers"][0]["touch_points"]] == ["TPO-0001"]
