"""EN 16931 semantics shared by the UBL, CII and Factur-X adapters.

The readers of both syntaxes produce the same pivot record (``fr.dcant.invoices.Invoice``,
``schemas/avro/invoices/Invoice.v1.avsc``). This module owns what does not depend on the
syntax: the derived keys later processors need (seller SIRET, seller and buyer ids), the EN
16931 business rules run on the pivot (each finding carries the rule id of the official
Schematron and the term it concerns), and the construction of the :class:`Pivot`. It also
gives, from their own modules, the record completed with its schema defaults
(:mod:`adapters._invoice_defaults`) and the flat ``terms`` map keyed by EN 16931 term ids
(:mod:`adapters._en16931_terms`).

Arithmetic is :class:`decimal.Decimal` throughout; the tolerance of each ``BR-CO`` rule is the
Schematron's own (``round(x * 100) div 100``, XPath rounding half towards positive infinity).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from bus._errors import NonConformantError

from ._base import Finding, Pivot
from ._en16931_terms import terms
from ._invoice_defaults import complete, defaults

__all__ = [
    "EVENT_TYPE",
    "RULES",
    "SCHEMA_NAME",
    "build_pivot",
    "check",
    "complete",
    "defaults",
    "invoice_subject",
    "parse_decimal",
    "party_key",
    "terms",
]

SCHEMA_NAME = "fr.dcant.invoices.Invoice"
EVENT_TYPE = "fr.dcant.invoices.InvoiceReceived"

#: Factur-X profiles below EN 16931: they carry no lines, no line totals and (MINIMUM) no paid
#: amount or buyer address by design, so these rules are warnings for them, not rejections.
_LINELESS_PROFILES = ("urn:factur-x.eu:1p0:minimum", "urn:factur-x.eu:1p0:basicwl")
_LINE_RULES = frozenset({"BR-12", "BR-16", "BR-CO-10", "BR-CO-16", "BR-08", "BR-10", "BR-11", "BR-07"})

#: Scheme ids of French company registers (ISO 6523 ICD): 0002 SIRENE (SIREN), 0009 SIRET.
_SIRET_SCHEMES = ("0009", "0002")


# ---------------------------------------------------------------------------- derived keys


def _first_scheme(ids: Iterable[Mapping[str, Any] | None], schemes: tuple[str, ...]) -> str | None:
    candidates = [i for i in ids if i and i.get("id")]
    for scheme in schemes:
        for ident in candidates:
            if ident.get("scheme") == scheme:
                return str(ident["id"])
    return None


def _party_key(party: Mapping[str, Any] | None, fallback_vat: bool = True) -> tuple[str | None, str | None]:
    """(SIRET/SIREN, best id) of a party: BT-29/30 with 0009/0002, else BT-29/46, else BT-30/47, else VAT."""
    if not party:
        return None, None
    ids = [*(party.get("identifiers") or []), party.get("legal_registration")]
    siret = _first_scheme(ids, _SIRET_SCHEMES)
    if siret:
        return siret, siret
    non_sepa = [i for i in party.get("identifiers") or [] if i.get("id") and i.get("scheme") != "SEPA"]
    if non_sepa:
        return None, str(non_sepa[0]["id"])
    legal = party.get("legal_registration")
    if legal and legal.get("id"):
        return None, str(legal["id"])
    return None, party.get("vat_identifier") if fallback_vat else None


def party_key(party: Mapping[str, Any] | None) -> str | None:
    """The best identifier of a party (BT-29/BT-30 with SIRET/SIREN first), as the subjects use it."""
    return _party_key(party)[1]


def invoice_subject(seller_key: str | None, number: str) -> str:
    """The dossier of an invoice: ``invoice:<seller>:<BT-1>``.

    Invoice numbers are unique per legal unit, not per establishment, and status messages
    (CDAR) name the seller by SIREN while invoices often give a SIRET: a 14-digit SIRET is
    reduced to its SIREN so an invoice and its statuses share one dossier.
    """
    seller = seller_key or "unknown"
    if len(seller) == 14 and seller.isdigit():
        seller = seller[:9]
    return f"invoice:{seller}:{number}"


def _derive(data: dict[str, Any]) -> None:
    data["seller_siret"], data["seller_key"] = _party_key(data.get("seller"))
    data["buyer_key"] = _party_key(data.get("buyer"))[1]


# ---------------------------------------------------------------------------- arithmetic

_HALF = Decimal("0.5")
_HUNDRED = Decimal(100)


def parse_decimal(text: str | None) -> Decimal | None:
    """A decimal as written (``"1 250.50"`` is not one); None when absent or not a number."""
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _round2(value: Decimal) -> Decimal:
    """XPath ``round(x * 100) div 100``: half rounds towards positive infinity."""
    return (value * _HUNDRED + _HALF).to_integral_value(ROUND_FLOOR) / _HUNDRED


def _round0(value: Decimal) -> Decimal:
    return (value + _HALF).to_integral_value(ROUND_FLOOR)


def _sum(values: Iterable[str | None]) -> Decimal:
    total = Decimal(0)
    for text in values:
        number = parse_decimal(text)
        if number is not None:
            total += number
    return total


# ---------------------------------------------------------------------------- rules
#
# A rule returns its findings (an empty tuple when it holds): check() runs every rule on
# every invoice, so a rule that holds must cost next to nothing.

Rule = Callable[[Mapping[str, Any]], Iterable[Finding]]
RULES: dict[str, Rule] = {}


def _rule(rule_id: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES[rule_id] = fn
        return fn

    return register


def _present(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or value.strip() != "")


def _require(rule_id: str, term: str, message: str, getter: Callable[[Mapping[str, Any]], Any]) -> None:
    @_rule(rule_id)
    def check_presence(inv: Mapping[str, Any]) -> Iterable[Finding]:
        return () if _present(getter(inv)) else (Finding(rule_id, term, message),)


def _is_mapping(node: Any) -> bool:
    return type(node) is dict or isinstance(node, Mapping)  # dict first: ABC checks are slow


def _get(key: str, inner: str | None = None) -> Callable[[Mapping[str, Any]], Any]:
    """``inv[key]``, or ``inv[key][inner]``; None where a step is missing or not a mapping."""

    def getter(inv: Mapping[str, Any]) -> Any:
        if not _is_mapping(inv):
            return None
        node = inv.get(key)
        if inner is None:
            return node
        return node.get(inner) if _is_mapping(node) else None

    return getter


_require("BR-01", "BT-24", "An Invoice shall have a Specification identifier (BT-24).", _get("profile"))
_require("BR-02", "BT-1", "An Invoice shall have an Invoice number (BT-1).", _get("number"))
_require("BR-03", "BT-2", "An Invoice shall have an Invoice issue date (BT-2).", _get("issue_date"))
_require("BR-04", "BT-3", "An Invoice shall have an Invoice type code (BT-3).", _get("type_code"))
_require("BR-05", "BT-5", "An Invoice shall have an Invoice currency code (BT-5).", _get("currency"))
_require("BR-06", "BT-27", "An Invoice shall contain the Seller name (BT-27).", _get("seller", "name"))
_require("BR-07", "BT-44", "An Invoice shall contain the Buyer name (BT-44).", _get("buyer", "name"))
_require("BR-08", "BG-5", "An Invoice shall contain the Seller postal address (BG-5).", _get("seller", "address"))
_require("BR-10", "BG-8", "An Invoice shall contain the Buyer postal address (BG-8).", _get("buyer", "address"))
_require("BR-12", "BT-106", "An Invoice shall have the Sum of Invoice line net amount (BT-106).", _get("totals", "line_total"))
_require("BR-13", "BT-109", "An Invoice shall have the Invoice total amount without VAT (BT-109).", _get("totals", "tax_exclusive"))
_require("BR-14", "BT-112", "An Invoice shall have the Invoice total amount with VAT (BT-112).", _get("totals", "tax_inclusive"))
_require("BR-15", "BT-115", "An Invoice shall have the Amount due for payment (BT-115).", _get("totals", "payable"))

_seller_address, _buyer_address = _get("seller", "address"), _get("buyer", "address")


@_rule("BR-09")
def _br09(inv: Mapping[str, Any]) -> Iterable[Finding]:
    address = _seller_address(inv)
    if address is not None and not _present(address.get("country_code")):
        return (Finding("BR-09", "BT-40", "The Seller postal address (BG-5) shall contain a Seller country code (BT-40)."),)
    return ()


@_rule("BR-11")
def _br11(inv: Mapping[str, Any]) -> Iterable[Finding]:
    address = _buyer_address(inv)
    if address is not None and not _present(address.get("country_code")):
        return (Finding("BR-11", "BT-55", "The Buyer postal address shall contain a Buyer country code (BT-55)."),)
    return ()


@_rule("BR-16")
def _br16(inv: Mapping[str, Any]) -> Iterable[Finding]:
    if not inv.get("lines"):
        return (Finding("BR-16", "BG-25", "An Invoice shall have at least one Invoice line (BG-25)."),)
    return ()


_NO_RECORD: Mapping[str, Any] = {}


def _line_rule(rule_id: str, term: str, message: str, test: Callable[[Any], bool], key: str, group: str | None = None) -> None:
    """A rule on each line's ``key`` (in its ``group`` record, an empty one when absent): ``test(value)``."""

    @_rule(rule_id)
    def check_lines(inv: Mapping[str, Any]) -> Iterable[Finding]:
        found = []
        for index, line in enumerate(inv.get("lines") or ()):
            if not test((line.get(group) or _NO_RECORD).get(key) if group else line.get(key)):
                found.append(Finding(rule_id, f"BG-25[{index}]/{term}", message))
        return found


