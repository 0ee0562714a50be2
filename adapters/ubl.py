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
from ._xmlwalk import Node

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


def _t(el: Node | None, tag: str) -> str | None:
    """Stripped text of the first child ``tag`` of ``el``; "" for an empty element, None when absent."""
    return None if el is None else el.text(tag)


def _ident(el: etree._Element | None, scheme_attr: str = "schemeID") -> dict[str, Any] | None:
    if el is None:
        return None
    return {"id": (el.text or "").strip(), "scheme": el.get(scheme_attr)}


def _address(el: Node | None) -> dict[str, Any] | None:
    if el is None:
        return None
    return {
        "line1": el.text(B + "StreetName"),
        "line2": el.text(B + "AdditionalStreetName"),
        "line3": el.text(A + "AddressLine", B + "Line"),
        "city": el.text(B + "CityName"),
        "post_code": el.text(B + "PostalZone"),
        "country_subdivision": el.text(B + "CountrySubentity"),
        "country_code": el.text(A + "Country", B + "IdentificationCode"),
    }


def _party(el: Node | None, *, named_by_party_name: bool = False) -> dict[str, Any] | None:
    if el is None:
        return None
    legal = el.child(A + "PartyLegalEntity")
    vat = tax_registration = None
    for scheme in el.children(A + "PartyTaxScheme"):
        if (scheme.text(A + "TaxScheme", B + "ID") or "").upper() == "VAT":
            vat = scheme.text(B + "CompanyID")
        else:
            tax_registration = scheme.text(B + "CompanyID")
    contact = el.child(A + "Contact")
    party_name = el.text(A + "PartyName", B + "Name")
    return {
        "name": party_name if named_by_party_name else _t(legal, B + "RegistrationName"),
        "trading_name": None if named_by_party_name else party_name,
        "identifiers": [_ident(i.leaf(B + "ID")) for i in el.children(A + "PartyIdentification") if B + "ID" in i.first],
        "legal_registration": _ident(legal.leaf(B + "CompanyID")) if legal is not None else None,
        "vat_identifier": vat,
        "tax_registration": tax_registration,
        "legal_form": _t(legal, B + "CompanyLegalForm"),
        "electronic_address": _ident(el.leaf(B + "EndpointID")),
        "address": _address(el.child(A + "PostalAddress")),
        "contact": None if contact is None else {
            "name": contact.text(B + "Name"),
            "telephone": contact.text(B + "Telephone"),
            "email": contact.text(B + "ElectronicMail"),
        },
    }


def _allowance(el: Node) -> dict[str, Any]:
    category = el.child(A + "TaxCategory")
    return {
        "charge": (el.text(B + "ChargeIndicator") or "").lower() in ("true", "1"),
        "amount": el.text(B + "Amount"),
        "base_amount": el.text(B + "BaseAmount"),
        "percentage": el.text(B + "MultiplierFactorNumeric"),
        "vat_category": _t(category, B + "ID"),
        "vat_rate": _t(category, B + "Percent"),
        "reason": el.text(B + "AllowanceChargeReason"),
        "reason_code": el.text(B + "AllowanceChargeReasonCode"),
    }


def _period(el: Node | None, term: str, name: str) -> dict[str, Any] | None:
    if el is None:
        return None
    return {
        "start_date": parse_date(el.text(B + "StartDate"), term=term, name=name),
        "end_date": parse_date(el.text(B + "EndDate"), term=term, name=name),
    }


def _line(el: Node, credit: bool, name: str) -> dict[str, Any]:
    quantity = el.leaf(B + ("CreditedQuantity" if credit else "InvoicedQuantity"))
    item = el.child(A + "Item")
    price = el.child(A + "Price")
    category = item.child(A + "ClassifiedTaxCategory") if item is not None else None
    object_id = next((d.leaf(B + "ID") for d in el.children(A + "DocumentReference") if d.text(B + "DocumentTypeCode") == "130"), None)
    price_ac = price.child(A + "AllowanceCharge") if price is not None else None
    base = price.leaf(B + "BaseQuantity") if price is not None else None
    return {
        "id": el.text(B + "ID"),
        "note": el.text(B + "Note"),
        "object_identifier": _ident(object_id),
        "quantity": None if quantity is None else (quantity.text or "").strip(),
        "unit_code": None if quantity is None else quantity.get("unitCode"),
        "net_amount": el.text(B + "LineExtensionAmount"),
        "order_line_reference": el.text(A + "OrderLineReference", B + "LineID"),
        "accounting_reference": el.text(B + "AccountingCost"),
        "period": _period(el.child(A + "InvoicePeriod"), "BG-26", name),
        "allowance_charges": [_allowance(ac) for ac in el.children(A + "AllowanceCharge")],
        "price": None if price is None else {
            "net_price": price.text(B + "PriceAmount"),
            "discount": _t(price_ac, B + "Amount"),
            "gross_price": _t(price_ac, B + "BaseAmount"),
            "base_quantity": None if base is None else (base.text or "").strip(),
            "base_quantity_unit": None if base is None else base.get("unitCode"),
        },
        "vat_category": _t(category, B + "ID"),
        "vat_rate": _t(category, B + "Percent"),
        "item": _item(item),
    }


