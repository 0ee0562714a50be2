"""ESPD / DUME responses (UBL 2.3 QualificationApplicationResponse) to Candidature pivots.

A candidature where the company gives only its identifier ("Dites-le-nous une fois"): the pivot
carries the economic operator's identifier (its SIRET when it is one, otherwise the identifier
and its scheme agency), the procedure reference (ContractFolderID) and the criterion answers as
written, so the tell-us-once processor can enrich the rest from the company reference data. The
event is ``fr.dcant.procurement.CandidatureSubmitted``; its subject is ``notice:<procedure ref>``
so it joins the procedure's dossier, or ``company:<SIRET>`` / ``candidature:<ESPD ID>`` when the
response names no procedure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree

from bus._errors import NonConformantError, UnknownFormatError

from ._base import Finding, Pivot, Sniff
from ._ubl23 import NS, all_text, first_text, french_identifier, load_xsd, parse_date, xsd_findings
from ._xml import parse_xml

__all__ = ["FAMILY", "FORMAT", "detect", "to_pivot", "validate"]

FORMAT = "espd"
FAMILY = "procurement"

_RESPONSE_NS = "urn:oasis:names:specification:ubl:schema:xsd:QualificationApplicationResponse-2"
_XSD = "procurement/espd/ubl-2.3/xsdrt/maindoc/UBL-QualificationApplicationResponse-2.3.xsd"
_PACKAGE = "the OASIS UBL 2.3 schemas (docs.oasis-open.org/ubl/os-UBL-2.3/xsdrt/)"
# The response value elements of a cac:ResponseValue, in the order ESPD-EDM lists them.
_VALUE_KINDS = (
    "ResponseIndicator",
    "ResponseCode",
    "ResponseAmount",
    "ResponseQuantity",
    "ResponseNumeric",
    "ResponseDate",
    "ResponseTime",
    "ResponseURI",
    "ResponseID",
    "Description",
)


def detect(sniff: Sniff) -> bool:
    """An ESPD response is XML rooted in a UBL 2.3 QualificationApplicationResponse."""
    return sniff.kind == "xml" and sniff.root_ns == _RESPONSE_NS


def _root(data: bytes, name: str) -> etree._Element:
    root = parse_xml(data, name=name)
    qn = etree.QName(root)
    if qn.namespace != _RESPONSE_NS or qn.localname != "QualificationApplicationResponse":
        raise UnknownFormatError(
            f"root element {{{qn.namespace}}}{qn.localname} is not an ESPD response",
            document=name,
            hint="an ESPD request (QualificationApplicationRequest) is not a candidature; send the response",
        )
    return root


def _operator(root: etree._Element, name: str) -> dict[str, Any]:
    party = root.find("cac:EconomicOperatorParty/cac:Party", NS)
    if party is None:
        raise NonConformantError(
            "the response names no economic operator",
            document=name,
            xpath="/*/cac:EconomicOperatorParty/cac:Party",
            rule="ESPD-EO-IDENTIFIER",
        )
    id_node = party.find("cac:PartyIdentification/cbc:ID", NS)
    if id_node is None or not (id_node.text or "").strip():
        raise NonConformantError(
            "the economic operator has no identifier",
            document=name,
            xpath="/*/cac:EconomicOperatorParty/cac:Party/cac:PartyIdentification/cbc:ID",
            rule="ESPD-EO-IDENTIFIER",
            hint="give the company's SIRET (or its VAT / national registration number)",
        )
    identifier = (id_node.text or "").strip()
    scheme = id_node.get("schemeID") or id_node.get("schemeAgencyID")
    country = first_text(party, "cac:PostalAddress/cac:Country/cbc:IdentificationCode")
    # Only a 14-digit number is a SIRET: a 9-digit one could be any country's register number.
    fr_type, fr_id = french_identifier(identifier, country)
    if fr_type != "SIRET" and (scheme or "").upper() in ("SIRET", "FR:SIRET", "0009"):
        fr_type, fr_id = "SIRET", "".join(identifier.split())
    return {
        "identifier": identifier,
        "identifier_scheme": scheme,
        "siret": fr_id if fr_type == "SIRET" else None,
        "siren": fr_id if fr_type == "SIREN" else (fr_id[:9] if fr_type == "SIRET" and fr_id else None),
        "name": first_text(party, "cac:PartyName/cbc:Name"),
        "country": country,
        "role": first_text(root, "cac:EconomicOperatorParty/cac:EconomicOperatorRole/cbc:RoleCode"),
        "size": first_text(party, "cbc:IndustryClassificationCode"),
    }


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """Read the ESPD response in ``data`` into a Candidature pivot."""
    root = _root(data, name)
    espd_id = first_text(root, "cbc:ID")
    if espd_id is None:
        raise NonConformantError(
            "the ESPD response has no identifier", document=name, xpath="/*/cbc:ID", rule="ESPD-ID"
        )
    operator = _operator(root, name)
    folder = first_text(root, "cbc:ContractFolderID")
    buyer = root.find("cac:ContractingParty/cac:Party", NS)
    answers = []
    for response in root.iterfind("cac:TenderingCriterionResponse", NS):
        value, kind = None, None
        for candidate in _VALUE_KINDS:
            value = first_text(response, f"cac:ResponseValue/cbc:{candidate}")
            if value is not None:
                kind = candidate
                break
        answers.append(
            {
                "property_id": first_text(response, "cbc:ValidatedCriterionPropertyID"),
                "value_kind": kind,
                "value": value,
            }
        )
    record = {
        "espd_id": espd_id,
        "uuid": first_text(root, "cbc:UUID"),
        "procedure_reference": folder,
        "issue_date": parse_date(first_text(root, "cbc:IssueDate"), document=name, xpath="/*/cbc:IssueDate"),
        "issue_time": first_text(root, "cbc:IssueTime"),
        "profile": first_text(root, "cbc:ProfileExecutionID"),
        "procedure_type": first_text(root, "cbc:ProcedureCode"),
        "buyer_identifier": first_text(buyer, "cac:PartyIdentification/cbc:ID"),
        "buyer_name": first_text(buyer, "cac:PartyName/cbc:Name"),
        "lot_ids": all_text(root, "cac:ProcurementProjectLot/cbc:ID"),
        "economic_operator": operator,
        "answers": answers,
    }
    if folder is not None:
        subject = f"notice:{folder}"
    elif operator["siret"] is not None:
        subject = f"company:{operator['siret']}"
    else:
        subject = f"candidature:{espd_id}"
    return Pivot(
        type="fr.dcant.procurement.CandidatureSubmitted",
        schema="fr.dcant.procurement.Candidature",
        subject=subject,
        data=record,
        format=FORMAT,
    )


def validate(data: bytes, *, schema_dir: Path | str, name: str = "<bytes>") -> list[Finding]:
    """XSD findings of the response against UBL 2.3, then the identifiers the pivot needs.

    ``schema_dir`` is laid out as the corpus: ``procurement/espd/ubl-2.3/xsdrt/maindoc/...``.
    """
    root = _root(data, name)
    findings = xsd_findings(load_xsd(schema_dir, _XSD, package=_PACKAGE), root)
    if first_text(root, "cac:EconomicOperatorParty/cac:Party/cac:PartyIdentification/cbc:ID") is None:
        findings.append(
            Finding(
                "ESPD-EO-IDENTIFIER",
                "/QualificationApplicationResponse/cac:EconomicOperatorParty/cac:Party/cac:PartyIdentification/cbc:ID",
                "the economic operator must be identified (SIRET, VAT or national number)",
            )
        )
    if first_text(root, "cbc:ContractFolderID") is None:
        findings.append(
            Finding(
                "ESPD-PROCEDURE-REFERENCE",
                "/QualificationApplicationResponse/cbc:ContractFolderID",
                "the response does not reference the procedure (ContractFolderID)",
                severity="warning",
            )
        )
    return findings
