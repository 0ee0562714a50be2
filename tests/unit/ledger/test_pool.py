"""Slices and the claim board: contiguous runs, halves for latecomers, a window, generations."""

from __future__ import annotations

import asyncio
import multiprocessing

from bus.ledger._pool import CAPACITY, Helpers, Slice, SliceBoard, plan_slices

PARENT, HELPER = 1, 2


def board(count: int, window: int | None = None) -> tuple[SliceBoard, int]:
    b = SliceBoard(multiprocessing.get_context("spawn"))
    return b, b.plan(count, window or count)


def test_ranges_are_cut_in_slices_and_huge_ranges_in_at_most_capacity():
    assert plan_slices([("t", 0, 5, 12), ("t", 1, 0, 0), ("u", 0, 0, 3)], 4) == [
        Slice("t", 0, 5, 9), Slice("t", 0, 9, 12), Slice("u", 0, 0, 3)]
    assert len(plan_slices([("t", p, 0, 10**9) for p in range(3)], 256)) <= CAPACITY


def test_the_parent_reads_on_from_the_front_and_a_helper_takes_the_middle_of_the_rest():
    b, gen = board(10)
    assert [b.claim(PARENT, None, gen), b.claim(PARENT, 0, gen)] == [0, 1]
    assert b.claim(HELPER, None, gen) == 6  # the middle of 2..9: four slices each
    assert b.claim(HELPER, 6, gen) == 7
    assert b.claim(PARENT, 1, gen) == 2
    taken = [2, 7]
    while (i := b.claim(PARENT, taken[0], gen)) not in (None, -1):
        taken[0] = i
        if (j := b.claim(HELPER, taken[1], gen)) not in (None, -1):
            taken[1] = j
    assert b.claim(HELPER, taken[1], gen) == -1
    assert sorted(b.claimed_by(PARENT) + b.claimed_by(HELPER)) == list(range(10))


def test_the_window_holds_claims_until_the_parent_has_yielded():
    b, gen = board(10, window=3)
    assert [b.claim(PARENT, None, gen), b.claim(HELPER, None, gen), b.claim(HELPER, 2, gen)] == [0, 2, 1]
    assert b.claim(HELPER, 1, gen) is None  # slice 3 is beyond the window
    b.advance(2)
    assert b.claim(HELPER, 2, gen) == 3


def test_a_new_plan_stops_the_helpers_of_the_old_one():
    b, old = board(4)
    assert b.claim(HELPER, None, old) == 2
    new = b.plan(4, 4)
    assert b.claim(HELPER, 2, old) == -1
    assert b.claim(HELPER, None, new) == 2  # every slice is free again
    b.cancel()
    assert b.claim(PARENT, None, new) == -1


def count_slices(conn, board, owner, plan_size):  # runs in a spawned helper
    conn.send(("ready",))
    message = conn.recv()
    last = None
    while (index := board.claim(owner, last, message[1])) != -1:
        if index is not None:
            conn.send(("done", message[1], index, owner))
            last = index
    conn.send(("idle", message[1]))
    conn.recv()


async def test_helpers_claim_on_the_same_board_as_the_parent():
    helpers = Helpers(2, count_slices, (40,))
    try:
        while len(helpers.ready) < 2:
            owner, message = await asyncio.wait_for(helpers.messages.get(), 60)
        generation = helpers.board.plan(40, 40)
        helpers.send(("plan", generation))
        idle, done = 0, {}
        while idle < 2:
            owner, message = await asyncio.wait_for(helpers.messages.get(), 60)
            if message[0] == "done":
                done[message[2]] = owner
            idle += message[0] == "idle"
        assert sorted(done) == list(range(40)) and set(done.values()) <= {2, 3}
    finally:
        helpers.close()
    assert helpers.alive == 0
