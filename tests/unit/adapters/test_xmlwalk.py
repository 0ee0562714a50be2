"""The child lookups of the invoice readers answer exactly what lxml's own ``find`` answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters._xmlwalk import Tags, every, find, first, index, text

NS = "urn:example:walk"
t = Tags(NS)
LOCALS = ["a", "b", "c"]


@st.composite
def trees(draw: st.DrawFn, depth: int = 3) -> str:
    """A small tree of a, b, c elements (in NS), with comments and blank or padded text."""
    local = draw(st.sampled_from(LOCALS))
    inner = draw(st.sampled_from(["", " x ", "  ", "<!--note-->", "y<!--n-->z"]))
    if depth > 0:
        inner += "".join(draw(st.lists(trees(depth - 1), max_size=4)))
    return f"<{local}>{inner}</{local}>"


def _root(body: str) -> etree._Element:
    return etree.fromstring(f'<r xmlns="{NS}">{body}</r>'.encode())


def test_tags_are_clark_names_built_once() -> None:
    assert t.ID == f"{{{NS}}}ID"
    assert t.ID is t.ID


@settings(max_examples=80, deadline=None)
@given(body=st.lists(trees(), max_size=5).map("".join))
def test_lookups_match_lxml(body: str) -> None:
    tags = [getattr(t, local) for local in LOCALS]
    for element in _root(body).iter(etree.Element):
        kids = index(element)
        for a in tags:
            assert kids.get(a) is element.find(a)
            assert first(element, a) is element.find(a)
            assert every(element, a, kids) == element.findall(a)
            for b in tags:
                assert find(element, kids, a, b) is element.find(f"{a}/{b}")
                for c in tags:
                    assert find(element, kids, a, b, c) is element.find(f"{a}/{b}/{c}")


def test_absent_elements() -> None:
    assert index(None) == {}
    assert first(None, t.a) is None
    assert every(None, t.a, index(None)) == []
    assert find(None, index(None), t.a, t.b) is None
    assert text(None) is None


def test_text_is_stripped_and_empty_for_an_empty_element() -> None:
    root = _root("<a> x </a><b/><c>  </c>")
    assert [text(root.find(getattr(t, local))) for local in LOCALS] == ["x", "", ""]
