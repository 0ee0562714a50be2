"""Helpers shared by the command modules: settings, the async runner, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from rich.console import Console

from bus._settings import BusSettings

__all__ = ["console", "err_console", "print_json", "run", "settings"]

T = TypeVar("T")
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def settings(**overrides: Any) -> BusSettings:
    """Settings from the environment, with explicit command-line overrides winning."""
    return BusSettings(**{k: v for k, v in overrides.items() if v is not None})


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine as ``asyncio.run`` does, closing the TLS sockets it leaves shutting down
    (:func:`bus._tls.run_own_loop`: commands run in-process, by tests or a caller, leak none)."""
    from bus._tls import run_own_loop

    return run_own_loop(coro)


def print_json(value: Any) -> None:
    """One JSON document per line on stdout (machine-readable, pipe-friendly)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, sort_keys=False) + "\n")
    sys.stdout.flush()
