"""Child lookups for the invoice readers without ElementPath.

``Element.find(path)`` goes through lxml's ElementPath, which tokenises each path and keeps
at most 100 compiled paths: the UBL and CII readers use more distinct paths than that, so
every lookup recompiled its path (~10-20 µs each, most of the cost of reading an invoice).
A :class:`Node` indexes an element's children by tag once (one dict comprehension) and
answers each lookup with a dict access; ``iterchildren(tag)`` is no substitute, as it parses
its tag argument on every call. Two lookups along several steps keep the two semantics the
readers relied on: :meth:`Node.leaf` / :meth:`Node.text` chain ``find(step)`` calls (first
child, then its first child), :meth:`Node.find` / :meth:`Node.find_text` are
``find("a/b")`` (the first match under *any* ``a``). Steps are plain ``{namespace}local`` tags.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

__all__ = ["Node", "child", "children"]


class Node:
    """An element and the first child of each tag, for repeated lookups on the same element."""

    __slots__ = ("element", "first")

    def __init__(self, element: etree._Element) -> None:
        self.element = element
        # Reversed, so that the first child of a tag is the one kept (as find() returns).
        self.first: dict[object, etree._Element] = {c.tag: c for c in reversed(element)}

    def get(self, attribute: str) -> str | None:
        """An attribute of the element."""
        return self.element.get(attribute)

    def child(self, tag: str, *deeper: str) -> Node | None:
        """``find(tag/deeper/...)`` indexed; None when absent."""
        element = self.find(tag, *deeper) if deeper else self.first.get(tag)
        return None if element is None else Node(element)

    def children(self, tag: str, *deeper: str) -> list[Node]:
        """Every child ``tag`` in document order; with ``deeper`` tags, every match along the path."""
        if tag not in self.first:
            return []
        found = list(self.element.iterchildren(tag))
        for step in deeper:
            found = [c for parent in found for c in parent.iterchildren(step)]
        return [Node(c) for c in found]

    def leaf(self, tag: str, *deeper: str) -> etree._Element | None:
        """The first child ``tag``, then its first child ``deeper[0]``...: a chain of ``find(tag)``."""
        element = self.first.get(tag)
        for step in deeper:  # one-off steps: a C-level scan beats building an index
            if element is None:
                return None
            element = next(element.iterchildren(step), None)
        return element

    def text(self, tag: str, *deeper: str) -> str | None:
        """Stripped text of :meth:`leaf`; "" when the element is empty, None when absent."""
        element = self.first.get(tag) if not deeper else self.leaf(tag, *deeper)
        return None if element is None else (element.text or "").strip()

    def find(self, tag: str, *deeper: str) -> etree._Element | None:
        """``Element.find("tag/deeper/...")``: the first match looking under every ``tag`` child."""
        if not deeper:
            return self.first.get(tag)
        return _first_along(self.iter(tag), deeper)

    def find_text(self, tag: str, *deeper: str) -> str | None:
        """Stripped text of :meth:`find`; "" when the element is empty, None when absent."""
        element = self.find(tag, *deeper)
        return None if element is None else (element.text or "").strip()

    def iter(self, tag: str) -> Iterator[etree._Element]:
        """The raw child elements ``tag``, in document order (not indexed)."""
        return self.element.iterchildren(tag) if tag in self.first else iter(())


def _first_along(candidates: Iterator[etree._Element], steps: tuple[str, ...]) -> etree._Element | None:
    for element in candidates:
        inner = element.iterchildren(steps[0])
        found = next(inner, None) if len(steps) == 1 else _first_along(inner, steps[1:])
        if found is not None:
            return found
    return None


def child(parent: Node | None, tag: str, *deeper: str) -> Node | None:
    """:meth:`Node.child` of a node that may be absent."""
    return None if parent is None else parent.child(tag, *deeper)


def children(parent: Node | None, tag: str, *deeper: str) -> list[Node]:
    """:meth:`Node.children` of a node that may be absent."""
    return [] if parent is None else parent.children(tag, *deeper)
