"""Child lookups for the invoice readers without ElementPath.

``Element.find(path)`` goes through lxml's ElementPath, which tokenises each path and keeps
at most 100 compiled paths, and ``iterchildren(tag)`` parses its tag argument on every call
(~2 µs each): reading an invoice that way costs several times its parse. Here an element's
children are indexed by tag once (:func:`index`: one proxy and one tag per child, the floor
of any reader), and each lookup is a dict access. Tags are built once per namespace
(:class:`Tags`), so no lookup concatenates or hashes a new string.

Two lookups along several steps keep the two semantics the readers rely on: a chain of
:func:`first` calls is ``find(step)`` repeated (first child, then its first child), while
:func:`find` is ``Element.find("a/b")`` (the first match under *any* ``a``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lxml import etree

__all__ = ["Index", "Tags", "child", "every", "find", "first", "index", "text"]

Index = Mapping[object, etree._Element]
_NOTHING: Index = {}


class Tags:
    """The Clark tags of one namespace as attributes, each built once: ``cbc.ID`` is ``"{ns}ID"``."""

    def __init__(self, namespace: str) -> None:
        self.__dict__["_namespace"] = namespace

    def __getattr__(self, local: str) -> str:
        tag = f"{{{self.__dict__['_namespace']}}}{local}"
        self.__dict__[local] = tag  # later lookups are plain attribute reads
        return tag


def index(element: etree._Element | None) -> Index:
    """The first child of each tag of ``element`` (what ``find(tag)`` returns); empty for None."""
    if element is None:
        return _NOTHING
    # Reversed, so that the first child of a tag is the one kept; slicing makes the proxies in C.
    return {kid.tag: kid for kid in element[::-1]}


def child(kids: Index, tag: str) -> tuple[etree._Element | None, Index]:
    """The first child ``tag`` found in ``kids`` (an :func:`index`) and its own index."""
    element = kids.get(tag)
    return element, index(element)


def text(element: etree._Element | None) -> str | None:
    """Stripped text of ``element``; "" when it is empty, None when absent."""
    return None if element is None else (element.text or "").strip()


def first(element: etree._Element | None, tag: str) -> etree._Element | None:
    """The first child ``tag`` of ``element`` (``element.find(tag)``); None when either is absent.

    For the small containers of a chain a scan beats both an index and ``iterchildren(tag)``.
    """
    if element is not None:
        for kid in element[:]:
            if kid.tag == tag:
                return kid
    return None


def every(element: etree._Element | None, tag: str, kids: Index) -> list[etree._Element]:
    """Every child ``tag`` of ``element`` in document order; ``kids`` is its :func:`index`."""
    found = kids.get(tag)
    if found is None or element is None:
        return []
    if len(kids) == len(element):  # no tag repeats among the children: ``found`` is the only one
        return [found]
    return list(element.iterchildren(tag))


def find(element: etree._Element | None, kids: Index, tag: str, *deeper: str) -> etree._Element | None:
    """``Element.find("tag/deeper/...")``: the first match looking under every ``tag`` child.

    ``kids`` is the :func:`index` of ``element``. The first ``tag`` child is tried first,
    through the chain; the other ``tag`` children only when it holds no match.
    """
    head = kids.get(tag)
    if head is None or element is None:
        return None
    found = _along(head, deeper)
    if found is not None or not deeper:
        return found
    for other in element.iterchildren(tag):
        if other is not head:
            found = _along(other, deeper)
            if found is not None:
                return found
    return None


def _along(element: etree._Element, steps: tuple[str, ...]) -> etree._Element | None:
    """``find`` of ``steps`` below one element: first match looking under every candidate."""
    if not steps:
        return element
    return _first_along(element.iterchildren(steps[0]), steps[1:]) if len(steps) > 1 else first(element, steps[0])


def _first_along(candidates: Iterable[etree._Element], steps: tuple[str, ...]) -> etree._Element | None:
    for element in candidates:
        found = _along(element, steps)
        if found is not None:
            return found
    return None
