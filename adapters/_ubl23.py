"""UBL 2.3 reading helpers shared by the procurement adapters (eForms notices, ESPD responses).

Namespaces, text and date extraction with the rules both formats share (values kept exactly as
written, dates read from their ``YYYY-MM-DD`` part whatever the offset), the classification of a
French company identifier (SIREN 9 digits, SIRET 14 digits) and a cache of compiled XSDs loaded
through a parser that never reaches the network.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from bus._errors import NonConformantError

from ._xsd import load_xsd, xsd_findings

__all__ = [
    "NS",
    "all_text",
    "first_text",
    "french_identifier",
    "load_xsd",
    "parse_date",
    "xsd_findings",
]

NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ext": "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2",
    "efac": "http://data.europa.eu/p27/eforms-ubl-extension-aggregate-components/1",
    "efbc": "http://data.europa.eu/p27/eforms-ubl-extension-basic-components/1",
    "efext": "http://data.europa.eu/p27/eforms-ubl-extensions/1",
}


def first_text(element: etree._Element | None, path: str) -> str | None:
    """Text of the first node at ``path`` (ElementPath, compiled and cached by lxml), stripped;
    None when the node is absent or empty, so "present but blank" never passes for a value."""
    if element is None:
        return None
    found = element.find(path, NS)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return value or None


def all_text(element: etree._Element | None, path: str) -> list[str]:
    """Non-empty stripped texts of every node at ``path``, in document order."""
    if element is None:
        return []
    out = []
    for node in element.iterfind(path, NS):
        if node.text is not None and node.text.strip():
            out.append(node.text.strip())
    return out


def parse_date(raw: str | None, *, document: str, xpath: str, rule: str = "XSD-date") -> dt.date | None:
    """The calendar date of an ``xsd:date`` value (``2023-03-23+01:00``, ``2019-09-02Z``).

    The zone suffix is dropped: a notice date is a calendar day in the buyer's zone, and the pivot
    carries it as an Avro ``date``.
    """
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError as exc:
        raise NonConformantError(
            f"{raw!r} is not a date (YYYY-MM-DD)", document=document, xpath=xpath, rule=rule
        ) from exc


def french_identifier(raw: str | None, country: str | None) -> tuple[str | None, str | None]:
    """(``"SIRET"`` | ``"SIREN"``, digits) when ``raw`` is a French company number, else (None, None).

    Notices write registration numbers with spaces (``326 912 557``); only an organisation located
    in France (country ``FRA``) or with no country is read as SIREN/SIRET, since other countries'
    registers also use 9-digit numbers.
    """
    if raw is None or country not in (None, "FRA", "FR"):
        return None, None
    digits = "".join(raw.split())
    if not digits.isdigit():
        return None, None
    if len(digits) == 14:
        return "SIRET", digits
    if len(digits) == 9:
        return "SIREN", digits
    return None, None
