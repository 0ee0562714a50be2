"""French e-invoicing lifecycle statuses (UN/CEFACT CDAR D22B, "CDV") to and from ``InvoiceStatusChanged``.

A CDAR message (``CrossDomainAcknowledgementAndResponse``) carries one or more statuses: each
``AcknowledgementDocument/ReferenceReferencedDocument`` names an invoice (BT-1, its issue date,
the seller SIREN/SIRET as ``IssuerTradeParty`` of role SE) and its status code MDT-105, with a
reason (MDT-113/114) and amounts (MDG-43; ``MEN`` is the amount collected of a 212). Each
becomes one ``fr.dcant.invoices.InvoiceStatusChanged`` pivot (:func:`to_pivots`; :func:`to_pivot`
returns the first) on the invoice's dossier ``invoice:<seller id>:<BT-1>``, the subject
:mod:`adapters.ubl` gives the invoice itself (same function, :func:`adapters._en16931` party
key). A status keyed by a SIREN lands on another dossier than an invoice keyed by its SIRET:
CDAR MDT-129 is the invoice's BT-30, so keep BT-30 and its scheme the same in both.

Reading enforces the fatal BR-FR-CDV rules (:mod:`adapters._cdar`, where the code list, the
labels and the schematron's own inconsistencies are documented); an unknown status code is
a warning, as the schematron has it. :func:`from_pivot` writes a message that validates
against the CDAR XSD and those rules, or raises naming the rule it cannot meet.
:func:`status_event` builds the pivot from plain values for processors that emit statuses
themselves (source ``BUS``) and for the Chorus Pro adapter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from bus._errors import NonConformantError

from . import _cdar
from ._base import Finding, Pivot, Sniff
from ._cdar import QDT, RAM, RSM, UDT
from ._en16931 import invoice_subject, party_key
from ._invoice_xsd import schema_at, xsd_findings
from ._xml import parse_xml

__all__ = [
    "DEFAULT_ISSUER_ROLES",
    "EVENT_TYPE",
    "FAMILY",
    "FORMAT",
    "SCHEMA",
    "STATUS_LABELS",
    "detect",
    "from_pivot",
    "status_event",
    "to_pivot",
    "to_pivots",
    "validate",
]

FORMAT = "invoice-status"
FAMILY = "invoices"
SCHEMA = "fr.dcant.invoices.InvoiceStatusChanged"
EVENT_TYPE = "fr.dcant.invoices.InvoiceStatusChanged"
XSD = "invoices/fr-ctc/cdar/xsd/CrossDomainAcknowledgementAndResponse_100pD22B.xsd"
_PACKAGE = "the UN/CEFACT CDAR D22B schemas (uncoupled) published by FNFE-MPE with the French e-invoicing rules"
STATUS_LABELS = _cdar.STATUS_LABELS
Source = Literal["CDAR", "CHORUS_PRO", "BUS"]
R, M = f"{{{RAM}}}", f"{{{RSM}}}"

#: Who sets a status when the pivot does not say (``issuer_role``), from the reform's
#: lifecycle: platform statuses (WK, transmission phase 305), seller statuses (SE), the
#: buyer for everything else (processing phase 23).
DEFAULT_ISSUER_ROLES: dict[str, str] = {
    **dict.fromkeys(("200", "201", "202", "203", "213", "221", "500", "501"), "WK"),
    **dict.fromkeys(("212", "220"), "SE"),
}


def detect(sniff: Sniff) -> bool:
    """True for a CDAR D22B CrossDomainAcknowledgementAndResponse root element."""
    return sniff.kind == "xml" and sniff.root_ns == RSM and sniff.root_tag == "CrossDomainAcknowledgementAndResponse"


# ---------------------------------------------------------------------------- the pivot


def _bad(message: str, field: str, name: str | None = None) -> NonConformantError:
    return NonConformantError(message, document=name, rule="INVOICE-STATUS", xpath=field,
                              hint="see the field docs of schemas/avro/invoices/InvoiceStatusChanged.v1.avsc")


def _opt_str(value: Any, field: str, name: str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise _bad(f"{field} must be a string, got {type(value).__name__}", field, name)


def _amount(item: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise _bad("an amount must be a mapping with type_code and amount", "amounts", name)
    kind, amount = item.get("type_code"), item.get("amount")
    if not isinstance(kind, str) or not kind or not isinstance(amount, str) or _cdar.decimal_or_none(amount) is None:
        raise _bad(f"amount {dict(item)!r} needs a type_code and a decimal amount", "amounts", name)
    rate = _opt_str(item.get("vat_rate"), "amounts.vat_rate", name)
    if rate is not None and _cdar.decimal_or_none(rate) is None:
        raise _bad(f"VAT rate {rate!r} is not a decimal", "amounts.vat_rate", name)
    return {"type_code": kind, "amount": amount.strip(), "currency": _opt_str(item.get("currency"), "amounts.currency", name),
            "vat_rate": rate}


def status_event(
    *,
    invoice_number: str,
    status_code: str,
    status_time: dt.datetime,
    seller_id: str | None = None,
    seller_id_scheme: str | None = None,
    buyer_id: str | None = None,
    buyer_id_scheme: str | None = None,
    invoice_issue_date: dt.date | None = None,
    invoice_type_code: str | None = None,
    reason_code: str | None = None,
    reason_text: str | None = None,
    amounts: Iterable[Mapping[str, Any]] = (),
    source: Source = "BUS",
    status_label: str | None = None,
    chorus_status: str | None = None,
    chorus_invoice_id: int | None = None,
    phase: str | None = None,
    issuer_role: str | None = None,
    business_process: str | None = None,
    message_id: str | None = None,
    fmt: str = FORMAT,
    name: str | None = None,
) -> Pivot:
    """The ``InvoiceStatusChanged`` pivot of one status, from plain values (pure: no clock).

    ``status_code`` is the lifecycle code (MDT-105, ``"205"``...); ``status_time`` an aware
    instant; ``amounts`` mappings of ``type_code`` (MDT-207, ``"MEN"`` for amount collected),
    ``amount`` (decimal as written), optional ``currency`` and ``vat_rate``. ``status_label``
    defaults to the schematron's label. ``fmt`` and ``name`` say which adapter and document
    it came from. Raises :class:`NonConformantError` (rule ``INVOICE-STATUS``) for a value
    that cannot be a pivot.
    """
    if not isinstance(invoice_number, str) or not invoice_number.strip():
        raise _bad("the invoice number (BT-1) is required", "invoice_number", name)
    if not isinstance(status_code, str) or not status_code.strip():
        raise _bad("the status code (MDT-105) is required", "status_code", name)
    if not isinstance(status_time, dt.datetime) or status_time.utcoffset() is None:
        raise _bad("status_time must be an aware datetime", "status_time", name)
    if invoice_issue_date is not None and (not isinstance(invoice_issue_date, dt.date)
                                           or isinstance(invoice_issue_date, dt.datetime)):
        raise _bad("invoice_issue_date must be a date", "invoice_issue_date", name)
    if source not in ("CDAR", "CHORUS_PRO", "BUS"):
        raise _bad(f"source {source!r} is not CDAR, CHORUS_PRO or BUS", "source", name)
    if chorus_invoice_id is not None and (type(chorus_invoice_id) is not int or not -(2**63) <= chorus_invoice_id < 2**63):
        raise _bad("chorus_invoice_id must be a 64-bit integer", "chorus_invoice_id", name)
    items = [_amount(item, name) for item in amounts]
    men = [Decimal(i["amount"]) for i in items if i["type_code"] == "MEN"]
    code = status_code.strip()
    number = invoice_number.strip()
    seller = _opt_str(seller_id, "seller_id", name)
    data: dict[str, Any] = {
        "invoice_number": number,
        "invoice_issue_date": invoice_issue_date,
        "invoice_type_code": _opt_str(invoice_type_code, "invoice_type_code", name),
        "seller_id": seller,
        "seller_id_scheme": _opt_str(seller_id_scheme, "seller_id_scheme", name),
        "buyer_id": _opt_str(buyer_id, "buyer_id", name),
        "buyer_id_scheme": _opt_str(buyer_id_scheme, "buyer_id_scheme", name),
        "status_code": code,
        "status_label": _opt_str(status_label, "status_label", name) or STATUS_LABELS.get(code),
        "chorus_status": _opt_str(chorus_status, "chorus_status", name),
        "chorus_invoice_id": chorus_invoice_id,
        "source": source,
        "phase": _opt_str(phase, "phase", name),
        "issuer_role": _opt_str(issuer_role, "issuer_role", name),
        "business_process": _opt_str(business_process, "business_process", name),
        "message_id": _opt_str(message_id, "message_id", name),
        "reason_code": _opt_str(reason_code, "reason_code", name),
        "reason_text": _opt_str(reason_text, "reason_text", name),
        "status_time": status_time,
        "amounts": items,
        "amount_paid": str(sum(men, Decimal(0))) if men else None,
    }
    warnings = () if code in _cdar.STATUS_CODES else (f"BR-FR-CDV-CL-06: status code {code!r} is not in the list",)
    party = {"identifiers": [{"id": seller, "scheme": data["seller_id_scheme"]}]} if seller else None
    return Pivot(type=EVENT_TYPE, schema=SCHEMA, subject=invoice_subject(party_key(party), number), data=data,
                 format=fmt,
                 warnings=warnings)


# ---------------------------------------------------------------------------- reading


def _t(el: etree._Element | None, path: str) -> str | None:
    child = None if el is None else el.find(path)
    return None if child is None else (child.text or "").strip() or None


def _global_id(party: etree._Element | None, preferred: tuple[str, ...] = ("0009", "0002")) -> tuple[str | None, str | None]:
    """(id, scheme) of a trade party: a SIRET, else a SIREN, else its first GlobalID."""
    ids = [] if party is None else [(g.text or "").strip() for g in party.iterfind(R + "GlobalID")]
    schemes = [] if party is None else [g.get("schemeID") for g in party.iterfind(R + "GlobalID")]
    for wanted in preferred:
        for ident, scheme in zip(ids, schemes, strict=True):
            if scheme == wanted and ident:
                return ident, scheme
    for ident, scheme in zip(ids, schemes, strict=True):
        if ident:
            return ident, scheme
    return None, None


def _current_blocks(ref: etree._Element, code: str | None) -> list[etree._Element]:
    """The status details of the current status (a block naming another MDT-115 is history)."""
    return [b for b in ref.iterfind(R + "SpecifiedDocumentStatus")
            if _t(b, R + "ProcessConditionCode") in (None, code)]


def _instant(holder: etree._Element | None, name: str) -> dt.datetime | None:
    if holder is None:
        return None
    return _cdar.parse_datetime(holder, name=name, xpath=str(holder.getroottree().getpath(holder)))


def _read(root: etree._Element, name: str) -> Iterator[Pivot]:
    context = root.find(M + "ExchangedDocumentContext")
    header = root.find(M + "ExchangedDocument")
    message_time = _instant(header.find(R + "IssueDateTime") if header is not None else None, name)
    issuer_role = _t(header, f"{R}IssuerTradeParty/{R}RoleCode")
    for ack in root.iterfind(M + "AcknowledgementDocument"):
        ack_time = _instant(ack.find(R + "IssueDateTime"), name) or message_time
        for ref in ack.iterfind(R + "ReferenceReferencedDocument"):
            code = _t(ref, R + "ProcessConditionCode")
            blocks = _current_blocks(ref, code)
            times = [t for t in (_instant(b.find(R + "ReferenceDateTime"), name) for b in blocks) if t is not None]
            issue = ref.find(R + "FormattedIssueDateTime")
            seller_id, seller_scheme = _global_id(ref.find(R + "IssuerTradeParty"))
            buyer = next((p for p in ref.iterfind(R + "RecipientTradeParty") if _t(p, R + "RoleCode") == "BY"), None)
            buyer_id, buyer_scheme = _global_id(buyer)
            amounts = [
                {"type_code": _t(c, R + "TypeCode") or "", "amount": _t(c, R + "ValueAmount") or "",
                 "currency": c.find(R + "ValueAmount").get("currencyID"), "vat_rate": _t(c, R + "ValuePercent")}
                for b in blocks for c in b.iterfind(R + "SpecifiedDocumentCharacteristic")
                if c.find(R + "ValueAmount") is not None
            ]
            yield status_event(
                invoice_number=_t(ref, R + "IssuerAssignedID") or "",
                invoice_issue_date=None if issue is None else _instant(issue, name).date(),  # type: ignore[union-attr]
                invoice_type_code=_t(ref, R + "TypeCode"),
                seller_id=seller_id, seller_id_scheme=seller_scheme, buyer_id=buyer_id, buyer_id_scheme=buyer_scheme,
                status_code=code or "",
                status_label=STATUS_LABELS.get(code or "") or _t(ref, R + "ProcessCondition"),
                status_time=times[0] if times else ack_time,  # type: ignore[arg-type]
                reason_code=next((r for r in (_t(b, R + "ReasonCode") for b in blocks) if r), None),
                reason_text=next((r for r in (_t(b, R + "Reason") for b in blocks) if r), None),
                amounts=amounts, source="CDAR", phase=_t(ack, R + "TypeCode"), issuer_role=issuer_role,
                business_process=_t(context, f"{R}BusinessProcessSpecifiedDocumentContextParameter/{R}ID"),
                message_id=_t(header, R + "ID"), name=name,
            )


def to_pivots(data: bytes, *, name: str = "<bytes>") -> Iterator[Pivot]:
    """Every status of a CDAR message, in document order.

    Raises :class:`NonConformantError` naming the first failing fatal BR-FR-CDV rule.
    """
    root = parse_xml(data, name=name)
    findings = _cdar.check(root)
    fatal = _cdar.fatal(findings)
    if fatal:
        raise NonConformantError(
            f"BR-FR-CDV rules failed: {', '.join(dict.fromkeys(f.rule for f in fatal))} ({fatal[0]})",
            document=name, rule=fatal[0].rule, xpath=fatal[0].location,
            hint="correct the elements named by the rules; `bus validate` lists every finding",
        )
    yield from _read(root, name)


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """The first status of a CDAR message."""
    for pivot in to_pivots(data, name=name):
        return pivot
    raise NonConformantError("no status in the CDAR message", document=name, rule="XSD",
                             xpath="/rsm:CrossDomainAcknowledgementAndResponse/rsm:AcknowledgementDocument")


def validate(data: bytes, *, schema_dir: Path, name: str = "<bytes>") -> list[Finding]:
    """XSD (CDAR D22B under ``schema_dir``) and BR-FR-CDV findings of a CDAR message."""
    root = parse_xml(data, name=name)
    findings = xsd_findings(schema_at(Path(schema_dir), XSD, package=_PACKAGE), root)
    return [*findings, *_cdar.check(root)]


# ---------------------------------------------------------------------------- writing


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str | None) -> etree._Element:
    child = etree.SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        child.text = text
    return child


def _party(parent: etree._Element, tag: str, role: str, ident: str | None, scheme: str | None,
           address: bool = False) -> None:
    party = _el(parent, R + tag)
    if ident:
        _el(party, R + "GlobalID", ident, schemeID=scheme)
    _el(party, R + "RoleCode", role)
    if address and ident:
        _el(_el(party, R + "URIUniversalCommunication"), R + "URIID", ident, schemeID=scheme)


def _stamp(parent: etree._Element, tag: str, moment: dt.datetime) -> None:
    _el(_el(parent, R + tag), f"{{{UDT}}}DateTimeString", _cdar.format_datetime(moment), format="204")


def _write(d: Mapping[str, Any]) -> etree._Element:
    code, moment = d["status_code"], d["status_time"]
    seller, seller_scheme = d.get("seller_id"), d.get("seller_id_scheme")
    buyer, buyer_scheme = d.get("buyer_id"), d.get("buyer_id_scheme")
    role = d.get("issuer_role") or DEFAULT_ISSUER_ROLES.get(code, "BY")
    phase = d.get("phase") or ("305" if role == "WK" else "23")
    root = etree.Element(M + "CrossDomainAcknowledgementAndResponse", nsmap={"rsm": RSM, "ram": RAM, "qdt": QDT, "udt": UDT})
    context = _el(root, M + "ExchangedDocumentContext")
    _el(_el(context, R + "BusinessProcessSpecifiedDocumentContextParameter"), R + "ID", d.get("business_process") or "REGULATED")
    _el(_el(context, R + "GuidelineSpecifiedDocumentContextParameter"), R + "ID", _cdar.GUIDELINE)
    header = _el(root, M + "ExchangedDocument")
    _el(header, R + "ID", d.get("message_id") or f"CDV-{code}-{d['invoice_number']}-{_cdar.format_datetime(moment)}")
    _stamp(header, "IssueDateTime", moment)
    own = {"SE": (seller, seller_scheme), "BY": (buyer, buyer_scheme)}.get(role, (None, None))
    _party(header, "SenderTradeParty", role, *own)
    _party(header, "IssuerTradeParty", role, *own)
    # the counterpart, else its platform (WK needs no electronic address, BR-FR-CDV-08)
    other_role, other = ("BY", (buyer, buyer_scheme)) if role == "SE" else ("SE", (seller, seller_scheme))
    _party(header, "RecipientTradeParty", other_role if other[0] else "WK", *other, address=True)
    ack = _el(root, M + "AcknowledgementDocument")
    _el(ack, R + "TypeCode", phase)
    _stamp(ack, "IssueDateTime", moment)
    ref = _el(ack, R + "ReferenceReferencedDocument")
    _el(ref, R + "IssuerAssignedID", d["invoice_number"])
    if d.get("invoice_type_code"):
        _el(ref, R + "TypeCode", d["invoice_type_code"])
    if d.get("invoice_issue_date") is not None:
        _el(_el(ref, R + "FormattedIssueDateTime"), f"{{{QDT}}}DateTimeString", _cdar.format_date(d["invoice_issue_date"]),
            format="102")
    _el(ref, R + "ProcessConditionCode", code)
    if d.get("status_label"):
        _el(ref, R + "ProcessCondition", d["status_label"])
    _party(ref, "IssuerTradeParty", "SE", seller, seller_scheme)
    if buyer:
        _party(ref, "RecipientTradeParty", "BY", buyer, buyer_scheme)
    if d.get("reason_code") or d.get("reason_text") or d.get("amounts"):
        block = _el(ref, R + "SpecifiedDocumentStatus")
        if d.get("reason_code"):
            _el(block, R + "ReasonCode", d["reason_code"])
        if d.get("reason_text"):
            _el(block, R + "Reason", d["reason_text"])
        _el(block, R + "SequenceNumeric", "1")
        for item in d.get("amounts") or ():
            characteristic = _el(block, R + "SpecifiedDocumentCharacteristic")
            _el(characteristic, R + "TypeCode", item["type_code"])
            _el(characteristic, R + "ValueAmount", item["amount"], currencyID=item.get("currency"))
            if item.get("vat_rate"):
                _el(characteristic, R + "ValuePercent", item["vat_rate"])
    return root


def from_pivot(pivot: Pivot) -> bytes:
    """The pivot as a CDAR D22B lifecycle message, UTF-8 encoded.

    Raises :class:`NonConformantError` naming the BR-FR-CDV rule the pivot cannot meet (a
    status 210 without reason, a 212 without MEN amount and VAT rate, no invoice issue date...).
    """
    data = pivot.data
    for field in ("invoice_number", "status_code", "status_time"):
        if not data.get(field):
            raise _bad(f"{field} is required to write a CDAR message", field)
    for item in data.get("amounts") or ():
        if _cdar.decimal_or_none(item.get("amount")) is None or (
                item.get("vat_rate") and _cdar.decimal_or_none(item["vat_rate"]) is None):
            raise NonConformantError(f"amount {item!r} is not an xsd:decimal", rule="XSD", xpath="amounts")
    try:
        root = _write(data)
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:  # text XML cannot hold, a value of the wrong type
        raise _bad(f"the pivot cannot be written as CDAR: {exc}", "/") from exc
    fatal = _cdar.fatal(_cdar.check(root))
    if fatal:
        raise NonConformantError(
            f"the status cannot make a conformant CDAR message: {fatal[0]}", rule=fatal[0].rule, xpath=fatal[0].location,
            hint="complete the pivot (issue date, seller id, reason code, MEN amounts) before writing it as CDAR",
        )
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
