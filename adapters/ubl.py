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
from ._schematron import official_findings
from ._ubl_write import CAC, CBC, CN_NS, INV_NS, write
from ._xml import parse_xml
from ._xmlwalk import Index, Tags, child, every, find, first, index, text

__all__ = ["FAMILY", "FORMAT", "detect", "from_pivot", "terms", "to_pivot", "validate"]

FORMAT = "ubl"
FAMILY = "invoices"

_ROOTS = {(INV_NS, "Invoice"): False, (CN_NS, "CreditNote"): True}
_ROOT_TAGS = {f"{{{ns}}}{local}": credit for (ns, local), credit in _ROOTS.items()}
_XSD = {False: "invoices/xsd/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd", True: "invoices/xsd/ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"}
_PACKAGE = "the OASIS UBL 2.1 schemas (os-UBL-2.1/xsd: maindoc and common folders)"
_NOTE_SUBJECT = re.compile(r"^#([A-Z]{3})#(.*)$", re.DOTALL)
cac, cbc = Tags(CAC), Tags(CBC)


def detect(sniff: Sniff) -> bool:
    """True for a UBL 2.1 Invoice or CreditNote root element."""
    return sniff.kind == "xml" and (sniff.root_ns, sniff.root_tag) in _ROOTS


def _ident(el: etree._Element | None, scheme_attr: str = "schemeID") -> dict[str, Any] | None:
    if el is None:
        return None
    return {"id": (el.text or "").strip(), "scheme": el.get(scheme_attr)}


def _address(el: etree._Element | None) -> dict[str, Any] | None:
    if el is None:
        return None
    k = index(el)
    return {
        "line1": text(k.get(cbc.StreetName)),
        "line2": text(k.get(cbc.AdditionalStreetName)),
        "line3": text(first(k.get(cac.AddressLine), cbc.Line)),
        "city": text(k.get(cbc.CityName)),
        "post_code": text(k.get(cbc.PostalZone)),
        "country_subdivision": text(k.get(cbc.CountrySubentity)),
        "country_code": text(first(k.get(cac.Country), cbc.IdentificationCode)),
    }


def _party(el: etree._Element | None, *, named_by_party_name: bool = False) -> dict[str, Any] | None:
    if el is None:
        return None
    k = index(el)
    legal = index(k.get(cac.PartyLegalEntity))
    vat = tax_registration = None
    for scheme in every(el, cac.PartyTaxScheme, k):
        sk = index(scheme)
        if (text(first(sk.get(cac.TaxScheme), cbc.ID)) or "").upper() == "VAT":
            vat = text(sk.get(cbc.CompanyID))
        else:
            tax_registration = text(sk.get(cbc.CompanyID))
    contact = k.get(cac.Contact)
    party_name = text(first(k.get(cac.PartyName), cbc.Name))
    ids = [first(i, cbc.ID) for i in every(el, cac.PartyIdentification, k)]
    return {
        "name": party_name if named_by_party_name else text(legal.get(cbc.RegistrationName)),
        "trading_name": None if named_by_party_name else party_name,
        "identifiers": [_ident(i) for i in ids if i is not None],
        "legal_registration": _ident(legal.get(cbc.CompanyID)),
        "vat_identifier": vat,
        "tax_registration": tax_registration,
        "legal_form": text(legal.get(cbc.CompanyLegalForm)),
        "electronic_address": _ident(k.get(cbc.EndpointID)),
        "address": _address(k.get(cac.PostalAddress)),
        "contact": None if contact is None else _contact(index(contact)),
    }


def _contact(k: Index) -> dict[str, Any]:
    return {"name": text(k.get(cbc.Name)), "telephone": text(k.get(cbc.Telephone)), "email": text(k.get(cbc.ElectronicMail))}


def _category(tax: Index) -> tuple[str | None, str | None]:
    """(VAT category code, VAT rate) of a TaxCategory or ClassifiedTaxCategory index."""
    return text(tax.get(cbc.ID)), text(tax.get(cbc.Percent))


