"""Load the official SEDA XSDs offline and validate messages against them.

The SEDA main XSDs import the W3C ``xml`` and ``xlink`` schemas by their remote URLs; the
official package in ``archives/seda-xsd/`` ships local copies under ``w3c/``. A resolver maps
those two URLs to the local files and the parser is forbidden the network, so validation never
leaves the machine. A compiled schema is cached per file: compiling SEDA takes a second.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

from bus._errors import ConfigurationError

from ._base import Finding

__all__ = ["schema_path", "seda_schema", "xsd_findings"]

_W3C = {
    "http://www.w3.org/2001/xml.xsd": "xml.xsd",
    "http://www.w3.org/1999/xlink.xsd": "xlink.xsd",
}


class _LocalW3CResolver(etree.Resolver):
    """Serves the W3C schemas the SEDA XSDs import from the package's ``w3c/`` folder."""

    def __init__(self, w3c_dir: Path) -> None:
        super().__init__()
        self._w3c_dir = w3c_dir

    def resolve(self, system_url: str, public_id: str, context: object) -> object:
        local = _W3C.get(system_url)
        if local is None:
            return None  # relative includes (seda-2.x-*.xsd) resolve from the file system as usual
        return self.resolve_filename(str(self._w3c_dir / local), context)


def schema_path(schema_dir: Path, version: str) -> Path:
    """Where the main XSD of SEDA ``version`` lives under the official schema root."""
    return Path(schema_dir) / "archives" / "seda-xsd" / f"seda-{version}" / f"seda-{version}-main.xsd"


def seda_schema(schema_dir: Path, version: str) -> etree.XMLSchema:
    """The compiled XSD of SEDA ``version``; ConfigurationError when the package is missing."""
    path = schema_path(schema_dir, version)
    w3c = path.parent.parent / "w3c"
    missing = [p for p in (path, w3c / "xml.xsd", w3c / "xlink.xsd") if not p.is_file()]
    if missing:
        raise ConfigurationError(
            f"SEDA {version} XSD not found: {', '.join(str(p) for p in missing)}",
            hint=(
                f"fetch the official SEDA {version} schemas (github.com/culturecommunication/seda, branch "
                f"seda-{version}, folder schema/) into {path.parent}, and the W3C xml.xsd and xlink.xsd into {w3c}"
            ),
        )
    return _compile(str(path.resolve()))


@functools.lru_cache(maxsize=8)
def _compile(path: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalW3CResolver(Path(path).parent.parent / "w3c"))
    try:
        return etree.XMLSchema(etree.parse(path, parser))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise ConfigurationError(
            f"the SEDA XSD at {path} does not compile: {exc}",
            hint="re-fetch the official SEDA schema package; a file is damaged or from another version",
        ) from exc


def xsd_findings(schema: etree.XMLSchema, root: etree._Element) -> list[Finding]:
    """One finding per XSD error, located by the XPath of the failing element."""
    if schema.validate(root.getroottree()):
        return []
    return [
        Finding(rule="XSD", location=error.path or f"line {error.line}", message=error.message)
        for error in schema.error_log
    ]