def _non_negative(text: str | None) -> bool:
    if text is None or (type(text) is str and "-" not in text):  # no minus sign: not a negative number
        return True
    number = parse_decimal(text)
    return number is None or number >= 0


_line_rule("BR-21", "BT-126", "Each Invoice line (BG-25) shall have an Invoice line identifier (BT-126).", _present, "id")
_line_rule("BR-22", "BT-129", "Each Invoice line (BG-25) shall have an Invoiced quantity (BT-129).", _present, "quantity")
_line_rule("BR-23", "BT-130", "An Invoice line (BG-25) shall have an Invoiced quantity unit of measure code (BT-130).", _present, "unit_code")
_line_rule("BR-24", "BT-131", "Each Invoice line (BG-25) shall have an Invoice line net amount (BT-131).", _present, "net_amount")
_line_rule("BR-25", "BT-153", "Each Invoice line (BG-25) shall contain the Item name (BT-153).", _present, "name", "item")
_line_rule("BR-26", "BT-146", "Each Invoice line (BG-25) shall contain the Item net price (BT-146).", _present, "net_price", "price")
_line_rule("BR-27", "BT-146", "The Item net price (BT-146) shall NOT be negative.", _non_negative, "net_price", "price")
_line_rule("BR-28", "BT-148", "The Item gross price (BT-148) shall NOT be negative.", _non_negative, "gross_price", "price")


