"""Write a procurement pivot as an eForms notice (UBL 2.3 + eForms extension).

A Notice pivot becomes a ContractNotice (competition, e.g. subtype 16: open procedure under
Directive 2014/24/EU), an Award pivot a ContractAwardNotice (result, e.g. subtype 29). Elements
are emitted in the order of the UBL 2.3 / eForms XSD sequences, with the ``listName`` /
``schemeName`` the eForms SDK examples carry. Nothing the pivot does not hold is invented, with
one exception: an Award pivot that names its winners but not the result graph (lot results,
tenders, tendering parties: the demo's) gets that graph derived from its winners, one result,
tender and tendering party per winning tender, so the notice says who won which lot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from lxml import etree

from ._eforms_terms import write_lot_process, write_lot_terms
from ._ubl23 import NS

__all__ = ["AWARD_NS", "NOTICE_NS", "write"]

NOTICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:ContractNotice-2"
AWARD_NS = "urn:oasis:names:specification:ubl:schema:xsd:ContractAwardNotice-2"
_CUSTOMIZATION = "eforms-sdk-1.15"
_PLACEHOLDER_AWARD_DATE = dt.date(2000, 1, 1)

Rec = Mapping[str, Any]


def _q(tag: str) -> str:
    prefix, local = tag.split(":")
    return f"{{{NS[prefix]}}}{local}"


def _el(parent: etree._Element, tag: str, value: Any = None, **attrs: str | None) -> etree._Element | None:
    """A child ``tag`` (``prefix:local``) holding ``value``; nothing when ``value`` is None (containers: :func:`_node`)."""
    if value is None:
        return None
    el = etree.SubElement(parent, _q(tag), {k: v for k, v in attrs.items() if v is not None})
    el.text = _date(value) if isinstance(value, dt.date) else str(value)
    return el


def _node(parent: etree._Element, tag: str) -> etree._Element:
    return etree.SubElement(parent, _q(tag))


def _date(day: dt.date) -> str:
    # eForms dates carry a zone; the pivot keeps the calendar day only, written as UTC.
    return f"{day.isoformat()}Z"


def _id_in(parent: etree._Element, tag: str, value: str | None, scheme: str) -> None:
    """``tag/cbc:ID`` with its ``schemeName`` (efac:TenderLot, efac:LotTender...), when there is a value."""
    if value is not None:
        _el(_node(parent, tag), "cbc:ID", value, schemeName=scheme)


def _lot_scheme(lot_id: str) -> str:
    return "Part" if lot_id.startswith("PAR-") else "Lot"


def _company(organizations: etree._Element, org: Rec, language: str | None) -> None:
    organization = _node(organizations, "efac:Organization")
    company = _node(organization, "efac:Company")
    _el(company, "efbc:CompanySizeCode", org.get("company_size"), listName="economic-operator-size")
    _party(company, org, org["organization_id"], "organization", language)
    for touch_point in org.get("touch_points", []):
        _party(_node(organization, "efac:TouchPoint"), touch_point, touch_point["touch_point_id"], "touchpoint",
               language)


def _party(party: etree._Element, org: Rec, party_id: str, scheme: str, language: str | None) -> None:
    """An organisation's or touch point's identification, name, address, legal entity and contact."""
    _el(_node(party, "cac:PartyIdentification"), "cbc:ID", party_id, schemeName=scheme)
    if org.get("name") is not None:
        _el(_node(party, "cac:PartyName"), "cbc:Name", org["name"], languageID=language)
    address_fields = ("city", "postal_code", "nuts", "country")
    if any(org.get(key) is not None for key in address_fields):
        address = _node(party, "cac:PostalAddress")
        _el(address, "cbc:CityName", org.get("city"))
        _el(address, "cbc:PostalZone", org.get("postal_code"))
        _el(address, "cbc:CountrySubentityCode", org.get("nuts"), listName="nuts")
        if org.get("country") is not None:
            _el(_node(address, "cac:Country"), "cbc:IdentificationCode", org["country"], listName="country")
    if org.get("company_id") is not None:
        _el(_node(party, "cac:PartyLegalEntity"), "cbc:CompanyID", org["company_id"],
            schemeName=org.get("company_id_scheme"))
    if org.get("phone") is not None or org.get("email") is not None:
        contact = _node(party, "cac:Contact")
        _el(contact, "cbc:Telephone", org.get("phone"))
        _el(contact, "cbc:ElectronicMail", org.get("email"))


def _organisations(data: Rec) -> list[dict[str, Any]]:
    """Buyers then winners' organisations, once each, every one with a technical id (OPT-200)."""
    out: dict[str, dict[str, Any]] = {}
    orgs = [*data.get("buyers", []), *(w["organization"] for w in data.get("winners", [])),
            *data.get("other_organizations", [])]
    for number, org in enumerate(orgs, start=1):
        out.setdefault(_org_id(org, number), {**org, "organization_id": _org_id(org, number)})
    return list(out.values())


