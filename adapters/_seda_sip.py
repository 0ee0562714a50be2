"""Take the ``manifest.xml`` out of a SEDA SIP (a zip: the manifest plus a ``Content/`` folder).

A SIP comes from outside, so the zip is treated as hostile: every entry name is checked for path
traversal (absolute paths, ``..``, drive letters, backslashes) even though the bus extracts only
the manifest, since a SIP carrying such names is refused by archival systems anyway; the manifest
is refused when its declared size is above the bound, and it is read in chunks that stop at
the bound whatever the header claims (a zip bomb lies about sizes); the entry count is bounded.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from bus._errors import DocumentTooLargeError, MalformedDocumentError, NonConformantError, UnsafeDocumentError

from ._xml import DEFAULT_MAX_XML_BYTES

__all__ = ["MANIFEST_NAME", "MAX_ENTRIES", "looks_like_sip", "read_manifest"]

MANIFEST_NAME = "manifest.xml"
#: Vitam SIPs of a few thousand files exist; beyond this the central directory itself is suspect.
MAX_ENTRIES = 100_000
_CHUNK = 1 << 16


def looks_like_sip(head: bytes) -> bool:
    """True when the first local entry names the manifest or the Content folder of a SIP."""
    if not head.startswith(b"PK\x03\x04") or len(head) < 30:
        return False
    name_length = int.from_bytes(head[26:28], "little")
    first = head[30 : 30 + name_length]
    return first.lower() == MANIFEST_NAME.encode() or first.startswith((b"Content/", b"content/"))


def _unsafe_name(name: str) -> bool:
    if name.startswith(("/", "\\")) or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return True
    return any(part == ".." for part in name.split("/"))


def read_manifest(data: bytes, *, name: str, max_bytes: int | None = None) -> bytes:
    """The bytes of the SIP's root ``manifest.xml``, bounded by ``max_bytes``."""
    limit = DEFAULT_MAX_XML_BYTES if max_bytes is None else max_bytes
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise MalformedDocumentError(f"not a readable zip: {exc}", document=name) from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise DocumentTooLargeError(f"SIP has {len(infos)} entries, above {MAX_ENTRIES}", document=name)
        for info in infos:
            if _unsafe_name(info.filename):
                raise UnsafeDocumentError(
                    f"SIP entry {info.filename!r} escapes the package (path traversal)", document=name,
                    hint="build the SIP with relative paths under Content/ only",
                )
        manifests = [i for i in infos if i.filename.lower() == MANIFEST_NAME]
        if len(manifests) != 1:
            raise NonConformantError(
                f"a SIP has exactly one {MANIFEST_NAME} at its root, found {len(manifests)}", document=name,
                rule="SEDA-SIP", xpath=MANIFEST_NAME,
            )
        info = manifests[0]
        if info.file_size > limit:
            raise DocumentTooLargeError(
                f"{MANIFEST_NAME} declares {info.file_size} bytes, above the {limit} bytes bound", document=name
            )
        return _read_bounded(archive, info, limit, name)


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, name: str) -> bytes:
    out = bytearray()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                out += chunk
                if len(out) > limit:
                    raise DocumentTooLargeError(
                        f"{MANIFEST_NAME} inflates beyond the {limit} bytes bound (declared {info.file_size})",
                        document=name,
                    )
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, ValueError, OSError, EOFError) as exc:
        # CRC mismatch, unsupported compression, encrypted entry, truncated data
        raise MalformedDocumentError(f"cannot inflate {MANIFEST_NAME}: {exc}", document=name) from exc
    return bytes(out)
