"""Write the invoice pivot as a UBL 2.1 Invoice or CreditNote (EN 16931 binding).

Elements are emitted in the order of the UBL 2.1 XSD sequences, amounts carry the currency
the XSD requires, and nothing outside the EN 16931 binding is invented: what the pivot does
not hold is not written. The result validates against the official UBL 2.1 maindoc schemas.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from lxml import etree

__all__ = ["CAC", "CBC", "CN_NS", "INV_NS", "write"]

INV_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CN_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
A, B = f"{{{CAC}}}", f"{{{CBC}}}"

Rec = Mapping[str, Any]


def _b(parent: etree._Element, tag: str, value: Any, **attrs: str | None) -> etree._Element | None:
    """A cbc child with ``value`` as text; nothing when the value is absent."""
    if value is None:
        return None
    el = etree.SubElement(parent, B + tag, {k: v for k, v in attrs.items() if v is not None})
    el.text = value.isoformat() if isinstance(value, dt.date) else str(value)
    return el


def _a(parent: etree._Element, tag: str) -> etree._Element:
    return etree.SubElement(parent, A + tag)


def _id(parent: etree._Element, tag: str, ident: Rec | None) -> None:
    if ident:
        _b(parent, tag, ident.get("id"), schemeID=ident.get("scheme"))


def _address(parent: etree._Element, tag: str, address: Rec | None) -> None:
    if address is None:
        return
    el = _a(parent, tag)
    _b(el, "StreetName", address.get("line1"))
    _b(el, "AdditionalStreetName", address.get("line2"))
    _b(el, "CityName", address.get("city"))
    _b(el, "PostalZone", address.get("post_code"))
    _b(el, "CountrySubentity", address.get("country_subdivision"))
    if address.get("line3") is not None:
        _b(_a(el, "AddressLine"), "Line", address["line3"])
    if address.get("country_code") is not None:
        _b(_a(el, "Country"), "IdentificationCode", address["country_code"])


def _party(parent: etree._Element, tag: str, party: Rec | None, *, named_by_party_name: bool = False) -> None:
    if party is None:
        return
    el = _a(parent, tag)
    _id(el, "EndpointID", party.get("electronic_address"))
    for ident in party.get("identifiers") or []:
        _id(_a(el, "PartyIdentification"), "ID", ident)
    party_name = party.get("name") if named_by_party_name else party.get("trading_name")
    if party_name is not None:
        _b(_a(el, "PartyName"), "Name", party_name)
    _address(el, "PostalAddress", party.get("address"))
    for value, scheme in ((party.get("vat_identifier"), "VAT"), (party.get("tax_registration"), "TAX")):
        if value is not None:
            tax = _a(el, "PartyTaxScheme")
            _b(tax, "CompanyID", value)
            _b(_a(tax, "TaxScheme"), "ID", scheme)
    legal_name = None if named_by_party_name else party.get("name")
    legal_id = party.get("legal_registration")
    if legal_name is not None or legal_id or party.get("legal_form") is not None:
        legal = _a(el, "PartyLegalEntity")
        _b(legal, "RegistrationName", legal_name)
        _id(legal, "CompanyID", legal_id)
        _b(legal, "CompanyLegalForm", party.get("legal_form"))
    contact = party.get("contact")
    if contact:
        c = _a(el, "Contact")
        _b(c, "Name", contact.get("name"))
        _b(c, "Telephone", contact.get("telephone"))
        _b(c, "ElectronicMail", contact.get("email"))


def _allowance(parent: etree._Element, ac: Rec, currency: str, *, with_tax: bool) -> None:
    el = _a(parent, "AllowanceCharge")
    _b(el, "ChargeIndicator", "true" if ac.get("charge") else "false")
    _b(el, "AllowanceChargeReasonCode", ac.get("reason_code"))
    _b(el, "AllowanceChargeReason", ac.get("reason"))
    _b(el, "MultiplierFactorNumeric", ac.get("percentage"))
    _b(el, "Amount", ac.get("amount"), currencyID=currency)
    _b(el, "BaseAmount", ac.get("base_amount"), currencyID=currency)
    if with_tax and ac.get("vat_category") is not None:
        _tax_category(el, "TaxCategory", ac.get("vat_category"), ac.get("vat_rate"))


def _tax_category(parent: etree._Element, tag: str, category: str | None, rate: str | None,
                  reason_code: str | None = None, reason: str | None = None) -> None:
    el = _a(parent, tag)
    _b(el, "ID", category)
    _b(el, "Percent", rate)
    _b(el, "TaxExemptionReasonCode", reason_code)
    _b(el, "TaxExemptionReason", reason)
    _b(_a(el, "TaxScheme"), "ID", "VAT")


def _period(parent: etree._Element, period: Rec | None, code: str | None = None) -> None:
    if period is None and code is None:
        return
    el = _a(parent, "InvoicePeriod")
    _b(el, "StartDate", (period or {}).get("start_date"))
    _b(el, "EndDate", (period or {}).get("end_date"))
    _b(el, "DescriptionCode", code)


def _doc_ref(parent: etree._Element, tag: str, value: str | None) -> None:
    if value is not None:
        _b(_a(parent, tag), "ID", value)


def _header_refs(root: etree._Element, inv: Rec, credit: bool) -> None:
    if inv.get("purchase_order_reference") is not None or inv.get("sales_order_reference") is not None:
        order = _a(root, "OrderReference")
        # UBL requires OrderReference/ID; "NA" is the EN 16931 binding's value when only BT-14 is known.
        _b(order, "ID", inv.get("purchase_order_reference") or "NA")
        _b(order, "SalesOrderID", inv.get("sales_order_reference"))
    for ref in inv.get("preceding_invoices") or []:
        doc = _a(_a(root, "BillingReference"), "InvoiceDocumentReference")
        _b(doc, "ID", ref.get("number"))
        _b(doc, "IssueDate", ref.get("issue_date"))
    _doc_ref(root, "DespatchDocumentReference", inv.get("despatch_advice_reference"))
    _doc_ref(root, "ReceiptDocumentReference", inv.get("receiving_advice_reference"))
    if not credit:
        _doc_ref(root, "OriginatorDocumentReference", inv.get("tender_reference"))
    _doc_ref(root, "ContractDocumentReference", inv.get("contract_reference"))
    if inv.get("invoiced_object"):
        doc = _a(root, "AdditionalDocumentReference")
        _id(doc, "ID", inv["invoiced_object"])
        _b(doc, "DocumentTypeCode", "130")
    for sd in inv.get("supporting_documents") or []:
        doc = _a(root, "AdditionalDocumentReference")
        _b(doc, "ID", sd.get("id"))
        _b(doc, "DocumentDescription", sd.get("description"))
        if sd.get("content") is not None or sd.get("uri") is not None:
            attachment = _a(doc, "Attachment")
            _b(attachment, "EmbeddedDocumentBinaryObject", sd.get("content"), mimeCode=sd.get("mime_code"), filename=sd.get("filename"))
            if sd.get("uri") is not None:
                _b(_a(attachment, "ExternalReference"), "URI", sd["uri"])
    if credit and inv.get("project_reference") is not None:
        # A UBL CreditNote has no ProjectReference: the binding uses a document reference typed 50.
        doc = _a(root, "AdditionalDocumentReference")
        _b(doc, "ID", inv["project_reference"])
        _b(doc, "DocumentTypeCode", "50")
    if credit:
        _doc_ref(root, "OriginatorDocumentReference", inv.get("tender_reference"))
    if inv.get("project_reference") is not None and not credit:
        _doc_ref(root, "ProjectReference", inv["project_reference"])


def _payment(root: etree._Element, inv: Rec, credit: bool) -> None:
    pay = inv.get("payment_instructions")
    if not pay:
        if credit and inv.get("due_date") is not None:
            means = _a(root, "PaymentMeans")
            _b(means, "PaymentMeansCode", "1")
            _b(means, "PaymentDueDate", inv["due_date"])
        return
    transfers = pay.get("credit_transfers") or [None]
    for index, transfer in enumerate(transfers):
        means = _a(root, "PaymentMeans")
        _b(means, "PaymentMeansCode", pay.get("means_code"), name=pay.get("means_text"))
        if credit and index == 0:
            _b(means, "PaymentDueDate", inv.get("due_date"))
        _b(means, "PaymentID", pay.get("remittance_information"))
        if index == 0 and pay.get("card"):
            card = _a(means, "CardAccount")
            _b(card, "PrimaryAccountNumberID", pay["card"].get("account_number"))
            _b(card, "NetworkID", "NA")
            _b(card, "HolderName", pay["card"].get("holder_name"))
        if transfer is not None:
            account = _a(means, "PayeeFinancialAccount")
            _b(account, "ID", transfer.get("account_id"))
            _b(account, "Name", transfer.get("account_name"))
            if transfer.get("provider_id") is not None:
                _b(_a(account, "FinancialInstitutionBranch"), "ID", transfer["provider_id"])
        debit = pay.get("direct_debit")
        if index == 0 and debit:
            mandate = _a(means, "PaymentMandate")
            _b(mandate, "ID", debit.get("mandate_reference"))
            if debit.get("debited_account") is not None:
                _b(_a(mandate, "PayerFinancialAccount"), "ID", debit["debited_account"])


def _line(root: etree._Element, line: Rec, currency: str, credit: bool) -> None:
    el = _a(root, "CreditNoteLine" if credit else "InvoiceLine")
    _b(el, "ID", line.get("id"))
    _b(el, "Note", line.get("note"))
    _b(el, "CreditedQuantity" if credit else "InvoicedQuantity", line.get("quantity"), unitCode=line.get("unit_code"))
    _b(el, "LineExtensionAmount", line.get("net_amount"), currencyID=currency)
    _b(el, "AccountingCost", line.get("accounting_reference"))
    _period(el, line.get("period"))
    if line.get("order_line_reference") is not None:
        _b(_a(el, "OrderLineReference"), "LineID", line["order_line_reference"])
    if line.get("object_identifier"):
        doc = _a(el, "DocumentReference")
        _id(doc, "ID", line["object_identifier"])
        _b(doc, "DocumentTypeCode", "130")
    for ac in line.get("allowance_charges") or []:
        _allowance(el, ac, currency, with_tax=False)
    item, it = _a(el, "Item"), line.get("item") or {}
    _b(item, "Description", it.get("description"))
    _b(item, "Name", it.get("name"))
    if it.get("buyer_id") is not None:
        _b(_a(item, "BuyersItemIdentification"), "ID", it["buyer_id"])
    if it.get("seller_id") is not None:
        _b(_a(item, "SellersItemIdentification"), "ID", it["seller_id"])
    if it.get("standard_id"):
        _id(_a(item, "StandardItemIdentification"), "ID", it["standard_id"])
    if it.get("origin_country") is not None:
        _b(_a(item, "OriginCountry"), "IdentificationCode", it["origin_country"])
    for cls in it.get("classifications") or []:
        _b(_a(item, "CommodityClassification"), "ItemClassificationCode", cls.get("code"),
           listID=cls.get("list_id"), listVersionID=cls.get("list_version"))
    if line.get("vat_category") is not None:
        _tax_category(item, "ClassifiedTaxCategory", line["vat_category"], line.get("vat_rate"))
    for attr in it.get("attributes") or []:
        prop = _a(item, "AdditionalItemProperty")
        _b(prop, "Name", attr.get("name"))
        _b(prop, "Value", attr.get("value"))
    price = line.get("price")
    if price:
        p = _a(el, "Price")
        _b(p, "PriceAmount", price.get("net_price"), currencyID=currency)
        _b(p, "BaseQuantity", price.get("base_quantity"), unitCode=price.get("base_quantity_unit"))
        if price.get("discount") is not None or price.get("gross_price") is not None:
            ac = _a(p, "AllowanceCharge")
            _b(ac, "ChargeIndicator", "false")
            _b(ac, "Amount", price.get("discount") or "0", currencyID=currency)
            _b(ac, "BaseAmount", price.get("gross_price"), currencyID=currency)


def write(inv: Rec) -> bytes:
    """The UBL 2.1 bytes of a complete invoice pivot record."""
    credit = bool(inv.get("is_credit_note"))
    root = etree.Element(f"{{{CN_NS if credit else INV_NS}}}{'CreditNote' if credit else 'Invoice'}",
                         nsmap={None: CN_NS if credit else INV_NS, "cac": CAC, "cbc": CBC})
    currency = inv.get("currency") or ""
    _b(root, "CustomizationID", inv.get("profile"))
    _b(root, "ProfileID", inv.get("business_process"))
    _b(root, "ID", inv.get("number"))
    _b(root, "IssueDate", inv.get("issue_date"))
    if not credit:
        _b(root, "DueDate", inv.get("due_date"))
        _b(root, "InvoiceTypeCode", inv.get("type_code"))
    else:
        _b(root, "TaxPointDate", inv.get("tax_point_date"))
        _b(root, "CreditNoteTypeCode", inv.get("type_code"))
    for note in inv.get("notes") or []:
        code = note.get("subject_code")
        _b(root, "Note", f"#{code}#{note.get('text')}" if code else note.get("text"))
    if not credit:
        _b(root, "TaxPointDate", inv.get("tax_point_date"))
    _b(root, "DocumentCurrencyCode", inv.get("currency"))
    _b(root, "TaxCurrencyCode", inv.get("tax_currency"))
    _b(root, "AccountingCost", inv.get("buyer_accounting_reference"))
    _b(root, "BuyerReference", inv.get("buyer_reference"))
    _period(root, inv.get("invoicing_period"), inv.get("tax_point_date_code"))
    _header_refs(root, inv, credit)
    seller, buyer = _a(root, "AccountingSupplierParty"), _a(root, "AccountingCustomerParty")
    _party(seller, "Party", inv.get("seller") or {})
    _party(buyer, "Party", inv.get("buyer") or {})
    _party(root, "PayeeParty", inv.get("payee"), named_by_party_name=True)
    _party(root, "TaxRepresentativeParty", inv.get("tax_representative"), named_by_party_name=True)
    _delivery(root, inv.get("delivery"))
    _payment(root, inv, credit)
    if inv.get("payment_terms") is not None:
        _b(_a(root, "PaymentTerms"), "Note", inv["payment_terms"])
    for ac in inv.get("allowance_charges") or []:
        _allowance(root, ac, currency, with_tax=True)
    _taxes(root, inv, currency)
    _totals(root, inv.get("totals") or {}, currency)
    for line in inv.get("lines") or []:
        _line(root, line, currency, credit)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _delivery(root: etree._Element, delivery: Rec | None) -> None:
    if not delivery:
        return
    el = _a(root, "Delivery")
    _b(el, "ActualDeliveryDate", delivery.get("actual_date"))
    if delivery.get("location") or delivery.get("address"):
        location = _a(el, "DeliveryLocation")
        _id(location, "ID", delivery.get("location"))
        _address(location, "Address", delivery.get("address"))
    if delivery.get("party_name") is not None:
        _b(_a(_a(el, "DeliveryParty"), "PartyName"), "Name", delivery["party_name"])


def _taxes(root: etree._Element, inv: Rec, currency: str) -> None:
    totals = inv.get("totals") or {}
    if totals.get("tax_total") is None and not inv.get("vat_breakdown"):
        return
    tax = _a(root, "TaxTotal")
    _b(tax, "TaxAmount", totals.get("tax_total") or "0", currencyID=currency)
    for vat in inv.get("vat_breakdown") or []:
        sub = _a(tax, "TaxSubtotal")
        _b(sub, "TaxableAmount", vat.get("taxable_amount"), currencyID=currency)
        _b(sub, "TaxAmount", vat.get("tax_amount"), currencyID=currency)
        _tax_category(sub, "TaxCategory", vat.get("category"), vat.get("rate"),
                      vat.get("exemption_reason_code"), vat.get("exemption_reason"))
    if totals.get("tax_total_accounting") is not None:
        _b(_a(root, "TaxTotal"), "TaxAmount", totals["tax_total_accounting"], currencyID=inv.get("tax_currency"))


def _totals(root: etree._Element, totals: Rec, currency: str) -> None:
    el = _a(root, "LegalMonetaryTotal")
    for key, tag in (("line_total", "LineExtensionAmount"), ("tax_exclusive", "TaxExclusiveAmount"),
                     ("tax_inclusive", "TaxInclusiveAmount"), ("allowance_total", "AllowanceTotalAmount"),
                     ("charge_total", "ChargeTotalAmount"), ("prepaid", "PrepaidAmount"),
                     ("rounding", "PayableRoundingAmount"), ("payable", "PayableAmount")):
        _b(el, tag, totals.get(key), currencyID=currency)
