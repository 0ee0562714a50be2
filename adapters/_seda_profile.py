"""SEDA archiving profiles as RelaxNG: compiled offline, and a transfer checked against one.

Archive services write their profiles with profile tools (SHERPA, ReSIP...) that export a
RelaxNG grammar (XML syntax). The bus reads such a grammar only from the profile bank (the
``reference.profiles`` topic, :mod:`bus._profiles`) or a resolved package, never from a URL
inside a document: the grammar is parsed by the hardened parser (no DTD, no entity, no
network) and any ``include`` or ``externalRef`` is refused before libxml2 sees it, whatever
its ``href`` (a URL would be a fetch, a path a read of the local disk).
"""

from __future__ import annotations

import hashlib

from lxml import etree

from bus._errors import AdapterError, ProfileRefusedError, UnsafeProfileError

from ._xml import parse_xml

__all__ = ["RNG_NS", "compile_profile", "profile_sha256", "validate_transfer"]

RNG_NS = "http://relaxng.org/ns/structure/1.0"
_EXTERNAL = (f"{{{RNG_NS}}}include", f"{{{RNG_NS}}}externalRef")
#: A profile is a grammar, not a document store: far below the documents' bound.
MAX_PROFILE_BYTES = 8 * 1024 * 1024


def profile_sha256(text: str) -> str:
    """Hex SHA-256 of a profile's UTF-8 text (what an approval names)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compile_profile(text: str, *, name: str = "<profile>") -> etree.RelaxNG:
    """The compiled RelaxNG of a self-contained profile; :class:`UnsafeProfileError` otherwise."""
    try:
        root = parse_xml(text.encode("utf-8"), name=name, max_bytes=MAX_PROFILE_BYTES)
    except AdapterError as err:
        raise UnsafeProfileError(f"profile {name} is not a safe XML grammar: {err.message}", profile=name) from err
    if root.tag not in (f"{{{RNG_NS}}}grammar", f"{{{RNG_NS}}}element"):
        raise UnsafeProfileError(f"profile {name} is not a RelaxNG grammar (root {root.tag})", profile=name)
    for node in root.iter(*_EXTERNAL):
        raise UnsafeProfileError(
            f"profile {name} refers outside itself: <{etree.QName(node).localname} href=\"{node.get('href')}\">",
            profile=name, line=node.sourceline)
    try:
        return etree.RelaxNG(root)
    except etree.RelaxNGParseError as exc:
        raise UnsafeProfileError(f"profile {name} is not a valid RelaxNG grammar: {exc}", profile=name) from exc


def validate_transfer(grammar: etree.RelaxNG, data: bytes, *, profile: str, name: str = "<transfer>") -> None:
    """Check a SEDA message against a compiled profile; :class:`ProfileRefusedError` naming the failing element."""
    root = parse_xml(data, name=name)
    if grammar.validate(root):
        return
    errors = [e for e in grammar.error_log]
    # libxml2 names the element by position (/*/*[2] in a namespaced document): resolve it to names.
    entry = next((e for e in errors if e.path), errors[-1] if errors else None)
    found = root.xpath(entry.path) if entry is not None and entry.path else []
    node = found[0] if found and isinstance(found[0], etree._Element) else root
    steps = [etree.QName(n).localname for n in reversed([node, *node.iterancestors()])]
    element, path = steps[-1], "/" + "/".join(steps)
    messages = "; ".join(dict.fromkeys(e.message.strip() for e in errors if e.path == getattr(entry, "path", None)))
    # French: archivists and the collectivity's agents read it as the dossier's refusal reason.
    raise ProfileRefusedError(f"le versement {name} ne suit pas le profil {profile} : élément {element} ({path}) : "
                              f"{messages or 'non conforme'}",
                              profile=profile, element=element, xpath=path, document=name)
