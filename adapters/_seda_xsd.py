"""Load the official SEDA XSDs offline and validate messages against them.

The SEDA main XSDs import the W3C ``xml`` and ``xlink`` schemas by their remote URLs; the
official package in ``archives/seda-xsd/`` ships local copies under ``w3c/``. A resolver maps
those two URLs to the local files and the parser is forbidden the network, so validation never
leaves the machine. A compiled schema is cached per file: compiling SEDA takes a second.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from ._xsd import load_xsd, xsd_findings

__all__ = ["schema_path", "seda_schema", "xsd_findings"]

_W3C = {
    "http://www.w3.org/2001/xml.xsd": "xml.xsd",
    "http://www.w3.org/1999/xlink.xsd": "xlink.xsd",
}


def schema_path(schema_dir: Path, version: str) -> Path:
    """Where the main XSD of SEDA ``version`` lives under the official schema root."""
    return Path(schema_dir) / "archives" / "seda-xsd" / f"seda-{version}" / f"seda-{version}-main.xsd"


def seda_schema(schema_dir: Path, version: str) -> etree.XMLSchema:
    """The compiled XSD of SEDA ``version``; the W3C schemas it imports come from the local ``w3c/``."""
    path = schema_path(schema_dir, version)
    w3c = path.parent.parent / "w3c"
    return load_xsd(
        schema_dir, path.relative_to(schema_dir), package=f"the SEDA {version} schemas",
        remote={url: w3c / local for url, local in _W3C.items()},
        hint=(f"fetch the official SEDA {version} schemas (github.com/culturecommunication/seda, branch "
              f"seda-{version}, folder schema/) into {path.parent}, and the W3C xml.xsd and xlink.xsd into {w3c}"),
    )