@_rule("BR-31")
def _br31_36(inv: Mapping[str, Any]) -> Iterable[Finding]:
    found = []
    for index, ac in enumerate(inv.get("allowance_charges") or ()):
        if not _present(ac.get("amount")):
            rule, term, group = ("BR-36", "BT-99", "BG-21") if ac.get("charge") else ("BR-31", "BT-92", "BG-20")
            found.append(Finding(rule, f"{group}[{index}]/{term}", f"Each {group} shall have an amount ({term})."))
    return found


_VAT_TERMS = (("BR-45", "taxable_amount", "BT-116"), ("BR-46", "tax_amount", "BT-117"), ("BR-47", "category", "BT-118"))


@_rule("BR-45")
def _br45_47(inv: Mapping[str, Any]) -> Iterable[Finding]:
    found = []
    for index, vat in enumerate(inv.get("vat_breakdown") or ()):
        for rule, key, term in _VAT_TERMS:
            if not _present(vat.get(key)):
                found.append(Finding(rule, f"BG-23[{index}]/{term}", f"Each VAT breakdown (BG-23) shall have {term}."))
    return found


_line_total = _get("totals", "line_total")


@_rule("BR-CO-10")
def _brco10(inv: Mapping[str, Any]) -> Iterable[Finding]:
    declared = parse_decimal(_line_total(inv))
    if declared is None:
        return ()
    computed = _round2(_sum(line.get("net_amount") for line in inv.get("lines") or ()))
    if declared != computed:
        return (Finding("BR-CO-10", "BT-106", f"Sum of Invoice line net amount (BT-106) {declared} != Σ Invoice line net amount (BT-131) {computed}."),)
    return ()


