"""XSD validation of ACTES messages against the official v1.1 schema package.

The schema (actesv1_1.xsd, which imports siret.xsd, which includes insee-commun.xsd) is read
from ``<schema_dir>/acts/xsd/`` once per path and kept: compiling it costs far more than
validating a message. It is read from the local disk only; imports resolve next to it.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from ._base import Finding
from ._xml import parse_xml
from ._xsd import load_xsd, xsd_findings

__all__ = ["XSD_RELATIVE_PATH", "actes_schema", "validate_actes"]

XSD_RELATIVE_PATH = Path("acts") / "xsd" / "actesv1_1.xsd"


def actes_schema(schema_dir: Path | str) -> etree.XMLSchema:
    """The compiled ACTES v1.1 schema under ``schema_dir`` (cached per resolved path)."""
    return load_xsd(
        schema_dir, XSD_RELATIVE_PATH, package="the ACTES v1.1 schema package",
        hint=("fetch the ACTES v1.1 schema package of the Ministère de l'Intérieur (actesv1_1.xsd with its imports "
              f"siret.xsd and insee-commun.xsd) and put the three files in {Path(schema_dir) / XSD_RELATIVE_PATH.parent}"),
    )


def validate_actes(data: bytes, *, schema_dir: Path | str, name: str) -> list[Finding]:
    """XSD findings of an ACTES message (empty when it validates). Rule ``XSD``, location the XPath."""
    return xsd_findings(actes_schema(schema_dir), parse_xml(data, name=name).getroottree())
