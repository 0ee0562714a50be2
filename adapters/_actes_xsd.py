"""XSD validation of ACTES messages against the official v1.1 schema package.

The schema (actesv1_1.xsd, which imports siret.xsd, which includes insee-commun.xsd) is read
from ``<schema_dir>/acts/xsd/`` once per path and kept: compiling it costs far more than
validating a message. It is read from the local disk only; imports resolve next to it.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

from bus._errors import ConfigurationError

from ._base import Finding
from ._xml import parse_xml

__all__ = ["XSD_RELATIVE_PATH", "actes_schema", "validate_actes"]

XSD_RELATIVE_PATH = Path("acts") / "xsd" / "actesv1_1.xsd"


@functools.lru_cache(maxsize=8)
def _compile(path: str) -> etree.XMLSchema:
    # Trusted local schema files, parsed with their path as base URL so the relative
    # xsd:import of siret.xsd resolves; the network stays off.
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    try:
        return etree.XMLSchema(etree.parse(path, parser=parser))
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError, OSError) as exc:
        raise ConfigurationError(
            f"cannot load the ACTES XSD {path}: {exc}",
            hint="reinstall the ACTES v1.1 schema package (actesv1_1.xsd, siret.xsd, insee-commun.xsd) in that folder",
        ) from exc


def actes_schema(schema_dir: Path | str) -> etree.XMLSchema:
    """The compiled ACTES v1.1 schema under ``schema_dir`` (cached per resolved path)."""
    path = Path(schema_dir) / XSD_RELATIVE_PATH
    if not path.is_file():
        raise ConfigurationError(
            f"the ACTES v1.1 XSD is missing at {path}",
            hint=(
                "fetch the ACTES v1.1 schema package of the Ministère de l'Intérieur (actesv1_1.xsd with its imports "
                f"siret.xsd and insee-commun.xsd) and put the three files in {path.parent}"
            ),
        )
    return _compile(str(path.resolve()))


def validate_actes(data: bytes, *, schema_dir: Path | str, name: str) -> list[Finding]:
    """XSD findings of an ACTES message (empty when it validates). Rule ``XSD``, location the XPath."""
    schema = actes_schema(schema_dir)
    root = parse_xml(data, name=name)
    if schema.validate(root.getroottree()):
        return []
    return [
        Finding(rule="XSD", location=error.path or f"line {error.line}", message=error.message)
        for error in schema.error_log
    ]