def _org_id(org: Rec, number: int) -> str:
    """The organisation's technical id (OPT-200), ``ORG-<number>`` when the pivot has none."""
    return org.get("organization_id") or f"ORG-{number:04d}"


def _result_graph(data: Rec) -> tuple[list[Rec], list[Rec], list[Rec]]:
    """(lot results, tenders, tendering parties) of an Award: as held, or derived from its winners."""
    if data.get("lot_results") or not data.get("winners"):
        return list(data.get("lot_results", [])), list(data.get("tenders", [])), list(data.get("tendering_parties", []))
    # (tender id, [(winner, its organisation's OPT-200 as _organisations numbers it)])
    by_tender: dict[str, list[tuple[Rec, str]]] = {}
    first_number = len(data.get("buyers", [])) + 1
    for number, winner in enumerate(data["winners"], start=first_number):
        tender_id = winner.get("tender_id") or f"TEN-{number - first_number + 1:04d}"
        by_tender.setdefault(tender_id, []).append((winner, _org_id(winner["organization"], number)))
    results, tenders, parties = [], [], []
    for number, (tender_id, winners) in enumerate(by_tender.items(), start=1):
        first = winners[0][0]
        party_id = f"TPA-{number:04d}"
        results.append({"result_id": f"RES-{number:04d}", "lot_id": first.get("lot_id"), "winner_chosen": "selec-w",
                        "tender_ids": [tender_id], "contract_ids": [first["contract_id"]] if first.get("contract_id") else []})
        tenders.append({"tender_id": tender_id, "lot_id": first.get("lot_id"), "value": first.get("value"),
                        "value_currency": first.get("value_currency"), "tendering_party_id": party_id})
        parties.append({"tendering_party_id": party_id,
                        "members": [{"organization_id": org_id, "role": w.get("role", "tenderer")} for w, org_id in winners]})
    return results, tenders, parties