def _allowance_total_rule(rule_id: str, term: str, key: str, charge: bool) -> None:
    label = "charges" if charge else "allowances"
    declared_of = _get("totals", key)

    @_rule(rule_id)
    def check_total(inv: Mapping[str, Any]) -> Iterable[Finding]:
        items = [ac for ac in inv.get("allowance_charges") or () if bool(ac.get("charge")) is charge]
        declared_text = declared_of(inv)
        if declared_text is None and not items:
            return ()
        declared = parse_decimal(declared_text)
        computed = _round2(_sum(ac.get("amount") for ac in items))
        if declared is None or declared != computed:
            return (Finding(rule_id, term, f"Sum of {label} on document level ({term}) {declared_text} != Σ document level {label} {computed}."),)
        return ()


_allowance_total_rule("BR-CO-11", "BT-107", "allowance_total", charge=False)
_allowance_total_rule("BR-CO-12", "BT-108", "charge_total", charge=True)


@_rule("BR-CO-13")
def _brco13(inv: Mapping[str, Any]) -> Iterable[Finding]:
    totals = inv.get("totals") or {}
    exclusive, lines = parse_decimal(totals.get("tax_exclusive")), parse_decimal(totals.get("line_total"))
    if exclusive is None or lines is None:
        return ()
    computed = lines + (parse_decimal(totals.get("charge_total")) or 0) - (parse_decimal(totals.get("allowance_total")) or 0)
    if totals.get("charge_total") is not None or totals.get("allowance_total") is not None:
        computed = _round2(computed)
    if exclusive != computed:
        return (Finding("BR-CO-13", "BT-109", f"Invoice total amount without VAT (BT-109) {exclusive} != BT-106 - BT-107 + BT-108 = {computed}."),)
    return ()


_tax_total = _get("totals", "tax_total")


@_rule("BR-CO-14")
def _brco14(inv: Mapping[str, Any]) -> Iterable[Finding]:
    declared = parse_decimal(_tax_total(inv))
    breakdown = inv.get("vat_breakdown") or []
    if declared is None or not breakdown:
        return ()
    computed = _round2(_sum(vat.get("tax_amount") for vat in breakdown))
    if declared != computed:
        return (Finding("BR-CO-14", "BT-110", f"Invoice total VAT amount (BT-110) {declared} != Σ VAT category tax amount (BT-117) {computed}."),)
    return ()


@_rule("BR-CO-15")
def _brco15(inv: Mapping[str, Any]) -> Iterable[Finding]:
    totals = inv.get("totals") or {}
    inclusive, exclusive = parse_decimal(totals.get("tax_inclusive")), parse_decimal(totals.get("tax_exclusive"))
    if inclusive is None or exclusive is None:
        return ()
    vat = parse_decimal(totals.get("tax_total"))
    # The CII Schematron also accepts BT-112 = BT-109 (no VAT total in the invoice currency); UBL's does not.
    if (inclusive == exclusive and inv.get("syntax") == "CII") or (vat is not None and inclusive == _round2(exclusive + vat)):
        return ()
    return (Finding("BR-CO-15", "BT-112", f"Invoice total amount with VAT (BT-112) {inclusive} != BT-109 + BT-110 ({exclusive} + {vat})."),)


