"""Write the invoice pivot as a UN/CEFACT Cross Industry Invoice D16B (EN 16931 binding).

Elements follow the order of the D16B XSD sequences; dates use format 102 (CCYYMMDD). What the
pivot does not hold is not written. The result validates against the official D16B schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from lxml import etree

__all__ = ["RAM", "RSM", "UDT", "write"]

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
R, M = f"{{{RAM}}}", f"{{{RSM}}}"

Rec = Mapping[str, Any]


def _e(parent: etree._Element, tag: str, value: Any = None, **attrs: str | None) -> etree._Element:
    el = etree.SubElement(parent, R + tag, {k: v for k, v in attrs.items() if v is not None})
    if value is not None:
        el.text = str(value)
    return el


def _v(parent: etree._Element, tag: str, value: Any, **attrs: str | None) -> None:
    """A ram child holding ``value``; nothing when absent."""
    if value is not None:
        _e(parent, tag, value, **attrs)


def _date(parent: etree._Element, tag: str, value: dt.date | None, *, kind: str = "udt", inner: str = "DateTimeString") -> None:
    if value is None:
        return
    holder = _e(parent, tag)
    stamp = etree.SubElement(holder, f"{{{UDT if kind == 'udt' else QDT}}}{inner}", format="102")
    stamp.text = value.strftime("%Y%m%d")


def _address(parent: etree._Element, address: Rec | None) -> None:
    if address is None:
        return
    el = _e(parent, "PostalTradeAddress")
    for key, tag in (("post_code", "PostcodeCode"), ("line1", "LineOne"), ("line2", "LineTwo"), ("line3", "LineThree"),
                     ("city", "CityName"), ("country_code", "CountryID"), ("country_subdivision", "CountrySubDivisionName")):
        _v(el, tag, address.get(key))


def _party(parent: etree._Element, tag: str, party: Rec | None) -> None:
    if party is None:
        return
    el = _e(parent, tag)
    identifiers = party.get("identifiers") or []
    for ident in identifiers:
        if not ident.get("scheme"):
            _v(el, "ID", ident.get("id"))
    for ident in identifiers:
        if ident.get("scheme"):
            _v(el, "GlobalID", ident.get("id"), schemeID=ident["scheme"])
    _v(el, "Name", party.get("name"))
    _v(el, "Description", party.get("legal_form"))
    legal = party.get("legal_registration")
    if legal or party.get("trading_name") is not None:
        org = _e(el, "SpecifiedLegalOrganization")
        if legal:
            _v(org, "ID", legal.get("id"), schemeID=legal.get("scheme"))
        _v(org, "TradingBusinessName", party.get("trading_name"))
    contact = party.get("contact")
    if contact:
        c = _e(el, "DefinedTradeContact")
        _v(c, "PersonName", contact.get("name"))
        if contact.get("telephone") is not None:
            _v(_e(c, "TelephoneUniversalCommunication"), "CompleteNumber", contact["telephone"])
        if contact.get("email") is not None:
            _v(_e(c, "EmailURIUniversalCommunication"), "URIID", contact["email"])
    _address(el, party.get("address"))
    endpoint = party.get("electronic_address")
    if endpoint:
        _v(_e(el, "URIUniversalCommunication"), "URIID", endpoint.get("id"), schemeID=endpoint.get("scheme"))
    for value, scheme in ((party.get("vat_identifier"), "VA"), (party.get("tax_registration"), "FC")):
        if value is not None:
            _e(_e(el, "SpecifiedTaxRegistration"), "ID", value, schemeID=scheme)


def _indicator(parent: etree._Element, charge: bool) -> None:
    holder = _e(parent, "ChargeIndicator")
    etree.SubElement(holder, f"{{{UDT}}}Indicator").text = "true" if charge else "false"


def _allowance(parent: etree._Element, tag: str, ac: Rec, *, with_tax: bool) -> None:
    el = _e(parent, tag)
    _indicator(el, bool(ac.get("charge")))
    _v(el, "CalculationPercent", ac.get("percentage"))
    _v(el, "BasisAmount", ac.get("base_amount"))
    _v(el, "ActualAmount", ac.get("amount"))
    _v(el, "ReasonCode", ac.get("reason_code"))
    _v(el, "Reason", ac.get("reason"))
    if with_tax and ac.get("vat_category") is not None:
        tax = _e(el, "CategoryTradeTax")
        _e(tax, "TypeCode", "VAT")
        _v(tax, "CategoryCode", ac.get("vat_category"))
        _v(tax, "RateApplicablePercent", ac.get("vat_rate"))


def _period(parent: etree._Element, period: Rec | None) -> None:
    if period is None:
        return
    el = _e(parent, "BillingSpecifiedPeriod")
    _date(el, "StartDateTime", period.get("start_date"))
    _date(el, "EndDateTime", period.get("end_date"))


def _line(parent: etree._Element, line: Rec) -> None:
    el = _e(parent, "IncludedSupplyChainTradeLineItem")
    doc = _e(el, "AssociatedDocumentLineDocument")
    _v(doc, "LineID", line.get("id"))
    if line.get("note") is not None:
        _v(_e(doc, "IncludedNote"), "Content", line["note"])
    item = line.get("item") or {}
    product = _e(el, "SpecifiedTradeProduct")
    standard = item.get("standard_id")
    if standard:
        _v(product, "GlobalID", standard.get("id"), schemeID=standard.get("scheme"))
    _v(product, "SellerAssignedID", item.get("seller_id"))
    _v(product, "BuyerAssignedID", item.get("buyer_id"))
    _v(product, "Name", item.get("name"))
    _v(product, "Description", item.get("description"))
    for attr in item.get("attributes") or []:
        char = _e(product, "ApplicableProductCharacteristic")
        _e(char, "Description", attr.get("name"))
        _e(char, "Value", attr.get("value"))
    for cls in item.get("classifications") or []:
        _e(_e(product, "DesignatedProductClassification"), "ClassCode", cls.get("code"),
           listID=cls.get("list_id"), listVersionID=cls.get("list_version"))
    if item.get("origin_country") is not None:
        _e(_e(product, "OriginTradeCountry"), "ID", item["origin_country"])
    agreement = _e(el, "SpecifiedLineTradeAgreement")
    if line.get("order_line_reference") is not None:
        _e(_e(agreement, "BuyerOrderReferencedDocument"), "LineID", line["order_line_reference"])
    price = line.get("price") or {}
    unit = price.get("base_quantity_unit")
    if price.get("gross_price") is not None or price.get("discount") is not None:
        gross = _e(agreement, "GrossPriceProductTradePrice")
        _e(gross, "ChargeAmount", price.get("gross_price") or price.get("net_price"))
        _v(gross, "BasisQuantity", price.get("base_quantity"), unitCode=unit)
        if price.get("discount") is not None:
            ac = _e(gross, "AppliedTradeAllowanceCharge")
            _indicator(ac, False)
            _e(ac, "ActualAmount", price["discount"])
    net = _e(agreement, "NetPriceProductTradePrice")
    _e(net, "ChargeAmount", price.get("net_price"))
    _v(net, "BasisQuantity", price.get("base_quantity"), unitCode=unit)
    _v(_e(el, "SpecifiedLineTradeDelivery"), "BilledQuantity", line.get("quantity"), unitCode=line.get("unit_code"))
    settlement = _e(el, "SpecifiedLineTradeSettlement")
    tax = _e(settlement, "ApplicableTradeTax")
    _e(tax, "TypeCode", "VAT")
    _v(tax, "CategoryCode", line.get("vat_category"))
    _v(tax, "RateApplicablePercent", line.get("vat_rate"))
    _period(settlement, line.get("period"))
    for ac in line.get("allowance_charges") or []:
        _allowance(settlement, "SpecifiedTradeAllowanceCharge", ac, with_tax=False)
    _e(_e(settlement, "SpecifiedTradeSettlementLineMonetarySummation"), "LineTotalAmount", line.get("net_amount"))
    obj = line.get("object_identifier")
    if obj:
        ref = _e(settlement, "AdditionalReferencedDocument")
        _e(ref, "IssuerAssignedID", obj.get("id"))
        _e(ref, "TypeCode", "130")
        _v(ref, "ReferenceTypeCode", obj.get("scheme"))
    if line.get("accounting_reference") is not None:
        _e(_e(settlement, "ReceivableSpecifiedTradeAccountingAccount"), "ID", line["accounting_reference"])


def _ref(parent: etree._Element, tag: str, value: str | None) -> None:
    if value is not None:
        _e(_e(parent, tag), "IssuerAssignedID", value)


def _agreement(parent: etree._Element, inv: Rec) -> None:
    el = _e(parent, "ApplicableHeaderTradeAgreement")
    _v(el, "BuyerReference", inv.get("buyer_reference"))
    _party(el, "SellerTradeParty", inv.get("seller") or {})
    _party(el, "BuyerTradeParty", inv.get("buyer") or {})
    _party(el, "SellerTaxRepresentativeTradeParty", inv.get("tax_representative"))
    _ref(el, "SellerOrderReferencedDocument", inv.get("sales_order_reference"))
    _ref(el, "BuyerOrderReferencedDocument", inv.get("purchase_order_reference"))
    _ref(el, "ContractReferencedDocument", inv.get("contract_reference"))
    for sd in inv.get("supporting_documents") or []:
        doc = _e(el, "AdditionalReferencedDocument")
        _e(doc, "IssuerAssignedID", sd.get("id"))
        _v(doc, "URIID", sd.get("uri"))
        _e(doc, "TypeCode", "916")
        _v(doc, "Name", sd.get("description"))
        _v(doc, "AttachmentBinaryObject", sd.get("content"), mimeCode=sd.get("mime_code"), filename=sd.get("filename"))
    if inv.get("tender_reference") is not None:
        doc = _e(el, "AdditionalReferencedDocument")
        _e(doc, "IssuerAssignedID", inv["tender_reference"])
        _e(doc, "TypeCode", "50")
    obj = inv.get("invoiced_object")
    if obj:
        doc = _e(el, "AdditionalReferencedDocument")
        _e(doc, "IssuerAssignedID", obj.get("id"))
        _e(doc, "TypeCode", "130")
        _v(doc, "ReferenceTypeCode", obj.get("scheme"))
    if inv.get("project_reference") is not None:
        project = _e(el, "SpecifiedProcuringProject")
        _e(project, "ID", inv["project_reference"])
        _e(project, "Name", "Project reference")


def _delivery(parent: etree._Element, inv: Rec) -> None:
    el = _e(parent, "ApplicableHeaderTradeDelivery")
    delivery = inv.get("delivery") or {}
    if delivery.get("location") or delivery.get("party_name") is not None or delivery.get("address"):
        ship = _e(el, "ShipToTradeParty")
        location = delivery.get("location")
        if location and location.get("scheme"):
            _e(ship, "GlobalID", location.get("id"), schemeID=location["scheme"])
        elif location:
            _e(ship, "ID", location.get("id"))
        _v(ship, "Name", delivery.get("party_name"))
        _address(ship, delivery.get("address"))
    if delivery.get("actual_date") is not None:
        _date(_e(el, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", delivery["actual_date"])
    _ref(el, "DespatchAdviceReferencedDocument", inv.get("despatch_advice_reference"))
    _ref(el, "ReceivingAdviceReferencedDocument", inv.get("receiving_advice_reference"))


def _payment_means(el: etree._Element, pay: Rec) -> None:
    debit = pay.get("direct_debit") or {}
    for index, transfer in enumerate(pay.get("credit_transfers") or [None]):
        means = _e(el, "SpecifiedTradeSettlementPaymentMeans")
        _v(means, "TypeCode", pay.get("means_code"))
        _v(means, "Information", pay.get("means_text"))
        card = pay.get("card")
        if index == 0 and card:
            c = _e(means, "ApplicableTradeSettlementFinancialCard")
            _e(c, "ID", card.get("account_number"))
            _v(c, "CardholderName", card.get("holder_name"))
        if index == 0 and debit.get("debited_account") is not None:
            _e(_e(means, "PayerPartyDebtorFinancialAccount"), "IBANID", debit["debited_account"])
        if transfer is not None:
            account = _e(means, "PayeePartyCreditorFinancialAccount")
            _e(account, "IBANID", transfer.get("account_id"))
            _v(account, "AccountName", transfer.get("account_name"))
            if transfer.get("provider_id") is not None:
                _e(_e(means, "PayeeSpecifiedCreditorFinancialInstitution"), "BICID", transfer["provider_id"])


def _settlement(parent: etree._Element, inv: Rec) -> None:
    el = _e(parent, "ApplicableHeaderTradeSettlement")
    pay = inv.get("payment_instructions") or {}
    debit = pay.get("direct_debit") or {}
    _v(el, "CreditorReferenceID", debit.get("creditor_id"))
    _v(el, "PaymentReference", pay.get("remittance_information"))
    _v(el, "TaxCurrencyCode", inv.get("tax_currency"))
    _v(el, "InvoiceCurrencyCode", inv.get("currency"))
    _party(el, "PayeeTradeParty", inv.get("payee"))
    if pay:
        _payment_means(el, pay)
    for index, vat in enumerate(inv.get("vat_breakdown") or []):
        tax = _e(el, "ApplicableTradeTax")
        _v(tax, "CalculatedAmount", vat.get("tax_amount"))
        _e(tax, "TypeCode", "VAT")
        _v(tax, "ExemptionReason", vat.get("exemption_reason"))
        _v(tax, "BasisAmount", vat.get("taxable_amount"))
        _v(tax, "CategoryCode", vat.get("category"))
        _v(tax, "ExemptionReasonCode", vat.get("exemption_reason_code"))
        if index == 0:
            _date(tax, "TaxPointDate", inv.get("tax_point_date"), inner="DateString")
            _v(tax, "DueDateTypeCode", inv.get("tax_point_date_code"))
        _v(tax, "RateApplicablePercent", vat.get("rate"))
    _period(el, inv.get("invoicing_period"))
    for ac in inv.get("allowance_charges") or []:
        _allowance(el, "SpecifiedTradeAllowanceCharge", ac, with_tax=True)
    if inv.get("payment_terms") is not None or inv.get("due_date") is not None or debit.get("mandate_reference") is not None:
        terms = _e(el, "SpecifiedTradePaymentTerms")
        _v(terms, "Description", inv.get("payment_terms"))
        _date(terms, "DueDateDateTime", inv.get("due_date"))
        _v(terms, "DirectDebitMandateID", debit.get("mandate_reference"))
    totals = inv.get("totals") or {}
    summation = _e(el, "SpecifiedTradeSettlementHeaderMonetarySummation")
    for key, tag in (("line_total", "LineTotalAmount"), ("charge_total", "ChargeTotalAmount"),
                     ("allowance_total", "AllowanceTotalAmount"), ("tax_exclusive", "TaxBasisTotalAmount")):
        _v(summation, tag, totals.get(key))
    _v(summation, "TaxTotalAmount", totals.get("tax_total"), currencyID=inv.get("currency"))
    _v(summation, "TaxTotalAmount", totals.get("tax_total_accounting"), currencyID=inv.get("tax_currency"))
    for key, tag in (("rounding", "RoundingAmount"), ("tax_inclusive", "GrandTotalAmount"),
                     ("prepaid", "TotalPrepaidAmount"), ("payable", "DuePayableAmount")):
        _v(summation, tag, totals.get(key))
    for ref in inv.get("preceding_invoices") or []:
        doc = _e(el, "InvoiceReferencedDocument")
        _e(doc, "IssuerAssignedID", ref.get("number"))
        _date(doc, "FormattedIssueDateTime", ref.get("issue_date"), kind="qdt")
    if inv.get("buyer_accounting_reference") is not None:
        _e(_e(el, "ReceivableSpecifiedTradeAccountingAccount"), "ID", inv["buyer_accounting_reference"])


def write(inv: Rec) -> bytes:
    """The CII D16B bytes of a complete invoice pivot record."""
    root = etree.Element(M + "CrossIndustryInvoice", nsmap={"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT})
    context = etree.SubElement(root, M + "ExchangedDocumentContext")
    if inv.get("business_process") is not None:
        _e(_e(context, "BusinessProcessSpecifiedDocumentContextParameter"), "ID", inv["business_process"])
    _e(_e(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", inv.get("profile"))
    header = etree.SubElement(root, M + "ExchangedDocument")
    _v(header, "ID", inv.get("number"))
    _v(header, "TypeCode", inv.get("type_code"))
    _date(header, "IssueDateTime", inv.get("issue_date"))
    for note in inv.get("notes") or []:
        n = _e(header, "IncludedNote")
        _e(n, "Content", note.get("text"))
        _v(n, "SubjectCode", note.get("subject_code"))
    transaction = etree.SubElement(root, M + "SupplyChainTradeTransaction")
    for line in inv.get("lines") or []:
        _line(transaction, line)
    _agreement(transaction, inv)
    _delivery(transaction, inv)
    _settlement(transaction, inv)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
