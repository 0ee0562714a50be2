"""Offline XSD validation and small XML helpers shared by the invoice adapters (UBL, CII, Factur-X).

Official XSD packages are loaded once per path with a parser that can neither fetch from the
network nor expand entities (``xsi:schemaLocation`` hints in documents are never followed), and
cached: compiling the UBL 2.1 schemas takes far longer than validating one invoice.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

from lxml import etree

from bus._errors import ConfigurationError, NonConformantError

from ._base import Finding

__all__ = ["parse_date", "schema_at", "xsd_findings"]


@functools.cache
def _load(path: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    try:
        return etree.XMLSchema(etree.parse(path, parser=parser))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError) as exc:
        raise ConfigurationError(
            f"cannot compile the XSD {path}: {exc}",
            hint="re-install the official schema package unchanged (every imported XSD must sit beside it)",
        ) from exc


def schema_at(schema_dir: Path, relative: str, *, package: str) -> etree.XMLSchema:
    """The compiled XSD ``schema_dir/relative``; ConfigurationError naming ``package`` when missing."""
    path = Path(schema_dir) / relative
    if not path.is_file():
        raise ConfigurationError(
            f"the XSD {relative} is missing under {schema_dir}",
            hint=f"fetch {package} and unpack it so that {path} exists",
        )
    return _load(str(path.resolve()))


def xsd_findings(schema: etree.XMLSchema, root: etree._Element) -> list[Finding]:
    """Every XSD error of ``root`` as a Finding (rule ``XSD``, location the failing element's XPath)."""
    if schema.validate(root):
        return []
    return [Finding("XSD", error.path or f"line {error.line}", error.message) for error in schema.error_log]


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
