"""Uploads streamed to a spool file, bounded while they stream: an oversize body is never stored.

A raw body or the file part of a ``multipart/form-data`` body is written chunk by chunk to a
temporary file under the gateway's spool directory while its SHA-256 is computed; past the
limit the file is deleted and :class:`~bus.DocumentTooLargeError` raised (HTTP 413) before the
content store sees a byte. Multipart is parsed incrementally with python-multipart (no
whole-body buffering); a body that ends before its closing boundary is malformed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from bus._errors import DocumentTooLargeError

from ._problems import GatewayProblem

__all__ = ["Upload", "spool_multipart", "spool_raw"]

MAX_FIELD_BYTES = 4096


@dataclasses.dataclass
class Upload:
    """A spooled document: its file, name, media type, SHA-256 and the form's other fields."""

    path: Path
    file_name: str
    media_type: str
    sha256: str
    size: int
    fields: dict[str, str] = dataclasses.field(default_factory=dict)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class _Sink:
    """A bounded spool file with a running digest."""

    def __init__(self, spool: Path, limit: int, name: str) -> None:
        spool.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=spool, prefix="upload-")
        self.path = Path(temp)
        self.out = os.fdopen(fd, "wb")
        self.digest = hashlib.sha256()
        self.size = 0
        self.limit = limit
        self.name = name

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise DocumentTooLargeError(f"{self.name} is larger than {self.limit} bytes", document=self.name,
                                        hint="split the document or ask the operator to raise the gateway's limit")
        self.digest.update(chunk)
        self.out.write(chunk)

    def close(self) -> None:
        self.out.close()

    def abort(self) -> None:
        self.out.close()
        self.path.unlink(missing_ok=True)


async def spool_raw(body: AsyncIterator[bytes], *, spool: Path, limit: int, file_name: str,
                    media_type: str) -> Upload:
    """Spool a raw request body; refuses an empty one."""
    sink = _Sink(spool, limit, file_name)
    try:
        async for chunk in body:
            sink.write(chunk)
        sink.close()
    except BaseException:
        sink.abort()
        raise
    if sink.size == 0:
        sink.abort()
        raise GatewayProblem(400, "empty document", "the request body is empty", hint="send the document's bytes")
    return Upload(sink.path, file_name, media_type, sink.digest.hexdigest(), sink.size)


async def spool_multipart(body: AsyncIterator[bytes], content_type: str, *, spool: Path, limit: int) -> Upload:
    """Spool the file part of a multipart/form-data body (the first part with a filename)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise GatewayProblem(400, "malformed multipart", "multipart/form-data without a boundary",
                             hint="let your HTTP client build the multipart body")
    state: dict[str, Any] = {"headers": {}, "field": b"", "ended": False, "part": None}
    fields: dict[str, str] = {}
    holder: dict[str, Any] = {"sink": None, "file_name": None, "media_type": "application/octet-stream"}
    header_field: list[bytes] = []

    def on_part_begin() -> None:
        state["headers"], state["field"], state["part"] = {}, b"", None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        name = b"".join(header_field).decode("latin-1").lower()
        header_field.clear()
        state["headers"][name] = state["headers"].get(name, b"") + data[start:end]

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get("content-disposition", b""))
        filename = disposition.get(b"filename")
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if filename is not None and holder["sink"] is None:
            holder["file_name"] = os.path.basename(filename.decode("utf-8", "replace")) or "document"
            media, _ = parse_options_header(state["headers"].get("content-type", b"application/octet-stream"))
            holder["media_type"] = media.decode("latin-1") or "application/octet-stream"
            holder["sink"] = _Sink(spool, limit, holder["file_name"])
            state["part"] = "file"
        else:
            state["part"] = name

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["part"] == "file":
            holder["sink"].write(data[start:end])
        else:
            state["field"] += data[start:end]
            if len(state["field"]) > MAX_FIELD_BYTES:
                raise GatewayProblem(400, "malformed multipart", f"form field {state['part']!r} is too long",
                                     hint="send the document as a file part (with a filename)")

    def on_part_end() -> None:
        if state["part"] not in (None, "file"):
            fields[state["part"]] = state["field"].decode("utf-8", "replace")

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(boundary, callbacks={  # type: ignore[arg-type]
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_end": on_end})
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
        if not state["ended"]:
            raise GatewayProblem(400, "malformed multipart", "the multipart body ends before its closing boundary",
                                 hint="send the whole body; let your HTTP client build it")
        if holder["sink"] is None:
            raise GatewayProblem(400, "malformed multipart", "no file part (a part with a filename) in the form",
                                 hint="send the document as the form's `file` part")
        holder["sink"].close()
    except MultipartParseError as exc:
        if holder["sink"] is not None:
            holder["sink"].abort()
        raise GatewayProblem(400, "malformed multipart", f"the multipart body cannot be parsed: {exc}",
                             hint="let your HTTP client build the multipart body") from exc
    except BaseException:
        if holder["sink"] is not None:
            holder["sink"].abort()
        raise
    sink = holder["sink"]
    if sink.size == 0:
        sink.abort()
        raise GatewayProblem(400, "empty document", "the file part is empty", hint="send the document's bytes")
    return Upload(sink.path, holder["file_name"], holder["media_type"], sink.digest.hexdigest(), sink.size, fields)
