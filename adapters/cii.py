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
from ._schematron import official_findings
from ._xml import parse_xml
from ._xmlwalk import Index, Tags, child, every, find, first, index, text

__all__ = ["FAMILY", "FORMAT", "detect", "from_pivot", "read", "terms", "to_pivot", "validate"]

FORMAT = "cii"
FAMILY = "invoices"

XSD = "invoices/xsd/cii-d16b-uncoupled/CII/uncefact/data/standard/CrossIndustryInvoice_100pD16B.xsd"
_PACKAGE = "the UN/CEFACT CII D16B schemas (SCRDM subset, uncoupled code lists) published with EN 16931"
ram, rsm, udt = Tags(RAM), Tags(RSM), Tags(UDT)
_QDATE = "{urn:un:unece:uncefact:data:standard:QualifiedDataType:100}DateTimeString"


def detect(sniff: Sniff) -> bool:
    """True for a CrossIndustryInvoice root element (D16B namespace)."""
    return sniff.kind == "xml" and sniff.root_ns == RSM and sniff.root_tag == "CrossIndustryInvoice"


def _date(holder: etree._Element | None, *, term: str, name: str, stamp_tag: str = udt.DateTimeString) -> Any:
    """The date in the ``stamp_tag`` child of ``holder`` (format 102), None when either is absent."""
    stamp = first(holder, stamp_tag)
    if stamp is None:
        return None
    return parse_date(stamp.text or "", term=term, name=name, fmt=stamp.get("format"))


def _ident(el: etree._Element | None) -> dict[str, Any] | None:
    return None if el is None else {"id": (el.text or "").strip(), "scheme": el.get("schemeID")}


def _address(el: etree._Element | None) -> dict[str, Any] | None:
    if el is None:
        return None
    k = index(el)
    return {
        "line1": text(k.get(ram.LineOne)), "line2": text(k.get(ram.LineTwo)), "line3": text(k.get(ram.LineThree)),
        "city": text(k.get(ram.CityName)), "post_code": text(k.get(ram.PostcodeCode)),
        "country_subdivision": text(k.get(ram.CountrySubDivisionName)), "country_code": text(k.get(ram.CountryID)),
    }


def _party(el: etree._Element | None) -> dict[str, Any] | None:
    if el is None:
        return None
    k = index(el)
    legal = index(k.get(ram.SpecifiedLegalOrganization))
    contact = k.get(ram.DefinedTradeContact)
    taxes = {
        reg.get("schemeID"): (reg.text or "").strip()
        for holder in every(el, ram.SpecifiedTaxRegistration, k) for reg in holder.iterchildren(ram.ID)
    }
    ids = every(el, ram.ID, k) + every(el, ram.GlobalID, k)
    return {
        "name": text(k.get(ram.Name)),
        "trading_name": text(legal.get(ram.TradingBusinessName)),
        "identifiers": [_ident(i) for i in ids],
        "legal_registration": _ident(legal.get(ram.ID)),
        "vat_identifier": taxes.get("VA"),
        "tax_registration": taxes.get("FC"),
        "legal_form": text(k.get(ram.Description)),
        "electronic_address": _ident(find(el, k, ram.URIUniversalCommunication, ram.URIID)),
        "address": _address(k.get(ram.PostalTradeAddress)),
        "contact": None if contact is None else _contact(contact),
    }


def _contact(el: etree._Element) -> dict[str, Any]:
    k = index(el)
    return {
        "name": text(k.get(ram.PersonName)) or text(k.get(ram.DepartmentName)),
        "telephone": text(find(el, k, ram.TelephoneUniversalCommunication, ram.CompleteNumber)),
        "email": text(find(el, k, ram.EmailURIUniversalCommunication, ram.URIID)),
    }


def _category(tax: Index) -> tuple[str | None, str | None]:
    """(VAT category code, VAT rate) of a CategoryTradeTax or ApplicableTradeTax index."""
    return text(tax.get(ram.CategoryCode)), text(tax.get(ram.RateApplicablePercent))


