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
from ._xmlwalk import Node, child, children

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


def _t(el: Node | None, tag: str, *deeper: str) -> str | None:
    """``find(tag/deeper/...)`` text, stripped; "" for an empty element, None when absent."""
    return None if el is None else el.find_text(tag, *deeper)


def _date(el: Node | None, tag: str, *deeper: str, term: str, name: str, stamp_tag: str = _DATE) -> Any:
    holder = el.find(tag, *deeper) if el is not None else None
    stamp = next(holder.iterchildren(stamp_tag), None) if holder is not None else None
    if stamp is None:
        return None
    return parse_date(stamp.text or "", term=term, name=name, fmt=stamp.get("format"))


def _ident(el: etree._Element | None) -> dict[str, Any] | None:
    return None if el is None else {"id": (el.text or "").strip(), "scheme": el.get("schemeID")}


def _address(el: Node | None) -> dict[str, Any] | None:
    if el is None:
        return None
    return {
        "line1": el.text(R + "LineOne"), "line2": el.text(R + "LineTwo"), "line3": el.text(R + "LineThree"),
        "city": el.text(R + "CityName"), "post_code": el.text(R + "PostcodeCode"),
        "country_subdivision": el.text(R + "CountrySubDivisionName"), "country_code": el.text(R + "CountryID"),
    }


def _party(el: Node | None) -> dict[str, Any] | None:
    if el is None:
        return None
    legal = el.child(R + "SpecifiedLegalOrganization")
    contact = el.child(R + "DefinedTradeContact")
    taxes = {reg.get("schemeID"): (reg.element.text or "").strip() for reg in el.children(R + "SpecifiedTaxRegistration", R + "ID")}
    return {
        "name": el.text(R + "Name"),
        "trading_name": _t(legal, R + "TradingBusinessName"),
        "identifiers": [_ident(i) for i in el.iter(R + "ID")] + [_ident(i) for i in el.iter(R + "GlobalID")],
        "legal_registration": _ident(legal.leaf(R + "ID")) if legal is not None else None,
        "vat_identifier": taxes.get("VA"),
        "tax_registration": taxes.get("FC"),
        "legal_form": el.text(R + "Description"),
        "electronic_address": _ident(el.find(R + "URIUniversalCommunication", R + "URIID")),
        "address": _address(el.child(R + "PostalTradeAddress")),
        "contact": None if contact is None else {
            "name": contact.text(R + "PersonName") or contact.text(R + "DepartmentName"),
            "telephone": contact.find_text(R + "TelephoneUniversalCommunication", R + "CompleteNumber"),
            "email": contact.find_text(R + "EmailURIUniversalCommunication", R + "URIID"),
        },
    }


def _allowance(el: Node) -> dict[str, Any]:
    tax = el.child(R + "CategoryTradeTax")
    return {
        "charge": (el.find_text(R + "ChargeIndicator", f"{{{UDT}}}Indicator") or "").lower() in ("true", "1"),
        "amount": el.text(R + "ActualAmount"),
        "base_amount": el.text(R + "BasisAmount"),
        "percentage": el.text(R + "CalculationPercent"),
        "vat_category": _t(tax, R + "CategoryCode"),
        "vat_rate": _t(tax, R + "RateApplicablePercent"),
        "reason": el.text(R + "Reason"),
        "reason_code": el.text(R + "ReasonCode"),
    }


def _period(el: Node | None, term: str, name: str) -> dict[str, Any] | None:
    if el is None:
        return None
    return {
        "start_date": _date(el, R + "StartDateTime", term=term, name=name),
        "end_date": _date(el, R + "EndDateTime", term=term, name=name),
    }


