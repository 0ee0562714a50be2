"""Inbox cursors: per-partition offsets, opaque on the wire, merged by acknowledgement."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus.gateway import GatewayProblem
from bus.gateway._cursor import Cursor

positions = st.dictionaries(st.from_regex(r"[a-z.]{1,20}:[0-9]", fullmatch=True), st.integers(0, 2**40), max_size=8)


@settings(deadline=None)  # a loaded 2-core machine makes the first examples slow, not wrong
@given(positions)
def test_a_cursor_survives_its_encoding(values):
    assert Cursor.decode(Cursor(values).encode()) == Cursor(values)


def test_an_event_is_after_the_cursor_of_its_own_partition_only():
    cursor = Cursor().after("dcant.invoices", 2, 41)
    assert not cursor.admits("dcant.invoices", 2, 41)
    assert cursor.admits("dcant.invoices", 2, 42)
    assert cursor.admits("dcant.invoices", 3, 0)


def test_merging_keeps_the_furthest_position_per_partition():
    a = Cursor({"t:0": 5, "t:1": 2})
    b = Cursor({"t:0": 3, "t:2": 7})
    assert a.merge(b) == Cursor({"t:0": 5, "t:1": 2, "t:2": 7})


@pytest.mark.parametrize("text", ["%%%", "bm90IGpzb24", "WzEsMl0", "eyJ0OjAiOi0xfQ"])
def test_what_is_not_a_cursor_is_a_422_problem(text):
    with pytest.raises(GatewayProblem) as caught:
        Cursor.decode(text)
    assert caught.value.status == 422
