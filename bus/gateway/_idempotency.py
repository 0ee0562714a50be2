"""Idempotency keys: a retried submission answers the first response, never submits twice.

Each (administration, ``Idempotency-Key``) is stored as a small JSON file holding the
fingerprint of the request (SHA-256 of the body, of the options that change its meaning and of
who asks: the calling client and the agent behind it) and the response the first request got.
A replay with the same fingerprint gets that response again; a replay with another fingerprint is refused (HTTP 422), as the IETF
Idempotency-Key draft recommends. The submission's ``ce_id`` is derived from the key, so
even a gateway that crashed between publishing and recording publishes the same ``ce_id``
again, which the ingress core's duplicate check drops.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._problems import GatewayProblem

__all__ = ["IdempotencyStore", "ce_id_for"]

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_NAMESPACE = uuid.UUID("6f1c2a8e-63b1-4d52-9a51-4c8d3c1b7e20")


def ce_id_for(siren: str, key: str) -> str:
    """The ``ce_id`` of the submission made for ``siren`` under idempotency key ``key``."""
    return str(uuid.uuid5(_NAMESPACE, f"{siren}\x00{key}"))


class IdempotencyStore:
    """Idempotency records under ``root``, one file per administration and key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def check_key(key: str) -> str:
        if not _KEY.match(key):
            raise GatewayProblem(400, "invalid Idempotency-Key", "the Idempotency-Key header must be 1 to 255 "
                                 "visible ASCII characters", hint="use a UUID per logical submission")
        return key

    def _path(self, siren: str, key: str) -> Path:
        return self.root / siren / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def lock(self, siren: str, key: str) -> asyncio.Lock:
        """Serialises concurrent requests of one key (a retry racing the first attempt)."""
        return self._locks.setdefault(f"{siren}\x00{key}", asyncio.Lock())

    def replay(self, siren: str, key: str, fingerprint: str) -> Mapping[str, Any] | None:
        """The stored response of ``key``, or None; refuses a different request under the same key."""
        path = self._path(siren, key)
        if not path.is_file():
            return None
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored["fingerprint"] != fingerprint:
            raise GatewayProblem(422, "idempotency key reused", f"Idempotency-Key {key!r} was used for another "
                                 "request (different body, options, client or agent)",
                                 hint="use a new key for a new submission", idempotency_key=key)
        return stored["response"]  # type: ignore[no-any-return]

    def remember(self, siren: str, key: str, fingerprint: str, response: Mapping[str, Any]) -> None:
        path = self._path(siren, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".idem-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"fingerprint": fingerprint, "response": dict(response)}, out)
        os.replace(temp, path)
