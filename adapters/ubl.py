"""OASIS UBL 2.1 Invoice and CreditNote (EN 16931 syntax binding) to and from the invoice pivot.

Reading maps each UBL element to its EN 16931 term (see the field docs of
``schemas/avro/invoices/Invoice.v1.avsc``) and enforces the fatal business rules; XSD
validation is left to :func:`validate` (readers are tolerant). Writing is in :mod:`._ubl_write`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from . import _en16931
from ._base import Finding, Pivot, Sniff
from ._invoice_xsd import parse_date, schema_at, xsd_findings
from ._ubl_write import CAC, CBC, CN_NS, INV_NS, write
from ._xml import parse_xml

__all__ = ["FAMILY", "FORMAT", "detect", "from_pivot", "terms", "to_pivot", "validate"]

FORMAT = "ubl"
FAMILY = "invoices"

_ROOTS = {(INV_NS, "Invoice"): False, (CN_NS, "CreditNote"): True}
_XSD = {False: "invoices/xsd/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd", True: "invoices/xsd/ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"}
_PACKAGE = "the OASIS UBL 2.1 schemas (os-UBL-2.1/xsd: maindoc and common folders)"
_NOTE_SUBJECT = re.compile(r"^#([A-Z]{3})#(.*)$", re.DOTALL)
A, B = f"{{{CAC}}}", f"{{{CBC}}}"


def detect(sniff: Sniff) -> bool:
    """True for a UBL 2.1 Invoice or CreditNote root element."""
    return sniff.kind == "xml" and (sniff.root_ns, sniff.root_tag) in _ROOTS


def _t(el: etree._Element | None, tag: str) -> str | None:
    """Stripped text of the first child ``tag`` of ``el``; "" for an empty element, None when absent."""
    if el is None:
        return None
    child = el.find(tag)
    if child is None:
        return None
    return (child.text or "").strip()


def _ident(el: etree._Element | None, scheme_attr: str = "schemeID") -> dict[str, Any] | None:
    if el is None:
        return None
    return {"id": (el.text or "").strip(), "scheme": el.get(scheme_attr)}


def _address(el: etree._Element | None) -> dict[str, Any] | None:
    if el is None:
        return None
    line = el.find(A + "AddressLine")
    return {
        "line1": _t(el, B + "StreetName"),
        "line2": _t(el, B + "AdditionalStreetName"),
        "line3": _t(line, B + "Line"),
        "city": _t(el, B + "CityName"),
        "post_code": _t(el, B + "PostalZone"),
        "country_subdivision": _t(el, B + "CountrySubentity"),
        "country_code": _t(el.find(A + "Country"), B + "IdentificationCode"),
    }


def _party(el: etree._Element | None, *, named_by_party_name: bool = False) -> dict[str, Any] | None:
    if el is None:
        return None
    legal = el.find(A + "PartyLegalEntity")
    vat = tax_registration = None
    for scheme in el.iterfind(A + "PartyTaxScheme"):
        if (_t(scheme.find(A + "TaxScheme"), B + "ID") or "").upper() == "VAT":
            vat = _t(scheme, B + "CompanyID")
        else:
            tax_registration = _t(scheme, B + "CompanyID")
    contact = el.find(A + "Contact")
    party_name = _t(el.find(A + "PartyName"), B + "Name")
    return {
        "name": party_name if named_by_party_name else _t(legal, B + "RegistrationName"),
        "trading_name": None if named_by_party_name else party_name,
        "identifiers": [_ident(i.find(B + "ID")) for i in el.iterfind(A + "PartyIdentification") if i.find(B + "ID") is not None],
        "legal_registration": _ident(legal.find(B + "CompanyID")) if legal is not None else None,
        "vat_identifier": vat,
        "tax_registration": tax_registration,
        "legal_form": _t(legal, B + "CompanyLegalForm"),
        "electronic_address": _ident(el.find(B + "EndpointID")),
        "address": _address(el.find(A + "PostalAddress")),
        "contact": None if contact is None else {
            "name": _t(contact, B + "Name"),
            "telephone": _t(contact, B + "Telephone"),
            "email": _t(contact, B + "ElectronicMail"),
        },
    }


def _allowance(el: etree._Element) -> dict[str, Any]:
    category = el.find(A + "TaxCategory")
    return {
        "charge": (_t(el, B + "ChargeIndicator") or "").lower() in ("true", "1"),
        "amount": _t(el, B + "Amount"),
        "base_amount": _t(el, B + "BaseAmount"),
        "percentage": _t(el, B + "MultiplierFactorNumeric"),
        "vat_category": _t(category, B + "ID"),
        "vat_rate": _t(category, B + "Percent"),
        "reason": _t(el, B + "AllowanceChargeReason"),
        "reason_code": _t(el, B + "AllowanceChargeReasonCode"),
    }


def _period(el: etree._Element | None, term: str, name: str) -> dict[str, Any] | None:
    if el is None:
        return None
    return {
        "start_date": parse_date(_t(el, B + "StartDate"), term=term, name=name),
        "end_date": parse_date(_t(el, B + "EndDate"), term=term, name=name),
    }


def _line(el: etree._Element, credit: bool, name: str) -> dict[str, Any]:
    quantity = el.find(B + ("CreditedQuantity" if credit else "InvoicedQuantity"))
    item = el.find(A + "Item")
    price = el.find(A + "Price")
    category = item.find(A + "ClassifiedTaxCategory") if item is not None else None
    object_id = next((d.find(B + "ID") for d in el.iterfind(A + "DocumentReference") if _t(d, B + "DocumentTypeCode") == "130"), None)
    price_ac = price.find(A + "AllowanceCharge") if price is not None else None
    base = price.find(B + "BaseQuantity") if price is not None else None
    return {
        "id": _t(el, B + "ID"),
        "note": _t(el, B + "Note"),
        "object_identifier": _ident(object_id),
        "quantity": None if quantity is None else (quantity.text or "").strip(),
        "unit_code": None if quantity is None else quantity.get("unitCode"),
        "net_amount": _t(el, B + "LineExtensionAmount"),
        "order_line_reference": _t(el.find(A + "OrderLineReference"), B + "LineID"),
        "accounting_reference": _t(el, B + "AccountingCost"),
        "period": _period(el.find(A + "InvoicePeriod"), "BG-26", name),
        "allowance_charges": [_allowance(ac) for ac in el.iterfind(A + "AllowanceCharge")],
        "price": None if price is None else {
            "net_price": _t(price, B + "PriceAmount"),
            "discount": _t(price_ac, B + "Amount"),
            "gross_price": _t(price_ac, B + "BaseAmount"),
            "base_quantity": None if base is None else (base.text or "").strip(),
            "base_quantity_unit": None if base is None else base.get("unitCode"),
        },
        "vat_category": _t(category, B + "ID"),
        "vat_rate": _t(category, B + "Percent"),
        "item": _item(item),
    }


def _item(item: etree._Element | None) -> dict[str, Any]:
    if item is None:
        return {"name": None}
    standard = item.find(A + "StandardItemIdentification")
    return {
        "name": _t(item, B + "Name"),
        "description": _t(item, B + "Description"),
        "seller_id": _t(item.find(A + "SellersItemIdentification"), B + "ID"),
        "buyer_id": _t(item.find(A + "BuyersItemIdentification"), B + "ID"),
        "standard_id": None if standard is None else _ident(standard.find(B + "ID")),
        "classifications": [
            {"code": (c.text or "").strip(), "list_id": c.get("listID"), "list_version": c.get("listVersionID")}
            for c in item.iterfind(f"{A}CommodityClassification/{B}ItemClassificationCode")
        ],
        "origin_country": _t(item.find(A + "OriginCountry"), B + "IdentificationCode"),
        "attributes": [
            {"name": _t(p, B + "Name") or "", "value": _t(p, B + "Value") or ""} for p in item.iterfind(A + "AdditionalItemProperty")
        ],
    }


def _payment(root: etree._Element) -> tuple[dict[str, Any] | None, str | None]:
    """BG-16 from every PaymentMeans (one per account in UBL), and the CreditNote's BT-9."""
    means = root.findall(A + "PaymentMeans")
    if not means:
        return None, None
    first = means[0]
    code = first.find(B + "PaymentMeansCode")
    card = first.find(A + "CardAccount")
    mandate = first.find(A + "PaymentMandate")
    transfers = []
    for pm in means:
        account = pm.find(A + "PayeeFinancialAccount")
        if account is not None:
            transfers.append({
                "account_id": _t(account, B + "ID") or "",
                "account_name": _t(account, B + "Name"),
                "provider_id": _t(account.find(A + "FinancialInstitutionBranch"), B + "ID"),
            })
    return {
        "means_code": None if code is None else (code.text or "").strip(),
        "means_text": None if code is None else code.get("name"),
        "remittance_information": _t(first, B + "PaymentID"),
        "credit_transfers": transfers,
        "card": None if card is None else {
            "account_number": _t(card, B + "PrimaryAccountNumberID") or "",
            "holder_name": _t(card, B + "HolderName"),
        },
        "direct_debit": None if mandate is None else {
            "mandate_reference": _t(mandate, B + "ID"),
            "debited_account": _t(mandate.find(A + "PayerFinancialAccount"), B + "ID"),
        },
    }, _t(first, B + "PaymentDueDate")


