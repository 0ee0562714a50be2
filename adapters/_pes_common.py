"""Reading helpers shared by the PES V2 adapters (PES_Aller, PES_ACQUIT, PES_Retour).

PES V2 carries every value in a ``V`` attribute of an unqualified element
(``<IdPce V="832"/>``); only the root element is namespaced. Readers walk the tree once,
child by child, and turn each block into a ``{local name: V}`` dict: this is several times
faster than one XPath query per field and keeps the adapters near the cost of the parse
itself. Values are kept exactly as written (amounts stay decimal strings); only dates,
years, counts and booleans are converted, and a value that cannot be converted is a
:class:`NonConformantError` naming the XPath of the element.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from lxml import etree

from bus._errors import NonConformantError

from ._base import Sniff
from ._xml import parse_xml

__all__ = [
    "Block",
    "NS_ACQUIT",
    "NS_ALLER",
    "NS_RETOUR",
    "bordereau_subject",
    "canonical_number",
    "children",
    "file_subject",
    "parse_pes",
    "sniffs_as",
]

NS_ALLER = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"
NS_ACQUIT = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"
NS_RETOUR = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour"

# xs:decimal lexical space, as the PES XSD restricts it (no exponent).
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)\Z")
_BOOLEANS = {"1": True, "true": True, "0": False, "false": False}


def sniffs_as(sniff: Sniff, root_tag: str, namespace: str) -> bool:
    """True when the sniffed root is ``root_tag`` in ``namespace`` (or unqualified, as some
    ordonnateur software writes it)."""
    return sniff.kind == "xml" and sniff.root_tag == root_tag and sniff.root_ns in (namespace, None)


def parse_pes(data: bytes, *, name: str, root_tag: str, namespace: str) -> etree._Element:
    """Parse ``data`` with the hardened parser and check its root is the expected PES root."""
    root = parse_xml(data, name=name)
    q = etree.QName(root)
    if q.localname != root_tag or q.namespace not in (namespace, None):
        raise NonConformantError(
            f"root element is {{{q.namespace}}}{q.localname}, not {root_tag}",
            document=name,
            rule="PES-ROOT",
            xpath="/",
            hint=f"this adapter reads {root_tag} documents in namespace {namespace}",
        )
    return root


def children(element: etree._Element, tag: str) -> Iterator[etree._Element]:
    """The child elements named ``tag`` (unqualified), in document order."""
    return element.iterchildren(tag)


class Block:
    """The ``V`` values of one PES block's child elements, with typed getters.

    ``path`` is the XPath of the block; it is reported in errors so the sender can find the
    offending element. Sub-blocks (elements with children) are kept as elements in ``nodes``.
    """

    __slots__ = ("document", "element", "nodes", "path", "values")

    def __init__(self, element: etree._Element | None, path: str, document: str) -> None:
        self.element = element
        self.path = path
        self.document = document
        values: dict[str, str] = {}
        nodes: dict[str, etree._Element] = {}
        if element is not None:
            # The hot loop of every PES reader: one proxy, one tag and one attribute lookup per
            # child. Comments land in ``nodes`` under a non-string key nobody asks for.
            for child in element:
                v = child.get("V")
                if v is None:
                    nodes[child.tag] = child
                else:
                    values[child.tag] = v
        self.values = values
        self.nodes = nodes

    def sub(self, tag: str) -> Block | None:
        """The child block ``tag``, or None when absent."""
        node = self.nodes.get(tag)
        return None if node is None else Block(node, f"{self.path}/{tag}", self.document)

    def text(self, tag: str) -> str | None:
        """The ``V`` of child ``tag`` exactly as written, or None when absent."""
        return self.values.get(tag)

    def required(self, tag: str) -> str:
        """The ``V`` of child ``tag``; a :class:`NonConformantError` when it is missing."""
        value = self.values.get(tag)
        if value is None:
            raise self.error(tag, f"{tag} is missing", rule="PES-REQUIRED")
        return value

    def amount(self, tag: str, *, required: bool = False) -> str | None:
        """A decimal amount as written (surrounding blanks removed, as xs:decimal does)."""
        raw = self.required(tag) if required else self.values.get(tag)
        if raw is None:
            return None
        value = raw.strip()
        if not _DECIMAL.match(value):
            raise self.error(tag, f"{tag} {raw!r} is not a decimal amount", rule="PES-AMOUNT")
        return value

    def date(self, tag: str, *, required: bool = False) -> dt.date | None:
        """An xs:date (a time zone suffix, allowed by xs:date, is dropped)."""
        raw = self.required(tag) if required else self.values.get(tag)
        if raw is None:
            return None
        try:
            return dt.date.fromisoformat(raw.strip()[:10])
        except ValueError:
            raise self.error(tag, f"{tag} {raw!r} is not a date YYYY-MM-DD", rule="PES-DATE") from None

    def integer(self, tag: str, *, required: bool = False) -> int | None:
        """A year or a count."""
        raw = self.required(tag) if required else self.values.get(tag)
        if raw is None:
            return None
        try:
            return int(raw.strip())
        except ValueError:
            raise self.error(tag, f"{tag} {raw!r} is not a whole number", rule="PES-INTEGER") from None

    def boolean(self, tag: str, *, required: bool = False) -> bool | None:
        """An xs:boolean (0, 1, false, true)."""
        raw = self.required(tag) if required else self.values.get(tag)
        if raw is None:
            return None
        try:
            return _BOOLEANS[raw.strip()]
        except KeyError:
            raise self.error(tag, f"{tag} {raw!r} is not a boolean (0/1)", rule="PES-BOOLEAN") from None

    def error(self, tag: str, message: str, *, rule: str) -> NonConformantError:
        """A NonConformantError located at child ``tag`` of this block."""
        return NonConformantError(message, document=self.document, rule=rule, xpath=f"{self.path}/{tag}")


def canonical_number(number: str) -> str:
    """A bordereau number as the subject writes it: numeric ones without leading zeros, so
    ``0001847`` in a PES_Aller and ``1847`` in its acquittement name the same dossier."""
    stripped = number.strip()
    return str(int(stripped)) if stripped.isascii() and stripped.isdigit() else stripped


def bordereau_subject(collectivity_id: str, exercise: int, number: str) -> str:
    """The dossier id of a dépense bordereau: ``bordereau:<IdColl>:<exercise>:<number>``."""
    return f"bordereau:{collectivity_id.strip()}:{exercise}:{canonical_number(number)}"


def file_subject(file_name: str) -> str:
    """The dossier id of a PES file that concerns no single bordereau: ``pes:<NomFic>``."""
    return f"pes:{file_name.strip()}"