def _line(el: Node, name: str) -> dict[str, Any]:
    doc = el.child(R + "AssociatedDocumentLineDocument")
    product = el.child(R + "SpecifiedTradeProduct")
    agreement = el.child(R + "SpecifiedLineTradeAgreement")
    gross = agreement.child(R + "GrossPriceProductTradePrice") if agreement is not None else None
    net = agreement.child(R + "NetPriceProductTradePrice") if agreement is not None else None
    quantity = el.find(R + "SpecifiedLineTradeDelivery", R + "BilledQuantity")
    settlement = el.child(R + "SpecifiedLineTradeSettlement")
    tax = settlement.child(R + "ApplicableTradeTax") if settlement is not None else None
    basis = None
    for price in (net, gross):
        if basis is None and price is not None:
            basis = price.leaf(R + "BasisQuantity")
    object_id = None
    if settlement is not None:
        for ref in settlement.children(R + "AdditionalReferencedDocument"):
            if ref.text(R + "TypeCode") == "130":
                object_id = {"id": ref.text(R + "IssuerAssignedID") or "", "scheme": ref.text(R + "ReferenceTypeCode")}
    return {
        "id": _t(doc, R + "LineID"),
        "note": _t(doc, R + "IncludedNote", R + "Content"),
        "object_identifier": object_id,
        "quantity": None if quantity is None else (quantity.text or "").strip(),
        "unit_code": None if quantity is None else quantity.get("unitCode"),
        "net_amount": _t(settlement, R + "SpecifiedTradeSettlementLineMonetarySummation", R + "LineTotalAmount"),
        "order_line_reference": _t(agreement, R + "BuyerOrderReferencedDocument", R + "LineID"),
        "accounting_reference": _t(settlement, R + "ReceivableSpecifiedTradeAccountingAccount", R + "ID"),
        "period": _period(settlement.child(R + "BillingSpecifiedPeriod") if settlement is not None else None, "BG-26", name),
        "allowance_charges": [] if settlement is None else [_allowance(a) for a in settlement.children(R + "SpecifiedTradeAllowanceCharge")],
        "price": None if net is None and gross is None else {
            "net_price": _t(net, R + "ChargeAmount"),
            "discount": _t(gross, R + "AppliedTradeAllowanceCharge", R + "ActualAmount"),
            "gross_price": _t(gross, R + "ChargeAmount"),
            "base_quantity": None if basis is None else (basis.text or "").strip(),
            "base_quantity_unit": None if basis is None else basis.get("unitCode"),
        },
        "vat_category": _t(tax, R + "CategoryCode"),
        "vat_rate": _t(tax, R + "RateApplicablePercent"),
        "item": _item(product),
    }


def _item(product: Node | None) -> dict[str, Any]:
    if product is None:
        return {"name": None}
    return {
        "name": product.text(R + "Name"),
        "description": product.text(R + "Description"),
        "seller_id": product.text(R + "SellerAssignedID"),
        "buyer_id": product.text(R + "BuyerAssignedID"),
        "standard_id": _ident(product.leaf(R + "GlobalID")),
        "classifications": [
            {"code": (c.element.text or "").strip(), "list_id": c.get("listID"), "list_version": c.get("listVersionID")}
            for c in product.children(R + "DesignatedProductClassification", R + "ClassCode")
        ],
        "origin_country": product.find_text(R + "OriginTradeCountry", R + "ID"),
        "attributes": [
            {"name": c.text(R + "Description") or "", "value": c.text(R + "Value") or ""}
            for c in product.children(R + "ApplicableProductCharacteristic")
        ],
    }


