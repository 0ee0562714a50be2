"""eForms notices (EU public procurement notices, UBL 2.3 + eForms extension) to procurement pivots.

Competition notices (subtypes 10–24, including change notices of them) become
``fr.dcant.procurement.NoticePublished`` (schema ``Notice``); prior information and periodic
indicative notices (1–9) become ``PriorInformationPublished`` (schema ``Notice`` too); contract
award notices (29–37) and voluntary ex-ante transparency notices (25–28) become
``AwardPublished`` (schema ``Award``). All are keyed ``notice:<BT-04>``: the procedure is the
dossier. Contract modification notices (38–40) become one ``ContractModified`` per modified
contract (:mod:`adapters._eforms_modif`), keyed ``contract:<BT-150>`` like the contract's DECP
data: :func:`to_pivots` returns them all, :func:`to_pivot` the one of a notice modifying one
contract. :func:`from_pivot` writes a Notice pivot back as a contract notice and an Award pivot
as a contract award notice (:mod:`adapters._eforms_write`). ``terms`` flattens a pivot to eForms
BT ids; ``validate`` runs the UBL 2.3 / eForms XSD and either the eForms SDK's schematron as
published (:mod:`adapters._eforms_sdk`) or the fast pre-check of :mod:`adapters._eforms_rules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from bus._errors import NonConformantError, UnknownFormatError

from ._base import Finding, Pivot, Sniff
from ._eforms_modif import read_modifications
from ._eforms_read import EXTENSION, read_award, read_common, read_notice
from ._eforms_rules import check_notice, rule_id
from ._eforms_sdk import sdk_findings
from ._eforms_write import write
from ._ubl23 import first_text, load_xsd, xsd_findings
from ._xml import parse_xml

__all__ = ["FAMILY", "FORMAT", "detect", "from_pivot", "terms", "to_pivot", "to_pivots", "validate"]

FORMAT = "eforms"
FAMILY = "procurement"

_NOTICE_NS = {
    "urn:oasis:names:specification:ubl:schema:xsd:ContractNotice-2": "ContractNotice",
    "urn:oasis:names:specification:ubl:schema:xsd:ContractAwardNotice-2": "ContractAwardNotice",
    "urn:oasis:names:specification:ubl:schema:xsd:PriorInformationNotice-2": "PriorInformationNotice",
}
_XSD = {
    "ContractNotice": "procurement/eforms/schemas/maindoc/UBL-ContractNotice-2.3.xsd",
    "ContractAwardNotice": "procurement/eforms/schemas/maindoc/UBL-ContractAwardNotice-2.3.xsd",
    "PriorInformationNotice": "procurement/eforms/schemas/maindoc/UBL-PriorInformationNotice-2.3.xsd",
}
_PACKAGE = "the eForms SDK schemas (github.com/OP-TED/eForms-SDK, folder schemas/)"

_PRIOR = {str(n) for n in range(1, 10)}
_COMPETITION = {str(n) for n in range(10, 25)}
_RESULT = {str(n) for n in range(25, 38)}
_MODIFICATION = {str(n) for n in range(38, 41)}
#: subtypes -> (the root they need, what they are called in errors)
_ROOTS = (
    (_PRIOR, "PriorInformationNotice", "prior information notice"),
    (_COMPETITION, "ContractNotice", "competition notice"),
    (_RESULT, "ContractAwardNotice", "result notice"),
    (_MODIFICATION, "ContractAwardNotice", "contract modification notice"),
)


def detect(sniff: Sniff) -> bool:
    """An eForms notice is UBL 2.3 XML rooted in a ContractNotice, ContractAwardNotice or PIN."""
    return sniff.kind == "xml" and sniff.root_ns in _NOTICE_NS


def _root_kind(root: etree._Element, name: str) -> str:
    qn = etree.QName(root)
    kind = _NOTICE_NS.get(qn.namespace or "")
    if kind is None or kind != qn.localname:
        raise UnknownFormatError(
            f"root element {{{qn.namespace}}}{qn.localname} is not an eForms notice", document=name
        )
    return kind


def _subtype(root: etree._Element) -> str | None:
    return first_text(root, f"{EXTENSION}/efac:NoticeSubType/cbc:SubTypeCode")


def _check_root(kind: str, subtype: str, name: str) -> None:
    for subtypes, root, what in _ROOTS:
        if subtype in subtypes and kind != root:
            raise NonConformantError(
                f"subtype {subtype} is a {what} but the root is {kind}",
                document=name,
                xpath=f"/*/{EXTENSION}/efac:NoticeSubType/cbc:SubTypeCode",
                rule="OPP-070-notice",
            )


def to_pivots(data: bytes, *, name: str = "<bytes>") -> list[Pivot]:
    """Read the notice in ``data``: one Notice or Award pivot, or a ContractModified per modified contract.

    Raises NonConformantError (with the eForms rule id) when a field the pivot needs is missing,
    UnknownFormatError for a notice subtype eForms does not define.
    """
    root = parse_xml(data, name=name)
    kind = _root_kind(root, name)
    subtype = _subtype(root)
    if subtype is None:
        raise NonConformantError(
            "the notice subtype (OPP-070) is missing",
            document=name,
            xpath=f"/*/{EXTENSION}/efac:NoticeSubType/cbc:SubTypeCode",
            rule="BR-OPP-00070",
        )
    if subtype not in _PRIOR | _COMPETITION | _RESULT | _MODIFICATION:
        raise UnknownFormatError(
            f"eForms notice subtype {subtype} (unknown subtype) is not carried by the bus",
            document=name,
            hint="eForms notice subtypes run from 1 to 40 (E1–E6 national subtypes are not carried)",
        )
    _check_root(kind, subtype, name)
    rules = {bt: rule_id(family, subtype) for bt, family in _PIVOT_RULES.items()}
    common = read_common(root, document=name, subtype=subtype, rules=rules, prior_information=subtype in _PRIOR)
    if subtype in _MODIFICATION:
        award = read_award(root, common, document=name)
        return [_pivot("ContractModified", "ContractModified", f"contract:{record['contract_id']}", record)
                for record in read_modifications(root, award, document=name)]
    if subtype in _PRIOR:
        record, event, schema = read_notice(root, common, document=name), "PriorInformationPublished", "Notice"
    elif subtype in _COMPETITION:
        record, event, schema = read_notice(root, common, document=name), "NoticePublished", "Notice"
    else:
        record, event, schema = read_award(root, common, document=name), "AwardPublished", "Award"
    return [_pivot(event, schema, f"notice:{record['procedure_id']}", record)]


def _pivot(event: str, schema: str, subject: str, record: dict[str, Any]) -> Pivot:
    return Pivot(type=f"fr.dcant.procurement.{event}", schema=f"fr.dcant.procurement.{schema}", subject=subject,
                 data=record, format=FORMAT)


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """The one pivot of the notice in ``data`` (see :func:`to_pivots`).

    A modification notice modifying several contracts raises NonConformantError: read it with
    :func:`to_pivots`.
    """
    pivots = to_pivots(data, name=name)
    if len(pivots) != 1:
        raise NonConformantError(
            f"the notice modifies {len(pivots)} contracts; to_pivot reads a notice giving one pivot",
            document=name,
            xpath=f"/*/{EXTENSION}/efac:ContractModification",
            rule="eforms-one-pivot",
            hint="read it with adapters.eforms.to_pivots",
        )
    return pivots[0]


def from_pivot(pivot: Pivot | Mapping[str, Any]) -> bytes:
    """The eForms notice of a Notice pivot (ContractNotice) or an Award pivot (ContractAwardNotice).

    The pivot's subtype (OPP-070) must fit the root written: a competition notice (10–24) for a
    Notice, a result notice (25–37) for an Award; anything else raises NonConformantError.
    """
    data = pivot.data if isinstance(pivot, Pivot) else pivot
    if isinstance(pivot, Pivot) and pivot.schema not in _WRITTEN:
        raise NonConformantError(f"eForms notices are written from Notice and Award pivots, not {pivot.schema}",
                                 document="<pivot>", rule="eforms-writable-pivot")
    if isinstance(pivot, Pivot):
        award = pivot.schema == "fr.dcant.procurement.Award"
    else:  # a bare record: an Award is the one with results or winners
        award = "lot_results" in data or "winners" in data
    for field in ("notice_id", "notice_version", "procedure_id", "dispatch_date", "notice_subtype"):
        if data.get(field) is None:
            raise NonConformantError(f"the pivot has no {field}, which every eForms notice needs",
                                     document="<pivot>", xpath=field, rule="eforms-mandatory-field")
    subtype = str(data.get("notice_subtype"))
    expected, what = (_RESULT, "an Award pivot (result notice)") if award else (_COMPETITION, "a Notice pivot (competition notice)")
    if subtype not in expected:
        raise NonConformantError(
            f"notice subtype {subtype} cannot be written from {what}",
            document="<pivot>",
            xpath="notice_subtype",
            rule="OPP-070-notice",
            hint="a Notice pivot is written with subtypes 10-24, an Award pivot with 25-37",
        )
    return write(data, award=award)


_WRITTEN = ("fr.dcant.procurement.Notice", "fr.dcant.procurement.Award")

# Pivot fields whose absence makes to_pivot fail, with the rule family that makes them mandatory.
_PIVOT_RULES = {
    "BT-701": "BR-BT-00701",
    "BT-757": "BR-BT-00757",
    "BT-05(a)": "BR-BT-00005",
}


def terms(pivot: Pivot | Mapping[str, Any]) -> dict[str, Any]:
    """The pivot as a flat object keyed by eForms BT ids.

    Multi-valued terms (buyers, lots, results...) are lists in document order; values are as
    written in the notice, dates in ISO 8601 (``YYYY-MM-DD``).
    """
    data = pivot.data if isinstance(pivot, Pivot) else pivot
    if "modification_id" in data:
        return _modification_terms(data)
    buyers = data.get("buyers", [])
    out: dict[str, Any] = {
        "BT-701": data["notice_id"],
        "BT-757": data["notice_version"],
        # A PIN without BT-04 has its BT-701 as procedure_id (see the module docstring): not a BT-04.
        "BT-04": None if data["procedure_id"] == data["notice_id"] and data.get("notice_subtype") in _PRIOR
        else data["procedure_id"],
        "BT-02": data.get("notice_type"),
        "BT-03": data.get("form_type"),
        "OPP-070": data.get("notice_subtype"),
        "BT-05": _iso(data.get("dispatch_date")),
        "BT-21": data.get("title"),
        "BT-24": data.get("description"),
        "BT-23": data.get("contract_nature"),
        "BT-262": data.get("main_cpv"),
        "BT-263": list(data.get("additional_cpv", [])),
        "BT-27": data.get("estimated_value"),
        "BT-105": data.get("procedure_type"),
        "BT-758": data.get("changed_notice_id"),
        "BT-500": [b.get("name") for b in buyers],
        "BT-501": [b.get("company_id") for b in buyers],
        "BT-137": [lot["lot_id"] for lot in data.get("lots", [])] or list(data.get("lot_ids", [])),
    }
    if "lot_results" in data:
        winners = data.get("winners", [])
        out.update(
            {
                "BT-161": data.get("total_value"),
                "BT-13713": [r.get("lot_id") for r in data["lot_results"]],
                "BT-142": [r.get("winner_chosen") for r in data["lot_results"]],
                "BT-720": [t.get("value") for t in data.get("tenders", [])],
                "BT-150": [c.get("contract_reference") for c in data.get("contracts", [])],
                "BT-145": [_iso(c.get("conclusion_date")) for c in data.get("contracts", [])],
                "BT-1451": [_iso(c.get("award_date")) for c in data.get("contracts", [])],
            }
        )
        # BT-500/501 of an award name every organisation that won, after the buyers.
        out["BT-500"] = out["BT-500"] + [w["organization"].get("name") for w in winners]
        out["BT-501"] = out["BT-501"] + [w["organization"].get("company_id") for w in winners]
    return out


def _modification_terms(data: Mapping[str, Any]) -> dict[str, Any]:
    """The terms of a ContractModified pivot read from a modification notice."""
    return {
        "BT-150": data["contract_id"],
        "BT-1501(n)": data.get("modified_notice_id"),
        "BT-200": data.get("legal_basis"),
        "BT-201": data.get("reason"),
        "BT-202": data.get("description"),
        "BT-720": data.get("new_amount"),
        "BT-05": _iso(data.get("notification_date")),
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def validate(data: bytes, *, schema_dir: Path | str, name: str = "<bytes>",
             rules_dir: Path | None = None) -> list[Finding]:
    """XSD findings (rule ``XSD``) then eForms business-rule findings for the notice in ``data``.

    ``schema_dir`` is laid out as the corpus: ``procurement/eforms/schemas/maindoc/...`` (the
    resolved official packages are). With ``rules_dir`` (the resolved official packages) the
    business rules are the eForms SDK's static schematron, phase of the notice's subtype
    (:mod:`adapters._eforms_sdk`); without it, the Python pre-check (:mod:`adapters._eforms_rules`).
    """
    root = parse_xml(data, name=name)
    kind = _root_kind(root, name)
    findings = xsd_findings(load_xsd(schema_dir, _XSD[kind], package=_PACKAGE), root)
    if rules_dir is not None:
        return [*findings, *sdk_findings(root, _subtype(root), rules_dir=Path(rules_dir))]
    return [*findings, *check_notice(root, _subtype(root))]