def _allowance(el: etree._Element) -> dict[str, Any]:
    k = index(el)
    vat_category, vat_rate = _category(index(k.get(cac.TaxCategory)))
    return {
        "charge": (text(k.get(cbc.ChargeIndicator)) or "").lower() in ("true", "1"),
        "amount": text(k.get(cbc.Amount)),
        "base_amount": text(k.get(cbc.BaseAmount)),
        "percentage": text(k.get(cbc.MultiplierFactorNumeric)),
        "vat_category": vat_category,
        "vat_rate": vat_rate,
        "reason": text(k.get(cbc.AllowanceChargeReason)),
        "reason_code": text(k.get(cbc.AllowanceChargeReasonCode)),
    }


def _period(k: Index, term: str, name: str) -> dict[str, Any]:
    """BG-14 / BG-26 from the index of an InvoicePeriod."""
    return {
        "start_date": parse_date(text(k.get(cbc.StartDate)), term=term, name=name),
        "end_date": parse_date(text(k.get(cbc.EndDate)), term=term, name=name),
    }


def _line(el: etree._Element, credit: bool, name: str) -> dict[str, Any]:
    k = index(el)
    quantity = k.get(cbc.CreditedQuantity if credit else cbc.InvoicedQuantity)
    item, items = child(k, cac.Item)
    vat_category, vat_rate = _category(index(items.get(cac.ClassifiedTaxCategory)))
    price, prices = child(k, cac.Price)
    discount = index(prices.get(cac.AllowanceCharge))
    base = prices.get(cbc.BaseQuantity)
    period = k.get(cac.InvoicePeriod)
    object_id = next((first(d, cbc.ID) for d in every(el, cac.DocumentReference, k) if text(first(d, cbc.DocumentTypeCode)) == "130"), None)
    return {
        "id": text(k.get(cbc.ID)),
        "note": text(k.get(cbc.Note)),
        "object_identifier": _ident(object_id),
        "quantity": text(quantity),
        "unit_code": None if quantity is None else quantity.get("unitCode"),
        "net_amount": text(k.get(cbc.LineExtensionAmount)),
        "order_line_reference": text(first(k.get(cac.OrderLineReference), cbc.LineID)),
        "accounting_reference": text(k.get(cbc.AccountingCost)),
        "period": None if period is None else _period(index(period), "BG-26", name),
        "allowance_charges": [_allowance(ac) for ac in every(el, cac.AllowanceCharge, k)],
        "price": None if price is None else {
            "net_price": text(prices.get(cbc.PriceAmount)),
            "discount": text(discount.get(cbc.Amount)),
            "gross_price": text(discount.get(cbc.BaseAmount)),
            "base_quantity": text(base),
            "base_quantity_unit": None if base is None else base.get("unitCode"),
        },
        "vat_category": vat_category,
        "vat_rate": vat_rate,
        "item": _en16931.defaults("Item") if item is None else _item(item, items),
    }


def _item(item: etree._Element, k: Index) -> dict[str, Any]:
    """BG-31 from an Item and its :func:`index`."""
    standard = k.get(cac.StandardItemIdentification)
    return {
        "name": text(k.get(cbc.Name)),
        "description": text(k.get(cbc.Description)),
        "seller_id": text(first(k.get(cac.SellersItemIdentification), cbc.ID)),
        "buyer_id": text(first(k.get(cac.BuyersItemIdentification), cbc.ID)),
        "standard_id": None if standard is None else _ident(first(standard, cbc.ID)),
        "classifications": [
            {"code": (c.text or "").strip(), "list_id": c.get("listID"), "list_version": c.get("listVersionID")}
            for group in every(item, cac.CommodityClassification, k) for c in group.iterchildren(cbc.ItemClassificationCode)
        ],
        "origin_country": text(first(k.get(cac.OriginCountry), cbc.IdentificationCode)),
        "attributes": [_attribute(index(p)) for p in every(item, cac.AdditionalItemProperty, k)],
    }