def _payment(settlement: Node, terms_el: Node | None) -> dict[str, Any] | None:
    means = settlement.children(R + "SpecifiedTradeSettlementPaymentMeans")
    reference = settlement.text(R + "PaymentReference")
    mandate = _t(terms_el, R + "DirectDebitMandateID")
    creditor = settlement.text(R + "CreditorReferenceID")
    if not means:
        return None
    first = means[0]
    card = first.child(R + "ApplicableTradeSettlementFinancialCard")
    debtor = first.find_text(R + "PayerPartyDebtorFinancialAccount", R + "IBANID")
    transfers = []
    for pm in means:
        account = pm.child(R + "PayeePartyCreditorFinancialAccount")
        if account is not None:
            transfers.append({
                "account_id": account.text(R + "IBANID") or account.text(R + "ProprietaryID") or "",
                "account_name": account.text(R + "AccountName"),
                "provider_id": pm.find_text(R + "PayeeSpecifiedCreditorFinancialInstitution", R + "BICID"),
            })
    return {
        "means_code": first.text(R + "TypeCode"),
        "means_text": first.text(R + "Information"),
        "remittance_information": reference,
        "credit_transfers": transfers,
        "card": None if card is None else {"account_number": card.text(R + "ID") or "", "holder_name": card.text(R + "CardholderName")},
        "direct_debit": None if mandate is None and creditor is None and debtor is None else {
            "mandate_reference": mandate, "creditor_id": creditor, "debited_account": debtor,
        },
    }


