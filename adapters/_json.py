"""Hardened JSON reading shared by the JSON adapters: bounded size, bounded nesting, typed errors."""

from __future__ import annotations

import json
from typing import Any

from bus._errors import DocumentTooLargeError, MalformedDocumentError

__all__ = ["parse_json"]

DEFAULT_MAX_JSON_BYTES = 512 * 1024 * 1024


def parse_json(data: bytes, *, name: str = "<bytes>", max_bytes: int = DEFAULT_MAX_JSON_BYTES) -> Any:
    """Parse ``data`` as UTF-8 JSON; raise only AdapterError subclasses.

    A document nested deeper than Python's recursion limit (``[[[[...``) is refused as
    malformed instead of crashing the worker with a RecursionError.
    """
    if len(data) > max_bytes:
        raise DocumentTooLargeError(f"JSON document is {len(data)} bytes, above {max_bytes}", document=name)
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedDocumentError(f"not JSON: {exc}", document=name) from exc
    except RecursionError as exc:
        raise MalformedDocumentError("JSON nested too deeply", document=name,
                                     hint="flatten the document; no pivot format nests this deep") from exc
