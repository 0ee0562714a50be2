"""The French e-invoicing lifecycle on UN/CEFACT CDAR D22B: code lists and the BR-FR-CDV rules.

Everything here is read from the FNFE-MPE schematron ``BR-FR-CDV-Schematron-CDAR.sch`` (V1.4.0,
``corpus/invoices/fr-ctc/cdar``). Each rule of :func:`check` is one ``assert`` of it and its
finding carries that assert's ``id`` (``BR-FR-CDV-15_MDT-113``...). Where the schematron's test
is vacuous or tests the wrong node, the rule checks what its message says (noted per rule).

Status labels: the schematron names only some codes, in its messages; :data:`STATUS_LABELS`
holds exactly those. It contradicts itself on two of them:

* BR-FR-CDV-15's message reads "206 (Suspendue) ... 208 (Approuvée Partiellement)", while the
  BR-FR-CDV-CL-09 asserts (whose tests are per code) read "APPROUVÉE PARTIELLEMENT (206)" and
  "SUSPENDUE (208)". CL-09 is kept: its reason lists fit it (208 allows ``JUSTIF_ABS``, a
  missing supporting document, typical of a suspension; 206 allows price and quantity errors,
  typical of a partial approval), and its labels sit in the assert that tests the code.
* BR-FR-CDV-15's message names "123 (Rejetée)" where its test reads 213; 213 is "Rejetée".

Other defects of the V1.4.0 schematron, handled by checking what the message says: the
BR-FR-CDV-CL-06 message lists "200 ... 228" while its list goes to 601; BR-FR-CDV-CL-01 compares
the whole context node (``. = 'B2C'``) for every value but ``REGULATED``, so it rejects every
other value it lists; BR-FR-CDV-07_MDT-38_no can never fail (``count(...) ge 0``) and is not
implemented; BR-FR-CDV-11 and BR-FR-CDV-13 test the 501 exemption on the first referenced
document of the message rather than on the current one (checked per document here); the
BR-FR-CDV-CL-09_MDT-113_210B2G message lists ``CONTACT_ACHTR``, its test does not (the test is
kept); presence rules BR-FR-CDV-01/04 have a context that only exists when the element does,
so they are checked as presence rules; BR-FR-CDV-CL-09_MDT-113_210B2G compares
``GlobalID[@schemeID = '0238'] != '9999'``, which is false when the sender has no 0238 identifier
(an empty sequence), so the published rule refuses every REFUSÉE (210) whose sender carries a
GlobalID of another scheme: it is checked for B2G messages only, as its message says (the
conformance test ``test_cdar_official_rules`` pins that difference with the official engine).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation

from lxml import etree

from bus._errors import NonConformantError

from ._base import Finding

__all__ = [
    "GUIDELINE",
    "QDT",
    "RAM",
    "REASON_CODES",
    "RSM",
    "STATUS_CODES",
    "STATUS_LABELS",
    "UDT",
    "check",
    "decimal_or_none",
    "fatal",
    "format_date",
    "format_datetime",
    "parse_datetime",
]

RSM = "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
R, M = f"{{{RAM}}}", f"{{{RSM}}}"

GUIDELINE = "urn.cpro.gouv.fr:1p0:CDV:invoice"
_GUIDELINE_PPF = "urn.cpro.gouv.fr:1p0:CDV:einvoicingF2"
PARIS = zoneinfo.ZoneInfo("Europe/Paris")

#: BR-FR-CDV-CL-06 (custom:is-valid-invoice-status-code): allowed MDT-105 / MDT-115 codes.
STATUS_CODES = frozenset(
    "200 201 202 203 204 205 206 207 208 209 210 211 212 213 214 220 221 224 225 226 227 228 "
    "250 251 300 301 400 401 500 501 601".split()
)

#: The labels the schematron gives (see the module docstring for 206 / 208 / 213).
STATUS_LABELS: dict[str, str] = {
    "200": "Déposée",  # CL-09_MDT-113_200 "DÉPOSÉE"
    "206": "Approuvée partiellement",  # CL-09_MDT-113_206; CDV-15 says "Suspendue"
    "207": "Litige",  # CDV-15 "Litige", CL-09_MDT-113_207 "LITIGE"
    "208": "Suspendue",  # CL-09_MDT-113_208; CDV-15 says "Approuvée Partiellement"
    "210": "Refusée",  # CDV-15, CL-09_MDT-113_210 "REFUSÉE"
    "212": "Encaissée",  # CDV-14 "Encaissé"
    "213": "Rejetée",  # CL-09_MDT-113_213 "REJETÉE"; CDV-15 writes "123 (Rejetée)"
    "221": "Erreur de routage",  # CL-09_MDT-113_221 "ERREUR_ROUTAGE"
    "501": "Irrecevable",  # CDV-11, CL-09_MDT-113_501 "IRRECEVABLE"
}

#: BR-FR-CDV-CL-09 (custom:is-valid-status-reason-code): allowed MDT-113 reason codes.
REASON_CODES = frozenset(
    "RETRAIT_MAN_SERV ST_CT_NON_DECLAR SUPPR_COMP_AVOIR TRANSF_PMNT_REGIE CONTACT_ACHTR NON_TRANSMISE "
    "JUSTIF_ABS ROUTAGE_ERR AUTRE COORD_BANC_ERR TX_TVA_ERR MONTANTTOTAL_ERR CALCUL_ERR NON_CONFORME "
    "DOUBLON DEST_INC DEST_ERR TRANSAC_INC EMMET_INC CONTRAT_TERM DOUBLE_FACT CMD_ERR ADR_ERR SIRET_ERR "
    "CODE_ROUTAGE_ERR REF_CT_ABSENT REF_ERR PU_ERR REM_ERR QTE_ERR ART_ERR MODPAI_ERR QUALITE_ERR "
    "LIVR_INCOMP REJ_SEMAN REJ_UNI REJ_COH REJ_ADR REJ_CONT_B2G REJ_REF_PJ REJ_ASS_PJ IRR_VIDE_F "
    "IRR_TYPE_F IRR_SYNTAX IRR_TAILLE_PJ IRR_NOM_PJ IRR_VID_PJ IRR_EXT_DOC IRR_TAILLE_F IRR_ANTIVIRUS "
    "IRR_NOM_F".split()
)

#: BR-FR-CDV-CL-09_MDT-113_<code>: the reasons allowed for a given status (210 outside B2G).
_REASONS_BY_STATUS: dict[str, frozenset[str]] = {
    "200": frozenset({"NON_TRANSMISE"}),
    "213": frozenset("MONTANTTOTAL_ERR CALCUL_ERR DOUBLON DEST_INC ADR_ERR REJ_SEMAN REJ_UNI REJ_COH REJ_ADR "
                     "REJ_CONT_B2G REJ_REF_PJ REJ_ASS_PJ".split()),
    "210": frozenset("TX_TVA_ERR MONTANTTOTAL_ERR CALCUL_ERR NON_CONFORME DOUBLON DEST_ERR TRANSAC_INC EMMET_INC "
                     "CONTRAT_TERM DOUBLE_FACT CMD_ERR ADR_ERR REF_CT_ABSENT".split()),
    "207": frozenset("AUTRE COORD_BANC_ERR TX_TVA_ERR MONTANTTOTAL_ERR CALCUL_ERR NON_CONFORME DOUBLON DEST_INC "
                     "DEST_ERR TRANSAC_INC EMMET_INC CONTRAT_TERM DOUBLE_FACT CMD_ERR ADR_ERR SIRET_ERR "
                     "CODE_ROUTAGE_ERR REF_CT_ABSENT REF_ERR PU_ERR REM_ERR QTE_ERR ART_ERR MODPAI_ERR "
                     "QUALITE_ERR LIVR_INCOMP".split()),
    "206": frozenset("AUTRE CMD_ERR SIRET_ERR CODE_ROUTAGE_ERR REF_CT_ABSENT REF_ERR PU_ERR REM_ERR QTE_ERR "
                     "ART_ERR MODPAI_ERR QUALITE_ERR LIVR_INCOMP".split()),
    "208": frozenset("JUSTIF_ABS COORD_BANC_ERR CMD_ERR SIRET_ERR CODE_ROUTAGE_ERR REF_CT_ABSENT REF_ERR".split()),
    "221": frozenset({"ROUTAGE_ERR"}),
    "501": frozenset("IRR_VIDE_F IRR_TYPE_F IRR_SYNTAX IRR_TAILLE_PJ IRR_NOM_PJ IRR_VID_PJ IRR_EXT_DOC "
                     "IRR_TAILLE_F IRR_ANTIVIRUS IRR_NOM_F".split()),
}
#: BR-FR-CDV-CL-09_MDT-113_210B2G: refusal reasons of a B2G invoice (sender is Chorus Pro, 0238/9999).
_REASONS_210_B2G = frozenset(
    "RETRAIT_MAN_SERV ST_CT_NON_DECLAR SUPPR_COMP_AVOIR TRANSF_PMNT_REGIE AUTRE COORD_BANC_ERR TX_TVA_ERR "
    "MONTANTTOTAL_ERR CALCUL_ERR NON_CONFORME DOUBLON DEST_ERR TRANSAC_INC EMMET_INC CONTRAT_TERM DOUBLE_FACT "
    "CMD_ERR ADR_ERR REF_CT_ABSENT LIVR_INCOMP".split()
)
_REASON_REQUIRED = frozenset({"206", "207", "208", "210", "213", "501"})  # BR-FR-CDV-15
_DOCUMENT_TYPES = frozenset("380 389 393 501 386 500 384 471 472 473 261 262 381 396 502 503".split())  # BR-FR-04
_BUSINESS_PROCESSES = frozenset({"REGULATED", "NON_REGULATED", "B2C", "B2CINT", "B2BINT", "OUTOFSCOPE"})
_ROLES_23 = frozenset("BY AB DL SE SR PE PR II IV".split())  # CL-03 (CL-02 adds WK)
_RECIPIENT_ROLES = _ROLES_23 | {"WK", "DFH"}  # CL-04, CL-08
_STATUS_305 = frozenset({"10", "51", "43", "8", "48"})  # CL-05
_STATUS_23 = frozenset({"45", "39", "37", "50", "49", "47", "46", "1", "5"})
_ACTIONS = frozenset("NOA PIN NIN CNF CNP CNA OTH".split())  # CL-10
_CHARACTERISTICS = frozenset("MEN MPA RAP ESC RAB REM MAP MAPTTC MNA MNATTC CBB DIV DVA MAJ".split())  # CL-11

# ---------------------------------------------------------------------------- values

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_FORMATS = {"102": ("%Y%m%d", 8), "203": ("%Y%m%d%H%M", 12), "204": ("%Y%m%d%H%M%S", 14)}


def decimal_or_none(text: str | None) -> Decimal | None:
    """The xsd:decimal ``text`` as a Decimal; None when it is not one."""
    if text is None or _DECIMAL.fullmatch(text.strip()) is None:
        return None
    try:
        return Decimal(text.strip())
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        return None


def parse_datetime(holder: etree._Element, *, name: str, xpath: str) -> dt.datetime:
    """The aware instant of a ``udt:DateTimeType`` / ``qdt:FormattedDateTimeType`` element.

    Formats 102 (date, midnight), 203 and 204 of UNTDID 2379, or an ``udt:DateTime``; a time
    without offset is Europe/Paris local time (French lifecycle messages are).
    """
    for child in holder:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        text = (child.text or "").strip()
        try:
            if local == "DateTimeString":
                fmt = child.get("format") or ("102" if len(text) == 8 else "204")
                pattern, width = _FORMATS.get(fmt, ("", -1))
                if len(text) != width or not text.isdigit():
                    raise ValueError(f"not format {fmt} ({', '.join(_FORMATS)} are read)")
                moment = dt.datetime.strptime(text, pattern)
            elif local == "DateTime":
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            else:
                continue
        except ValueError as exc:
            raise NonConformantError(f"{text!r} is not a date-time: {exc}", document=name, rule="XSD", xpath=xpath,
                                     hint="write CCYYMMDD (format 102) or CCYYMMDDHHMMSS (format 204)") from exc
        return moment if moment.tzinfo else moment.replace(tzinfo=PARIS)
    raise NonConformantError("date-time element has no DateTimeString", document=name, rule="XSD", xpath=xpath)


def format_datetime(moment: dt.datetime) -> str:
    """Format 204 (CCYYMMDDHHMMSS) of an aware instant, in Europe/Paris local time."""
    local = moment.astimezone(PARIS)
    return f"{format_date(local)}{local.hour:02d}{local.minute:02d}{local.second:02d}"


def format_date(day: dt.date) -> str:
    """Format 102 (CCYYMMDD); written by hand as ``strftime`` does not pad years below 1000."""
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


# ---------------------------------------------------------------------------- rules

def _text(el: etree._Element | None, path: str) -> str | None:
    child = None if el is None else el.find(path)
    return None if child is None else (child.text or "").strip()


def _texts(el: etree._Element | None, path: str) -> list[str]:
    return [] if el is None else [(c.text or "").strip() for c in el.iterfind(path)]


def _path(el: etree._Element) -> str:
    return str(el.getroottree().getpath(el))


Check = Callable[[etree._Element], Iterator[Finding]]
_CHECKS: list[Check] = []


def _rule(fn: Check) -> Check:
    _CHECKS.append(fn)
    return fn


def check(root: etree._Element) -> list[Finding]:
    """Every BR-FR-CDV finding of a parsed CDAR tree (fatal, and warnings for BR-FR-CDV-CL-06)."""
    if root.tag != M + "CrossDomainAcknowledgementAndResponse":
        return [Finding("XSD", "/*", "the root element is not a CDAR D22B CrossDomainAcknowledgementAndResponse")]
    return [finding for rule in _CHECKS for finding in rule(root)]


def _ppf_recipient(root: etree._Element) -> bool:
    """The test ``TestPPF`` of CDV-02 / CL-01: a single recipient, the PPF (0238 / 0000, role DFH)."""
    recipients = root.findall(f"{M}ExchangedDocument/{R}RecipientTradeParty")
    ids = [g for r in recipients for g in r.iterfind(R + "GlobalID")]
    return (len(ids) == 1 and ids[0].get("schemeID") == "0238" and (ids[0].text or "").strip() == "0000"
            and "DFH" in (_text(r, R + "RoleCode") for r in recipients))


@_rule
def _context(root: etree._Element) -> Iterator[Finding]:
    context = root.find(M + "ExchangedDocumentContext")
    guideline = _text(context, f"{R}GuidelineSpecifiedDocumentContextParameter/{R}ID")
    if guideline is None:
        yield Finding("BR-FR-CDV-01_MDG-3", "/rsm:CrossDomainAcknowledgementAndResponse",
                      "the context parameter MDG-3 (GuidelineSpecifiedDocumentContextParameter) is required")
        return
    where = _path(context)
    ppf = _ppf_recipient(root)
    if not (guideline == GUIDELINE or (guideline == _GUIDELINE_PPF and ppf)):
        yield Finding("BR-FR-CDV-02_MDT-3", where, f"MDT-3 is {guideline!r}: it must be {GUIDELINE!r} "
                      f"({_GUIDELINE_PPF!r} only for a message to the PPF alone)")
    process = _text(context, f"{R}BusinessProcessSpecifiedDocumentContextParameter/{R}ID")
    if ppf and len((process or "").strip()) > 3 or not ppf and process not in _BUSINESS_PROCESSES:
        yield Finding("BR-FR-CDV-CL-01_MDT-2", where, f"MDT-2 is {process!r}: it must be one of "
                      f"{', '.join(sorted(_BUSINESS_PROCESSES))} (at most 3 characters for the PPF)")


@_rule
def _exchanged_document(root: etree._Element) -> Iterator[Finding]:
    doc = root.find(M + "ExchangedDocument")
    if doc is None:
        return  # the XSD requires it
    where = _path(doc)
    if not _text(doc, R + "ID"):
        yield Finding("BR-FR-CDV-03_MDT-4", where, "the message identifier MDT-4 (ram:ID) is required")
    if doc.find(R + "IssueDateTime") is None:
        yield Finding("BR-FR-CDV-04_MDG-4", where, "the message issue date-time MDG-4 (ram:IssueDateTime) is required")
    sender = doc.find(R + "SenderTradeParty")
    sender_role = _text(sender, R + "RoleCode")
    if sender is None:
        yield Finding("BR-FR-CDV-05_MDG-9", where, "the sender MDG-9 (ram:SenderTradeParty) is required")
    elif not sender_role:
        yield Finding("BR-FR-CDV-06_MDT-21", _path(sender), "the sender role MDT-21 (ram:RoleCode) is required")
    issuer = doc.find(R + "IssuerTradeParty")
    issuer_role = _text(issuer, R + "RoleCode")
    phases = _texts(root, f"{M}AcknowledgementDocument/{R}TypeCode")
    if issuer is not None and "23" in phases and issuer.find(R + "GlobalID") is None:
        yield Finding("BR-FR-CDV-07_MDT-38", _path(issuer), "in the processing phase (MDT-77 = 23) the issuer "
                      "identifier MDT-38 (ram:GlobalID) is required")
    for recipient in doc.iterfind(R + "RecipientTradeParty"):
        role = _text(recipient, R + "RoleCode")
        if role not in ("WK", "DFH") and not _text(recipient, f"{R}URIUniversalCommunication/{R}URIID"):
            yield Finding("BR-FR-CDV-08_MDT-73", _path(recipient), "a recipient whose role is not WK or DFH needs "
                          "its electronic address MDT-73 (URIUniversalCommunication/URIID)")
        if role is not None and role not in _RECIPIENT_ROLES:
            yield Finding("BR-FR-CDV-CL-04_MDT-59", _path(recipient), f"recipient role MDT-59 {role!r} is not one of "
                          f"{', '.join(sorted(_RECIPIENT_ROLES))}")
    if "305" in phases:
        if sender_role != "WK":
            yield Finding("BR-FR-CDV-CL-02_MDT-21_305", where, f"in the transmission phase (305) the sender role "
                          f"MDT-21 must be WK, not {sender_role!r}")
        if issuer_role != "WK":
            yield Finding("BR-FR-CDV-CL-03_MDT-40_305", where, f"in the transmission phase (305) the issuer role "
                          f"MDT-40 must be WK, not {issuer_role!r}")
    if "23" in phases:
        if sender_role not in _ROLES_23 | {"WK"}:
            yield Finding("BR-FR-CDV-CL-02_MDT-21_23", where, f"in the processing phase (23) the sender role MDT-21 "
                          f"{sender_role!r} must be one of {', '.join(sorted(_ROLES_23 | {'WK'}))}")
        if issuer_role not in _ROLES_23:
            yield Finding("BR-FR-CDV-CL-03_MDT-40_23", where, f"in the processing phase (23) the issuer role MDT-40 "
                          f"{issuer_role!r} must be one of {', '.join(sorted(_ROLES_23))}")


@_rule
def _acknowledgements(root: etree._Element) -> Iterator[Finding]:
    b2g = any(g.get("schemeID") == "0238" and (g.text or "").strip() == "9999"
              for g in root.iterfind(f"{M}ExchangedDocument/{R}SenderTradeParty/{R}GlobalID"))
    for ack in root.iterfind(M + "AcknowledgementDocument"):
        phase = _text(ack, R + "TypeCode")
        if phase not in ("23", "305"):
            yield Finding("BR-FR-CDV-09_MDT-77", _path(ack), f"the phase MDT-77 (ram:TypeCode) is {phase!r}: "
                          "it must be 23 (processing) or 305 (transmission)")
        for ref in ack.iterfind(R + "ReferenceReferencedDocument"):
            yield from _referenced(ref, phase, b2g)


def _referenced(ref: etree._Element, phase: str | None, b2g: bool) -> Iterator[Finding]:
    where = _path(ref)
    code = _text(ref, R + "ProcessConditionCode")
    type_code = _text(ref, R + "TypeCode")
    if type_code is not None and type_code not in _DOCUMENT_TYPES:
        yield Finding("BR-FR-04_MDT-91", where, f"document type code {type_code!r} is not allowed in France")
    if not _text(ref, R + "IssuerAssignedID"):
        yield Finding("BR-FR-CDV-10_MDT-87", where, "the invoice number MDT-87 (ram:IssuerAssignedID) is required")
    if ref.find(R + "FormattedIssueDateTime") is None and code != "501":
        yield Finding("BR-FR-CDV-11_MDG-35", where, "the invoice issue date MDG-35 (ram:FormattedIssueDateTime) is "
                      "required unless the status is 501 (Irrecevable)")
    if code is None:
        yield Finding("BR-FR-CDV-12_MDT-105", where, "the status code MDT-105 (ram:ProcessConditionCode) is required")
    elif code not in STATUS_CODES:
        yield Finding("BR-FR-CDV-CL-06_MDT-105", where, f"status code {code!r} is not in the BR-FR-CDV-CL-06 list",
                      severity="warning")
    seller = ref.find(R + "IssuerTradeParty")
    if code != "501" and (seller is None or seller.find(R + "GlobalID") is None):
        yield Finding("BR-FR-CDV-13_MDT-129", where, "the seller identifier MDT-129 (IssuerTradeParty/GlobalID, "
                      "the invoice's BT-30) is required unless the status is 501")
    seller_role = _text(seller, R + "RoleCode")
    if seller_role is not None and seller_role != "SE":
        yield Finding("BR-FR-CDV-CL-07_MDT-132", _path(seller), f"the invoice issuer's role MDT-132 must be SE, "
                      f"not {seller_role!r}")
    for recipient in ref.iterfind(R + "RecipientTradeParty"):
        role = _text(recipient, R + "RoleCode")
        if role is not None and role not in _RECIPIENT_ROLES:
            yield Finding("BR-FR-CDV-CL-08_MDT-158", _path(recipient), f"recipient role MDT-158 {role!r} is not one "
                          f"of {', '.join(sorted(_RECIPIENT_ROLES))}")
    status = _text(ref, R + "StatusCode")
    if status is not None:
        allowed = _STATUS_305 if phase == "305" else _STATUS_23 if phase == "23" else None
        if allowed is not None and status not in allowed:
            yield Finding(f"BR-FR-CDV-CL-05_MDT-88_{phase}", where, f"MDT-88 {status!r} is not allowed in phase "
                          f"{phase} (allowed: {', '.join(sorted(allowed, key=int))})")
    blocks = ref.findall(R + "SpecifiedDocumentStatus")
    if code in _REASON_REQUIRED and not any(b.find(R + "ReasonCode") is not None for b in blocks):
        yield Finding("BR-FR-CDV-15_MDT-113", where, f"status {code} needs a reason MDT-113 (ram:ReasonCode)")
    if code == "212":
        men = [c for b in blocks for c in b.iterfind(R + "SpecifiedDocumentCharacteristic")
               if _text(c, R + "TypeCode") == "MEN"]
        if not men or any(c.find(R + "ValueAmount") is None or c.find(R + "ValuePercent") is None for c in men):
            yield Finding("BR-FR-CDV-14_MDT-207", where, "status 212 (Encaissée) needs at least one MEN "
                          "characteristic, each with an amount MDT-215 and a VAT rate MDT-224")
    for block in blocks:
        yield from _status_block(block, code, b2g)


def _status_block(block: etree._Element, code: str | None, b2g: bool) -> Iterator[Finding]:
    where = _path(block)
    if block.find(R + "SequenceNumeric") is None:
        yield Finding("BR-FR-CDV-16_MDT-124-2", where, "a status detail MDG-37 needs its sequence number MDT-124-2")
    own = _text(block, R + "ProcessConditionCode")
    if own is not None and own not in STATUS_CODES:
        yield Finding("BR-FR-CDV-CL-06_MDT-115", where, f"status code {own!r} is not in the BR-FR-CDV-CL-06 list",
                      severity="warning")
    effective = own if own is not None else code
    for reason in _texts(block, R + "ReasonCode"):
        if reason not in REASON_CODES:
            yield Finding("BR-FR-CDV-CL-09_MDT-113", where, f"reason code {reason!r} is not in the BR-FR-CDV-CL-09 list")
            continue
        allowed = _REASONS_BY_STATUS.get(effective or "")
        if effective == "210" and b2g:
            if reason not in _REASONS_210_B2G:
                yield Finding("BR-FR-CDV-CL-09_MDT-113_210B2G", where, f"reason {reason!r} is not allowed for the "
                              "refusal (210) of a B2G invoice")
        elif allowed is not None and reason not in allowed:
            yield Finding(f"BR-FR-CDV-CL-09_MDT-113_{effective}", where, f"reason {reason!r} is not allowed for "
                          f"status {effective} (allowed: {', '.join(sorted(allowed))})")
    for action in _texts(block, R + "RequestedActionCode"):
        if action not in _ACTIONS:
            yield Finding("BR-FR-CDV-CL-10_MDT-121", where, f"action code {action!r} is not one of "
                          f"{', '.join(sorted(_ACTIONS))}")
    for kind in _texts(block, f"{R}SpecifiedDocumentCharacteristic/{R}TypeCode"):
        if kind not in _CHARACTERISTICS:
            yield Finding("BR-FR-CDV-CL-11_MDT-207", where, f"characteristic type {kind!r} is not one of "
                          f"{', '.join(sorted(_CHARACTERISTICS))}")


def fatal(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that reject a message (every one but the BR-FR-CDV-CL-06 warnings)."""
    return [f for f in findings if f.severity == "fatal"]