def _item(item: Node | None) -> dict[str, Any]:
    if item is None:
        return {"name": None}
    standard = item.child(A + "StandardItemIdentification")
    return {
        "name": item.text(B + "Name"),
        "description": item.text(B + "Description"),
        "seller_id": item.text(A + "SellersItemIdentification", B + "ID"),
        "buyer_id": item.text(A + "BuyersItemIdentification", B + "ID"),
        "standard_id": None if standard is None else _ident(standard.leaf(B + "ID")),
        "classifications": [
            {"code": (c.element.text or "").strip(), "list_id": c.get("listID"), "list_version": c.get("listVersionID")}
            for c in item.children(A + "CommodityClassification", B + "ItemClassificationCode")
        ],
        "origin_country": item.text(A + "OriginCountry", B + "IdentificationCode"),
        "attributes": [
            {"name": p.text(B + "Name") or "", "value": p.text(B + "Value") or ""} for p in item.children(A + "AdditionalItemProperty")
        ],
    }


def _payment(root: Node) -> tuple[dict[str, Any] | None, str | None]:
    """BG-16 from every PaymentMeans (one per account in UBL), and the CreditNote's BT-9."""
    means = root.children(A + "PaymentMeans")
    if not means:
        return None, None
    first = means[0]
    code = first.leaf(B + "PaymentMeansCode")
    card = first.child(A + "CardAccount")
    mandate = first.child(A + "PaymentMandate")
    transfers = []
    for pm in means:
        account = pm.child(A + "PayeeFinancialAccount")
        if account is not None:
            transfers.append({
                "account_id": account.text(B + "ID") or "",
                "account_name": account.text(B + "Name"),
                "provider_id": account.text(A + "FinancialInstitutionBranch", B + "ID"),
            })
    return {
        "means_code": None if code is None else (code.text or "").strip(),
        "means_text": None if code is None else code.get("name"),
        "remittance_information": first.text(B + "PaymentID"),
        "credit_transfers": transfers,
        "card": None if card is None else {
            "account_number": card.text(B + "PrimaryAccountNumberID") or "",
            "holder_name": card.text(B + "HolderName"),
        },
        "direct_debit": None if mandate is None else {
            "mandate_reference": mandate.text(B + "ID"),
            "debited_account": mandate.text(A + "PayerFinancialAccount", B + "ID"),
        },
    }, first.text(B + "PaymentDueDate")


def _tax_totals(root: Node, currency: str | None, tax_currency: str | None) -> tuple[Node | None, str | None]:
    """The TaxTotal in the invoice currency (BT-110, with BG-23) and the BT-111 amount."""
    main, accounting = None, None
    for total in root.children(A + "TaxTotal"):
        amount = total.leaf(B + "TaxAmount")
        unit = amount.get("currencyID") if amount is not None else None
        if main is None and (unit == currency or unit is None or tax_currency is None or tax_currency == currency):
            main = total
        elif amount is not None and accounting is None:
            accounting = (amount.text or "").strip()
    return main, accounting