@_rule("BR-CO-16")
def _brco16(inv: Mapping[str, Any]) -> Iterable[Finding]:
    totals = inv.get("totals") or {}
    payable, inclusive = parse_decimal(totals.get("payable")), parse_decimal(totals.get("tax_inclusive"))
    if payable is None or inclusive is None:
        return ()
    prepaid, rounding = parse_decimal(totals.get("prepaid")), parse_decimal(totals.get("rounding"))
    left = payable if rounding is None else _round2(payable - rounding)
    right = inclusive if prepaid is None else _round2(inclusive - prepaid)
    if left != right:
        return (Finding("BR-CO-16", "BT-115", f"Amount due for payment (BT-115) {payable} != BT-112 - BT-113 + BT-114."),)
    return ()


@_rule("BR-CO-17")
def _brco17(inv: Mapping[str, Any]) -> Iterable[Finding]:
    found = []
    inclusive = inv.get("syntax") == "CII"
    for index, vat in enumerate(inv.get("vat_breakdown") or ()):
        tax, base, rate = parse_decimal(vat.get("tax_amount")), parse_decimal(vat.get("taxable_amount")), parse_decimal(vat.get("rate"))
        if tax is None or base is None:
            continue
        if rate is None or _round0(rate) == 0:
            ok = _round0(tax) == 0
        else:
            expected, size = _round2(abs(base) * (rate / _HUNDRED)), abs(tax)
            # The official bindings differ at the edge: CII accepts a difference of exactly 1, UBL does not.
            ok = size - 1 <= expected <= size + 1 if inclusive else size - 1 < expected < size + 1
        if not ok:
            found.append(Finding("BR-CO-17", f"BG-23[{index}]/BT-117", f"VAT category tax amount (BT-117) {tax} != {base} x {rate}% rounded to two decimals."))
    return found


def check(data: Mapping[str, Any]) -> list[Finding]:
    """Every EN 16931 business rule on a pivot record; rules about lines are warnings for MINIMUM/BASIC WL."""
    findings: list[Finding] = []
    for fn in RULES.values():
        findings.extend(fn(data))
    if findings and str(data.get("profile") or "").endswith(_LINELESS_PROFILES):
        findings = [Finding(f.rule, f.location, f.message, severity="warning") if f.rule in _LINE_RULES else f for f in findings]
    return findings


# ---------------------------------------------------------------------------- pivot


def build_pivot(
    data: Mapping[str, Any], *, fmt: str, name: str, warnings: Iterable[str] = (), filled: bool = False
) -> Pivot:
    """Complete ``data``, derive its keys, enforce the fatal business rules and wrap it as a Pivot.

    ``filled`` says that ``data`` is a dict that already holds every field of the schema, in
    schema order, as the UBL and CII readers write it: it becomes the pivot's record as it is,
    without a defaults pass. Raises :class:`NonConformantError` naming every failing fatal
    rule (the first in ``rule=``).
    """
    record = data if filled and isinstance(data, dict) else complete(data)
    _derive(record)
    findings = check(record)
    fatal = [f for f in findings if f.severity == "fatal"]
    if fatal:
        ids = sorted({f.rule for f in fatal}, key=[f.rule for f in fatal].index)
        raise NonConformantError(
            f"EN 16931 business rules failed: {', '.join(ids)} ({fatal[0]})",
            document=name,
            rule=fatal[0].rule,
            xpath=fatal[0].location,
            hint="correct the amounts or terms named by the rules; `bus validate` lists every finding",
        )
    notes = [*warnings, *(str(f) for f in findings)]
    return Pivot(
        type=EVENT_TYPE,
        schema=SCHEMA_NAME,
        subject=invoice_subject(record.get("seller_key"), record["number"]),
        data=record,
        format=fmt,
        warnings=tuple(notes),
    )
