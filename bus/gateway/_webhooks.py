"""Webhooks: placeholder until the dispatcher lands (see issue 13)."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["start_webhooks"]


def start_webhooks(gateway: Any, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    return []
