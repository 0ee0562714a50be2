"""A lot's tendering terms and process in eForms (cac:TenderingTerms, cac:TenderingProcess), read and written.

The lot's terms (variants, EU funds, procurement documents, reservations, selection criteria
source, execution requirements, award criteria, the organisations receiving tenders and handling
reviews, tender validity, languages, post-award process) and its tendering process (electronic
submission, GPA, candidates, auction, framework agreement, DPS) are the same in a contract notice
and in a contract award notice. Values are kept as written; what the notice does not say stays
None (or an empty list), and nothing is written for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lxml import etree

from ._ubl23 import NS, all_text, first_text

__all__ = ["ORGANISATION_REFERENCES", "PROCESS_FIELDS", "TERMS_FIELDS", "having", "read_lot_process", "read_lot_terms",
           "write_lot_process", "write_lot_terms"]

Rec = Mapping[str, Any]
#: (element, tag, value, attributes) -> the child written, the writer's ``_el``
Emit = Callable[..., etree._Element | None]

_ESUBMISSION_JUSTIFICATION = "cac:ProcessJustification/cbc:ProcessReasonCode[@listName='no-esubmission-justification']"
_QUALIFICATION = "cac:TendererQualificationRequest/cac:SpecificTendererRequirement/cbc:TendererRequirementTypeCode"
_EXECUTION = "cac:ContractExecutionRequirement/cbc:ExecutionRequirementCode"
_PARAMETERS = "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/efext:EformsExtension/efac:AwardCriterionParameter"
_PARTY_ID = "cac:PartyIdentification/cbc:ID"
_DOC_LANGUAGES = "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/efext:EformsExtension"

PROCESS_FIELDS = ("esubmission", "successive_reduction", "gpa", "no_esubmission_reason", "no_esubmission_description",
                  "limited_candidates", "max_candidates", "min_candidates", "auction", "framework_agreement", "dps")
TERMS_FIELDS = ("selection_criteria", "variants", "eu_funded", "documents", "reserved_procurement",
                "selection_criteria_sources", "reserved_execution", "einvoicing", "ecatalog", "no_negotiation",
                "award_method_description",
                "award_criteria", "additional_info_organization_id",
                "submission_url", "submission_organization_id", "tender_validity", "tender_validity_unit",
                "review_deadline", "review_info_organization_id", "review_organization_id", "languages", "eordering",
                "epayment")


def having(nodes: Iterable[etree._Element], child: str, list_name: str) -> etree._Element | None:
    """The first of ``nodes`` whose ``child`` code is of the code list ``list_name`` (ElementPath has no such predicate)."""
    return next((node for node in nodes if node.find(f"{child}[@listName='{list_name}']", NS) is not None), None)


def read_lot_process(process: etree._Element | None) -> dict[str, str | None]:
    """The lot's tendering process terms (BT-17, BT-52, BT-115, BT-19, BT-745, BT-661, BT-51, BT-50, BT-767,
    BT-765, BT-766)."""
    return {
        "esubmission": first_text(process, "cbc:SubmissionMethodCode[@listName='esubmission']"),
        "successive_reduction": first_text(process, "cbc:CandidateReductionConstraintIndicator"),
        "gpa": first_text(process, "cbc:GovernmentAgreementConstraintIndicator"),
        "no_esubmission_reason": first_text(process, _ESUBMISSION_JUSTIFICATION),
        "no_esubmission_description": first_text(
            None if process is None else having(process.iterfind("cac:ProcessJustification", NS),
                                                "cbc:ProcessReasonCode", "no-esubmission-justification"),
            "cbc:Description"),
        "limited_candidates": first_text(process, "cac:EconomicOperatorShortList/cbc:LimitationDescription"),
        "max_candidates": first_text(process, "cac:EconomicOperatorShortList/cbc:MaximumQuantity"),
        "min_candidates": first_text(process, "cac:EconomicOperatorShortList/cbc:MinimumQuantity"),
        "auction": first_text(process, "cac:AuctionTerms/cbc:AuctionConstraintIndicator"),
        "framework_agreement": first_text(
            process, "cac:ContractingSystem/cbc:ContractingSystemTypeCode[@listName='framework-agreement']"),
        "dps": first_text(process, "cac:ContractingSystem/cbc:ContractingSystemTypeCode[@listName='dps-usage']"),
    }


def _document(reference: etree._Element) -> dict[str, Any]:
    languages = reference.find(_DOC_LANGUAGES, NS)
    return {
        "document_id": first_text(reference, "cbc:ID"),
        "document_type": first_text(reference, "cbc:DocumentType"),
        "url": first_text(reference, "cac:Attachment/cac:ExternalReference/cbc:URI"),
        "official_languages": all_text(languages, "efac:OfficialLanguages/cac:Language/cbc:ID"),
        "unofficial_languages": all_text(languages, "efac:NonOfficialLanguages/cac:Language/cbc:ID"),
    }


def _criterion(criterion: etree._Element) -> dict[str, str | None]:
    weight = having(criterion.iterfind(_PARAMETERS, NS), "efbc:ParameterCode", "number-weight")
    return {
        "type": first_text(criterion, "cbc:AwardingCriterionTypeCode"),
        "name": first_text(criterion, "cbc:Name"),
        "description": first_text(criterion, "cbc:Description"),
        "weight_code": first_text(weight, "efbc:ParameterCode"),
        "weight": first_text(weight, "efbc:ParameterNumeric"),
    }


def read_lot_terms(terms: etree._Element | None) -> dict[str, Any]:
    """The lot's tendering terms (BT-809 selection criteria, BT-63, BT-60, documents, BT-71, BT-821, BT-736, BT-743, BT-764,
    BT-543 and the award criteria, BT-18, BT-98, BT-99 and the OPT-301 organisations, BT-97, BT-92, BT-93)."""
    validity = None if terms is None else terms.find("cac:TenderValidityPeriod/cbc:DurationMeasure", NS)
    appeal = "cac:AppealTerms"
    return {
        "selection_criteria": [
            {"type": first_text(node, "cbc:TendererRequirementTypeCode"), "name": first_text(node, "cbc:Name"),
             "description": first_text(node, "cbc:Description"),
             "second_stage": first_text(node, "efbc:SecondStageIndicator")}
            for node in ([] if terms is None else terms.iterfind(f"{_DOC_LANGUAGES}/efac:SelectionCriteria", NS))
        ],
        "variants": first_text(terms, "cbc:VariantConstraintCode"),
        "eu_funded": first_text(terms, "cbc:FundingProgramCode[@listName='eu-funded']"),
        "documents": [_document(ref) for ref in ([] if terms is None else
                                                 terms.iterfind("cac:CallForTendersDocumentReference", NS))],
        "reserved_procurement": first_text(terms, f"{_QUALIFICATION}[@listName='reserved-procurement']"),
        "selection_criteria_sources": all_text(terms, f"{_QUALIFICATION}[@listName='selection-criteria-source']"),
        "reserved_execution": first_text(terms, f"{_EXECUTION}[@listName='reserved-execution']"),
        "einvoicing": first_text(terms, f"{_EXECUTION}[@listName='einvoicing']"),
        "ecatalog": first_text(terms, f"{_EXECUTION}[@listName='ecatalog-submission']"),
        "no_negotiation": first_text(terms, "cac:AwardingTerms/cbc:NoFurtherNegotiationIndicator"),
        "award_method_description": first_text(terms, "cac:AwardingTerms/cac:AwardingCriterion/cbc:CalculationExpression"),
        "award_criteria": [_criterion(c) for c in ([] if terms is None else terms.iterfind(
            "cac:AwardingTerms/cac:AwardingCriterion/cac:SubordinateAwardingCriterion", NS))],
        "additional_info_organization_id": first_text(terms, f"cac:AdditionalInformationParty/{_PARTY_ID}"),
        "submission_url": first_text(terms, "cac:TenderRecipientParty/cbc:EndpointID"),
        "submission_organization_id": first_text(terms, f"cac:TenderRecipientParty/{_PARTY_ID}"),
        "tender_validity": first_text(terms, "cac:TenderValidityPeriod/cbc:DurationMeasure"),
        "tender_validity_unit": validity.get("unitCode") if validity is not None else None,
        "review_deadline": first_text(terms, f"{appeal}/cac:PresentationPeriod/cbc:Description"),
        "review_info_organization_id": first_text(terms, f"{appeal}/cac:AppealInformationParty/{_PARTY_ID}"),
        "review_organization_id": first_text(terms, f"{appeal}/cac:AppealReceiverParty/{_PARTY_ID}"),
        "languages": all_text(terms, "cac:Language/cbc:ID"),
        "eordering": first_text(terms, "cac:PostAwardProcess/cbc:ElectronicOrderUsageIndicator"),
        "epayment": first_text(terms, "cac:PostAwardProcess/cbc:ElectronicPaymentUsageIndicator"),
    }


def _node(parent: etree._Element, tag: str) -> etree._Element:
    prefix, local = tag.split(":")
    return etree.SubElement(parent, f"{{{NS[prefix]}}}{local}")


def _party(el: Emit, parent: etree._Element, tag: str, org_id: str | None, endpoint: str | None = None) -> None:
    if org_id is not None or endpoint is not None:
        party = _node(parent, tag)
        el(party, "cbc:EndpointID", endpoint)
        if org_id is not None:
            el(_node(party, "cac:PartyIdentification"), "cbc:ID", org_id, schemeName="organization")


def _extension(parent: etree._Element) -> etree._Element:
    return _node(_node(_node(_node(parent, "ext:UBLExtensions"), "ext:UBLExtension"), "ext:ExtensionContent"),
                 "efext:EformsExtension")


def _write_document(el: Emit, terms: etree._Element, doc: Rec) -> None:
    reference = _node(terms, "cac:CallForTendersDocumentReference")
    if doc.get("official_languages") or doc.get("unofficial_languages"):
        ext = _extension(reference)
        for tag, key in (("efac:NonOfficialLanguages", "unofficial_languages"),
                         ("efac:OfficialLanguages", "official_languages")):
            if doc.get(key):
                holder = _node(ext, tag)
                for language in doc[key]:
                    el(_node(holder, "cac:Language"), "cbc:ID", language)
    el(reference, "cbc:ID", doc.get("document_id"))
    el(reference, "cbc:DocumentType", doc.get("document_type"))
    if doc.get("url") is not None:
        el(_node(_node(reference, "cac:Attachment"), "cac:ExternalReference"), "cbc:URI", doc["url"])


def _write_criteria(el: Emit, terms: etree._Element, lot: Rec, language: str | None) -> None:
    awarding_terms = _node(terms, "cac:AwardingTerms")
    el(awarding_terms, "cbc:NoFurtherNegotiationIndicator", lot.get("no_negotiation"))
    if lot.get("award_method_description") is None and not lot.get("award_criteria"):
        return
    awarding = _node(awarding_terms, "cac:AwardingCriterion")
    el(awarding, "cbc:CalculationExpression", lot.get("award_method_description"), languageID=language)
    for criterion in lot.get("award_criteria", []):
        node = _node(awarding, "cac:SubordinateAwardingCriterion")
        if criterion.get("weight_code") is not None or criterion.get("weight") is not None:
            parameter = _node(_extension(node), "efac:AwardCriterionParameter")
            el(parameter, "efbc:ParameterCode", criterion.get("weight_code"), listName="number-weight")
            el(parameter, "efbc:ParameterNumeric", criterion.get("weight"))
        el(node, "cbc:AwardingCriterionTypeCode", criterion.get("type"), listName="award-criterion-type")
        el(node, "cbc:Name", criterion.get("name"), languageID=language)
        el(node, "cbc:Description", criterion.get("description"), languageID=language)


def _requirement(el: Emit, terms: etree._Element, tag: str, child: str, code: str | None, list_name: str) -> None:
    if code is not None:
        el(_node(terms, tag), child, code, listName=list_name)


def write_lot_terms(el: Emit, lot_node: etree._Element, lot: Rec, language: str | None) -> None:
    """The lot's cac:TenderingTerms, in the XSD's order, when the lot has any term."""
    if not any(lot.get(key) for key in TERMS_FIELDS):
        return
    terms = _node(lot_node, "cac:TenderingTerms")
    if lot.get("selection_criteria"):
        ext = _extension(terms)
        for criterion in lot["selection_criteria"]:
            node = _node(ext, "efac:SelectionCriteria")
            el(node, "cbc:TendererRequirementTypeCode", criterion.get("type"), listName="selection-criterion")
            el(node, "cbc:Name", criterion.get("name"), languageID=language)
            el(node, "cbc:Description", criterion.get("description"), languageID=language)
            el(node, "efbc:SecondStageIndicator", criterion.get("second_stage"))
    el(terms, "cbc:VariantConstraintCode", lot.get("variants"), listName="permission")
    el(terms, "cbc:FundingProgramCode", lot.get("eu_funded"), listName="eu-funded")
    for doc in lot.get("documents", []):
        _write_document(el, terms, doc)
    qualification = "cac:TendererQualificationRequest"
    requirement = "cbc:TendererRequirementTypeCode"
    if lot.get("reserved_procurement") is not None:
        _requirement(el, _node(terms, qualification), "cac:SpecificTendererRequirement", requirement,
                     lot["reserved_procurement"], "reserved-procurement")
    if lot.get("selection_criteria_sources"):
        request = _node(terms, qualification)
        for source in lot["selection_criteria_sources"]:
            _requirement(el, request, "cac:SpecificTendererRequirement", requirement, source,
                         "selection-criteria-source")
    for key, list_name in (("reserved_execution", "reserved-execution"), ("einvoicing", "einvoicing"),
                           ("ecatalog", "ecatalog-submission")):
        _requirement(el, terms, "cac:ContractExecutionRequirement", "cbc:ExecutionRequirementCode", lot.get(key),
                     list_name)
    if lot.get("award_criteria") or any(lot.get(key) is not None for key in ("award_method_description", "no_negotiation")):
        _write_criteria(el, terms, lot, language)
    _party(el, terms, "cac:AdditionalInformationParty", lot.get("additional_info_organization_id"))
    _party(el, terms, "cac:TenderRecipientParty", lot.get("submission_organization_id"), lot.get("submission_url"))
    if lot.get("tender_validity") is not None:
        el(_node(terms, "cac:TenderValidityPeriod"), "cbc:DurationMeasure", lot["tender_validity"],
           unitCode=lot.get("tender_validity_unit"))
    appeal = ("review_deadline", "review_info_organization_id", "review_organization_id")
    if any(lot.get(key) is not None for key in appeal):
        node = _node(terms, "cac:AppealTerms")
        if lot.get("review_deadline") is not None:
            el(_node(node, "cac:PresentationPeriod"), "cbc:Description", lot["review_deadline"], languageID=language)
        _party(el, node, "cac:AppealInformationParty", lot.get("review_info_organization_id"))
        _party(el, node, "cac:AppealReceiverParty", lot.get("review_organization_id"))
    for code in lot.get("languages", []):
        el(_node(terms, "cac:Language"), "cbc:ID", code)
    if lot.get("eordering") is not None or lot.get("epayment") is not None:
        post = _node(terms, "cac:PostAwardProcess")
        el(post, "cbc:ElectronicOrderUsageIndicator", lot.get("eordering"))
        el(post, "cbc:ElectronicPaymentUsageIndicator", lot.get("epayment"))


#: the lot's fields naming an organisation (OPT-301)
ORGANISATION_REFERENCES = ("additional_info_organization_id", "submission_organization_id", "review_info_organization_id",
                           "review_organization_id")


def _period(el: Emit, parent: etree._Element, tag: str, day: dt.date | None, time: str | None) -> None:
    if day is not None or time is not None:
        period = _node(parent, tag)
        el(period, "cbc:EndDate", day)
        el(period, "cbc:EndTime", time)


def write_lot_process(el: Emit, lot_node: etree._Element, lot: Rec, language: str | None) -> None:
    """The lot's cac:TenderingProcess (process terms and the BT-131 / BT-1311 deadlines), when it has any."""
    deadlines = ("submission_deadline_date", "submission_deadline_time", "participation_deadline_date",
                 "participation_deadline_time")
    if not any(lot.get(key) is not None for key in (*PROCESS_FIELDS, *deadlines)):
        return
    process = _node(lot_node, "cac:TenderingProcess")
    el(process, "cbc:SubmissionMethodCode", lot.get("esubmission"), listName="esubmission")
    el(process, "cbc:CandidateReductionConstraintIndicator", lot.get("successive_reduction"))
    el(process, "cbc:GovernmentAgreementConstraintIndicator", lot.get("gpa"))
    _period(el, process, "cac:TenderSubmissionDeadlinePeriod", lot.get("submission_deadline_date"),
            lot.get("submission_deadline_time"))
    _period(el, process, "cac:ParticipationRequestReceptionPeriod", lot.get("participation_deadline_date"),
            lot.get("participation_deadline_time"))
    if lot.get("no_esubmission_reason") is not None or lot.get("no_esubmission_description") is not None:
        justification = _node(process, "cac:ProcessJustification")
        el(justification, "cbc:ProcessReasonCode", lot.get("no_esubmission_reason"),
           listName="no-esubmission-justification")
        el(justification, "cbc:Description", lot.get("no_esubmission_description"), languageID=language)
    short_list = ("limited_candidates", "max_candidates", "min_candidates")
    if any(lot.get(key) is not None for key in short_list):
        node = _node(process, "cac:EconomicOperatorShortList")
        el(node, "cbc:LimitationDescription", lot.get("limited_candidates"))
        el(node, "cbc:MaximumQuantity", lot.get("max_candidates"))
        el(node, "cbc:MinimumQuantity", lot.get("min_candidates"))
    if lot.get("auction") is not None:
        el(_node(process, "cac:AuctionTerms"), "cbc:AuctionConstraintIndicator", lot["auction"])
    for value, list_name in ((lot.get("framework_agreement"), "framework-agreement"), (lot.get("dps"), "dps-usage")):
        if value is not None:
            el(_node(process, "cac:ContractingSystem"), "cbc:ContractingSystemTypeCode", value, listName=list_name)
