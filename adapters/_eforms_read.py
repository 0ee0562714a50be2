"""Read an eForms notice (UBL 2.3 + eForms extension) into the Notice and Award pivot records.

The notice is parsed once; every field is read with ElementPath expressions that lxml compiles
and caches, walking from the few anchors (root, extension, organisations, notice result) so a
large award notice is read in one pass per section. Values are kept exactly as written (amounts,
identifiers, codes); dates become :class:`datetime.date`.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from ._eforms_terms import ORGANISATION_REFERENCES, having, read_lot_process, read_lot_terms
from ._ubl23 import NS as _NS
from ._ubl23 import all_text, first_text, french_identifier, parse_date

__all__ = ["EXTENSION", "read_award", "read_common", "read_notice"]

#: The eForms extension of the notice root, where organisations, results and subtype live.
EXTENSION = "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/efext:EformsExtension"


def _organisations(ext: etree._Element | None) -> dict[str, dict[str, Any]]:
    """Organisations of the notice keyed by their technical id (OPT-200, ``ORG-0001``)."""
    out: dict[str, dict[str, Any]] = {}
    if ext is None:
        return out
    for organization in ext.iterfind("efac:Organizations/efac:Organization", _NS):
        company = organization.find("efac:Company", _NS)
        org_id = first_text(company, "cac:PartyIdentification/cbc:ID")
        if company is None or org_id is None:
            continue
        country = first_text(company, "cac:PostalAddress/cac:Country/cbc:IdentificationCode")
        id_node = company.find("cac:PartyLegalEntity/cbc:CompanyID", _NS)
        company_id = first_text(company, "cac:PartyLegalEntity/cbc:CompanyID")
        fr_type, fr_id = french_identifier(company_id, country)
        out[org_id] = {
            "organization_id": org_id,
            "name": first_text(company, "cac:PartyName/cbc:Name"),
            "company_id": company_id,
            "company_id_scheme": id_node.get("schemeName") if id_node is not None else None,
            "french_id_type": fr_type,
            "french_id": fr_id,
            "city": first_text(company, "cac:PostalAddress/cbc:CityName"),
            "postal_code": first_text(company, "cac:PostalAddress/cbc:PostalZone"),
            "nuts": first_text(company, "cac:PostalAddress/cbc:CountrySubentityCode"),
            "country": country,
            "phone": first_text(company, "cac:Contact/cbc:Telephone"),
            "email": first_text(company, "cac:Contact/cbc:ElectronicMail"),
            "company_size": first_text(company, "efbc:CompanySizeCode"),
            "touch_points": [_touch_point(node) for node in organization.iterfind("efac:TouchPoint", _NS)
                             if first_text(node, "cac:PartyIdentification/cbc:ID") is not None],
        }
    return out


def _touch_point(node: etree._Element) -> dict[str, Any]:
    return {
        "touch_point_id": first_text(node, "cac:PartyIdentification/cbc:ID"),
        "name": first_text(node, "cac:PartyName/cbc:Name"),
        "city": first_text(node, "cac:PostalAddress/cbc:CityName"),
        "postal_code": first_text(node, "cac:PostalAddress/cbc:PostalZone"),
        "nuts": first_text(node, "cac:PostalAddress/cbc:CountrySubentityCode"),
        "country": first_text(node, "cac:PostalAddress/cac:Country/cbc:IdentificationCode"),
        "phone": first_text(node, "cac:Contact/cbc:Telephone"),
        "email": first_text(node, "cac:Contact/cbc:ElectronicMail"),
    }


def _places(project: etree._Element | None) -> list[dict[str, Any]]:
    """The places of performance (cac:RealizedLocation) of a procedure or lot scope."""
    return [
        {
            "description": first_text(location, "cbc:Description"),
            "street": first_text(location, "cac:Address/cbc:StreetName"),
            "additional_street": first_text(location, "cac:Address/cbc:AdditionalStreetName"),
            "city": first_text(location, "cac:Address/cbc:CityName"),
            "postal_code": first_text(location, "cac:Address/cbc:PostalZone"),
            "nuts": first_text(location, "cac:Address/cbc:CountrySubentityCode"),
            "region": first_text(location, "cac:Address/cbc:Region"),
            "country": first_text(location, "cac:Address/cac:Country/cbc:IdentificationCode"),
        }
        for location in ([] if project is None else project.iterfind("cac:RealizedLocation", _NS))
    ]


def _amount(element: etree._Element | None, path: str) -> tuple[str | None, str | None]:
    """(amount exactly as written, currencyID) of the node at ``path``."""
    if element is None:
        return None, None
    node = element.find(path, _NS)
    if node is None or node.text is None or not node.text.strip():
        return None, None
    return node.text.strip(), node.get("currencyID")


def _require(value: str | None, *, field: str, xpath: str, rule: str, document: str) -> str:
    if value is None:
        raise NonConformantError(
            f"mandatory {field} is missing or empty",
            document=document,
            xpath=xpath,
            rule=rule,
            hint=f"fill {xpath} ({field}) and send the notice again",
        )
    return value


_EXCLUSION = "cac:TenderingTerms/cac:TendererQualificationRequest/cac:SpecificTendererRequirement"


def read_common(root: etree._Element, *, document: str, subtype: str, rules: dict[str, str],
                prior_information: bool = False) -> dict[str, Any]:
    """Fields shared by every notice: identification, dates, buyers, procedure-level scope.

    ``rules`` maps a BT id to the eForms rule id that makes it mandatory for this subtype, so a
    missing value is reported under the rule the official validator would fire. A prior
    information notice (``prior_information``) may announce procedures not launched yet and have
    no BT-04: its procedure_id is then its own BT-701, the notice being its own dossier.
    """
    ext = root.find(EXTENSION, _NS)
    orgs = _organisations(ext)
    notice_type = root.find("cbc:NoticeTypeCode", _NS)
    project = root.find("cac:ProcurementProject", _NS)
    value, currency = _amount(project, "cac:RequestedTenderTotal/cbc:EstimatedOverallContractAmount")
    accelerated = having(root.iterfind("cac:TenderingProcess/cac:ProcessJustification", _NS),
                         "cbc:ProcessReasonCode", "accelerated-procedure")
    buyers = []
    for party in root.iterfind("cac:ContractingParty", _NS):
        org_id = first_text(party, "cac:Party/cac:PartyIdentification/cbc:ID")
        org = dict(orgs.get(org_id or "", {"organization_id": org_id}))
        org.setdefault("organization_id", org_id)
        org["legal_type"] = first_text(party, "cac:ContractingPartyType/cbc:PartyTypeCode")
        org["activity"] = first_text(party, "cac:ContractingActivity/cbc:ActivityTypeCode")
        buyers.append(_organisation_record(org))
    return {
        "notice_id": _require(
            first_text(root, "cbc:ID[@schemeName='notice-id']"),
            field="BT-701 Notice Identifier",
            xpath="/*/cbc:ID[@schemeName='notice-id']",
            rule=rules["BT-701"],
            document=document,
        ),
        "notice_version": _require(
            first_text(root, "cbc:VersionID"),
            field="BT-757 Notice Version",
            xpath="/*/cbc:VersionID",
            rule=rules["BT-757"],
            document=document,
        ),
        "procedure_id": _require(
            first_text(root, "cbc:ContractFolderID")
            or (first_text(root, "cbc:ID[@schemeName='notice-id']") if prior_information else None),
            field="BT-04 Procedure Identifier",
            xpath="/*/cbc:ContractFolderID",
            rule="element-not-empty",
            document=document,
        ),
        "notice_type": first_text(root, "cbc:NoticeTypeCode"),
        "form_type": notice_type.get("listName") if notice_type is not None else None,
        "notice_subtype": subtype,
        "regulatory_domain": first_text(root, "cbc:RegulatoryDomain"),
        "dispatch_date": parse_date(
            _require(
                first_text(root, "cbc:IssueDate"),
                field="BT-05(a) Notice Dispatch Date",
                xpath="/*/cbc:IssueDate",
                rule=rules["BT-05(a)"],
                document=document,
            ),
            document=document,
            xpath="/*/cbc:IssueDate",
        ),
        "dispatch_time": first_text(root, "cbc:IssueTime"),
        "notice_language": first_text(root, "cbc:NoticeLanguageCode"),
        "changed_notice_id": first_text(ext, "efac:Changes/efbc:ChangedNoticeIdentifier"),
        "change_reason": first_text(ext, "efac:Changes/efac:ChangeReason/cbc:ReasonCode"),
        "buyers": buyers,
        "title": first_text(project, "cbc:Name"),
        "description": first_text(project, "cbc:Description"),
        "contract_nature": first_text(project, "cbc:ProcurementTypeCode"),
        "main_cpv": first_text(project, "cac:MainCommodityClassification/cbc:ItemClassificationCode"),
        "additional_cpv": all_text(project, "cac:AdditionalCommodityClassification/cbc:ItemClassificationCode"),
        "estimated_value": value,
        "estimated_value_currency": currency,
        "procedure_type": first_text(root, "cac:TenderingProcess/cbc:ProcedureCode"),
        "accelerated": first_text(accelerated, "cbc:ProcessReasonCode"),
        "accelerated_justification": first_text(accelerated, "cbc:ProcessReason"),
        "places": _places(project),
        "_organisations": orgs,
    }


def _organisation_record(org: dict[str, Any]) -> dict[str, Any]:
    """An Organization record with every field present (None, or no touch point, when the notice does not say)."""
    return {**{key: org.get(key) for key in _ORG_FIELDS}, "touch_points": list(org.get("touch_points", []))}


def _lots(root: etree._Element, *, document: str) -> list[dict[str, Any]]:
    lots = []
    for lot in root.iterfind("cac:ProcurementProjectLot", _NS):
        lot_id_node = lot.find("cbc:ID", _NS)
        # Groups of lots (schemeName LotsGroup) are not lots: they only bundle lot ids. The parts of
        # a prior information notice (schemeName Part, PAR-xxxx) are its lots.
        if lot_id_node is None or lot_id_node.get("schemeName") not in ("Lot", "Part", None):
            continue
        project = lot.find("cac:ProcurementProject", _NS)
        process = lot.find("cac:TenderingProcess", _NS)
        value, currency = _amount(project, "cac:RequestedTenderTotal/cbc:EstimatedOverallContractAmount")
        duration = None if project is None else project.find("cac:PlannedPeriod/cbc:DurationMeasure", _NS)
        xpath = "/*/cac:ProcurementProjectLot"
        lots.append(
            {
                "lot_id": (lot_id_node.text or "").strip(),
                "internal_id": first_text(project, "cbc:ID"),
                "title": first_text(project, "cbc:Name"),
                "description": first_text(project, "cbc:Description"),
                "contract_nature": first_text(project, "cbc:ProcurementTypeCode[@listName='contract-nature']"),
                "main_cpv": first_text(project, "cac:MainCommodityClassification/cbc:ItemClassificationCode"),
                "additional_cpv": all_text(
                    project, "cac:AdditionalCommodityClassification/cbc:ItemClassificationCode"
                ),
                "estimated_value": value,
                "estimated_value_currency": currency,
                "submission_deadline_date": parse_date(
                    first_text(process, "cac:TenderSubmissionDeadlinePeriod/cbc:EndDate"),
                    document=document,
                    xpath=f"{xpath}/cac:TenderingProcess/cac:TenderSubmissionDeadlinePeriod/cbc:EndDate",
                ),
                "submission_deadline_time": first_text(process, "cac:TenderSubmissionDeadlinePeriod/cbc:EndTime"),
                "participation_deadline_date": parse_date(
                    first_text(process, "cac:ParticipationRequestReceptionPeriod/cbc:EndDate"),
                    document=document,
                    xpath=f"{xpath}/cac:TenderingProcess/cac:ParticipationRequestReceptionPeriod/cbc:EndDate",
                ),
                "participation_deadline_time": first_text(
                    process, "cac:ParticipationRequestReceptionPeriod/cbc:EndTime"
                ),
                "planned_start_date": parse_date(
                    first_text(project, "cac:PlannedPeriod/cbc:StartDate"),
                    document=document,
                    xpath=f"{xpath}/cac:ProcurementProject/cac:PlannedPeriod/cbc:StartDate",
                ),
                "planned_end_date": parse_date(
                    first_text(project, "cac:PlannedPeriod/cbc:EndDate"),
                    document=document,
                    xpath=f"{xpath}/cac:ProcurementProject/cac:PlannedPeriod/cbc:EndDate",
                ),
                "duration": first_text(project, "cac:PlannedPeriod/cbc:DurationMeasure"),
                "duration_unit": duration.get("unitCode") if duration is not None else None,
                "places": _places(project),
                **read_lot_process(process),
                **read_lot_terms(lot.find("cac:TenderingTerms", _NS)),
            }
        )
    return lots


def read_notice(root: etree._Element, common: dict[str, Any], *, document: str) -> dict[str, Any]:
    """The Notice record (competition notice, or change notice of one) from ``read_common``."""
    data = {k: v for k, v in common.items() if not k.startswith("_")}
    data["exclusion_grounds_sources"] = all_text(
        root, f"{_EXCLUSION}/cbc:TendererRequirementTypeCode[@listName='exclusion-grounds-source']"
    )
    data["exclusion_grounds"] = [
        {"code": first_text(node, "cbc:TendererRequirementTypeCode"), "description": first_text(node, "cbc:Description")}
        for node in root.iterfind(_EXCLUSION, _NS)
        if node.find("cbc:TendererRequirementTypeCode[@listName='exclusion-ground']", _NS) is not None
    ]
    data["max_lots_submitted"] = first_text(root, "cac:TenderingTerms/cac:LotDistribution/cbc:MaximumLotsSubmittedNumeric")
    data["max_lots_awarded"] = first_text(root, "cac:TenderingTerms/cac:LotDistribution/cbc:MaximumLotsAwardedNumeric")
    data["lots"] = _lots(root, document=document)
    data["other_organizations"] = _other_organisations(common, data["buyers"], _referenced(data["lots"]))
    return data


def read_award(root: etree._Element, common: dict[str, Any], *, document: str) -> dict[str, Any]:
    """The Award record: lot results, tenders, tendering parties, settled contracts and winners."""
    orgs: dict[str, dict[str, Any]] = common["_organisations"]
    data = {k: v for k, v in common.items() if not k.startswith("_")}
    result = root.find(f"{EXTENSION}/efac:NoticeResult", _NS)
    total, total_currency = _amount(result, "cbc:TotalAmount")
    data["total_value"] = total
    data["total_value_currency"] = total_currency
    data["lots"] = _lots(root, document=document)
    data["lot_ids"] = [lot["lot_id"] for lot in data["lots"]]
    base = f"/*/{EXTENSION}/efac:NoticeResult"

    lot_results = []
    for node in [] if result is None else result.iterfind("efac:LotResult", _NS):
        lot_results.append(
            {
                "result_id": first_text(node, "cbc:ID"),
                "lot_id": first_text(node, "efac:TenderLot/cbc:ID"),
                "winner_chosen": first_text(node, "cbc:TenderResultCode"),
                "tender_ids": all_text(node, "efac:LotTender/cbc:ID"),
                "contract_ids": all_text(node, "efac:SettledContract/cbc:ID"),
                "received_tenders": first_text(
                    node,
                    "efac:ReceivedSubmissionsStatistics[efbc:StatisticsCode='tenders']/efbc:StatisticsNumeric",
                ),
                "no_winner_reason": first_text(node, "efac:DecisionReason/efbc:DecisionReasonCode"),
                "statistics": [
                    {"type": first_text(stats, "efbc:StatisticsCode"), "count": first_text(stats, "efbc:StatisticsNumeric")}
                    for stats in node.iterfind("efac:ReceivedSubmissionsStatistics", _NS)
                    if first_text(stats, "efbc:StatisticsCode") not in (None, "tenders")
                    and first_text(stats, "efbc:StatisticsNumeric") is not None
                ],
            }
        )
    tenders = []
    for node in [] if result is None else result.iterfind("efac:LotTender", _NS):
        value, currency = _amount(node, "cac:LegalMonetaryTotal/cbc:PayableAmount")
        tenders.append(
            {
                "tender_id": first_text(node, "cbc:ID"),
                "lot_id": first_text(node, "efac:TenderLot/cbc:ID"),
                "value": value,
                "value_currency": currency,
                "rank": first_text(node, "cbc:RankCode"),
                "tendering_party_id": first_text(node, "efac:TenderingParty/cbc:ID"),
                "tender_reference": first_text(node, "efac:TenderReference/cbc:ID"),
                "subcontracting": first_text(node, "efac:SubcontractingTerm/efbc:TermCode[@listName='applicability']"),
            }
        )
    contracts = []
    for node in [] if result is None else result.iterfind("efac:SettledContract", _NS):
        contracts.append(
            {
                "contract_id": first_text(node, "cbc:ID"),
                "contract_reference": first_text(node, "efac:ContractReference/cbc:ID"),
                "title": first_text(node, "cbc:Title"),
                "award_date": parse_date(
                    first_text(node, "cbc:AwardDate"), document=document, xpath=f"{base}/efac:SettledContract/cbc:AwardDate"
                ),
                "conclusion_date": parse_date(
                    first_text(node, "cbc:IssueDate"), document=document, xpath=f"{base}/efac:SettledContract/cbc:IssueDate"
                ),
                "tender_ids": all_text(node, "efac:LotTender/cbc:ID"),
            }
        )
    parties = []
    for node in [] if result is None else result.iterfind("efac:TenderingParty", _NS):
        members = []
        for tenderer in node.iterfind("efac:Tenderer", _NS):
            lead = first_text(tenderer, "efbc:GroupLeadIndicator")
            role = "group-leader" if lead == "true" else ("group-member" if lead == "false" else "tenderer")
            members.append({"organization_id": first_text(tenderer, "cbc:ID"), "role": role})
        for sub in node.iterfind("efac:SubContractor", _NS):
            members.append({"organization_id": first_text(sub, "cbc:ID"), "role": "subcontractor"})
        parties.append({"tendering_party_id": first_text(node, "cbc:ID"), "members": members})
    data["lot_results"] = lot_results
    data["tenders"] = tenders
    data["contracts"] = contracts
    data["tendering_parties"] = parties
    data["winners"] = _winners(lot_results, tenders, contracts, parties, orgs)
    winners = [w["organization"] for w in data["winners"]]
    members = {m["organization_id"] for party in parties for m in party["members"]}
    data["other_organizations"] = _other_organisations(common, [*data["buyers"], *winners],
                                                       _referenced(data["lots"]) | members)
    return data


def _referenced(lots: list[dict[str, Any]]) -> set[str]:
    """The organisations the lots' terms name (OPT-301)."""
    return {lot[key] for lot in lots for key in ORGANISATION_REFERENCES if lot[key] is not None}


