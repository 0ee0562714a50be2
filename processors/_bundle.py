"""ACTES transmission bundles for the ingress shell: streamed into the content store, XML adapted.

A collectivity transmits an act to the prefecture as one archive (tar, usually gzipped): the
envelope (``EACT--<SIREN>--<date>-<n>.xml``), the act message (``<IDActe>-1-1_0.xml``) and the
act's files — the signed PDF and its annexes, which reach 150 MB. The bus never holds those
files in memory: the archive is read as a stream, each file goes to the content store chunk by
chunk (claim check), and only the small XML messages are parsed. The Act pivot then carries,
for each of its documents, the claim check of the file the bundle delivered under that name.
An act naming a file the bundle does not carry is refused: the transmission is incomplete.
"""

from __future__ import annotations

import dataclasses
import mimetypes
import posixpath
import tarfile
from collections.abc import Mapping
from typing import Any, BinaryIO

from adapters import Pivot, adapter_for, detect
from bus._content import ContentStore, DocumentRef, put_document
from bus._sealed import DocumentKey
from bus._errors import DocumentTooLargeError, MalformedDocumentError, NonConformantError

__all__ = ["is_tar", "read_actes_bundle"]

#: Members of a bundle: an act has a handful of annexes; thousands is an attack.
MAX_MEMBERS = 512
#: The whole bundle: DESIGN §3 says acts with annexes reach 150 MB.
MAX_BUNDLE_BYTES = 1024 * 1024 * 1024


def is_tar(head: bytes) -> bool:
    """Whether the first bytes are a gzip stream or a POSIX tar header."""
    return head[:2] == b"\x1f\x8b" or head[257:262] == b"ustar"


def read_actes_bundle(store: ContentStore, handle: BinaryIO, *, name: str, max_xml_bytes: int,
                      max_bundle_bytes: int = MAX_BUNDLE_BYTES, key: DocumentKey | None = None) -> tuple[Pivot, ...]:
    """Every pivot of the bundle read from ``handle`` (its plaintext); files claim-checked, XML adapted.

    ``key``: the bundle was sealed (addressed), so each of its files is sealed too, to the same
    recipients (same slots, a key of its own: :class:`bus._sealed.DocumentKey`).

    Raises only AdapterError subclasses: a corrupt archive, an oversized member, too many
    members, an XML no adapter reads, or an act whose files are not all in the bundle.
    """
    messages: dict[str, bytes] = {}
    files: dict[str, DocumentRef] = {}
    total = 0
    try:
        with tarfile.open(fileobj=handle, mode="r|*") as archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_MEMBERS:
                    raise MalformedDocumentError(f"bundle has more than {MAX_MEMBERS} members", document=name)
                if not member.isfile():
                    continue  # directories, links: names only, never followed
                base = posixpath.basename(member.name)
                total += member.size
                if total > max_bundle_bytes:
                    raise DocumentTooLargeError(f"bundle holds more than {max_bundle_bytes} bytes", document=name)
                stream = archive.extractfile(member)
                if stream is None:
                    continue
                if base.lower().endswith(".xml"):
                    if member.size > max_xml_bytes:
                        raise DocumentTooLargeError(f"{base} is {member.size} bytes, above {max_xml_bytes}",
                                                    document=name)
                    messages[base] = stream.read()
                else:
                    media = mimetypes.guess_type(base)[0] or "application/octet-stream"
                    files[base] = put_document(store, stream, key=key, media_type=media, file_name=base,
                                               max_bytes=member.size)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise MalformedDocumentError(f"not a readable ACTES bundle: {exc}", document=name,
                                     hint="send the transmission archive (tar or tar.gz) as the collectivity built it") from exc
    if not messages:
        raise NonConformantError("the bundle carries no ACTES message", document=name, rule="ACTES-BUNDLE",
                                 hint="an ACTES transmission holds the envelope and the act message (.xml)")
    pivots: list[Pivot] = []
    for base in sorted(messages):
        module = detect(messages[base], name=base) if not base.startswith("EACT") else adapter_for("actes-envelope")
        many = getattr(module, "to_pivots", None)
        for pivot in (many(messages[base], name=base) if many else [module.to_pivot(messages[base], name=base)]):
            pivots.append(_with_claim_checks(pivot, files, bundle=name))
    return tuple(pivots)


def _with_claim_checks(pivot: Pivot, files: Mapping[str, DocumentRef], *, bundle: str) -> Pivot:
    """The pivot with each of its documents' ``content`` set to the file the bundle carried."""
    documents = pivot.data.get("documents")
    if not isinstance(documents, list):
        return pivot
    filled: list[dict[str, Any]] = []
    for document in documents:
        ref = files.get(document["file_name"])
        if ref is None:
            raise NonConformantError(f"the act names {document['file_name']}, which the bundle does not carry",
                                     document=bundle, rule="ACTES-BUNDLE-FILE", xpath="actes:NomFichier",
                                     hint="transmit the act with every file it lists")
        filled.append({**document, "content": {"sha256": ref.sha256, "size": ref.size, "uri": ref.uri}})
    return dataclasses.replace(pivot, data={**pivot.data, "documents": filled})

