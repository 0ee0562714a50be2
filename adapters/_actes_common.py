"""What every ACTES (@CTES v1.1) adapter module shares: namespaces, the act identifier and
file naming conventions, the national natures of acts, and a tolerant element reader.

ACTES is the legality-control exchange between local authorities and the prefecture. A
message file is named ``<IDActe>-<transaction>-<subtype>_<index>.<ext>`` where the act
identifier ``IDActe`` is ``<department>-<SIREN>-<decision date YYYYMMDD>-<NumeroInterne>-
<nature abbreviation>`` (the XSD pattern of ``@IDActe``). The act message itself carries
neither the SIREN nor the department, so readers take them from ``IDActe`` or the file name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from lxml import etree

from bus._errors import NonConformantError

__all__ = [
    "ACTES_NS",
    "DEPARTMENT_RE",
    "INSEE_NS",
    "MESSAGE_CODES",
    "NATURES",
    "NUMBER_RE",
    "SIREN_RE",
    "ActId",
    "ActesName",
    "ElementReader",
    "act_id",
    "as_date",
    "media_type",
    "message_file_name",
    "nature_abbreviation",
    "parse_act_id",
    "parse_file_name",
]

ACTES_NS = "http://www.interieur.gouv.fr/ACTES#v1.1-20040216"
INSEE_NS = "http://xml.insee.fr/schema"

#: National natures of acts (ACTES actes:NatureActe): code -> (TypeAbrege, Libelle), labels as
#: published in the 2019 classification. They are fixed nationally, unlike the matières.
NATURES: Mapping[int, tuple[str, str]] = {
    1: ("DE", "Délibérations"),
    2: ("AR", "Actes réglementaires"),
    3: ("AI", "Actes individuels"),
    4: ("CC", "Contrats, conventions et avenants"),
    5: ("BF", "Documents budgétaires et financiers"),
    6: ("AU", "Autres"),
}
_NATURE_BY_ABBREVIATION = {abbr: code for code, (abbr, _label) in NATURES.items()}

#: ACTES message types (cahier des charges ACTES, transaction-subtype) by root element.
MESSAGE_CODES: Mapping[str, str] = {
    "Acte": "1-1",
    "ARActe": "1-2",
    "AnomalieActe": "1-3",
    "CourrierSimple": "2-1",
    "ReponseCourrierSimple": "2-2",
    "DemandePieceComplementaire": "3-1",
    "ARDemandePieceComplementaire": "3-2",
    "RefusPieceComplementaire": "3-3",
    "PieceComplementaire": "3-4",
    "ARPieceComplementaire": "3-5",
    "LettreObservations": "4-1",
    "ARLettreObservations": "4-2",
    "RejetLettreObservations": "4-3",
    "ReponseLettreObservations": "4-4",
    "ARReponseRejetLettreObservations": "4-5",
    "DefereTA": "5-1",
    "Annulation": "6-1",
    "ARAnnulation": "6-2",
    "DemandeClassification": "7-1",
    "RetourClassification": "7-2",
    "ReponseClassificationSansChangement": "7-3",
}

# The XSD patterns of ACTES (actesv1_1.xsd). The XSD writes the department as
# [0|9][0-9][A|B|0-9], where "|" is a literal inside brackets: the intent is 0 or 9 first.
_DEPARTMENT = r"[09][0-9][AB0-9]"
_NUMBER = r"(?:[a-zA-Z0-9][a-zA-Z0-9\-_ ]{0,13})?[a-zA-Z0-9]"
_ID = rf"(?P<department>{_DEPARTMENT})-(?P<siren>[0-9]{{9}})-(?P<date>[0-9]{{8}})-(?P<number>{_NUMBER})-(?P<nature>[A-Z]{{2}})"
_ID_RE = re.compile(rf"^{_ID}$")
_NAME_RE = re.compile(rf"^{_ID}-(?P<transaction>[1-7])-(?P<subtype>[1-5])_(?P<index>[0-9]+)\.(?P<ext>[A-Za-z0-9]+)$")
NUMBER_RE = re.compile(rf"^{_NUMBER}$")
DEPARTMENT_RE = re.compile(rf"^{_DEPARTMENT}$")
SIREN_RE = re.compile(r"^[0-9]{9}$")

_MEDIA_TYPES = {
    "pdf": "application/pdf",
    "xml": "application/xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "p7s": "application/pkcs7-signature",
    "odt": "application/vnd.oasis.opendocument.text",
}


@dataclasses.dataclass(frozen=True, slots=True)
class ActId:
    """The parts of an ACTES act identifier (``@IDActe``)."""

    department: str
    siren: str
    decision_date: dt.date
    number: str
    nature_abbreviation: str

    def __str__(self) -> str:
        return "-".join(
            (self.department, self.siren, self.decision_date.strftime("%Y%m%d"), self.number, self.nature_abbreviation)
        )

    @property
    def subject(self) -> str:
        """The dossier id of the act on the bus: ``act:<SIREN>:<NumeroInterne>``."""
        return f"act:{self.siren}:{self.number}"


@dataclasses.dataclass(frozen=True, slots=True)
class ActesName:
    """An ACTES message file name: the act identifier, the message type and the file index."""

    act: ActId
    message_code: str
    index: int
    extension: str


def parse_act_id(value: str) -> ActId | None:
    """The parts of ``value`` when it is an ACTES ``@IDActe``, else None."""
    found = _ID_RE.match(value.strip())
    return _act_from_match(found) if found else None


def parse_file_name(name: str) -> ActesName | None:
    """The parts of an ACTES message file name (a path is reduced to its last part), else None."""
    base = re.split(r"[/\\]", name)[-1]
    found = _NAME_RE.match(base)
    if not found:
        return None
    act = _act_from_match(found)
    if act is None:
        return None
    code = f"{found['transaction']}-{found['subtype']}"
    return ActesName(act, code, int(found["index"]), found["ext"].lower())


def _act_from_match(found: re.Match[str]) -> ActId | None:
    try:
        day = dt.datetime.strptime(found["date"], "%Y%m%d").date()
    except ValueError:
        return None
    return ActId(found["department"], found["siren"], day, found["number"], found["nature"])


def act_id(
    siren: str,
    department: str,
    decision_date: dt.date | str,
    number: str,
    nature_code: int | str,
) -> str:
    """Build the ACTES act identifier (``@IDActe``) of an act.

    ``siren``: the local authority's 9-digit SIREN; ``department``: its department, 3
    characters (``034``, ``02A``; a 2-character ``34`` or ``2A`` is padded with ``0``);
    ``decision_date``: the date of the decision (``actes:Acte/@Date``); ``number``: the
    NumeroInterne (15 characters at most); ``nature_code``: ``@CodeNatureActe`` (1..6) or its
    two-letter abbreviation (``DE``). Example: ``act_id("000000000", "034",
    date(2017, 7, 1), "20170721D", 3) == "034-000000000-20170701-20170721D-AI"``.
    Raises :class:`NonConformantError` when a part cannot appear in an ``@IDActe``.
    """
    department = str(department).strip()
    if len(department) == 2:
        department = "0" + department
    if not DEPARTMENT_RE.match(department):
        raise _id_error(f"department {department!r} is not 3 characters like 034 or 02A")
    siren = str(siren).strip()
    if not SIREN_RE.match(siren):
        raise _id_error(f"SIREN {siren!r} is not 9 digits")
    number = str(number)
    if not NUMBER_RE.match(number) or len(number) > 15:
        raise _id_error(f"NumeroInterne {number!r} breaks the ACTES pattern (letters, digits, '-', '_', space; 15 at most)")
    abbreviation = nature_abbreviation(nature_code)
    if abbreviation is None:
        raise _id_error(f"nature {nature_code!r} is not an ACTES nature of act (1..6 or DE, AR, AI, CC, BF, AU)")
    day = as_date(decision_date, what="decision date")
    return str(ActId(department, siren, day, number, abbreviation))


def nature_abbreviation(nature: int | str) -> str | None:
    """The two-letter TypeAbrege of a nature code (``3`` -> ``AI``), or None when unknown."""
    if isinstance(nature, str) and nature.strip().upper() in _NATURE_BY_ABBREVIATION:
        return nature.strip().upper()
    try:
        code = int(nature)
    except (TypeError, ValueError):
        return None
    entry = NATURES.get(code)
    return entry[0] if entry else None


def _id_error(message: str) -> NonConformantError:
    return NonConformantError(
        message, rule="ACTES-IDACTE", hint="fix the value so the act identifier follows the ACTES v1.1 @IDActe pattern"
    )


def message_file_name(act: str, message_code: str, index: int = 0, extension: str = "xml") -> str:
    """The ACTES file name of a message or document: ``<IDActe>-<code>_<index>.<ext>``.

    Index 0 is the XML message, 1 the act's main document, 2.. its annexes.
    """
    return f"{act}-{message_code}_{index}.{extension}"


def media_type(file_name: str) -> str:
    """Media type of an ACTES file from its extension; ``application/octet-stream`` when unknown."""
    _stem, dot, ext = file_name.rpartition(".")
    return _MEDIA_TYPES.get(ext.lower(), "application/octet-stream") if dot else "application/octet-stream"


def as_date(value: Any, *, what: str, xpath: str | None = None, document: str | None = None) -> dt.date:
    """A pivot or XML date value (``date`` or ISO ``YYYY-MM-DD``, XSD timezone allowed) as a date."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text[:10]) if len(text) >= 10 else dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise NonConformantError(
        f"{what} {value!r} is not a date (YYYY-MM-DD)",
        rule="XSD",
        xpath=xpath,
        document=document,
        hint="write dates as xsd:date, e.g. 2017-07-21",
    )


