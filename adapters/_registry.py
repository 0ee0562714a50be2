"""Find the adapter for a document: by explicit format name, or by sniffing its first bytes.

Adapters are discovered as the public modules of the :mod:`adapters` package that define
``FORMAT``, then as the entry points of group ``dcant_bus.adapters`` of installed packages
(a vendor's ``pip install``-able adapter: the entry point names a module or object following
:class:`~adapters.Adapter`); discovery imports them on first use, never at package import. A
plugin cannot replace a built-in format, and a plugin that fails to load stops discovery with
a :class:`~bus.ConfigurationError` naming it rather than silently vanishing.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import pkgutil
from types import ModuleType
from typing import Any

from bus._errors import ConfigurationError, UnknownFormatError

from ._base import Adapter, Sniff
from ._xml import root_qname

__all__ = ["ALIASES", "ENTRY_POINT_GROUP", "SIGNED_FORMATS", "adapter_for", "all_adapters", "detect", "signature_options",
           "sniff"]

ENTRY_POINT_GROUP = "dcant_bus.adapters"
#: Other names of built-in formats, as their users call them (``bus export cdar``).
ALIASES = {"cdar": "invoice-status"}
#: Formats whose reader verifies signatures made inside the document; their ``to_pivots`` takes
#: ``trust`` (a PEM file of trusted CAs) and ``require_signature``.
SIGNED_FORMATS = frozenset({"pes-aller"})


def signature_options(fmt: str, *, trust: Any = None, require_signature: bool = False) -> dict[str, Any]:
    """The signature keyword arguments of format ``fmt``'s reader: the given ones for a signed format, else none."""
    if fmt not in SIGNED_FORMATS:
        return {}
    return {k: v for k, v in {"trust": trust, "require_signature": require_signature}.items() if v}


def _plugins(builtin: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        where = f"entry point {entry.name} = {entry.value}"
        try:
            adapter = entry.load()
        except Exception as exc:  # a third party's import may fail in any way; we name it
            raise ConfigurationError(f"adapter plugin {where} does not load: {type(exc).__name__}: {exc}",
                                     hint="fix or uninstall the package that declares it") from exc
        if not isinstance(adapter, Adapter):
            raise ConfigurationError(f"adapter plugin {where} lacks FORMAT, FAMILY, detect or to_pivot",
                                     hint="see adapters.Adapter for the contract")
        if adapter.FORMAT in builtin or adapter.FORMAT in found or adapter.FORMAT in ALIASES:
            raise ConfigurationError(f"adapter plugin {where} claims format {adapter.FORMAT!r}, already taken",
                                     hint="a plugin adds a format; it cannot replace one")
        found[adapter.FORMAT] = adapter
    return found


@functools.cache
def all_adapters() -> dict[str, ModuleType]:
    """Every adapter module keyed by its ``FORMAT``, in module-name order."""
    import adapters

    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(adapters.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"adapters.{info.name}")
        fmt = getattr(module, "FORMAT", None)
        if fmt is not None:
            found[fmt] = module
    found.update(_plugins(found))
    return found


def adapter_for(fmt: str) -> ModuleType:
    """The adapter module of format ``fmt`` (or of its alias); raises UnknownFormatError listing the known ones."""
    try:
        return all_adapters()[ALIASES.get(fmt, fmt)]
    except KeyError:
        known = ", ".join(sorted([*all_adapters(), *ALIASES]))
        raise UnknownFormatError(f"unknown format {fmt!r}", hint=f"use one of: {known}") from None


def sniff(data: bytes) -> Sniff:
    """Classify the document from its first bytes (and its root element for XML)."""
    head = data[:4096]
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"%PDF-"):
        return Sniff("pdf", head=head)
    if stripped.startswith(b"PK\x03\x04"):
        return Sniff("zip", head=head)
    if stripped[:1] in (b"{", b"["):
        return Sniff("json", head=head)
    if stripped.startswith(b"<") or head.startswith((b"\xff\xfe", b"\xfe\xff")):
        found = root_qname(data)
        if found is not None:
            return Sniff("xml", root_ns=found[0], root_tag=found[1], head=head)
        return Sniff("xml", head=head)
    if b"," in stripped.split(b"\n", 1)[0] or b";" in stripped.split(b"\n", 1)[0]:
        return Sniff("csv", head=head)
    return Sniff("unknown", head=head)


def detect(data: bytes, *, name: str = "<bytes>") -> ModuleType:
    """The adapter that recognises ``data``; raises UnknownFormatError when none does."""
    found = sniff(data)
    for module in all_adapters().values():
        if module.detect(found):
            return module
    what = f"root element {{{found.root_ns}}}{found.root_tag}" if found.root_tag else f"{found.kind} content"
    raise UnknownFormatError(f"no adapter recognises this document ({what})", document=name)