def _allowance(el: etree._Element) -> dict[str, Any]:
    k = index(el)
    vat_category, vat_rate = _category(index(k.get(ram.CategoryTradeTax)))
    return {
        "charge": (text(find(el, k, ram.ChargeIndicator, udt.Indicator)) or "").lower() in ("true", "1"),
        "amount": text(k.get(ram.ActualAmount)),
        "base_amount": text(k.get(ram.BasisAmount)),
        "percentage": text(k.get(ram.CalculationPercent)),
        "vat_category": vat_category,
        "vat_rate": vat_rate,
        "reason": text(k.get(ram.Reason)),
        "reason_code": text(k.get(ram.ReasonCode)),
    }


def _period(el: etree._Element | None, term: str, name: str) -> dict[str, Any] | None:
    if el is None:
        return None
    k = index(el)
    return {
        "start_date": _date(k.get(ram.StartDateTime), term=term, name=name),
        "end_date": _date(k.get(ram.EndDateTime), term=term, name=name),
    }


def _line(el: etree._Element, name: str) -> dict[str, Any]:
    k = index(el)
    doc, docs = child(k, ram.AssociatedDocumentLineDocument)
    agreement, agreements = child(k, ram.SpecifiedLineTradeAgreement)
    gross, grosses = child(agreements, ram.GrossPriceProductTradePrice)
    net, nets = child(agreements, ram.NetPriceProductTradePrice)
    quantity = find(el, k, ram.SpecifiedLineTradeDelivery, ram.BilledQuantity)
    settlement, settlements = child(k, ram.SpecifiedLineTradeSettlement)
    vat_category, vat_rate = _category(index(settlements.get(ram.ApplicableTradeTax)))
    basis = nets.get(ram.BasisQuantity)
    if basis is None:
        basis = grosses.get(ram.BasisQuantity)
    object_id = None
    for ref in every(settlement, ram.AdditionalReferencedDocument, settlements):
        refs = index(ref)
        if text(refs.get(ram.TypeCode)) == "130":
            object_id = {"id": text(refs.get(ram.IssuerAssignedID)) or "", "scheme": text(refs.get(ram.ReferenceTypeCode))}
    return {
        "id": text(docs.get(ram.LineID)),
        "note": text(find(doc, docs, ram.IncludedNote, ram.Content)),
        "object_identifier": object_id,
        "quantity": text(quantity),
        "unit_code": None if quantity is None else quantity.get("unitCode"),
        "net_amount": text(find(settlement, settlements, ram.SpecifiedTradeSettlementLineMonetarySummation, ram.LineTotalAmount)),
        "order_line_reference": text(find(agreement, agreements, ram.BuyerOrderReferencedDocument, ram.LineID)),
        "accounting_reference": text(find(settlement, settlements, ram.ReceivableSpecifiedTradeAccountingAccount, ram.ID)),
        "period": _period(settlements.get(ram.BillingSpecifiedPeriod), "BG-26", name),
        "allowance_charges": [_allowance(a) for a in every(settlement, ram.SpecifiedTradeAllowanceCharge, settlements)],
        "price": None if net is None and gross is None else {
            "net_price": text(nets.get(ram.ChargeAmount)),
            "discount": text(find(gross, grosses, ram.AppliedTradeAllowanceCharge, ram.ActualAmount)),
            "gross_price": text(grosses.get(ram.ChargeAmount)),
            "base_quantity": text(basis),
            "base_quantity_unit": None if basis is None else basis.get("unitCode"),
        },
        "vat_category": vat_category,
        "vat_rate": vat_rate,
        "item": _item(k.get(ram.SpecifiedTradeProduct)),
    }


def _item(product: etree._Element | None) -> dict[str, Any]:
    if product is None:
        return _en16931.defaults("Item")
    k = index(product)
    return {
        "name": text(k.get(ram.Name)),
        "description": text(k.get(ram.Description)),
        "seller_id": text(k.get(ram.SellerAssignedID)),
        "buyer_id": text(k.get(ram.BuyerAssignedID)),
        "standard_id": _ident(k.get(ram.GlobalID)),
        "classifications": [
            {"code": (c.text or "").strip(), "list_id": c.get("listID"), "list_version": c.get("listVersionID")}
            for group in every(product, ram.DesignatedProductClassification, k) for c in group.iterchildren(ram.ClassCode)
        ],
        "origin_country": text(find(product, k, ram.OriginTradeCountry, ram.ID)),
        "attributes": [_attribute(index(c)) for c in every(product, ram.ApplicableProductCharacteristic, k)],
    }


