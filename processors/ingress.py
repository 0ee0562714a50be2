"""Ingress: native documents submitted to the bus become signed pivot events on their family topics.

A producer stores the document in the content store and publishes
``fr.dcant.ingress.DocumentSubmitted`` on the raw ingress topic (:func:`submit`): the event
carries the claim check, not the bytes. Reading bytes is I/O, so the work is split:

- :class:`DocumentReader` is the shell step: it reads the bytes from the content store (bounded
  by ``max_document_bytes``), runs the adapter (declared format, or detection; ``to_pivots`` for
  multi-record files) in a thread, and hands the outcome, an :class:`Adaptation`, to the core
  in ``ctx.tables["ingress.documents"][sha256]``;
- :class:`IngressCore` is pure: each pivot becomes an event on its family topic, caused by the
  submission (correlation and causation ids), with the claim check in the pivot's ``document``
  field when its schema has one; a document no adapter can read raises its
  :class:`bus.AdapterError`, so the shell dead-letters the submission with its original bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import itertools
import mimetypes
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adapters import Pivot, adapter_for, detect, signature_options
from bus._catalog import Catalog, default_catalog
from bus._content import CHUNK_BYTES, ChunkReader, ContentStore, open_content_store, put_document, read_document
from bus._errors import AdapterError, ConfigurationError, DocumentTooLargeError
from bus._processor import Context, follow_up
from bus._runtime import BusContext, siren_of_source
from bus._sealed import DecryptionKeyring, DocumentKey
from bus._settings import BusSettings
from bus._wire import Event, Received, Record

from ._bundle import MAX_BUNDLE_BYTES, is_tar, read_actes_bundle

__all__ = [
    "Adaptation",
    "BUNDLE_FORMAT",
    "DOCUMENTS",
    "DocumentReader",
    "IngressCore",
    "SUBMITTED",
    "adapt",
    "binding",
    "is_tar",
    "submit",
    "submitted_event",
]

SUBMITTED = "fr.dcant.ingress.DocumentSubmitted"  # event type and schema name
DOCUMENTS = "ingress.documents"
BUNDLE_FORMAT = "actes-bundle"  # an ACTES transmission archive, read by processors._bundle  # the ctx table the shell fills: sha256 -> Adaptation


@dataclasses.dataclass(frozen=True, slots=True)
class Adaptation:
    """What the adapters made of one document: its pivots, or the error that stopped them."""

    sha256: str
    format: str | None
    pivots: tuple[Pivot, ...] = ()
    error: AdapterError | None = None


def adapt(data: bytes, *, sha256: str, declared_format: str | None, name: str, trust: Path | None = None,
          require_signature: bool = False) -> Adaptation:
    """Run the adapter of ``data`` (pure, CPU-bound): every pivot it holds, or its AdapterError.

    ``trust`` and ``require_signature`` go to the readers that verify signatures inside the
    document (``adapters.SIGNED_FORMATS``: a PES_Aller's bordereaux).
    """
    fmt = declared_format
    try:
        module = adapter_for(declared_format) if declared_format else detect(data, name=name)
        fmt = module.FORMAT
        many = getattr(module, "to_pivots", None)
        options = signature_options(fmt, trust=trust, require_signature=require_signature)
        pivots = tuple(many(data, name=name, **options)) if many else (module.to_pivot(data, name=name),)
    except AdapterError as err:
        return Adaptation(sha256, fmt, error=err)
    return Adaptation(sha256, fmt, pivots)


def _document_fields(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """Schemas with a top-level ``document`` claim-check record, and that record's field names."""
    out: dict[str, tuple[str, ...]] = {}
    for schema in catalog:
        for field in schema.raw.get("fields", ()):
            if field["name"] != "document":
                continue
            branches = field["type"] if isinstance(field["type"], list) else [field["type"]]
            for branch in branches:
                if isinstance(branch, dict) and branch.get("type") == "record":
                    names = tuple(f["name"] for f in branch["fields"])
                    if {"sha256", "uri"} <= set(names):
                        out[schema.name] = names
    return out


class IngressCore:
    """Pure core: a submitted document's adaptation → pivot events, or the adapter's error."""

    name = "ingress"
    inputs = ("ingress.raw",)
    types = frozenset({SUBMITTED})
    tables = ()

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._document_fields = _document_fields(catalog or default_catalog())

    def key(self, event: Received, ctx: Context) -> str | None:
        return event.subject if event.type == SUBMITTED else None

    def initial_state(self) -> dict[str, Any]:
        return {"submissions": 0, "pivots": 0}

    def process(self, state: dict[str, Any], event: Received, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        if event.type != SUBMITTED:
            return state, []
        ref = event.data["document"]
        adaptation = ctx.tables.get(DOCUMENTS, {}).get(ref["sha256"])
        if adaptation is None:
            raise ConfigurationError(f"document {ref['sha256']} was not read before ingress ran",
                                     document=ref["file_name"], hint="run the ingress core with its DocumentReader")
        if adaptation.error is not None:
            adaptation.error.context.setdefault("document", ref["file_name"])
            raise adaptation.error
        # Each pivot keeps the submission's time: a document submitted for a past date stays dated.
        events = [follow_up(event, type=p.type, schema=p.schema, subject=p.subject, data=self._with_ref(p, ref),
                            time=event.time)
                  for p in adaptation.pivots]
        state["submissions"] += 1
        state["pivots"] += len(events)
        return state, events

    def _with_ref(self, pivot: Pivot, ref: Mapping[str, Any]) -> Mapping[str, Any]:
        fields = self._document_fields.get(pivot.schema)
        if fields is None or pivot.data.get("document") is not None:
            return pivot.data
        return {**pivot.data, "document": {name: ref.get(name) for name in fields}}

    def on_time(self, state: dict[str, Any], key: str, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        return state, []


class DocumentReader:
    """The shell step of ingress: claim check → bytes (bounded) → :class:`Adaptation`."""

    def __init__(self, store: ContentStore, *, max_bytes: int, pes_trust_ca: Path | None = None,
                 pes_require_signature: bool = False, decryption: DecryptionKeyring | None = None) -> None:
        self.store = store
        self.decryption = decryption
        self.max_bytes = max_bytes
        self.pes_trust_ca = pes_trust_ca
        self.pes_require_signature = pes_require_signature

    async def __call__(self, event: Received) -> Mapping[str, Mapping[str, Any]]:
        if event.type != SUBMITTED:
            return {}
        ref = event.data["document"]
        adaptation = await asyncio.to_thread(self.read, ref, event.data.get("declared_format"),
                                             event.envelope.recipient_sirens)
        return {DOCUMENTS: {ref["sha256"]: adaptation}}

    def read(self, ref: Mapping[str, Any], declared_format: str | None,
             recipients: tuple[str, ...] = ()) -> Adaptation:
        """Blocking: read and adapt (run in a thread so the worker keeps its heartbeats).

        An ACTES transmission bundle (tar) is streamed: its files go to the content store as
        claim checks and only its XML messages are parsed, whatever the size of the annexes. A
        sealed (addressed) document is decrypted as it is read (:func:`bus._content.read_document`:
        NotARecipientError when this worker holds no key of its recipients), its files sealed alike.
        """
        sha256, name = ref["sha256"], ref["file_name"]
        with read_document(self.store, sha256, self.decryption, recipients=recipients, document=name) as (handle, key):
            head = handle.read(512)
            if is_tar(head) and declared_format in (None, BUNDLE_FORMAT):
                rest = iter(lambda: handle.read(CHUNK_BYTES), b"")
                whole = io.BufferedReader(ChunkReader(itertools.chain([head], rest)))
                try:
                    pivots = read_actes_bundle(self.store, whole, name=name, max_xml_bytes=self.max_bytes, key=key)
                except AdapterError as err:
                    return Adaptation(sha256, BUNDLE_FORMAT, error=err)
                return Adaptation(sha256, BUNDLE_FORMAT, pivots)
            data = head + handle.read(self.max_bytes + 1 - len(head))
        if len(data) > self.max_bytes:
            return Adaptation(sha256, declared_format, error=DocumentTooLargeError(
                f"{name} is above the {self.max_bytes} bytes the bus parses", document=name,
                hint="raise BUS_MAX_DOCUMENT_BYTES or split the document"))
        return adapt(data, sha256=sha256, declared_format=declared_format, name=name, trust=self.pes_trust_ca,
                     require_signature=self.pes_require_signature)


def binding(settings: BusSettings) -> Any:
    """The ingress core with its document reader (a :class:`bus.Binding`)."""
    from bus import Binding

    from bus._runtime import encryption_key_store

    held = encryption_key_store(settings).keyring()
    return Binding(IngressCore(), DocumentReader(open_content_store(settings), max_bytes=settings.max_document_bytes,
                                                 pes_trust_ca=settings.pes_trust_ca,
                                                 pes_require_signature=settings.pes_require_signature,
                                                 decryption=held if len(held) else None))


def submitted_event(ref: Mapping[str, Any], *, submitter_siren: str, declared_format: str | None = None,
                    dossier_hint: str | None = None, recipients: Sequence[str] | None = None,
                    time: dt.datetime | None = None) -> Event:
    """The ``DocumentSubmitted`` event of a stored document (``ref`` as :meth:`DocumentRef.to_record`);
    ``time``: when it was submitted (default: now), the time its pivots keep."""
    return Event(type=SUBMITTED, subject=f"document:{ref['sha256']}", schema=SUBMITTED,
                 data={"document": dict(ref), "declared_format": declared_format,
                       "submitter_siren": submitter_siren, "dossier_hint": dossier_hint}, recipients=recipients,
                 time=time)


async def submit(ctx: BusContext, publisher: Any, path: Path, *, declared_format: str | None = None,
                 dossier_hint: str | None = None, media_type: str | None = None,
                 store: ContentStore | None = None, recipients: Sequence[str] | None = None,
                 time: dt.datetime | None = None) -> Record:
    """Store ``path`` in the content store (streamed) and publish its DocumentSubmitted on ingress.raw.

    ``publisher`` is a started :class:`bus.client.Publisher`; returns the record as stored.
    ``recipients`` (SIRENs, plus the flow's policy): the document is stored sealed to their
    encryption keys under a fresh key, and the event addressed to them. ``time``: when the
    document was received (default: now); its pivots keep it (an invoice received last spring
    keeps its reception date, from which its payment period runs).
    """
    settings = ctx.settings
    store = store or open_content_store(settings)
    guessed = media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    with Path(path).open("rb") as handle:
        bundle = is_tar(handle.read(512))
    # A bundle's annexes are claim-checked, never parsed: only its total is bounded that way.
    limit = max(settings.max_document_bytes, MAX_BUNDLE_BYTES) if bundle else settings.max_document_bytes
    key = None
    if recipients is not None:
        recipients, keys = publisher.wire.recipient_keys(recipients, SUBMITTED, ctx.clock())
        key = DocumentKey.fresh(keys)
    ref = await asyncio.to_thread(put_document, store, Path(path), key=key, media_type=guessed, file_name=path.name,
                                  max_bytes=limit)
    event = submitted_event(ref.to_record(), submitter_siren=siren_of_source(settings.source),
                            declared_format=declared_format, dossier_hint=dossier_hint, recipients=recipients,
                            time=time)
    record: Record = await publisher.publish(event, topic="ingress.raw")
    return record