class ElementReader:
    """Reads ACTES elements tolerantly, collecting warnings, raising NonConformantError with
    the XPath when something the pivot needs is missing or unreadable."""

    def __init__(self, root: etree._Element, document: str) -> None:
        self.root = root
        self.document = document
        self.warnings: list[str] = []
        self._tree = root.getroottree()

    def xpath(self, element: etree._Element) -> str:
        return self._tree.getpath(element)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def error(self, message: str, element: etree._Element, *, rule: str = "XSD", suffix: str = "") -> NonConformantError:
        return NonConformantError(
            message,
            document=self.document,
            xpath=self.xpath(element) + suffix,
            rule=rule,
            hint="fix the element so the message follows ACTES v1.1 (actesv1_1.xsd) and send it again",
        )

    def attr(self, element: etree._Element, local: str, *, ns: str = ACTES_NS, required: bool = True) -> str | None:
        """An attribute, qualified as the XSD wants (attributeFormDefault=qualified) or, tolerated, unqualified."""
        value = element.get(f"{{{ns}}}{local}")
        if value is None and element.get(local) is not None:
            value = element.get(local)
            self.warn(f"{self.xpath(element)}/@{local} is not namespace-qualified as ACTES v1.1 requires")
        if value is None or not value.strip():
            if required:
                raise self.error(f"missing attribute {local}", element, suffix=f"/@{local}")
            return None
        return value.strip()

    def children(self, element: etree._Element, local: str) -> list[etree._Element]:
        return [c for c in element if isinstance(c.tag, str) and c.tag == f"{{{ACTES_NS}}}{local}"]

    def child(self, element: etree._Element, local: str, *, required: bool = True) -> etree._Element | None:
        found = self.children(element, local)
        if not found:
            if required:
                raise self.error(f"missing element actes:{local}", element, suffix=f"/actes:{local}")
            return None
        if len(found) > 1:
            self.warn(f"{self.xpath(element)} has {len(found)} actes:{local}; the first is read")
        return found[0]

    def text(self, element: etree._Element, local: str, *, required: bool = True) -> str | None:
        node = self.child(element, local, required=required)
        if node is None:
            return None
        value = (node.text or "").strip()
        if not value:
            if required:
                raise self.error(f"empty element actes:{local}", node)
            return None
        return value

    def date(self, element: etree._Element, local: str, *, required: bool = True, attribute: bool = False) -> dt.date | None:
        raw = self.attr(element, local, required=required) if attribute else self.text(element, local, required=required)
        if raw is None:
            if self.children(element, local) and not attribute:
                self.warn(f"{self.xpath(element)}/actes:{local} is empty; read as unknown")
            return None
        where = self.xpath(element) + (f"/@{local}" if attribute else f"/actes:{local}")
        return as_date(raw, what=local, xpath=where, document=self.document)

    def integer(self, raw: str, element: etree._Element, what: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise self.error(f"{what} {raw!r} is not an integer", element) from None
        # Avro int is 32-bit signed; no ACTES code comes near it.
        if not -(2**31) <= value < 2**31:
            raise self.error(f"{what} {raw!r} is out of range", element)
        return value

    def expect_only(self, element: etree._Element, allowed: Iterable[str]) -> None:
        """Warn about child elements the v1.1 XSD does not allow here (read tolerantly, never fatal)."""
        names = {f"{{{ACTES_NS}}}{a}" for a in allowed}
        for child in element:
            if isinstance(child.tag, str) and child.tag not in names:
                self.warn(f"{self.xpath(child)} is not expected by ACTES v1.1 here; ignored")