def _attribute(k: Index) -> dict[str, Any]:
    return {"name": text(k.get(cbc.Name)) or "", "value": text(k.get(cbc.Value)) or ""}


def _payment(root: etree._Element, kids: Index) -> tuple[dict[str, Any] | None, str | None]:
    """BG-16 from every PaymentMeans (one per account in UBL), and the CreditNote's BT-9."""
    means = every(root, cac.PaymentMeans, kids)
    if not means:
        return None, None
    k = index(means[0])
    code = k.get(cbc.PaymentMeansCode)
    card = k.get(cac.CardAccount)
    mandate = k.get(cac.PaymentMandate)
    transfers = []
    for pm in means:
        account = (k if pm is means[0] else index(pm)).get(cac.PayeeFinancialAccount)
        if account is not None:
            ak = index(account)
            transfers.append({
                "account_id": text(ak.get(cbc.ID)) or "",
                "account_name": text(ak.get(cbc.Name)),
                "provider_id": text(first(ak.get(cac.FinancialInstitutionBranch), cbc.ID)),
            })
    cards, mandates = index(card), index(mandate)
    return {
        "means_code": text(code),
        "means_text": None if code is None else code.get("name"),
        "remittance_information": text(k.get(cbc.PaymentID)),
        "credit_transfers": transfers,
        "card": None if card is None else {
            "account_number": text(cards.get(cbc.PrimaryAccountNumberID)) or "",
            "holder_name": text(cards.get(cbc.HolderName)),
        },
        "direct_debit": None if mandate is None else {
            "mandate_reference": text(mandates.get(cbc.ID)),
            "creditor_id": None,
            "debited_account": text(first(mandates.get(cac.PayerFinancialAccount), cbc.ID)),
        },
    }, text(k.get(cbc.PaymentDueDate))


def _tax_totals(root: etree._Element, kids: Index, currency: str | None, tax_currency: str | None) -> tuple[etree._Element | None, str | None]:
    """The TaxTotal in the invoice currency (BT-110, with BG-23) and the BT-111 amount."""
    main, accounting = None, None
    for total in every(root, cac.TaxTotal, kids):
        amount = first(total, cbc.TaxAmount)
        unit = amount.get("currencyID") if amount is not None else None
        if main is None and (unit == currency or unit is None or tax_currency is None or tax_currency == currency):
            main = total
        elif amount is not None and accounting is None:
            accounting = (amount.text or "").strip()
    return main, accounting


def _documents(root: etree._Element, kids: Index, credit: bool) -> tuple[list[dict[str, Any]], dict[str, Any] | None, str | None]:
    """BG-24 supporting documents, BT-18 (type 130) and BT-11 (type 50 in a CreditNote, else ProjectReference)."""
    documents, invoiced_object = [], None
    project = text(first(kids.get(cac.ProjectReference), cbc.ID))
    for doc in every(root, cac.AdditionalDocumentReference, kids):
        k = index(doc)
        doc_type = text(k.get(cbc.DocumentTypeCode))
        if doc_type == "130":
            invoiced_object = _ident(k.get(cbc.ID))
            continue
        if doc_type == "50" and credit:
            project = text(k.get(cbc.ID))
            continue
        attachment = index(k.get(cac.Attachment))
        binary = attachment.get(cbc.EmbeddedDocumentBinaryObject)
        documents.append({
            "id": text(k.get(cbc.ID)) or "",
            "description": text(k.get(cbc.DocumentDescription)),
            "uri": text(first(attachment.get(cac.ExternalReference), cbc.URI)),
            "content": text(binary),
            "mime_code": None if binary is None else binary.get("mimeCode"),
            "filename": None if binary is None else binary.get("filename"),
        })
    return documents, invoiced_object, project