def read(element: etree._Element, *, name: str) -> dict[str, Any]:
    """The pivot record of a parsed UBL Invoice or CreditNote (no rules applied)."""
    credit = _ROOTS.get((etree.QName(element).namespace, etree.QName(element).localname))
    if credit is None:
        raise NonConformantError("the root element is not a UBL 2.1 Invoice or CreditNote", document=name, rule="XSD", xpath="/*")
    root = Node(element)
    currency = root.text(B + "DocumentCurrencyCode")
    tax_currency = root.text(B + "TaxCurrencyCode")
    payment, credit_due = _payment(root)
    tax_total, accounting = _tax_totals(root, currency, tax_currency)
    totals = root.child(A + "LegalMonetaryTotal")
    notes = []
    for note in root.iter(B + "Note"):
        note_text = (note.text or "").strip()
        match = _NOTE_SUBJECT.match(note_text)
        notes.append({"subject_code": match[1], "text": match[2]} if match else {"text": note_text})
    documents, invoiced_object = [], None
    project = root.text(A + "ProjectReference", B + "ID")
    for doc in root.children(A + "AdditionalDocumentReference"):
        doc_type = doc.text(B + "DocumentTypeCode")
        if doc_type == "130":
            invoiced_object = _ident(doc.leaf(B + "ID"))
            continue
        if doc_type == "50" and credit:
            project = doc.text(B + "ID")
            continue
        attachment = doc.child(A + "Attachment")
        binary = attachment.leaf(B + "EmbeddedDocumentBinaryObject") if attachment is not None else None
        documents.append({
            "id": doc.text(B + "ID") or "",
            "description": doc.text(B + "DocumentDescription"),
            "uri": attachment.text(A + "ExternalReference", B + "URI") if attachment is not None else None,
            "content": None if binary is None else (binary.text or "").strip(),
            "mime_code": None if binary is None else binary.get("mimeCode"),
            "filename": None if binary is None else binary.get("filename"),
        })
    delivery = root.child(A + "Delivery")
    location = delivery.child(A + "DeliveryLocation") if delivery is not None else None
    period = root.child(A + "InvoicePeriod")
    order = root.child(A + "OrderReference")
    line_tag = A + ("CreditNoteLine" if credit else "InvoiceLine")
    return {
        "syntax": "UBL",
        "profile": root.text(B + "CustomizationID"),
        "business_process": root.text(B + "ProfileID"),
        "number": root.text(B + "ID"),
        "issue_date": parse_date(root.text(B + "IssueDate"), term="BT-2", name=name),
        "type_code": root.text(B + ("CreditNoteTypeCode" if credit else "InvoiceTypeCode")),
        "is_credit_note": credit,
        "currency": currency,
        "tax_currency": tax_currency,
        "tax_point_date": parse_date(root.text(B + "TaxPointDate"), term="BT-7", name=name),
        "tax_point_date_code": _t(period, B + "DescriptionCode"),
        "due_date": parse_date(credit_due if credit else root.text(B + "DueDate"), term="BT-9", name=name),
        "buyer_reference": root.text(B + "BuyerReference"),
        "project_reference": project,
        "contract_reference": root.text(A + "ContractDocumentReference", B + "ID"),
        "purchase_order_reference": _t(order, B + "ID"),
        "sales_order_reference": _t(order, B + "SalesOrderID"),
        "receiving_advice_reference": root.text(A + "ReceiptDocumentReference", B + "ID"),
        "despatch_advice_reference": root.text(A + "DespatchDocumentReference", B + "ID"),
        "tender_reference": root.text(A + "OriginatorDocumentReference", B + "ID"),
        "invoiced_object": invoiced_object,
        "buyer_accounting_reference": root.text(B + "AccountingCost"),
        "payment_terms": root.text(A + "PaymentTerms", B + "Note"),
        "notes": notes,
        "preceding_invoices": [
            {"number": ref.text(B + "ID") or "", "issue_date": parse_date(ref.text(B + "IssueDate"), term="BT-26", name=name)}
            for ref in root.children(A + "BillingReference", A + "InvoiceDocumentReference")
        ],
        "seller": _party(root.child(A + "AccountingSupplierParty", A + "Party")) or {},
        "buyer": _party(root.child(A + "AccountingCustomerParty", A + "Party")) or {},
        "payee": _party(root.child(A + "PayeeParty"), named_by_party_name=True),
        "tax_representative": _party(root.child(A + "TaxRepresentativeParty"), named_by_party_name=True),
        "delivery": None if delivery is None else {
            "party_name": _t(delivery.child(A + "DeliveryParty", A + "PartyName"), B + "Name"),
            "location": _ident(location.leaf(B + "ID")) if location is not None else None,
            "actual_date": parse_date(delivery.text(B + "ActualDeliveryDate"), term="BT-72", name=name),
            "address": _address(location.child(A + "Address")) if location is not None else None,
        },
        "invoicing_period": _period(period, "BG-14", name) if period is not None and (B + "StartDate" in period.first or B + "EndDate" in period.first) else None,
        "payment_instructions": payment,
        "allowance_charges": [_allowance(ac) for ac in root.children(A + "AllowanceCharge")],
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
        "vat_breakdown": [] if tax_total is None else [_vat(sub) for sub in tax_total.children(A + "TaxSubtotal")],
        "supporting_documents": documents,
        "lines": [_line(line, credit, name) for line in root.children(line_tag)],
    }


def _vat(sub: Node) -> dict[str, Any]:
    category = sub.child(A + "TaxCategory")
    return {
        "taxable_amount": sub.text(B + "TaxableAmount"),
        "tax_amount": sub.text(B + "TaxAmount"),
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