def _notice_result(ext: etree._Element, data: Rec) -> None:
    results, tenders, parties = _result_graph(data)
    result = _node(ext, "efac:NoticeResult")
    _el(result, "cbc:TotalAmount", data.get("total_value"), currencyID=data.get("total_value_currency"))
    for res in results:
        node = _node(result, "efac:LotResult")
        _el(node, "cbc:ID", res.get("result_id"), schemeName="result")
        _el(node, "cbc:TenderResultCode", res.get("winner_chosen"), listName="winner-selection-status")
        if res.get("no_winner_reason") is not None:
            _el(_node(node, "efac:DecisionReason"), "efbc:DecisionReasonCode", res["no_winner_reason"],
                listName="non-award-justification")
        for tender_id in res.get("tender_ids", []):
            _id_in(node, "efac:LotTender", tender_id, "tender")
        if res.get("received_tenders") is not None:
            stats = _node(node, "efac:ReceivedSubmissionsStatistics")
            _el(stats, "efbc:StatisticsCode", "tenders", listName="received-submission-type")
            _el(stats, "efbc:StatisticsNumeric", res["received_tenders"])
        for statistic in res.get("statistics", []):
            stats = _node(node, "efac:ReceivedSubmissionsStatistics")
            _el(stats, "efbc:StatisticsCode", statistic["type"], listName="received-submission-type")
            _el(stats, "efbc:StatisticsNumeric", statistic["count"])
        for contract_id in res.get("contract_ids", []):
            _id_in(node, "efac:SettledContract", contract_id, "contract")
        _id_in(node, "efac:TenderLot", res.get("lot_id"), _lot_scheme(res.get("lot_id") or ""))
    for tender in tenders:
        node = _node(result, "efac:LotTender")
        _el(node, "cbc:ID", tender.get("tender_id"), schemeName="tender")
        _el(node, "cbc:RankCode", tender.get("rank"))
        if tender.get("value") is not None:
            _el(_node(node, "cac:LegalMonetaryTotal"), "cbc:PayableAmount", tender["value"],
                currencyID=tender.get("value_currency"))
        if tender.get("subcontracting") is not None:
            _el(_node(node, "efac:SubcontractingTerm"), "efbc:TermCode", tender["subcontracting"],
                listName="applicability")
        _id_in(node, "efac:TenderingParty", tender.get("tendering_party_id"), "tendering-party")
        _id_in(node, "efac:TenderLot", tender.get("lot_id"), _lot_scheme(tender.get("lot_id") or ""))
        if tender.get("tender_reference") is not None:
            _el(_node(node, "efac:TenderReference"), "cbc:ID", tender["tender_reference"])
    for contract in data.get("contracts", []):
        node = _node(result, "efac:SettledContract")
        _el(node, "cbc:ID", contract.get("contract_id"), schemeName="contract")
        _el(node, "cbc:AwardDate", contract.get("award_date"))
        _el(node, "cbc:IssueDate", contract.get("conclusion_date"))
        _el(node, "cbc:Title", contract.get("title"), languageID=data.get("notice_language"))
        if contract.get("contract_reference") is not None:
            _el(_node(node, "efac:ContractReference"), "cbc:ID", contract["contract_reference"])
        for tender_id in contract.get("tender_ids", []):
            _id_in(node, "efac:LotTender", tender_id, "tender")
    for party in parties:
        node = _node(result, "efac:TenderingParty")
        _el(node, "cbc:ID", party.get("tendering_party_id"), schemeName="tendering-party")
        members = party.get("members", [])
        for member in (m for m in members if m["role"] != "subcontractor"):
            tenderer = _node(node, "efac:Tenderer")
            _el(tenderer, "cbc:ID", member.get("organization_id"), schemeName="organization")
            lead = {"group-leader": "true", "group-member": "false"}.get(member["role"])
            _el(tenderer, "efbc:GroupLeadIndicator", lead)
        for member in (m for m in members if m["role"] == "subcontractor"):
            _el(_node(node, "efac:SubContractor"), "cbc:ID", member.get("organization_id"), schemeName="organization")


def _extension(root: etree._Element, data: Rec, organisations: Iterable[Rec], *, award: bool) -> None:
    content = _node(_node(_node(root, "ext:UBLExtensions"), "ext:UBLExtension"), "ext:ExtensionContent")
    ext = _node(content, "efext:EformsExtension")
    if data.get("changed_notice_id") is not None:
        changes = _node(ext, "efac:Changes")
        _el(changes, "efbc:ChangedNoticeIdentifier", data["changed_notice_id"])
        if data.get("change_reason") is not None:
            _el(_node(changes, "efac:ChangeReason"), "cbc:ReasonCode", data["change_reason"],
                listName="change-corrig-justification")
    if award:
        _notice_result(ext, data)
    _el(_node(ext, "efac:NoticeSubType"), "cbc:SubTypeCode", data["notice_subtype"], listName="notice-subtype")
    orgs = _node(ext, "efac:Organizations")
    for org in organisations:
        _company(orgs, org, data.get("notice_language"))


