"""A replay helper's side (what a ``bus replay --workers N`` child process runs), driven in a thread."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Sequence
from typing import Any

from bus import BusSettings
from bus._tls import run_own_loop
from bus.ledger import _replay
from bus.ledger._pool import SliceBoard


async def help_with(settings: BusSettings, slices: Sequence[Any], query: _replay.ReplayQuery,
                    shared: tuple[Any, ...], *, concurrency: int = 2) -> list[Any]:
    """Hand ``slices`` to a replay helper in one plan (``shared``: what the parent sends every helper:
    catalog, directory, record size limit, dossier keys, decrypting); its outcomes, in slice order.

    The helper reads the slices from Kafka itself; it answers one ``done`` per slice, then ``idle``.
    """
    ours, theirs = multiprocessing.Pipe()
    board = SliceBoard(multiprocessing.get_context("spawn"))
    helper = threading.Thread(target=lambda: run_own_loop(_replay._help(theirs, board, concurrency, settings)))
    helper.start()
    try:
        assert await asyncio.to_thread(ours.recv) == ("ready",)
        generation = board.plan(len(slices), len(slices))
        ours.send(("plan", generation, list(slices), query, False, shared))
        done = {}
        while (message := await asyncio.to_thread(ours.recv))[0] == "done":
            done[message[2]] = message[3]
        assert message == ("idle", generation)
    finally:
        ours.send(("stop",))
        await asyncio.to_thread(helper.join)
    return [done[i] for i in sorted(done)]