def _tax_totals(root: etree._Element, currency: str | None, tax_currency: str | None) -> tuple[etree._Element | None, str | None]:
    """The TaxTotal in the invoice currency (BT-110, with BG-23) and the BT-111 amount."""
    main, accounting = None, None
    for total in root.iterfind(A + "TaxTotal"):
        amount = total.find(B + "TaxAmount")
        unit = amount.get("currencyID") if amount is not None else None
        if main is None and (unit == currency or unit is None or tax_currency is None or tax_currency == currency):
            main = total
        elif amount is not None and accounting is None:
            accounting = (amount.text or "").strip()
    return main, accounting


def read(root: etree._Element, *, name: str) -> dict[str, Any]:
    """The pivot record of a parsed UBL Invoice or CreditNote (no rules applied)."""
    credit = _ROOTS.get((etree.QName(root).namespace, etree.QName(root).localname))
    if credit is None:
        raise NonConformantError("the root element is not a UBL 2.1 Invoice or CreditNote", document=name, rule="XSD", xpath="/*")
    currency = _t(root, B + "DocumentCurrencyCode")
    tax_currency = _t(root, B + "TaxCurrencyCode")
    payment, credit_due = _payment(root)
    tax_total, accounting = _tax_totals(root, currency, tax_currency)
    totals = root.find(A + "LegalMonetaryTotal")
    notes = []
    for note in root.iterfind(B + "Note"):
        text = (note.text or "").strip()
        match = _NOTE_SUBJECT.match(text)
        notes.append({"subject_code": match[1], "text": match[2]} if match else {"text": text})
    documents, invoiced_object = [], None
    project = _t(root.find(A + "ProjectReference"), B + "ID")
    for doc in root.iterfind(A + "AdditionalDocumentReference"):
        doc_type = _t(doc, B + "DocumentTypeCode")
        if doc_type == "130":
            invoiced_object = _ident(doc.find(B + "ID"))
            continue
        if doc_type == "50" and credit:
            project = _t(doc, B + "ID")
            continue
        attachment = doc.find(A + "Attachment")
        binary = attachment.find(B + "EmbeddedDocumentBinaryObject") if attachment is not None else None
        documents.append({
            "id": _t(doc, B + "ID") or "",
            "description": _t(doc, B + "DocumentDescription"),
            "uri": _t(attachment.find(A + "ExternalReference"), B + "URI") if attachment is not None else None,
            "content": None if binary is None else (binary.text or "").strip(),
            "mime_code": None if binary is None else binary.get("mimeCode"),
            "filename": None if binary is None else binary.get("filename"),
        })
    delivery = root.find(A + "Delivery")
    location = delivery.find(A + "DeliveryLocation") if delivery is not None else None
    period = root.find(A + "InvoicePeriod")
    order = root.find(A + "OrderReference")
    line_tag = A + ("CreditNoteLine" if credit else "InvoiceLine")
    return {
        "syntax": "UBL",
        "profile": _t(root, B + "CustomizationID"),
        "business_process": _t(root, B + "ProfileID"),
        "number": _t(root, B + "ID"),
        "issue_date": parse_date(_t(root, B + "IssueDate"), term="BT-2", name=name),
        "type_code": _t(root, B + ("CreditNoteTypeCode" if credit else "InvoiceTypeCode")),
        "is_credit_note": credit,
        "currency": currency,
        "tax_currency": tax_currency,
        "tax_point_date": parse_date(_t(root, B + "TaxPointDate"), term="BT-7", name=name),
        "tax_point_date_code": _t(period, B + "DescriptionCode"),
        "due_date": parse_date(credit_due if credit else _t(root, B + "DueDate"), term="BT-9", name=name),
        "buyer_reference": _t(root, B + "BuyerReference"),
        "project_reference": project,
        "contract_reference": _t(root.find(A + "ContractDocumentReference"), B + "ID"),
        "purchase_order_reference": _t(order, B + "ID"),
        "sales_order_reference": _t(order, B + "SalesOrderID"),
        "receiving_advice_reference": _t(root.find(A + "ReceiptDocumentReference"), B + "ID"),
        "despatch_advice_reference": _t(root.find(A + "DespatchDocumentReference"), B + "ID"),
        "tender_reference": _t(root.find(A + "OriginatorDocumentReference"), B + "ID"),
        "invoiced_object": invoiced_object,
        "buyer_accounting_reference": _t(root, B + "AccountingCost"),
        "payment_terms": _t(root.find(A + "PaymentTerms"), B + "Note"),
        "notes": notes,
        "preceding_invoices": [
            {"number": _t(ref, B + "ID") or "", "issue_date": parse_date(_t(ref, B + "IssueDate"), term="BT-26", name=name)}
            for ref in root.iterfind(f"{A}BillingReference/{A}InvoiceDocumentReference")
        ],
        "seller": _party(root.find(f"{A}AccountingSupplierParty/{A}Party")) or {},
        "buyer": _party(root.find(f"{A}AccountingCustomerParty/{A}Party")) or {},
        "payee": _party(root.find(A + "PayeeParty"), named_by_party_name=True),
        "tax_representative": _party(root.find(A + "TaxRepresentativeParty"), named_by_party_name=True),
        "delivery": None if delivery is None else {
            "party_name": _t(delivery.find(f"{A}DeliveryParty/{A}PartyName"), B + "Name"),
            "location": _ident(location.find(B + "ID")) if location is not None else None,
            "actual_date": parse_date(_t(delivery, B + "ActualDeliveryDate"), term="BT-72", name=name),
            "address": _address(location.find(A + "Address")) if location is not None else None,
        },
        "invoicing_period": _period(period, "BG-14", name) if period is not None and (period.find(B + "StartDate") is not None or period.find(B + "EndDate") is not None) else None,
        "payment_instructions": payment,
        "allowance_charges": [_allowance(ac) for ac in root.iterfind(A + "AllowanceCharge")],
        "totals": {
            "line_total": _t(totals, B + "LineExtensionAmount"),
            "allowance_total": _t(totals, B + "AllowanceTotalAmount"),
            "charge_total": _t(totals, B + "ChargeTotalAmount"),
            "tax_exclusive": _t(totals, B + "TaxExclusiveAmount"),
            "tax_total": _t(tax_total, B + "TaxAmount"),
            "tax_total_accounting": accounting,
            "tax_inclusive": _t(totals, B + "TaxInclusiveAmount"),
            "prepaid": _t(totals, B + "PrepaidAmount"),
            "rounding": _t(totals, B + "PayableRoundingAmount"),
            "payable": _t(totals, B + "PayableAmount"),
        },
        "vat_breakdown": [] if tax_total is None else [_vat(sub) for sub in tax_total.iterfind(A + "TaxSubtotal")],
        "supporting_documents": documents,
        "lines": [_line(line, credit, name) for line in root.iterfind(line_tag)],
    }


