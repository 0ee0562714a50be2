"""XSD access and date parsing shared by the invoice adapters (UBL, CII, Factur-X, statuses).

Schemas are compiled by :mod:`adapters._xsd` (local files only, cached); ``xsi:schemaLocation``
hints in documents are never followed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from lxml import etree

from bus._errors import NonConformantError

from ._xsd import load_xsd, xsd_findings

__all__ = ["parse_date", "schema_at", "xsd_findings"]


def schema_at(schema_dir: Path, relative: str, *, package: str) -> etree.XMLSchema:
    """The compiled XSD ``schema_dir/relative``; ConfigurationError naming ``package`` when missing."""
    return load_xsd(schema_dir, relative, package=package)


def parse_date(text: str | None, *, term: str, name: str, fmt: str | None = None) -> dt.date | None:
    """A date of ISO form ``YYYY-MM-DD`` (UBL) or UN/CEFACT format ``102`` ``YYYYMMDD`` (CII).

    Raises NonConformantError naming the term when the text is not such a date.
    """
    if text is None:
        return None
    value = text.strip()
    try:
        if fmt is not None or (len(value) == 8 and value.isdigit()):
            if fmt not in (None, "102"):
                raise ValueError(f"date format {fmt} is not 102 (CCYYMMDD)")
            return dt.date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
        return dt.date.fromisoformat(value[:10])
    except (ValueError, IndexError) as exc:
        raise NonConformantError(
            f"{term} is not a valid date: {value!r} ({exc})",
            document=name,
            rule="XSD",
            xpath=term,
            hint="write dates as YYYY-MM-DD (UBL) or YYYYMMDD with format 102 (CII)",
        ) from exc