def read(element: etree._Element, *, name: str) -> dict[str, Any]:
    """The pivot record of a parsed CrossIndustryInvoice (no rules applied)."""
    if element.tag != M + "CrossIndustryInvoice":
        raise NonConformantError("the root element is not a CII D16B CrossIndustryInvoice", document=name, rule="XSD", xpath="/*")
    root = Node(element)
    context = root.child(M + "ExchangedDocumentContext")
    header = root.child(M + "ExchangedDocument")
    transaction = root.child(M + "SupplyChainTradeTransaction") or Node(etree.Element(M + "SupplyChainTradeTransaction"))
    agreement = transaction.child(R + "ApplicableHeaderTradeAgreement")
    delivery = transaction.child(R + "ApplicableHeaderTradeDelivery")
    settlement = transaction.child(R + "ApplicableHeaderTradeSettlement") or Node(etree.Element(R + "ApplicableHeaderTradeSettlement"))
    currency = settlement.text(R + "InvoiceCurrencyCode")
    tax_currency = settlement.text(R + "TaxCurrencyCode")
    summation = settlement.child(R + "SpecifiedTradeSettlementHeaderMonetarySummation")
    tax_total = accounting = None
    for amount in summation.iter(R + "TaxTotalAmount") if summation is not None else ():
        unit = amount.get("currencyID")
        if tax_total is None and (unit in (None, currency) or tax_currency in (None, currency)):
            tax_total = (amount.text or "").strip()
        elif accounting is None:
            accounting = (amount.text or "").strip()
    taxes = settlement.children(R + "ApplicableTradeTax")
    terms_el = settlement.child(R + "SpecifiedTradePaymentTerms")
    documents, tender, invoiced_object = [], None, None
    for doc in children(agreement, R + "AdditionalReferencedDocument"):
        code = doc.text(R + "TypeCode")
        if code == "50":
            tender = doc.text(R + "IssuerAssignedID")
        elif code == "130":
            invoiced_object = {"id": doc.text(R + "IssuerAssignedID") or "", "scheme": doc.text(R + "ReferenceTypeCode")}
        else:
            binary = doc.leaf(R + "AttachmentBinaryObject")
            documents.append({
                "id": doc.text(R + "IssuerAssignedID") or "", "description": doc.text(R + "Name"), "uri": doc.text(R + "URIID"),
                "content": None if binary is None else (binary.text or "").strip(),
                "mime_code": None if binary is None else binary.get("mimeCode"),
                "filename": None if binary is None else binary.get("filename"),
            })
    ship_to = delivery.child(R + "ShipToTradeParty") if delivery is not None else None
    ship_id = None
    if ship_to is not None:
        ship_id = _ident(ship_to.leaf(R + "ID")) or _ident(ship_to.leaf(R + "GlobalID"))
    tax_point = next((t for t in taxes if R + "TaxPointDate" in t.first), None)
    return {
        "syntax": "CII",
        "profile": _t(context, R + "GuidelineSpecifiedDocumentContextParameter", R + "ID"),
        "business_process": _t(context, R + "BusinessProcessSpecifiedDocumentContextParameter", R + "ID"),
        "number": _t(header, R + "ID"),
        "issue_date": _date(header, R + "IssueDateTime", term="BT-2", name=name),
        "type_code": _t(header, R + "TypeCode"),
        "is_credit_note": False,
        "currency": currency,
        "tax_currency": tax_currency,
        "tax_point_date": _date(tax_point, R + "TaxPointDate", term="BT-7", name=name, stamp_tag=f"{{{UDT}}}DateString"),
        "tax_point_date_code": next((t.text(R + "DueDateTypeCode") for t in taxes if R + "DueDateTypeCode" in t.first), None),
        "due_date": _date(terms_el, R + "DueDateDateTime", term="BT-9", name=name),
        "buyer_reference": _t(agreement, R + "BuyerReference"),
        "project_reference": _t(agreement, R + "SpecifiedProcuringProject", R + "ID"),
        "contract_reference": _t(agreement, R + "ContractReferencedDocument", R + "IssuerAssignedID"),
        "purchase_order_reference": _t(agreement, R + "BuyerOrderReferencedDocument", R + "IssuerAssignedID"),
        "sales_order_reference": _t(agreement, R + "SellerOrderReferencedDocument", R + "IssuerAssignedID"),
        "receiving_advice_reference": _t(delivery, R + "ReceivingAdviceReferencedDocument", R + "IssuerAssignedID"),
        "despatch_advice_reference": _t(delivery, R + "DespatchAdviceReferencedDocument", R + "IssuerAssignedID"),
        "tender_reference": tender,
        "invoiced_object": invoiced_object,
        "buyer_accounting_reference": settlement.find_text(R + "ReceivableSpecifiedTradeAccountingAccount", R + "ID"),
        "payment_terms": _t(terms_el, R + "Description"),
        "notes": [
            {"subject_code": n.text(R + "SubjectCode"), "text": n.text(R + "Content") or ""}
            for n in children(header, R + "IncludedNote")
        ],
        "preceding_invoices": [
            {"number": ref.text(R + "IssuerAssignedID") or "",
             "issue_date": _date(ref, R + "FormattedIssueDateTime", term="BT-26", name=name, stamp_tag=_QDATE)}
            for ref in settlement.children(R + "InvoiceReferencedDocument")
        ],
        "seller": _party(child(agreement, R + "SellerTradeParty")) or {},
        "buyer": _party(child(agreement, R + "BuyerTradeParty")) or {},
        "payee": _party(settlement.child(R + "PayeeTradeParty")),
        "tax_representative": _party(child(agreement, R + "SellerTaxRepresentativeTradeParty")),
        "delivery": None if delivery is None or (ship_to is None and R + "ActualDeliverySupplyChainEvent" not in delivery.first) else {
            "party_name": _t(ship_to, R + "Name"),
            "location": ship_id,
            "actual_date": _date(delivery, R + "ActualDeliverySupplyChainEvent", R + "OccurrenceDateTime", term="BT-72", name=name),
            "address": _address(ship_to.child(R + "PostalTradeAddress")) if ship_to is not None else None,
        },
        "invoicing_period": _period(settlement.child(R + "BillingSpecifiedPeriod"), "BG-14", name),
        "payment_instructions": _payment(settlement, terms_el),
        "allowance_charges": [_allowance(a) for a in settlement.children(R + "SpecifiedTradeAllowanceCharge")],
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
                "taxable_amount": t.text(R + "BasisAmount"), "tax_amount": t.text(R + "CalculatedAmount"),
                "category": t.text(R + "CategoryCode"), "rate": t.text(R + "RateApplicablePercent"),
                "exemption_reason": t.text(R + "ExemptionReason"), "exemption_reason_code": t.text(R + "ExemptionReasonCode"),
            }
            for t in taxes
        ],
        "supporting_documents": documents,
        "lines": [_line(item, name) for item in transaction.children(R + "IncludedSupplyChainTradeLineItem")],
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
