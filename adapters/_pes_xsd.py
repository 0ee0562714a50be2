"""XSD validation of PES V2 documents against the official DGFiP schema package v5.17.

The package is read from ``<schema_dir>/accounting/pes-xsd-v5.17``. Its imports
(xmldsig, XAdES, xmlenc) are shipped inside the package, so the schema is compiled from
local files only: a resolver refuses any location outside the package, and the parser
never touches the network. Compiling the PES_Aller schema takes a noticeable fraction of a
second, so each compiled schema is cached per absolute path for the life of the process.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from ._base import Finding
from ._xml import parse_xml
from ._xsd import load_xsd, xsd_findings

__all__ = ["PACKAGE", "XSD_ACQUIT", "XSD_ALLER", "XSD_RETOUR", "schema_for", "validate_document"]

#: Folder of the official package, relative to ``schema_dir``.
PACKAGE = Path("accounting") / "pes-xsd-v5.17"
XSD_ALLER = Path("PES_V2") / "Rev0" / "PES_Aller.xsd"
XSD_ACQUIT = Path("PES_V2") / "Rev0" / "PES_V2_Acquit_Autonome_V2.xsd"
XSD_RETOUR = Path("PES_V2") / "RETOUR" / "Rev0" / "PES_Retour.xsd"

def schema_for(schema_dir: Path, relative: Path) -> etree.XMLSchema:
    """The compiled XSD ``relative`` of the PES package under ``schema_dir`` (cached)."""
    return load_xsd(
        schema_dir, PACKAGE / relative, package="the DGFiP PES V2 schema package v5.17",
        hint=("fetch the DGFiP PES V2 schema package v5.17 (collectivites-locales.gouv.fr, « PES V2 schémas XSD ») "
              f"and unpack it so that {PACKAGE / relative} exists under {schema_dir}"),
    )


def validate_document(data: bytes, *, schema_dir: Path, relative: Path, name: str) -> list[Finding]:
    """Findings of the XSD ``relative`` on ``data`` (empty when the document is valid)."""
    return xsd_findings(schema_for(schema_dir, relative), parse_xml(data, name=name).getroottree())
