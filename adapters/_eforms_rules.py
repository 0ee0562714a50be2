"""The eForms business rules the bus checks itself, under the rule ids of the official schematron.

The eForms SDK ships its rules as schematron (XSLT 2 / XPath 2), which lxml cannot run. The bus
checks the subset that decides whether a notice can become a pivot at all: mandatory notice-level
fields (stage 2a), mandatory sections (stage 1b), lots present (P-0002), no empty element, the
identifier patterns (BT-04, BT-701) and the subtype list name (OPP-070). Rule ids carry the
numeric suffix the SDK gives per notice subtype; it is known here for subtypes 16 (from the
corpus SVRL report of ``INVALID_cn_24_empty.xml``) and 29 (SDK ``validation-stage-2a-29.sch``).
For other subtypes the rule family id (``BR-BT-00701``) is reported, without the suffix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from ._base import Finding
from ._ubl23 import NS

__all__ = ["ROOT_PREFIX", "check_notice", "recoded_rules", "rule_id"]

#: Prefix the eForms validator uses for each notice root in its locations.
ROOT_PREFIX = {
    "ContractNotice": "cn",
    "ContractAwardNotice": "can",
    "PriorInformationNotice": "pin",
}

_PREFIX_OF_NS = {uri: prefix for prefix, uri in NS.items()}

# Suffix of the stage-2a mandatory rules for a subtype, and the two rules whose numbering differs.
_SUFFIX = {"16": "0022", "29": "0036"}
_SUFFIX_SPECIAL = {
    "BR-BT-00005-b": {"16": "0074", "29": "0088"},  # BT-05(b) dispatch time
    "BR-OPT-00300-buyer": {"16": "0122", "29": "0136"},  # OPT-300 buyer technical id
}

# (family id, BT label, ElementPath relative to the context, context ElementPath or "" for root)
_MANDATORY: tuple[tuple[str, str, str, str], ...] = (
    ("BR-BT-00004", "BT-04 Procedure Identifier", "cbc:ContractFolderID", ""),
    ("BR-BT-00005", "BT-05(a) Notice Dispatch Date", "cbc:IssueDate", ""),
    ("BR-BT-00005-b", "BT-05(b) Notice Dispatch Time", "cbc:IssueTime", ""),
    ("BR-BT-00701", "BT-701 Notice Identifier", "cbc:ID[@schemeName='notice-id']", ""),
    ("BR-BT-00702", "BT-702 Notice Official Language", "cbc:NoticeLanguageCode", ""),
    ("BR-BT-00757", "BT-757 Notice Version", "cbc:VersionID", ""),
    ("BR-OPT-00001", "OPT-001 UBL Version", "cbc:UBLVersionID", ""),
    ("BR-OPT-00002", "OPT-002 Customization (SDK version)", "cbc:CustomizationID", ""),
    ("BR-BT-00010", "BT-10 Activity Authority", "cac:ContractingActivity/cbc:ActivityTypeCode[@listName='authority-activity']", "cac:ContractingParty"),
    ("BR-BT-00011", "BT-11 Buyer Legal Type", "cac:ContractingPartyType/cbc:PartyTypeCode[@listName='buyer-legal-type']", "cac:ContractingParty"),
    ("BR-OPT-00300-buyer", "OPT-300 Buyer Technical Identifier", "cac:PartyIdentification/cbc:ID", "cac:ContractingParty/cac:Party"),
    ("BR-BT-00021", "BT-21 Title", "cbc:Name", "cac:ProcurementProject"),
    ("BR-BT-00023", "BT-23 Main Nature", "cbc:ProcurementTypeCode", "cac:ProcurementProject"),
    ("BR-BT-00024", "BT-24 Description", "cbc:Description", "cac:ProcurementProject"),
    ("BR-BT-00262", "BT-262 Main Classification Code", "cac:MainCommodityClassification/cbc:ItemClassificationCode", "cac:ProcurementProject"),
)

# Mandatory for some subtypes only (BT-10 is replaced by BT-610 under the utilities directive, a
# PIN-only has no procedure yet): checked only where the subtype's rule table is known.
_SUBTYPE_DEPENDENT = {"BR-BT-00004", "BR-BT-00010", "BR-BT-00011"}
_SECTIONS_VERIFIED = {"16"}

_UUID = re.compile(r"^[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$")
_NO_LOTS_SUBTYPES = {"1", "2", "3", "X01", "X02"}


def rule_id(family: str, subtype: str) -> str:
    """The schematron id of mandatory-rule ``family`` for ``subtype`` (family alone if unknown)."""
    special = _SUFFIX_SPECIAL.get(family)
    base = family.rsplit("-", 1)[0] if special is not None else family
    suffix = (special or _SUFFIX).get(subtype)
    return f"{base}-{suffix}" if suffix else base


def recoded_rules(subtype: str) -> frozenset[str]:
    """The official rule ids :func:`check_notice` can report on a notice of ``subtype`` (exact ids for 16 and 29)."""
    mandatory = {rule_id(family, subtype) for family, *_ in _MANDATORY
                 if family not in _SUBTYPE_DEPENDENT or subtype in _SUFFIX}
    sections = {f"ND-ProcedureTenderingProcess-{subtype}", f"ND-ProcedureTerms-{subtype}"} if subtype in _SECTIONS_VERIFIED else set()
    return frozenset({*mandatory, *sections, "OPP-070-notice-List_MA", "P-0002", f"ND-Organizations-{subtype}",
                      "element-not-empty", "BR-BT-00004-0052", "BR-BT-00701-0052"})


def _path(element: etree._Element, root_prefix: str) -> str:
    """The validator-style location of ``element``: prefixed names, an index only when needed."""
    steps = []
    node: etree._Element | None = element
    while node is not None:
        parent = node.getparent()
        qn = etree.QName(node)
        prefix = root_prefix if parent is None else _PREFIX_OF_NS.get(qn.namespace or "", "")
        step = f"{prefix}:{qn.localname}" if prefix else qn.localname
        if parent is not None:
            same = [s for s in parent if s.tag == node.tag]
            if len(same) > 1:
                step += f"[{same.index(node) + 1}]"
        steps.append(step)
        node = parent
    return "/" + "/".join(reversed(steps))


def check_notice(root: etree._Element, subtype: str | None) -> list[Finding]:
    """Every rule of this module that ``root`` breaks, in document-independent rule order."""
    local = etree.QName(root).localname
    prefix = ROOT_PREFIX.get(local, "")
    return list(_check(root, subtype or "", local, prefix))


def _check(root: etree._Element, subtype: str, local: str, prefix: str) -> Iterator[Finding]:
    here = f"/{prefix}:{local}"
    ext = root.find("ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/efext:EformsExtension", NS)
    sub_node = None if ext is None else ext.find("efac:NoticeSubType/cbc:SubTypeCode", NS)
    if sub_node is None or not (sub_node.text or "").strip():
        yield Finding("BR-OPP-00070", f"{here}/ext:UBLExtensions", "OPP-070 Notice Subtype is mandatory")
    elif sub_node.get("listName") is None:
        yield Finding("OPP-070-notice-List_MA", _path(sub_node, prefix), "SubTypeCode must carry listName='notice-subtype'")

    if subtype not in _NO_LOTS_SUBTYPES and root.find("cac:ProcurementProjectLot", NS) is None:
        yield Finding("P-0002", here, f"a notice of subtype {subtype or '?'} must describe at least one lot")
    # Which sections are mandatory varies by subtype; only the verified ones are checked.
    if subtype in _SECTIONS_VERIFIED and root.find("cac:TenderingProcess", NS) is None:
        yield Finding(f"ND-ProcedureTenderingProcess-{subtype}", here, "cac:TenderingProcess is mandatory")
    if subtype in _SECTIONS_VERIFIED and root.find("cac:TenderingTerms", NS) is None:
        yield Finding(f"ND-ProcedureTerms-{subtype}", here, "cac:TenderingTerms is mandatory")
    if ext is not None and ext.find("efac:Organizations", NS) is None:
        yield Finding(f"ND-Organizations-{subtype}", _path(ext, prefix), "efac:Organizations is mandatory")

    for family, label, path, context in _MANDATORY:
        if family in _SUBTYPE_DEPENDENT and subtype not in _SUFFIX:
            continue
        contexts = [root] if not context else list(root.iterfind(context, NS))
        for ctx in contexts:
            if ctx.find(path, NS) is None:
                yield Finding(rule_id(family, subtype), _path(ctx, prefix), f"{label} is mandatory ({path})")

    for element in root.iter(etree.Element):
        if len(element) == 0 and not (element.text or "").strip():
            yield Finding("element-not-empty", _path(element, prefix), "element must not be empty")

    folder = root.find("cbc:ContractFolderID", NS)
    if folder is not None and not _UUID.match((folder.text or "").strip()):
        yield Finding("BR-BT-00004-0052", _path(folder, prefix), "BT-04 Procedure Identifier must be a UUID v4")
    notice_id = root.find("cbc:ID[@schemeName='notice-id']", NS)
    if notice_id is not None and not _UUID.match((notice_id.text or "").strip()):
        yield Finding("BR-BT-00701-0052", _path(notice_id, prefix), "BT-701 Notice Identifier must be a UUID v4")