def _vat(sub: etree._Element) -> dict[str, Any]:
    category = sub.find(A + "TaxCategory")
    return {
        "taxable_amount": _t(sub, B + "TaxableAmount"),
        "tax_amount": _t(sub, B + "TaxAmount"),
        "category": _t(category, B + "ID"),
        "rate": _t(category, B + "Percent"),
        "exemption_reason": _t(category, B + "TaxExemptionReason"),
        "exemption_reason_code": _t(category, B + "TaxExemptionReasonCode"),
    }


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """Read a UBL Invoice or CreditNote; NonConformantError when a fatal EN 16931 rule fails."""
    root = parse_xml(data, name=name)
    return _en16931.build_pivot(read(root, name=name), fmt=FORMAT, name=name)


def from_pivot(pivot: Pivot) -> bytes:
    """Write the pivot as a UBL 2.1 Invoice (or CreditNote when it was one), UTF-8 encoded."""
    return write(pivot.data)


def terms(pivot: Pivot) -> dict[str, Any]:
    """The flat EN 16931 terms map of the pivot (see :func:`adapters._en16931.terms`)."""
    return _en16931.terms(pivot.data)


def validate(data: bytes, *, schema_dir: Path, name: str = "<bytes>") -> list[Finding]:
    """XSD (UBL 2.1 maindoc under ``schema_dir``) and EN 16931 business rule findings."""
    root = parse_xml(data, name=name)
    credit = _ROOTS.get((etree.QName(root).namespace, etree.QName(root).localname))
    if credit is None:
        return [Finding("XSD", "/*", "the root element is not a UBL 2.1 Invoice or CreditNote")]
    findings = xsd_findings(schema_at(Path(schema_dir), _XSD[credit], package=_PACKAGE), root)
    try:
        record = _en16931.complete(read(root, name=name))
    except NonConformantError as exc:
        return [*findings, Finding(str(exc.context.get("rule", "XSD")), str(exc.context.get("xpath", "/")), exc.message)]
    return [*findings, *_en16931.check(record)]