def read(element: etree._Element, *, name: str) -> dict[str, Any]:
    """The pivot record of a parsed UBL Invoice or CreditNote (no rules applied).

    Every field of the pivot schema is written, in schema order, so that the record needs
    no defaults pass (``seller_siret``, ``seller_key`` and ``buyer_key`` are derived later).
    """
    credit = _ROOT_TAGS.get(element.tag)
    if credit is None:
        raise NonConformantError("the root element is not a UBL 2.1 Invoice or CreditNote", document=name, rule="XSD", xpath="/*")
    k = index(element)
    currency = text(k.get(cbc.DocumentCurrencyCode))
    tax_currency = text(k.get(cbc.TaxCurrencyCode))
    payment, credit_due = _payment(element, k)
    tax_total, accounting = _tax_totals(element, k, currency, tax_currency)
    totals = index(k.get(cac.LegalMonetaryTotal))
    notes = []
    for note in every(element, cbc.Note, k):
        note_text = (note.text or "").strip()
        match = _NOTE_SUBJECT.match(note_text)
        notes.append({"subject_code": match[1], "text": match[2]} if match else {"subject_code": None, "text": note_text})
    documents, invoiced_object, project = _documents(element, k, credit)
    delivery, deliveries = child(k, cac.Delivery)
    location = index(deliveries.get(cac.DeliveryLocation))
    period = index(k.get(cac.InvoicePeriod))
    order = index(k.get(cac.OrderReference))
    return {
        "syntax": "UBL",
        "profile": text(k.get(cbc.CustomizationID)),
        "business_process": text(k.get(cbc.ProfileID)),
        "number": text(k.get(cbc.ID)),
        "issue_date": parse_date(text(k.get(cbc.IssueDate)), term="BT-2", name=name),
        "type_code": text(k.get(cbc.CreditNoteTypeCode if credit else cbc.InvoiceTypeCode)),
        "is_credit_note": credit,
        "currency": currency,
        "tax_currency": tax_currency,
        "tax_point_date": parse_date(text(k.get(cbc.TaxPointDate)), term="BT-7", name=name),
        "tax_point_date_code": text(period.get(cbc.DescriptionCode)),
        "due_date": parse_date(credit_due if credit else text(k.get(cbc.DueDate)), term="BT-9", name=name),
        "buyer_reference": text(k.get(cbc.BuyerReference)),
        "project_reference": project,
        "contract_reference": text(first(k.get(cac.ContractDocumentReference), cbc.ID)),
        "purchase_order_reference": text(order.get(cbc.ID)),
        "sales_order_reference": text(order.get(cbc.SalesOrderID)),
        "receiving_advice_reference": text(first(k.get(cac.ReceiptDocumentReference), cbc.ID)),
        "despatch_advice_reference": text(first(k.get(cac.DespatchDocumentReference), cbc.ID)),
        "tender_reference": text(first(k.get(cac.OriginatorDocumentReference), cbc.ID)),
        "invoiced_object": invoiced_object,
        "buyer_accounting_reference": text(k.get(cbc.AccountingCost)),
        "payment_terms": text(first(k.get(cac.PaymentTerms), cbc.Note)),
        "notes": notes,
        "preceding_invoices": [
            _preceding(index(ref), name)
            for billing in every(element, cac.BillingReference, k) for ref in billing.iterchildren(cac.InvoiceDocumentReference)
        ],
        "seller_siret": None,
        "seller_key": None,
        "buyer_key": None,
        "seller": _party(find(element, k, cac.AccountingSupplierParty, cac.Party)) or _en16931.defaults("Party"),
        "buyer": _party(find(element, k, cac.AccountingCustomerParty, cac.Party)) or _en16931.defaults("Party"),
        "payee": _party(k.get(cac.PayeeParty), named_by_party_name=True),
        "tax_representative": _party(k.get(cac.TaxRepresentativeParty), named_by_party_name=True),
        "delivery": None if delivery is None else {
            "party_name": text(first(find(delivery, deliveries, cac.DeliveryParty, cac.PartyName), cbc.Name)),
            "location": _ident(location.get(cbc.ID)),
            "actual_date": parse_date(text(deliveries.get(cbc.ActualDeliveryDate)), term="BT-72", name=name),
            "address": _address(location.get(cac.Address)),
        },
        "invoicing_period": _period(period, "BG-14", name) if cbc.StartDate in period or cbc.EndDate in period else None,
        "payment_instructions": payment,
        "allowance_charges": [_allowance(ac) for ac in every(element, cac.AllowanceCharge, k)],
        "totals": {
            "line_total": text(totals.get(cbc.LineExtensionAmount)),
            "allowance_total": text(totals.get(cbc.AllowanceTotalAmount)),
            "charge_total": text(totals.get(cbc.ChargeTotalAmount)),
            "tax_exclusive": text(totals.get(cbc.TaxExclusiveAmount)),
            "tax_total": text(first(tax_total, cbc.TaxAmount)),
            "tax_total_accounting": accounting,
            "tax_inclusive": text(totals.get(cbc.TaxInclusiveAmount)),
            "prepaid": text(totals.get(cbc.PrepaidAmount)),
            "rounding": text(totals.get(cbc.PayableRoundingAmount)),
            "payable": text(totals.get(cbc.PayableAmount)),
        },
        "vat_breakdown": [] if tax_total is None else [_vat(sub) for sub in tax_total.iterchildren(cac.TaxSubtotal)],
        "supporting_documents": documents,
        "lines": [_line(line, credit, name) for line in every(element, cac.CreditNoteLine if credit else cac.InvoiceLine, k)],
    }