def _attribute(k: Index) -> dict[str, Any]:
    return {"name": text(k.get(ram.Description)) or "", "value": text(k.get(ram.Value)) or ""}


def _payment(settlement: etree._Element | None, settlements: Index, terms: Index) -> dict[str, Any] | None:
    means = every(settlement, ram.SpecifiedTradeSettlementPaymentMeans, settlements)
    reference = text(settlements.get(ram.PaymentReference))
    mandate = text(terms.get(ram.DirectDebitMandateID))
    creditor = text(settlements.get(ram.CreditorReferenceID))
    if not means:
        return None
    k = index(means[0])
    card = k.get(ram.ApplicableTradeSettlementFinancialCard)
    debtor = text(find(means[0], k, ram.PayerPartyDebtorFinancialAccount, ram.IBANID))
    transfers = []
    for pm in means:
        pms = k if pm is means[0] else index(pm)
        account = pms.get(ram.PayeePartyCreditorFinancialAccount)
        if account is not None:
            accounts = index(account)
            transfers.append({
                "account_id": text(accounts.get(ram.IBANID)) or text(accounts.get(ram.ProprietaryID)) or "",
                "account_name": text(accounts.get(ram.AccountName)),
                "provider_id": text(find(pm, pms, ram.PayeeSpecifiedCreditorFinancialInstitution, ram.BICID)),
            })
    cards = index(card)
    return {
        "means_code": text(k.get(ram.TypeCode)),
        "means_text": text(k.get(ram.Information)),
        "remittance_information": reference,
        "credit_transfers": transfers,
        "card": None if card is None else {"account_number": text(cards.get(ram.ID)) or "", "holder_name": text(cards.get(ram.CardholderName))},
        "direct_debit": None if mandate is None and creditor is None and debtor is None else {
            "mandate_reference": mandate, "creditor_id": creditor, "debited_account": debtor,
        },
    }


def _tax_totals(summation: etree._Element | None, sums: Index, currency: str | None, tax_currency: str | None) -> tuple[str | None, str | None]:
    """BT-110 (the TaxTotalAmount in the invoice currency) and BT-111 (the other one)."""
    tax_total = accounting = None
    for amount in every(summation, ram.TaxTotalAmount, sums):
        unit = amount.get("currencyID")
        if tax_total is None and (unit in (None, currency) or tax_currency in (None, currency)):
            tax_total = (amount.text or "").strip()
        elif accounting is None:
            accounting = (amount.text or "").strip()
    return tax_total, accounting


def _documents(agreement: etree._Element | None, agreements: Index) -> tuple[list[dict[str, Any]], str | None, dict[str, Any] | None]:
    """BG-24 supporting documents, BT-17 (type 50) and BT-18 (type 130)."""
    documents, tender, invoiced_object = [], None, None
    for doc in every(agreement, ram.AdditionalReferencedDocument, agreements):
        k = index(doc)
        code = text(k.get(ram.TypeCode))
        if code == "50":
            tender = text(k.get(ram.IssuerAssignedID))
        elif code == "130":
            invoiced_object = {"id": text(k.get(ram.IssuerAssignedID)) or "", "scheme": text(k.get(ram.ReferenceTypeCode))}
        else:
            binary = k.get(ram.AttachmentBinaryObject)
            documents.append({
                "id": text(k.get(ram.IssuerAssignedID)) or "", "description": text(k.get(ram.Name)), "uri": text(k.get(ram.URIID)),
                "content": text(binary),
                "mime_code": None if binary is None else binary.get("mimeCode"),
                "filename": None if binary is None else binary.get("filename"),
            })
    return documents, tender, invoiced_object


def _vat(k: Index) -> dict[str, Any]:
    code, rate = _category(k)
    return {
        "taxable_amount": text(k.get(ram.BasisAmount)), "tax_amount": text(k.get(ram.CalculatedAmount)),
        "category": code, "rate": rate,
        "exemption_reason": text(k.get(ram.ExemptionReason)), "exemption_reason_code": text(k.get(ram.ExemptionReasonCode)),
    }