def _other_organisations(common: dict[str, Any], named: list[dict[str, Any]], referenced: set[str]) -> list[dict[str, Any]]:
    """The notice's organisations ``referenced`` that are not among ``named`` (buyers, winners), in notice order.

    An organisation is named by its id or one of its touch points' (TPO-xxxx). Organisations the pivot does not name (e.g. an eSender, a mediator: roles it does not carry) are
    left out, as a written notice may hold no organisation without a role (BR-OPT-00200-0103)."""
    known = {org["organization_id"] for org in named}
    return [_organisation_record(org) for org_id, org in common["_organisations"].items()
            if org_id not in known and ({org_id} | {t["touch_point_id"] for t in org["touch_points"]}) & referenced]


def _winners(
    lot_results: list[dict[str, Any]],
    tenders: list[dict[str, Any]],
    contracts: list[dict[str, Any]],
    parties: list[dict[str, Any]],
    orgs: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """Resolve, for every lot with a winner chosen (BT-142 ``selec-w``), the winning tender's
    parties down to their organisations, so consumers need not re-join the notice's id graph."""
    by_tender = {t["tender_id"]: t for t in tenders}
    by_party = {p["tendering_party_id"]: p for p in parties}
    contract_of = {tid: c["contract_id"] for c in contracts for tid in c["tender_ids"]}
    out = []
    for res in lot_results:
        if res["winner_chosen"] != "selec-w":
            continue
        for tender_id in res["tender_ids"]:
            tender = by_tender.get(tender_id)
            if tender is None:
                continue
            party = by_party.get(tender["tendering_party_id"], {"members": []})
            for member in party["members"]:
                org = _organisation_record(orgs.get(member["organization_id"] or "", {}))
                org["organization_id"] = member["organization_id"]
                out.append(
                    {
                        "lot_id": res["lot_id"],
                        "tender_id": tender_id,
                        "contract_id": contract_of.get(tender_id),
                        "role": member["role"],
                        "value": tender["value"],
                        "value_currency": tender["value_currency"],
                        "organization": org,
                    }
                )
    return out


_ORG_FIELDS = (
    "organization_id",
    "name",
    "company_id",
    "company_id_scheme",
    "french_id_type",
    "french_id",
    "city",
    "postal_code",
    "nuts",
    "country",
    "legal_type",
    "activity",
    "phone",
    "email",
    "company_size",
)
