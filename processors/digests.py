"""Document digests: the content store's answer to the archiving core's digest requests.

The archiving core knows a dossier's documents only by claim check (SHA-256, size, URI) and
SEDA wants each one's SHA-512, so it asks on the bus: ``fr.dcant.archives.DocumentsDigestRequested``.
Reading the content store is I/O, so the answer is split like ingress:

- :class:`DigestReader` is the shell step (the ``prepare`` of a
  :class:`bus.Binding`): for a request, it reads each document's digests from the
  content store (its note written at ``put``, recomputed by streaming the bytes when the note is
  lost) in a thread, and hands them to the core in ``ctx.tables["archives.digests"][sha256]``,
  ``None`` for a document the store does not hold (or an address no store can hold);
- :class:`DocumentDigests` is pure: each request becomes one ``fr.dcant.archives.DocumentsDigested``
  event on the dossier (subject and key), caused by the request, with the SHA-512 and the size
  *the store holds* of every document found and the SHA-256 of every missing one. The archiving
  core compares sizes with its claim checks and blocks the dossier (DOCUMENTS_MISSING) on a
  missing or different document; a missing document is an answer, never an error.

Why a core rather than a service of its own: the faust shell already gives what such a service
needs: signing with the worker's key, the error policy and dead-letter topic, at-least-once
delivery with the batch acknowledged only once the answer is on Kafka, and idempotence through
the processed ``ce_id`` kept with the state (here per dossier), so a redelivered request is
answered once. A :class:`Binding` is also the shape the archiving core cannot take itself: its
request is an *output* whose documents live in its state, which a ``prepare`` step (run before
the core, with the event only) cannot see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from bus._content import ContentStore, open_content_store
from bus._errors import ConfigurationError, ContentNotFoundError
from bus._processor import Context, follow_up
from bus._settings import BusSettings
from bus._wire import Event, Received

__all__ = ["DIGESTED", "DIGESTS", "REQUESTED", "DigestReader", "DocumentDigests", "binding"]

REQUESTED = "fr.dcant.archives.DocumentsDigestRequested"  # event type and schema name
DIGESTED = "fr.dcant.archives.DocumentsDigested"  # event type and schema name
DIGESTS = "archives.digests"  # the ctx table the shell fills: sha256 -> {"sha512", "size"} or None


class DocumentDigests:
    """Pure core: a digest request and the digests the shell read → the DocumentsDigested answer."""

    name = "document-digests"
    inputs: tuple[str, ...] = ("archives",)
    types = frozenset({REQUESTED})
    tables: tuple[str, ...] = ()

    def key(self, event: Received, ctx: Context) -> str | None:
        return event.subject if event.type == REQUESTED else None

    def initial_state(self) -> dict[str, Any]:
        return {"answered": 0, "missing": 0}

    def process(self, state: dict[str, Any], event: Received, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        if event.type != REQUESTED:
            return state, []
        read = ctx.tables.get(DIGESTS, {})
        documents, missing = [], []
        for sha256 in dict.fromkeys(d["sha256"] for d in event.data["documents"]):  # each once, in order
            if sha256 not in read:
                raise ConfigurationError(f"document {sha256} was not read before the digests core ran",
                                         document=sha256, hint="run document-digests with its DigestReader")
            found = read[sha256]
            if found is None:
                missing.append(sha256)
                continue
            # The store keeps no media type or file name: the archiving core has them from the claim check.
            documents.append({"sha256": sha256, "sha512": found["sha512"], "size": int(found["size"]),
                              "media_type": None, "file_name": None})
        state["answered"] += 1
        state["missing"] += len(missing)
        answer = follow_up(event, type=DIGESTED, schema=DIGESTED, subject=event.subject,
                           data={"dossier": event.data["dossier"], "documents": documents, "missing": missing})
        return state, [answer]

    def on_time(self, state: dict[str, Any], key: str, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        """No timer: a request is answered when it comes."""
        return state, []


class DigestReader:
    """The shell step of the digests core: claim checks → digests held by the content store."""

    def __init__(self, store: ContentStore) -> None:
        self.store = store

    async def __call__(self, event: Received) -> Mapping[str, Mapping[str, Any]]:
        if event.type != REQUESTED:
            return {}
        addresses = list(dict.fromkeys(d["sha256"] for d in event.data["documents"]))
        return {DIGESTS: await asyncio.to_thread(self.read, addresses)}

    def read(self, addresses: list[str]) -> dict[str, dict[str, Any] | None]:
        """Blocking (a lost note means hashing the bytes): run in a thread so the worker keeps its heartbeats.

        A document the store lacks, or an address that is not a SHA-256, is ``None``; any other
        failure (a disk error) propagates to the shell's error policy.
        """
        out: dict[str, dict[str, Any] | None] = {}
        for sha256 in addresses:
            try:
                digests = self.store.digests(sha256)
            except (ContentNotFoundError, ConfigurationError):
                out[sha256] = None
                continue
            out[sha256] = {"sha512": digests["sha512"], "size": int(digests["size"])}
        return out


def binding(settings: BusSettings) -> Any:
    """The digests core with its content store reader (a :class:`bus.Binding`)."""
    from bus import Binding

    return Binding(DocumentDigests(), DigestReader(open_content_store(settings)))
