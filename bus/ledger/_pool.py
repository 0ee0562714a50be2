"""Sharing a replay between processes: slices of partitions claimed on a board in shared memory.

A replay's offset ranges are cut into :class:`Slice` s. Every process, the parent included,
claims slices on one :class:`SliceBoard` (a byte per slice in shared memory, under a lock),
reads them straight from Kafka with its own consumer, and opens them; helpers send back only
what the parent yields (the refused records and counts, or every opened record when asked).
A process keeps claiming the slice after its last one, so it reads on without seeking; when
that one is taken it starts in the middle of the largest unclaimed run, so the work splits
in halves and stays balanced to the last slice. ``window`` bounds how far ahead of the
parent's output slices may be claimed (what the parent holds back to keep the order).

:class:`Helpers` starts the helper processes (``spawn``: importing the bus costs each about
half a second) and keeps them for as many plans as its owner hands out; the parent works
meanwhile, so a helper that is not ready when the last slice is claimed has cost nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["CAPACITY", "Helpers", "PARENT", "Slice", "SliceBoard", "plan_slices"]

#: Slices one board holds; larger replays get larger slices.
CAPACITY = 1 << 16
_FREE = 0
#: The owner number of the process that plans and yields; helpers are 2, 3...
PARENT = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Slice:
    """The offsets ``[start, end)`` of one partition."""

    topic: str
    partition: int
    start: int
    end: int


def plan_slices(ranges: Sequence[tuple[str, int, int, int]], size: int) -> list[Slice]:
    """``(topic, partition, begin, end)`` ranges cut in slices of ``size`` offsets (at most CAPACITY)."""
    total = sum(max(0, end - begin) for _, _, begin, end in ranges)
    size = max(size, -(-total // max(1, CAPACITY - len(ranges))))  # a partition's last slice may be short
    return [Slice(topic, partition, start, min(start + size, end))
            for topic, partition, begin, end in ranges for start in range(begin, end, size)]


class SliceBoard:
    """Who claimed which slice (0 free, 1 the parent, 2.. helpers), shared by every process.

    Each plan has a generation: a helper still busy with an earlier plan gets -1 from
    :meth:`claim` instead of a slice of the new one.
    """

    def __init__(self, context: Any) -> None:
        self._lock = context.Lock()
        self._owners = context.RawArray("b", CAPACITY)
        self._state = context.RawArray("q", 4)  # slices, first slice not yet yielded, window, generation

    def plan(self, count: int, window: int) -> int:
        """Start a plan of ``count`` slices (all free); returns its generation."""
        with self._lock:
            ctypes.memset(self._owners, _FREE, CAPACITY)
            self._state[0], self._state[1], self._state[2] = count, 0, window
            self._state[3] += 1
            return int(self._state[3])

    def cancel(self) -> None:
        """End the current plan: helpers stop claiming."""
        with self._lock:
            self._state[0] = 0
            self._state[3] += 1

    def advance(self, floor: int) -> None:
        """The parent yielded every slice below ``floor``: claims may go ``window`` past it."""
        self._state[1] = floor

    def claim(self, owner: int, last: int | None, generation: int) -> int | None:
        """A slice for ``owner`` (the one after its ``last`` if free), None to wait, -1 when none is left."""
        with self._lock:
            count, floor, window = self._state[0], self._state[1], self._state[2]
            if self._state[3] != generation:
                return -1
            limit = min(count, floor + window)
            owners = self._owners
            if last is not None and last + 1 < limit and owners[last + 1] == _FREE:
                owners[last + 1] = owner
                return last + 1
            best_start, best_length, i = -1, 0, floor
            while i < limit:
                if owners[i] != _FREE:
                    i += 1
                    continue
                j = i
                while j < limit and owners[j] == _FREE:
                    j += 1
                if j - i > best_length:
                    best_start, best_length = i, j - i
                i = j
            if best_start < 0:
                return None if any(owners[i] == _FREE for i in range(limit, count)) else -1
            # The parent starts at the front (it yields in order); later jumps split the largest run.
            chosen = best_start if last is None and owner == PARENT else best_start + best_length // 2
            owners[chosen] = owner
            return chosen

    def claimed_by(self, owner: int) -> list[int]:
        with self._lock:
            return [i for i in range(self._state[0]) if self._owners[i] == owner]


class Helpers:
    """The parent's side of the helper processes: start, messages both ways, stop.

    ``target(conn, board, owner, *args)`` runs in each helper: it sends ``("ready",)`` once
    its consumer is up, then per plan ``("done", generation, index, result)`` or
    ``("failed", generation, index, text)`` per slice and ``("idle", generation)``. Messages
    to the helpers go through one thread, in order: a plan carries a whole catalog, which
    would otherwise hold this process until a helper still importing the bus reads it.
    """

    def __init__(self, count: int, target: Callable[..., None], args: tuple[Any, ...]) -> None:
        if not 0 <= count < 127 - PARENT:
            raise ValueError(f"{count} helpers: a board records at most {126 - PARENT} owners besides the parent")
        context = multiprocessing.get_context("spawn")
        self.board = SliceBoard(context)
        self.messages: asyncio.Queue[tuple[int, tuple[Any, ...]]] = asyncio.Queue()
        self._conns: dict[int, Connection] = {}
        self._processes: dict[int, Any] = {}
        self._sender = ThreadPoolExecutor(1, thread_name_prefix="bus-replay-send")
        self.ready: set[int] = set()
        loop = asyncio.get_running_loop()
        for owner in range(PARENT + 1, PARENT + 1 + count):
            ours, theirs = context.Pipe()
            process = context.Process(target=target, args=(theirs, self.board, owner, *args), daemon=True,
                                      name=f"bus-replay-{owner}")
            process.start()
            theirs.close()
            self._conns[owner], self._processes[owner] = ours, process
            loop.add_reader(ours.fileno(), self._receive, owner)

    def _receive(self, owner: int) -> None:
        conn = self._conns[owner]
        try:
            message = conn.recv()
        except (EOFError, OSError):
            self._drop(owner)
            message = ("gone",)
        if message[0] == "ready":
            self.ready.add(owner)
        self.messages.put_nowait((owner, message))

    def _drop(self, owner: int) -> None:
        conn = self._conns.pop(owner, None)
        if conn is not None:
            asyncio.get_running_loop().remove_reader(conn.fileno())
            conn.close()
        self.ready.discard(owner)

    @property
    def alive(self) -> int:
        return len(self._conns)

    def send(self, message: tuple[Any, ...]) -> None:
        """Send ``message`` to every helper still there (in the background, in order)."""
        for conn in list(self._conns.values()):
            self._sender.submit(_send, conn, message)

    def close(self) -> None:
        """Stop the helpers, at once: they hold nothing that needs a goodbye (no group, no commit)."""
        for process in self._processes.values():
            process.terminate()
        for process in self._processes.values():
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        self._sender.shutdown(wait=True)  # a message still going fails now that its reader is gone
        for owner in list(self._conns):
            self._drop(owner)


def _send(conn: Connection, message: tuple[Any, ...]) -> None:
    try:
        conn.send(message)
    except (OSError, ValueError):
        pass  # the helper is gone (or closed): its end of the pipe reports it