def read(element: etree._Element, *, name: str) -> dict[str, Any]:
    """The pivot record of a parsed CrossIndustryInvoice (no rules applied).

    Every field of the pivot schema is written, in schema order, so that the record needs
    no defaults pass (``seller_siret``, ``seller_key`` and ``buyer_key`` are derived later).
    """
    if element.tag != rsm.CrossIndustryInvoice:
        raise NonConformantError("the root element is not a CII D16B CrossIndustryInvoice", document=name, rule="XSD", xpath="/*")
    root = index(element)
    context, contexts = child(root, rsm.ExchangedDocumentContext)
    header, headers = child(root, rsm.ExchangedDocument)
    transaction, transactions = child(root, rsm.SupplyChainTradeTransaction)
    agreement, agreements = child(transactions, ram.ApplicableHeaderTradeAgreement)
    delivery, deliveries = child(transactions, ram.ApplicableHeaderTradeDelivery)
    settlement, settlements = child(transactions, ram.ApplicableHeaderTradeSettlement)
    currency = text(settlements.get(ram.InvoiceCurrencyCode))
    tax_currency = text(settlements.get(ram.TaxCurrencyCode))
    summation_el, summation = child(settlements, ram.SpecifiedTradeSettlementHeaderMonetarySummation)
    tax_total, accounting = _tax_totals(summation_el, summation, currency, tax_currency)
    taxes = [index(t) for t in every(settlement, ram.ApplicableTradeTax, settlements)]
    terms = index(settlements.get(ram.SpecifiedTradePaymentTerms))
    documents, tender, invoiced_object = _documents(agreement, agreements)
    ship_to, ships = child(deliveries, ram.ShipToTradeParty)
    ship_id = _ident(ships.get(ram.ID)) or _ident(ships.get(ram.GlobalID))
    tax_point = next((t for t in taxes if ram.TaxPointDate in t), {})
    return {
        "syntax": "CII",
        "profile": text(find(context, contexts, ram.GuidelineSpecifiedDocumentContextParameter, ram.ID)),
        "business_process": text(find(context, contexts, ram.BusinessProcessSpecifiedDocumentContextParameter, ram.ID)),
        "number": text(headers.get(ram.ID)),
        "issue_date": _date(headers.get(ram.IssueDateTime), term="BT-2", name=name),
        "type_code": text(headers.get(ram.TypeCode)),
        "is_credit_note": False,
        "currency": currency,
        "tax_currency": tax_currency,
        "tax_point_date": _date(tax_point.get(ram.TaxPointDate), term="BT-7", name=name, stamp_tag=udt.DateString),
        "tax_point_date_code": next((text(t[ram.DueDateTypeCode]) for t in taxes if ram.DueDateTypeCode in t), None),
        "due_date": _date(terms.get(ram.DueDateDateTime), term="BT-9", name=name),
        "buyer_reference": text(agreements.get(ram.BuyerReference)),
        "project_reference": text(find(agreement, agreements, ram.SpecifiedProcuringProject, ram.ID)),
        "contract_reference": text(find(agreement, agreements, ram.ContractReferencedDocument, ram.IssuerAssignedID)),
        "purchase_order_reference": text(find(agreement, agreements, ram.BuyerOrderReferencedDocument, ram.IssuerAssignedID)),
        "sales_order_reference": text(find(agreement, agreements, ram.SellerOrderReferencedDocument, ram.IssuerAssignedID)),
        "receiving_advice_reference": text(find(delivery, deliveries, ram.ReceivingAdviceReferencedDocument, ram.IssuerAssignedID)),
        "despatch_advice_reference": text(find(delivery, deliveries, ram.DespatchAdviceReferencedDocument, ram.IssuerAssignedID)),
        "tender_reference": tender,
        "invoiced_object": invoiced_object,
        "buyer_accounting_reference": text(find(settlement, settlements, ram.ReceivableSpecifiedTradeAccountingAccount, ram.ID)),
        "payment_terms": text(terms.get(ram.Description)),
        "notes": [_note(index(n)) for n in every(header, ram.IncludedNote, headers)],
        "preceding_invoices": [_preceding(index(ref), name) for ref in every(settlement, ram.InvoiceReferencedDocument, settlements)],
        "seller_siret": None,
        "seller_key": None,
        "buyer_key": None,
        "seller": _party(agreements.get(ram.SellerTradeParty)) or _en16931.defaults("Party"),
        "buyer": _party(agreements.get(ram.BuyerTradeParty)) or _en16931.defaults("Party"),
        "payee": _party(settlements.get(ram.PayeeTradeParty)),
        "tax_representative": _party(agreements.get(ram.SellerTaxRepresentativeTradeParty)),
        "delivery": None if delivery is None or (ship_to is None and ram.ActualDeliverySupplyChainEvent not in deliveries) else {
            "party_name": text(ships.get(ram.Name)),
            "location": ship_id,
            "actual_date": _date(find(delivery, deliveries, ram.ActualDeliverySupplyChainEvent, ram.OccurrenceDateTime), term="BT-72", name=name),
            "address": _address(ships.get(ram.PostalTradeAddress)),
        },
        "invoicing_period": _period(settlements.get(ram.BillingSpecifiedPeriod), "BG-14", name),
        "payment_instructions": _payment(settlement, settlements, terms),
        "allowance_charges": [_allowance(a) for a in every(settlement, ram.SpecifiedTradeAllowanceCharge, settlements)],
        "totals": {
            "line_total": text(summation.get(ram.LineTotalAmount)),
            "allowance_total": text(summation.get(ram.AllowanceTotalAmount)),
            "charge_total": text(summation.get(ram.ChargeTotalAmount)),
            "tax_exclusive": text(summation.get(ram.TaxBasisTotalAmount)),
            "tax_total": tax_total,
            "tax_total_accounting": accounting,
            "tax_inclusive": text(summation.get(ram.GrandTotalAmount)),
            "prepaid": text(summation.get(ram.TotalPrepaidAmount)),
            "rounding": text(summation.get(ram.RoundingAmount)),
            "payable": text(summation.get(ram.DuePayableAmount)),
        },
        "vat_breakdown": [_vat(t) for t in taxes],
        "supporting_documents": documents,
        "lines": [_line(item, name) for item in every(transaction, ram.IncludedSupplyChainTradeLineItem, transactions)],
    }