def _preceding(k: Index, name: str) -> dict[str, Any]:
    return {"number": text(k.get(cbc.ID)) or "", "issue_date": parse_date(text(k.get(cbc.IssueDate)), term="BT-26", name=name)}


def _vat(sub: etree._Element) -> dict[str, Any]:
    k = index(sub)
    category = index(k.get(cac.TaxCategory))
    code, rate = _category(category)
    return {
        "taxable_amount": text(k.get(cbc.TaxableAmount)),
        "tax_amount": text(k.get(cbc.TaxAmount)),
        "category": code,
        "rate": rate,
        "exemption_reason": text(category.get(cbc.TaxExemptionReason)),
        "exemption_reason_code": text(category.get(cbc.TaxExemptionReasonCode)),
    }


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """Read a UBL Invoice or CreditNote; NonConformantError when a fatal EN 16931 rule fails."""
    root = parse_xml(data, name=name, keep_blank_text=False)
    return _en16931.build_pivot(read(root, name=name), fmt=FORMAT, name=name, filled=True)


def from_pivot(pivot: Pivot) -> bytes:
    """Write the pivot as a UBL 2.1 Invoice (or CreditNote when it was one), UTF-8 encoded."""
    return write(pivot.data)


def terms(pivot: Pivot) -> dict[str, Any]:
    """The flat EN 16931 terms map of the pivot (see :func:`adapters._en16931.terms`)."""
    return _en16931.terms(pivot.data)


def validate(data: bytes, *, schema_dir: Path, name: str = "<bytes>", rules_dir: Path | None = None,
             extra_rules: tuple[Path, ...] = ()) -> list[Finding]:
    """XSD (UBL 2.1 maindoc under ``schema_dir``) and EN 16931 business rule findings.

    With ``rules_dir`` (the resolved official packages) the business rules are the official CEN
    schematron, then ``extra_rules`` (e.g. the BR-FR ``.sch``); without it, the Python pre-check.
    """
    root = parse_xml(data, name=name)
    credit = _ROOTS.get((etree.QName(root).namespace, etree.QName(root).localname))
    if credit is None:
        return [Finding("XSD", "/*", "the root element is not a UBL 2.1 Invoice or CreditNote")]
    findings = xsd_findings(schema_at(Path(schema_dir), _XSD[credit], package=_PACKAGE), root)
    if rules_dir is not None:
        return [*findings, *official_findings(root, syntax="ubl", rules_dir=rules_dir, extra_rules=extra_rules)]
    try:
        record = _en16931.complete(read(root, name=name))
    except NonConformantError as exc:
        return [*findings, Finding(str(exc.context.get("rule", "XSD")), str(exc.context.get("xpath", "/")), exc.message)]
    return [*findings, *_en16931.check(record)]
