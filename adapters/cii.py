"""UN/CEFACT Cross Industry Invoice D16B (EN 16931 syntax binding, Factur-X XML) to and from the pivot.

Reading maps each CII element to its EN 16931 term (field docs of
``schemas/avro/invoices/Invoice.v1.avsc``) and enforces the fatal business rules; the profile
(BT-24, the Factur-X guideline for Factur-X) is kept in ``profile``. XSD validation is left to
:func:`validate`. Writing is in :mod:`._cii_write`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from . import _en16931
from ._base import Finding, Pivot, Sniff
from ._cii_write import RAM, RSM, UDT, write
from ._invoice_xsd import parse_date, schema_at, xsd_findings
from ._xml import parse_xml

__all__ = ["FAMILY", "FORMAT", "detect", "from_pivot", "read", "terms", "to_pivot", "validate"]

FORMAT = "cii"
FAMILY = "invoices"

XSD = "invoices/xsd/cii-d16b-uncoupled/CII/uncefact/data/standard/CrossIndustryInvoice_100pD16B.xsd"
_PACKAGE = "the UN/CEFACT CII D16B schemas (SCRDM subset, uncoupled code lists) published with EN 16931"
R, M = f"{{{RAM}}}", f"{{{RSM}}}"
_DATE = f"{{{UDT}}}DateTimeString"
_QDATE = "{urn:un:unece:uncefact:data:standard:QualifiedDataType:100}DateTimeString"


def detect(sniff: Sniff) -> bool:
    """True for a CrossIndustryInvoice root element (D16B namespace)."""
    return sniff.kind == "xml" and sniff.root_ns == RSM and sniff.root_tag == "CrossIndustryInvoice"


def _t(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    child = el.find(path)
    return None if child is None else (child.text or "").strip()


def _date(el: etree._Element | None, path: str, term: str, name: str, tag: str = _DATE) -> Any:
    holder = el.find(path) if el is not None else None
    stamp = holder.find(tag) if holder is not None else None
    if stamp is None:
        return None
    return parse_date(stamp.text or "", term=term, name=name, fmt=stamp.get("format"))


def _ident(el: etree._Element | None) -> dict[str, Any] | None:
    return None if el is None else {"id": (el.text or "").strip(), "scheme": el.get("schemeID")}


def _address(el: etree._Element | None) -> dict[str, Any] | None:
    if el is None:
        return None
    return {
        "line1": _t(el, R + "LineOne"), "line2": _t(el, R + "LineTwo"), "line3": _t(el, R + "LineThree"),
        "city": _t(el, R + "CityName"), "post_code": _t(el, R + "PostcodeCode"),
        "country_subdivision": _t(el, R + "CountrySubDivisionName"), "country_code": _t(el, R + "CountryID"),
    }


def _party(el: etree._Element | None) -> dict[str, Any] | None:
    if el is None:
        return None
    legal = el.find(R + "SpecifiedLegalOrganization")
    contact = el.find(R + "DefinedTradeContact")
    taxes = {reg.get("schemeID"): (reg.text or "").strip() for reg in el.iterfind(f"{R}SpecifiedTaxRegistration/{R}ID")}
    return {
        "name": _t(el, R + "Name"),
        "trading_name": _t(legal, R + "TradingBusinessName"),
        "identifiers": [_ident(i) for i in el.iterfind(R + "ID")] + [_ident(i) for i in el.iterfind(R + "GlobalID")],
        "legal_registration": _ident(legal.find(R + "ID")) if legal is not None else None,
        "vat_identifier": taxes.get("VA"),
        "tax_registration": taxes.get("FC"),
        "legal_form": _t(el, R + "Description"),
        "electronic_address": _ident(el.find(f"{R}URIUniversalCommunication/{R}URIID")),
        "address": _address(el.find(R + "PostalTradeAddress")),
        "contact": None if contact is None else {
            "name": _t(contact, R + "PersonName") or _t(contact, R + "DepartmentName"),
            "telephone": _t(contact, f"{R}TelephoneUniversalCommunication/{R}CompleteNumber"),
            "email": _t(contact, f"{R}EmailURIUniversalCommunication/{R}URIID"),
        },
    }


def _allowance(el: etree._Element) -> dict[str, Any]:
    tax = el.find(R + "CategoryTradeTax")
    return {
        "charge": (_t(el, f"{R}ChargeIndicator/{{{UDT}}}Indicator") or "").lower() in ("true", "1"),
        "amount": _t(el, R + "ActualAmount"),
        "base_amount": _t(el, R + "BasisAmount"),
        "percentage": _t(el, R + "CalculationPercent"),
        "vat_category": _t(tax, R + "CategoryCode"),
        "vat_rate": _t(tax, R + "RateApplicablePercent"),
        "reason": _t(el, R + "Reason"),
        "reason_code": _t(el, R + "ReasonCode"),
    }


def _period(el: etree._Element | None, term: str, name: str) -> dict[str, Any] | None:
    if el is None:
        return None
    return {"start_date": _date(el, R + "StartDateTime", term, name), "end_date": _date(el, R + "EndDateTime", term, name)}


def _line(el: etree._Element, name: str) -> dict[str, Any]:
    doc = el.find(R + "AssociatedDocumentLineDocument")
    product = el.find(R + "SpecifiedTradeProduct")
    agreement = el.find(R + "SpecifiedLineTradeAgreement")
    gross = agreement.find(R + "GrossPriceProductTradePrice") if agreement is not None else None
    net = agreement.find(R + "NetPriceProductTradePrice") if agreement is not None else None
    quantity = el.find(f"{R}SpecifiedLineTradeDelivery/{R}BilledQuantity")
    settlement = el.find(R + "SpecifiedLineTradeSettlement")
    tax = settlement.find(R + "ApplicableTradeTax") if settlement is not None else None
    basis = None
    for price in (net, gross):
        if basis is None and price is not None:
            basis = price.find(R + "BasisQuantity")
    object_id = None
    if settlement is not None:
        for ref in settlement.iterfind(R + "AdditionalReferencedDocument"):
            if _t(ref, R + "TypeCode") == "130":
                object_id = {"id": _t(ref, R + "IssuerAssignedID") or "", "scheme": _t(ref, R + "ReferenceTypeCode")}
    return {
        "id": _t(doc, R + "LineID"),
        "note": _t(doc, f"{R}IncludedNote/{R}Content"),
        "object_identifier": object_id,
        "quantity": None if quantity is None else (quantity.text or "").strip(),
        "unit_code": None if quantity is None else quantity.get("unitCode"),
        "net_amount": _t(settlement, f"{R}SpecifiedTradeSettlementLineMonetarySummation/{R}LineTotalAmount"),
        "order_line_reference": _t(agreement, f"{R}BuyerOrderReferencedDocument/{R}LineID"),
        "accounting_reference": _t(settlement, f"{R}ReceivableSpecifiedTradeAccountingAccount/{R}ID"),
        "period": _period(settlement.find(R + "BillingSpecifiedPeriod") if settlement is not None else None, "BG-26", name),
        "allowance_charges": [] if settlement is None else [_allowance(a) for a in settlement.iterfind(R + "SpecifiedTradeAllowanceCharge")],
        "price": None if net is None and gross is None else {
            "net_price": _t(net, R + "ChargeAmount"),
            "discount": _t(gross, f"{R}AppliedTradeAllowanceCharge/{R}ActualAmount"),
            "gross_price": _t(gross, R + "ChargeAmount"),
            "base_quantity": None if basis is None else (basis.text or "").strip(),
            "base_quantity_unit": None if basis is None else basis.get("unitCode"),
        },
        "vat_category": _t(tax, R + "CategoryCode"),
        "vat_rate": _t(tax, R + "RateApplicablePercent"),
        "item": _item(product),
    }


def _item(product: etree._Element | None) -> dict[str, Any]:
    if product is None:
        return {"name": None}
    return {
        "name": _t(product, R + "Name"),
        "description": _t(product, R + "Description"),
        "seller_id": _t(product, R + "SellerAssignedID"),
        "buyer_id": _t(product, R + "BuyerAssignedID"),
        "standard_id": _ident(product.find(R + "GlobalID")),
        "classifications": [
            {"code": (c.text or "").strip(), "list_id": c.get("listID"), "list_version": c.get("listVersionID")}
            for c in product.iterfind(f"{R}DesignatedProductClassification/{R}ClassCode")
        ],
        "origin_country": _t(product, f"{R}OriginTradeCountry/{R}ID"),
        "attributes": [
            {"name": _t(c, R + "Description") or "", "value": _t(c, R + "Value") or ""}
            for c in product.iterfind(R + "ApplicableProductCharacteristic")
        ],
    }


def _payment(settlement: etree._Element, terms_el: etree._Element | None) -> dict[str, Any] | None:
    means = settlement.findall(R + "SpecifiedTradeSettlementPaymentMeans")
    reference = _t(settlement, R + "PaymentReference")
    mandate = _t(terms_el, R + "DirectDebitMandateID")
    creditor = _t(settlement, R + "CreditorReferenceID")
    if not means:
        return None
    first = means[0]
    card = first.find(R + "ApplicableTradeSettlementFinancialCard")
    debtor = _t(first, f"{R}PayerPartyDebtorFinancialAccount/{R}IBANID")
    transfers = []
    for pm in means:
        account = pm.find(R + "PayeePartyCreditorFinancialAccount")
        if account is not None:
            transfers.append({
                "account_id": _t(account, R + "IBANID") or _t(account, R + "ProprietaryID") or "",
                "account_name": _t(account, R + "AccountName"),
                "provider_id": _t(pm, f"{R}PayeeSpecifiedCreditorFinancialInstitution/{R}BICID"),
            })
    return {
        "means_code": _t(first, R + "TypeCode"),
        "means_text": _t(first, R + "Information"),
        "remittance_information": reference,
        "credit_transfers": transfers,
        "card": None if card is None else {"account_number": _t(card, R + "ID") or "", "holder_name": _t(card, R + "CardholderName")},
        "direct_debit": None if mandate is None and creditor is None and debtor is None else {
            "mandate_reference": mandate, "creditor_id": creditor, "debited_account": debtor,
        },
    }


def read(root: etree._Element, *, name: str) -> dict[str, Any]:
    """The pivot record of a parsed CrossIndustryInvoice (no rules applied)."""
    if root.tag != M + "CrossIndustryInvoice":
        raise NonConformantError("the root element is not a CII D16B CrossIndustryInvoice", document=name, rule="XSD", xpath="/*")
    context = root.find(M + "ExchangedDocumentContext")
    header = root.find(M + "ExchangedDocument")
    transaction = root.find(M + "SupplyChainTradeTransaction")
    if transaction is None:
        transaction = etree.Element(M + "SupplyChainTradeTransaction")
    agreement = transaction.find(R + "ApplicableHeaderTradeAgreement")
    delivery = transaction.find(R + "ApplicableHeaderTradeDelivery")
    settlement = transaction.find(R + "ApplicableHeaderTradeSettlement")
    if settlement is None:
        settlement = etree.Element(R + "ApplicableHeaderTradeSettlement")
    currency = _t(settlement, R + "InvoiceCurrencyCode")
    tax_currency = _t(settlement, R + "TaxCurrencyCode")
    summation = settlement.find(R + "SpecifiedTradeSettlementHeaderMonetarySummation")
    tax_total = accounting = None
    for amount in summation.iterfind(R + "TaxTotalAmount") if summation is not None else ():
        unit = amount.get("currencyID")
        if tax_total is None and (unit in (None, currency) or tax_currency in (None, currency)):
            tax_total = (amount.text or "").strip()
        elif accounting is None:
            accounting = (amount.text or "").strip()
    taxes = settlement.findall(R + "ApplicableTradeTax")
    terms_el = settlement.find(R + "SpecifiedTradePaymentTerms")
    documents, tender, invoiced_object = [], None, None
    for doc in agreement.iterfind(R + "AdditionalReferencedDocument") if agreement is not None else ():
        code = _t(doc, R + "TypeCode")
        if code == "50":
            tender = _t(doc, R + "IssuerAssignedID")
        elif code == "130":
            invoiced_object = {"id": _t(doc, R + "IssuerAssignedID") or "", "scheme": _t(doc, R + "ReferenceTypeCode")}
        else:
            binary = doc.find(R + "AttachmentBinaryObject")
            documents.append({
                "id": _t(doc, R + "IssuerAssignedID") or "", "description": _t(doc, R + "Name"), "uri": _t(doc, R + "URIID"),
                "content": None if binary is None else (binary.text or "").strip(),
                "mime_code": None if binary is None else binary.get("mimeCode"),
                "filename": None if binary is None else binary.get("filename"),
            })
    ship_to = delivery.find(R + "ShipToTradeParty") if delivery is not None else None
    ship_id = None
    if ship_to is not None:
        ship_id = _ident(ship_to.find(R + "ID")) or _ident(ship_to.find(R + "GlobalID"))
    tax_point = next((t for t in taxes if t.find(R + "TaxPointDate") is not None), None)
    return {
        "syntax": "CII",
        "profile": _t(context, f"{R}GuidelineSpecifiedDocumentContextParameter/{R}ID"),
        "business_process": _t(context, f"{R}BusinessProcessSpecifiedDocumentContextParameter/{R}ID"),
        "number": _t(header, R + "ID"),
        "issue_date": _date(header, R + "IssueDateTime", "BT-2", name),
        "type_code": _t(header, R + "TypeCode"),
        "is_credit_note": False,
        "currency": currency,
        "tax_currency": tax_currency,
        "tax_point_date": _date(tax_point, R + "TaxPointDate", "BT-7", name, tag=f"{{{UDT}}}DateString"),
        "tax_point_date_code": next((_t(t, R + "DueDateTypeCode") for t in taxes if t.find(R + "DueDateTypeCode") is not None), None),
        "due_date": _date(terms_el, R + "DueDateDateTime", "BT-9", name),
        "buyer_reference": _t(agreement, R + "BuyerReference"),
        "project_reference": _t(agreement, f"{R}SpecifiedProcuringProject/{R}ID"),
        "contract_reference": _t(agreement, f"{R}ContractReferencedDocument/{R}IssuerAssignedID"),
        "purchase_order_reference": _t(agreement, f"{R}BuyerOrderReferencedDocument/{R}IssuerAssignedID"),
        "sales_order_reference": _t(agreement, f"{R}SellerOrderReferencedDocument/{R}IssuerAssignedID"),
        "receiving_advice_reference": _t(delivery, f"{R}ReceivingAdviceReferencedDocument/{R}IssuerAssignedID"),
        "despatch_advice_reference": _t(delivery, f"{R}DespatchAdviceReferencedDocument/{R}IssuerAssignedID"),
        "tender_reference": tender,
        "invoiced_object": invoiced_object,
        "buyer_accounting_reference": _t(settlement, f"{R}ReceivableSpecifiedTradeAccountingAccount/{R}ID"),
        "payment_terms": _t(terms_el, R + "Description"),
        "notes": [
            {"subject_code": _t(n, R + "SubjectCode"), "text": _t(n, R + "Content") or ""}
            for n in (header.iterfind(R + "IncludedNote") if header is not None else ())
        ],
        "preceding_invoices": [
            {"number": _t(ref, R + "IssuerAssignedID") or "", "issue_date": _date(ref, R + "FormattedIssueDateTime", "BT-26", name, tag=_QDATE)}
            for ref in settlement.iterfind(R + "InvoiceReferencedDocument")
        ],
        "seller": _party(agreement.find(R + "SellerTradeParty") if agreement is not None else None) or {},
        "buyer": _party(agreement.find(R + "BuyerTradeParty") if agreement is not None else None) or {},
        "payee": _party(settlement.find(R + "PayeeTradeParty")),
        "tax_representative": _party(agreement.find(R + "SellerTaxRepresentativeTradeParty") if agreement is not None else None),
        "delivery": None if delivery is None or (ship_to is None and delivery.find(R + "ActualDeliverySupplyChainEvent") is None) else {
            "party_name": _t(ship_to, R + "Name"),
            "location": ship_id,
            "actual_date": _date(delivery, f"{R}ActualDeliverySupplyChainEvent/{R}OccurrenceDateTime", "BT-72", name),
            "address": _address(ship_to.find(R + "PostalTradeAddress")) if ship_to is not None else None,
        },
        "invoicing_period": _period(settlement.find(R + "BillingSpecifiedPeriod"), "BG-14", name),
        "payment_instructions": _payment(settlement, terms_el),
        "allowance_charges": [_allowance(a) for a in settlement.iterfind(R + "SpecifiedTradeAllowanceCharge")],
        "totals": {
            "line_total": _t(summation, R + "LineTotalAmount"),
            "allowance_total": _t(summation, R + "AllowanceTotalAmount"),
            "charge_total": _t(summation, R + "ChargeTotalAmount"),
            "tax_exclusive": _t(summation, R + "TaxBasisTotalAmount"),
            "tax_total": tax_total,
            "tax_total_accounting": accounting,
            "tax_inclusive": _t(summation, R + "GrandTotalAmount"),
            "prepaid": _t(summation, R + "TotalPrepaidAmount"),
            "rounding": _t(summation, R + "RoundingAmount"),
            "payable": _t(summation, R + "DuePayableAmount"),
        },
        "vat_breakdown": [
            {
                "taxable_amount": _t(t, R + "BasisAmount"), "tax_amount": _t(t, R + "CalculatedAmount"),
                "category": _t(t, R + "CategoryCode"), "rate": _t(t, R + "RateApplicablePercent"),
                "exemption_reason": _t(t, R + "ExemptionReason"), "exemption_reason_code": _t(t, R + "ExemptionReasonCode"),
            }
            for t in taxes
        ],
        "supporting_documents": documents,
        "lines": [_line(item, name) for item in transaction.iterfind(R + "IncludedSupplyChainTradeLineItem")],
    }


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """Read a CII invoice; NonConformantError when a fatal EN 16931 rule fails."""
    root = parse_xml(data, name=name)
    return _en16931.build_pivot(read(root, name=name), fmt=FORMAT, name=name)


def from_pivot(pivot: Pivot) -> bytes:
    """Write the pivot as a CII D16B CrossIndustryInvoice, UTF-8 encoded."""
    return write(pivot.data)


def terms(pivot: Pivot) -> dict[str, Any]:
    """The flat EN 16931 terms map of the pivot (see :func:`adapters._en16931.terms`)."""
    return _en16931.terms(pivot.data)


def validate(data: bytes, *, schema_dir: Path, name: str = "<bytes>") -> list[Finding]:
    """XSD (CII D16B under ``schema_dir``) and EN 16931 business rule findings."""
    root = parse_xml(data, name=name)
    findings = xsd_findings(schema_at(Path(schema_dir), XSD, package=_PACKAGE), root)
    return [*findings, *check_root(root, name=name)]


def check_root(root: etree._Element, *, name: str) -> list[Finding]:
    """EN 16931 findings of a parsed CII tree (a date that cannot be read is one finding)."""
    try:
        record = _en16931.complete(read(root, name=name))
    except NonConformantError as exc:
        return [Finding(str(exc.context.get("rule", "XSD")), str(exc.context.get("xpath", "/")), exc.message)]
    return _en16931.check(record)
