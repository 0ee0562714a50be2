"""XSD validation of PES V2 documents against the official DGFiP schema package v5.17.

The package is read from ``<schema_dir>/accounting/pes-xsd-v5.17``. Its imports
(xmldsig, XAdES, xmlenc) are shipped inside the package, so the schema is compiled from
local files only: a resolver refuses any location outside the package, and the parser
never touches the network. Compiling the PES_Aller schema takes a noticeable fraction of a
second, so each compiled schema is cached per absolute path for the life of the process.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from lxml import etree

from bus._errors import ConfigurationError

from ._base import Finding
from ._xml import parse_xml

__all__ = ["PACKAGE", "XSD_ACQUIT", "XSD_ALLER", "XSD_RETOUR", "schema_for", "validate_document"]

#: Folder of the official package, relative to ``schema_dir``.
PACKAGE = Path("accounting") / "pes-xsd-v5.17"
XSD_ALLER = Path("PES_V2") / "Rev0" / "PES_Aller.xsd"
XSD_ACQUIT = Path("PES_V2") / "Rev0" / "PES_V2_Acquit_Autonome_V2.xsd"
XSD_RETOUR = Path("PES_V2") / "RETOUR" / "Rev0" / "PES_Retour.xsd"

_LOCK = threading.Lock()


class _LocalOnly(etree.Resolver):
    """Resolve schema locations to files inside the package; refuse everything else."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self._root = root

    def resolve(self, system_url: str, public_id: str | None, context: object) -> object:
        if system_url.startswith("file://"):
            system_url = system_url[len("file://") :]
        path = Path(system_url)
        if "://" in system_url or not path.resolve().is_relative_to(self._root):
            raise _OutsidePackage(system_url)
        return None  # a local file inside the package: let libxml2 read it


class _OutsidePackage(Exception):
    """Raised inside the resolver, turned into a ConfigurationError by the caller."""


@functools.cache
def _compile(xsd: Path, root: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalOnly(root))
    try:
        return etree.XMLSchema(etree.parse(str(xsd), parser))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError, _OutsidePackage) as exc:
        raise ConfigurationError(
            f"cannot compile the PES XSD {xsd}: {exc}",
            hint=f"reinstall the official DGFiP PES V2 schema package v5.17 unmodified under {root}",
        ) from exc


def schema_for(schema_dir: Path, relative: Path) -> etree.XMLSchema:
    """The compiled XSD ``relative`` of the PES package under ``schema_dir`` (cached)."""
    root = (Path(schema_dir) / PACKAGE).resolve()
    xsd = root / relative
    if not xsd.is_file():
        raise ConfigurationError(
            f"PES XSD not found: {xsd}",
            hint=(
                "fetch the DGFiP PES V2 schema package v5.17 (collectivites-locales.gouv.fr, "
                f"« PES V2 schémas XSD ») and unpack it so that {PACKAGE / relative} exists under {schema_dir}"
            ),
        )
    # libxml2 schema compilation is not documented as thread-safe; compile once under a lock.
    with _LOCK:
        return _compile(xsd, root)


def validate_document(data: bytes, *, schema_dir: Path, relative: Path, name: str) -> list[Finding]:
    """Findings of the XSD ``relative`` on ``data`` (empty when the document is valid)."""
    schema = schema_for(schema_dir, relative)
    root = parse_xml(data, name=name)
    if schema.validate(root.getroottree()):
        return []
    return [Finding("XSD", error.path or f"line {error.line}", error.message) for error in schema.error_log]