def _note(k: Index) -> dict[str, Any]:
    return {"subject_code": text(k.get(ram.SubjectCode)), "text": text(k.get(ram.Content)) or ""}


def _preceding(k: Index, name: str) -> dict[str, Any]:
    return {"number": text(k.get(ram.IssuerAssignedID)) or "",
            "issue_date": _date(k.get(ram.FormattedIssueDateTime), term="BT-26", name=name, stamp_tag=_QDATE)}


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """Read a CII invoice; NonConformantError when a fatal EN 16931 rule fails."""
    root = parse_xml(data, name=name, keep_blank_text=False)
    return _en16931.build_pivot(read(root, name=name), fmt=FORMAT, name=name, filled=True)


def from_pivot(pivot: Pivot) -> bytes:
    """Write the pivot as a CII D16B CrossIndustryInvoice, UTF-8 encoded."""
    return write(pivot.data)


def terms(pivot: Pivot) -> dict[str, Any]:
    """The flat EN 16931 terms map of the pivot (see :func:`adapters._en16931.terms`)."""
    return _en16931.terms(pivot.data)


def validate(data: bytes, *, schema_dir: Path, name: str = "<bytes>", rules_dir: Path | None = None,
             extra_rules: tuple[Path, ...] = ()) -> list[Finding]:
    """XSD (CII D16B under ``schema_dir``) and EN 16931 business rule findings.

    With ``rules_dir`` (the resolved official packages) the business rules are the official CEN
    schematron, then ``extra_rules`` (e.g. the BR-FR ``.sch``); without it, the Python pre-check.
    """
    root = parse_xml(data, name=name)
    findings = xsd_findings(schema_at(Path(schema_dir), XSD, package=_PACKAGE), root)
    if rules_dir is not None:
        return [*findings, *official_findings(root, syntax="cii", rules_dir=rules_dir, extra_rules=extra_rules)]
    return [*findings, *check_root(root, name=name)]


def check_root(root: etree._Element, *, name: str) -> list[Finding]:
    """EN 16931 findings of a parsed CII tree (a date that cannot be read is one finding)."""
    try:
        record = _en16931.complete(read(root, name=name))
    except NonConformantError as exc:
        return [Finding(str(exc.context.get("rule", "XSD")), str(exc.context.get("xpath", "/")), exc.message)]
    return _en16931.check(record)
