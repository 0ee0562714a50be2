"""Official XSD packages: compiled once per process, from local files only.

Every adapter validates against the official schemas through this module, so there is one
place to review how a schema is loaded: the parser has no network, no entity expansion and
no DTD; a resolver keeps every ``xsd:import``/``xsd:include`` inside its official package
(refusing anything else), and maps the few remote W3C locations the official
packages import (``xml.xsd``, ``xlink.xsd``) to local copies. Compiling UBL or PES takes far
longer than validating a document, so compiled schemas are cached; compilation is serialised
because libxml2 does not document it as thread-safe.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from pathlib import Path

from lxml import etree

from bus._errors import ConfigurationError

from ._base import Finding

__all__ = ["load_xsd", "xsd_findings"]

_LOCK = threading.Lock()


class _OutsideSchemaDir(Exception):
    """Raised inside the resolver; turned into a ConfigurationError by the caller."""


class _LocalResolver(etree.Resolver):
    """Serves mapped remote locations from local files; refuses anything outside ``root``."""

    def __init__(self, root: Path, remote: Mapping[str, str]) -> None:
        super().__init__()
        self._root = root
        self._remote = remote

    def resolve(self, system_url: str, public_id: str | None, context: object) -> object:
        local = self._remote.get(system_url)
        if local is not None:
            return self.resolve_filename(local, context)
        path = system_url[len("file://"):] if system_url.startswith("file://") else system_url
        if "://" in path or not Path(path).resolve().is_relative_to(self._root):
            raise _OutsideSchemaDir(system_url)
        return None  # a file inside the schema directory: libxml2 reads it


@functools.cache
def _compile(path: str, root: str, remote: tuple[tuple[str, str], ...]) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalResolver(Path(root), dict(remote)))
    try:
        return etree.XMLSchema(etree.parse(path, parser))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError, _OutsideSchemaDir) as exc:
        raise ConfigurationError(
            f"cannot compile the XSD {path}: {exc}",
            hint="re-install the official schema package unchanged: every imported XSD must sit beside it",
        ) from exc


def load_xsd(schema_dir: Path | str, relative: str | Path, *, package: str,
             remote: Mapping[str, str | Path] | None = None, hint: str | None = None) -> etree.XMLSchema:
    """The compiled XSD ``schema_dir/relative``.

    ``package`` names the official package to fetch when the file is missing (said in the
    error's hint, or ``hint`` verbatim); ``remote`` maps remote schema locations it imports to
    local files. Imports and includes must stay inside the package, taken as the first two
    levels of ``relative`` (``accounting/pes-xsd-v5.17``, ``archives/seda-xsd``...). Raises
    ConfigurationError when a file is missing, leaves the package, or does not compile.
    """
    base = Path(schema_dir).resolve()
    path = base / relative
    package_root = base.joinpath(*Path(relative).parts[:2]) if len(Path(relative).parts) > 2 else base
    needed = [path, *(Path(p) for p in (remote or {}).values())]
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise ConfigurationError(
            f"XSD not found: {', '.join(str(p) for p in missing)}",
            hint=hint or f"fetch {package} and unpack it so that {path} exists (BUS_SCHEMA_DIR is {schema_dir}; "
                         "README § 'Official rules and schemas' says where to get it)",
        )
    mapped = tuple(sorted((url, str(Path(local).resolve())) for url, local in (remote or {}).items()))
    with _LOCK:
        return _compile(str(path.resolve()), str(package_root.resolve()), mapped)


def xsd_findings(schema: etree.XMLSchema, root: etree._Element | etree._ElementTree) -> list[Finding]:
    """Every XSD error as a Finding: rule ``XSD``, location the failing element's XPath."""
    if schema.validate(root):
        return []
    return [Finding("XSD", error.path or f"line {error.line}", error.message) for error in schema.error_log]
