"""The content-addressed store behind claim checks: large documents stay out of events.

A native document (an act with its annexes, a PES file) can weigh 150 MB while an event stays
under 256 KB, so the bytes go to a store addressed by their SHA-256 and the event carries a
:class:`DocumentRef` (digests, size, media type, file name, URI). :meth:`ContentStore.put`
streams the content in chunks, computing SHA-256 (the address) and SHA-512 (which SEDA
requires) in the same pass, so memory stays bounded whatever the size; the write is atomic
(temporary file, then rename) and idempotent (the same bytes twice are stored once).

:class:`LocalContentStore` keeps objects under a directory (the default,
``settings.resolved_content_store``, a ``file://`` URI); an S3-compatible store implements the
same :class:`ContentStore` protocol.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import tempfile

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from ._errors import (ConfigurationError, ContentNotFoundError, DecryptionError, DocumentTooLargeError,
                      TruncatedCiphertextError)
from ._sealed import DecryptionKeyring, DocumentKey, is_sealed_document, open_document, seal_document
from ._settings import BusSettings

__all__ = ["CHUNK_BYTES", "ChunkReader", "ContentStore", "DocumentRef", "LocalContentStore", "open_content_store", "put_document",
           "read_document"]

CHUNK_BYTES = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
Source = bytes | bytearray | memoryview | BinaryIO | IO[bytes] | os.PathLike[str] | Iterable[bytes]


@dataclasses.dataclass(frozen=True, slots=True)
class DocumentRef:
    """A claim check: where a document's bytes are and how to check them.

    A superset of the ``DocumentRef`` record of the pivot schemas (``sha256``, ``size``,
    ``media_type``, ``file_name``, ``uri``); ``sha512`` is what SEDA ``MessageDigest`` wants.
    """

    sha256: str
    sha512: str
    size: int
    media_type: str
    file_name: str
    uri: str

    def to_record(self, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The ref as an Avro record value, restricted to ``fields`` when the schema has fewer."""
        values = dataclasses.asdict(self)
        return {name: values[name] for name in (fields or tuple(values))}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DocumentRef:
        return cls(sha256=record["sha256"], sha512=record.get("sha512") or "", size=int(record["size"]),
                   media_type=record["media_type"], file_name=record["file_name"], uri=record["uri"])


@runtime_checkable
class ContentStore(Protocol):
    """Where claim-checked bytes live, addressed by their SHA-256 (lowercase hex)."""

    def put(self, source: Source, *, media_type: str, file_name: str,
            max_bytes: int | None = None) -> DocumentRef: ...

    def open(self, sha256: str) -> BinaryIO: ...

    def path(self, sha256: str) -> Path: ...

    def exists(self, sha256: str) -> bool: ...

    def digests(self, sha256: str) -> dict[str, Any]: ...


def open_content_store(settings: BusSettings) -> ContentStore:
    """The store ``settings.resolved_content_store`` names (``file://`` is built in)."""
    return LocalContentStore.from_uri(settings.resolved_content_store)


def _check_address(sha256: str) -> str:
    # The address becomes a path: anything but 64 hex digits could walk out of the store.
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ConfigurationError(f"{sha256!r} is not a SHA-256 content address (64 lowercase hex digits)",
                                 hint="claim checks name content by the hex SHA-256 of its bytes")
    return sha256


@contextlib.contextmanager
def _chunks(source: Source) -> Iterator[Iterator[bytes]]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        yield (bytes(view[i:i + CHUNK_BYTES]) for i in range(0, len(view), CHUNK_BYTES))
        return
    if isinstance(source, os.PathLike):
        with open(source, "rb") as handle:
            yield iter(lambda: handle.read(CHUNK_BYTES), b"")
        return
    if hasattr(source, "read"):
        yield iter(lambda: source.read(CHUNK_BYTES), b"")  # type: ignore[union-attr]
        return
    yield iter(source)  # already chunks (a sealed document's stream)


