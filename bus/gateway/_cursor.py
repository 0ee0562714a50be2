"""Inbox cursors: a position in every partition read, so a cursor outlives the gateway process.

The inbox merges several topics and partitions; the order in which a consumer interleaves
them can differ from one run to the next, but within a partition the order is the offsets'.
A :class:`Cursor` therefore holds, per ``topic:partition``, the next offset to serve, and
travels as opaque base64url JSON. An event is after the cursor when its offset is at or past
the cursor's position in its partition (any offset of a partition the cursor does not name).
Acknowledgements merge cursors partition by partition, keeping the furthest position.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from ._problems import GatewayProblem

__all__ = ["Cursor"]


class Cursor:
    """Next offset per ``topic:partition``; immutable."""

    __slots__ = ("positions",)

    def __init__(self, positions: Mapping[str, int] | None = None) -> None:
        self.positions: dict[str, int] = dict(positions or {})

    @staticmethod
    def partition(topic: str, partition: int) -> str:
        return f"{topic}:{partition}"

    def admits(self, topic: str, partition: int, offset: int) -> bool:
        return offset >= self.positions.get(self.partition(topic, partition), 0)

    def after(self, topic: str, partition: int, offset: int) -> Cursor:
        """This cursor moved past the event at ``offset``."""
        key = self.partition(topic, partition)
        return Cursor({**self.positions, key: max(self.positions.get(key, 0), offset + 1)})

    def merge(self, other: Cursor) -> Cursor:
        keys = self.positions.keys() | other.positions.keys()
        return Cursor({k: max(self.positions.get(k, 0), other.positions.get(k, 0)) for k in keys})

    def encode(self) -> str:
        raw = json.dumps(self.positions, sort_keys=True, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        """The cursor of ``text`` ('' or None: the beginning); a 422 problem when it is not one."""
        if not text:
            return cls()
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            positions = json.loads(raw)
            if not isinstance(positions, dict) or not all(
                    isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in positions.items()):
                raise ValueError("not a map of offsets")
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise GatewayProblem(422, "invalid cursor", f"{text[:40]!r} is not a cursor the inbox gave",
                                 hint="use the `next` (or an event's `cursor`) of an inbox answer") from exc
        return cls(positions)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cursor) and self.positions == other.positions

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.positions.items())))