def _project(parent: etree._Element, scope: Rec, *, internal_id: str | None = None) -> etree._Element:
    """cac:ProcurementProject of the procedure or of a lot (BT-21, BT-24, BT-23, BT-27, BT-262, BT-263)."""
    project = _node(parent, "cac:ProcurementProject")
    _el(project, "cbc:ID", internal_id, schemeName="InternalID")
    _el(project, "cbc:Name", scope.get("title"), languageID=scope.get("_language"))
    _el(project, "cbc:Description", scope.get("description"), languageID=scope.get("_language"))
    _el(project, "cbc:ProcurementTypeCode", scope.get("contract_nature"), listName="contract-nature")
    if scope.get("estimated_value") is not None:
        _el(_node(project, "cac:RequestedTenderTotal"), "cbc:EstimatedOverallContractAmount",
            scope["estimated_value"], currencyID=scope.get("estimated_value_currency"))
    if scope.get("main_cpv") is not None:
        _el(_node(project, "cac:MainCommodityClassification"), "cbc:ItemClassificationCode", scope["main_cpv"],
            listName="cpv")
    for code in scope.get("additional_cpv", []):
        _el(_node(project, "cac:AdditionalCommodityClassification"), "cbc:ItemClassificationCode", code,
            listName="cpv")
    for place in scope.get("places", []):
        location = _node(project, "cac:RealizedLocation")
        _el(location, "cbc:Description", place.get("description"), languageID=scope.get("_language"))
        address = _node(location, "cac:Address")
        _el(address, "cbc:StreetName", place.get("street"))
        _el(address, "cbc:AdditionalStreetName", place.get("additional_street"))
        _el(address, "cbc:CityName", place.get("city"))
        _el(address, "cbc:PostalZone", place.get("postal_code"))
        _el(address, "cbc:CountrySubentityCode", place.get("nuts"), listName="nuts")
        _el(address, "cbc:Region", place.get("region"))
        if place.get("country") is not None:
            _el(_node(address, "cac:Country"), "cbc:IdentificationCode", place["country"], listName="country")
    return project


def _lot(root: etree._Element, lot: Rec, language: str | None) -> None:
    node = _node(root, "cac:ProcurementProjectLot")
    _el(node, "cbc:ID", lot["lot_id"], schemeName=_lot_scheme(lot["lot_id"]))
    write_lot_terms(_el, node, lot, language)
    write_lot_process(_el, node, lot, language)
    if set(lot) == {"lot_id"}:
        return  # an Award's lot is only its id (BT-137): an empty cac:ProcurementProject is refused
    project = _project(node, {**lot, "_language": language}, internal_id=lot.get("internal_id"))
    if any(lot.get(key) is not None for key in ("planned_start_date", "planned_end_date", "duration")):
        planned = _node(project, "cac:PlannedPeriod")
        _el(planned, "cbc:StartDate", lot.get("planned_start_date"))
        _el(planned, "cbc:EndDate", lot.get("planned_end_date"))
        _el(planned, "cbc:DurationMeasure", lot.get("duration"), unitCode=lot.get("duration_unit"))


def _procedure_terms(root: etree._Element, data: Rec) -> None:
    """The procedure's cac:TenderingTerms: exclusion grounds and their source (BT-806, BT-67), lots limits (BT-33, BT-31)."""
    grounds = data.get("exclusion_grounds", [])
    lots_limits = (data.get("max_lots_awarded"), data.get("max_lots_submitted"))
    if not data.get("exclusion_grounds_sources") and not grounds and lots_limits == (None, None):
        return
    terms = _node(root, "cac:TenderingTerms")
    # the source (BT-806) and the grounds (BT-67) each in their own request, as the SDK examples write them
    for codes, list_name in (([(c, None) for c in data.get("exclusion_grounds_sources", [])], "exclusion-grounds-source"),
                             ([(g["code"], g.get("description")) for g in grounds], "exclusion-ground")):
        qualification = _node(terms, "cac:TendererQualificationRequest") if codes else None
        for code, description in codes:
            requirement = _node(qualification, "cac:SpecificTendererRequirement")
            _el(requirement, "cbc:TendererRequirementTypeCode", code, listName=list_name)
            _el(requirement, "cbc:Description", description, languageID=data.get("notice_language"))
    if lots_limits != (None, None):
        distribution = _node(terms, "cac:LotDistribution")
        _el(distribution, "cbc:MaximumLotsAwardedNumeric", lots_limits[0])
        _el(distribution, "cbc:MaximumLotsSubmittedNumeric", lots_limits[1])