class LocalContentStore:
    """Objects under ``root/objects/ab/cd/<sha256>``, each with a ``.json`` note of its digests.

    Safe for several processes on one file system: every write goes to a temporary file in the
    store and is renamed into place, so a reader sees a whole object or none.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @classmethod
    def from_uri(cls, uri: str) -> LocalContentStore:
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            return cls(Path(unquote(parsed.path)))
        if parsed.scheme == "" and uri:
            return cls(Path(uri))
        raise ConfigurationError(f"content store {uri!r} is not a file:// URI",
                                 hint="set BUS_CONTENT_STORE to a file:// URI (S3-compatible stores are not built in yet)")

    def _object(self, sha256: str) -> Path:
        address = _check_address(sha256)
        return self.root / "objects" / address[:2] / address[2:4] / address

    def _note(self, sha256: str) -> Path:
        return self._object(sha256).with_suffix(".json")

    def put(self, source: Source, *, media_type: str, file_name: str,
            max_bytes: int | None = None) -> DocumentRef:
        """Store ``source`` (bytes, a binary file object or a path), streamed chunk by chunk.

        ``max_bytes`` bounds the size: beyond it nothing is kept and DocumentTooLargeError is raised.
        """
        incoming = self.root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
        fd, temp_name = tempfile.mkstemp(dir=incoming, prefix="put-")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out, _chunks(source) as chunks:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise DocumentTooLargeError(f"{file_name} is larger than {max_bytes} bytes",
                                                    document=file_name, hint="raise BUS_MAX_DOCUMENT_BYTES or split it")
                    sha256.update(chunk)
                    sha512.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            address = sha256.hexdigest()
            target = self._object(address)
            target.parent.mkdir(parents=True, exist_ok=True)
            digests = {"sha256": address, "sha512": sha512.hexdigest(), "size": size}
            self._write_note(target.with_suffix(".json"), digests)
            if target.exists():
                temp.unlink()  # same bytes already stored: the address proves it
            else:
                os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return DocumentRef(sha256=address, sha512=digests["sha512"], size=size, media_type=media_type,
                           file_name=file_name, uri=target.resolve().as_uri())

    def _write_note(self, path: Path, digests: dict[str, Any]) -> None:
        if path.exists():
            return
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".note-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(digests, out)
        os.replace(temp_name, path)

    def exists(self, sha256: str) -> bool:
        return self._object(sha256).is_file()

    def path(self, sha256: str) -> Path:
        """The file holding the content; raises ContentNotFoundError when the store lacks it."""
        target = self._object(sha256)
        if not target.is_file():
            raise ContentNotFoundError(f"content {sha256} is not in the store at {self.root}", sha256=sha256,
                                     hint="check that BUS_CONTENT_STORE names the store the producer wrote to")
        return target

    def open(self, sha256: str) -> BinaryIO:
        """The content as a binary file object (the caller closes it)."""
        return self.path(sha256).open("rb")

    def digests(self, sha256: str) -> dict[str, Any]:
        """``{sha256, sha512, size}`` of stored content, from its note (recomputed if the note is lost)."""
        target = self.path(sha256)
        note = target.with_suffix(".json")
        if note.is_file():
            return dict(json.loads(note.read_text(encoding="utf-8")))
        h256, h512, size = hashlib.sha256(), hashlib.sha512(), 0
        with target.open("rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
                h256.update(chunk)
                h512.update(chunk)
                size += len(chunk)
        digests = {"sha256": h256.hexdigest(), "sha512": h512.hexdigest(), "size": size}
        self._write_note(note, digests)
        return digests


# -- sealed (addressed) documents: one way in, one way out ------------------------------------------


def put_document(store: ContentStore, source: Source, *, key: DocumentKey | None, media_type: str, file_name: str,
                 max_bytes: int | None = None) -> DocumentRef:
    """Store ``source``, sealed under ``key`` when the document is addressed (streamed either way).

    The ref's digests and size are those of what is stored (the ciphertext of a sealed document),
    so anyone checks its integrity without a key; ``max_bytes`` bounds the plaintext.
    """
    if key is None:
        return store.put(source, media_type=media_type, file_name=file_name, max_bytes=max_bytes)

    def bounded() -> Iterator[bytes]:
        size = 0
        with _chunks(source) as chunks:
            for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise DocumentTooLargeError(f"{file_name} is larger than {max_bytes} bytes", document=file_name,
                                                hint="raise BUS_MAX_DOCUMENT_BYTES or split it")
                yield chunk

    return store.put(seal_document(bounded(), key), media_type=media_type, file_name=file_name)


class ChunkReader(io.RawIOBase):
    """A read-only binary file over an iterator of chunks (the plaintext of a sealed document)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._pending = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _check_digest(store: ContentStore, sha256: str, **context: Any) -> None:
    """The stored bytes hash to their address (read in chunks); a sealed document is never opened otherwise."""
    digest, size = hashlib.sha256(), 0
    with store.open(sha256) as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
            size += len(chunk)
    if digest.hexdigest() != sha256:
        noted = store.digests(sha256).get("size")
        if isinstance(noted, int) and size < noted:
            raise TruncatedCiphertextError(f"stored document {sha256} is {size} bytes, {noted} were stored",
                                           sha256=sha256, **context)
        raise DecryptionError(f"stored document {sha256} does not match its digest (altered)", sha256=sha256,
                              **context)


@contextlib.contextmanager
def read_document(store: ContentStore, sha256: str, decryption: DecryptionKeyring | None, *,
                  recipients: tuple[str, ...] = (), **context: Any) -> Iterator[tuple[BinaryIO, DocumentKey | None]]:
    """(the plaintext as a binary file, its key or None when stored in clear): every reader's one way in.

    A sealed document is first checked against its digest (a cut or altered object fails before any
    plaintext), then decrypted chunk by chunk: ``NotARecipientError`` without a key of its recipients.
    """
    with store.open(sha256) as handle:
        sealed = is_sealed_document(handle.read(3))
    if not sealed:
        with store.open(sha256) as handle:
            yield handle, None
        return
    _check_digest(store, sha256, **context)
    with store.open(sha256) as handle:
        key, chunks = open_document(handle.read, decryption, recipients=recipients, sha256=sha256, **context)
        yield io.BufferedReader(ChunkReader(chunks), CHUNK_BYTES), key  # type: ignore[misc]