def _lots(data: Rec) -> list[Rec]:
    """The lots of a Notice or an Award; else an Award's lot ids (BT-137), and those its results and winners name."""
    if data.get("lots"):
        return list(data["lots"])
    ids = list(data.get("lot_ids", []))
    for ref in [*data.get("lot_results", []), *data.get("winners", [])]:
        if ref.get("lot_id") is not None and ref["lot_id"] not in ids:
            ids.append(ref["lot_id"])
    return [{"lot_id": lot_id} for lot_id in ids]


def write(data: Rec, *, award: bool) -> bytes:
    """The ContractAwardNotice (``award``) or ContractNotice of the pivot record ``data``."""
    ns = AWARD_NS if award else NOTICE_NS
    nsmap = {None: ns, **NS}
    root = etree.Element(f"{{{ns}}}{'ContractAwardNotice' if award else 'ContractNotice'}", nsmap=nsmap)
    organisations = _organisations(data)
    _extension(root, data, organisations, award=award)
    _el(root, "cbc:UBLVersionID", "2.3")
    _el(root, "cbc:CustomizationID", _CUSTOMIZATION)
    _el(root, "cbc:ID", data["notice_id"], schemeName="notice-id")
    _el(root, "cbc:ContractFolderID", data["procedure_id"])
    _el(root, "cbc:IssueDate", data["dispatch_date"])
    _el(root, "cbc:IssueTime", data.get("dispatch_time"))
    _el(root, "cbc:VersionID", data["notice_version"])
    _el(root, "cbc:RegulatoryDomain", data.get("regulatory_domain"))
    _el(root, "cbc:NoticeTypeCode", data.get("notice_type"), listName=data.get("form_type"))
    _el(root, "cbc:NoticeLanguageCode", data.get("notice_language"))
    for number, buyer in enumerate(data.get("buyers", []), start=1):
        party = _node(root, "cac:ContractingParty")
        if buyer.get("legal_type") is not None:
            _el(_node(party, "cac:ContractingPartyType"), "cbc:PartyTypeCode", buyer["legal_type"],
                listName="buyer-legal-type")
        if buyer.get("activity") is not None:
            _el(_node(party, "cac:ContractingActivity"), "cbc:ActivityTypeCode", buyer["activity"],
                listName="authority-activity")
        _el(_node(_node(party, "cac:Party"), "cac:PartyIdentification"), "cbc:ID", _org_id(buyer, number),
            schemeName="organization")
    _procedure_terms(root, data)
    if any(data.get(key) is not None for key in ("procedure_type", "accelerated", "accelerated_justification")):
        process = _node(root, "cac:TenderingProcess")
        _el(process, "cbc:ProcedureCode", data.get("procedure_type"), listName="procurement-procedure-type")
        if data.get("accelerated") is not None or data.get("accelerated_justification") is not None:
            justification = _node(process, "cac:ProcessJustification")
            _el(justification, "cbc:ProcessReasonCode", data.get("accelerated"), listName="accelerated-procedure")
            _el(justification, "cbc:ProcessReason", data.get("accelerated_justification"),
                languageID=data.get("notice_language"))
    scope = ("title", "description", "contract_nature", "estimated_value", "main_cpv", "additional_cpv", "places")
    if not award or any(data.get(key) for key in scope):  # optional in an award notice, never empty
        _project(root, {**data, "_language": data.get("notice_language")})
    for lot in _lots(data):
        _lot(root, lot, data.get("notice_language"))
    if award:
        # UBL requires one cac:TenderResult that eForms does not use; the SDK examples all write
        # this placeholder date, which no reader (the bus's neither) takes for an award date.
        _el(_node(root, "cac:TenderResult"), "cbc:AwardDate", _PLACEHOLDER_AWARD_DATE)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
