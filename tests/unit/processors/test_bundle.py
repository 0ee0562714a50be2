"""ACTES transmission bundles through the ingress reader: claim checks, streamed, complete."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bus import LocalContentStore
from processors.ingress import BUNDLE_FORMAT, DocumentReader

ACT = "045-214502494-20170717-D201717-DE-1-1_0.xml"
ENVELOPE = "EACT--214502494--20170717-6.xml"
PDF = "045-214502494-20170717-D201717-DE-1-1_1.pdf"


def bundle(corpus: Path, *, files: dict[str, bytes], gz: bool = True) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if gz else "w") as tar:
        for name, data in [(ENVELOPE, (corpus / "acts/messages-s2low" / ENVELOPE).read_bytes()),
                           (ACT, (corpus / "acts/messages-s2low" / ACT).read_bytes()), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def read(tmp_path: Path, data: bytes):
    store = LocalContentStore(tmp_path / "store")
    ref = store.put(data, media_type="application/gzip", file_name="transmission.tar.gz")
    return store, DocumentReader(store, max_bytes=1024 * 1024).read(ref.to_record(), None)


def test_the_act_carries_the_claim_check_of_its_file(corpus, tmp_path):
    pdf = b"%PDF-1.4 the signed deliberation"
    store, adaptation = read(tmp_path, bundle(corpus, files={PDF: pdf}))
    assert adaptation.error is None and adaptation.format == BUNDLE_FORMAT
    act = next(p for p in adaptation.pivots if p.schema == "fr.dcant.acts.Act")
    (document,) = act.data["documents"]
    assert document["file_name"] == PDF
    with store.open(document["content"]["sha256"]) as stored:
        assert stored.read() == pdf
    assert document["content"]["size"] == len(pdf)
    assert {p.schema for p in adaptation.pivots} >= {"fr.dcant.acts.Act", "fr.dcant.acts.ActEnvelope"}


def test_an_act_whose_file_is_missing_is_refused(corpus, tmp_path):
    _, adaptation = read(tmp_path, bundle(corpus, files={}))
    assert adaptation.error is not None and adaptation.error.context["rule"] == "ACTES-BUNDLE-FILE"


@pytest.mark.parametrize("data", [b"\x1f\x8b\x08\x00 truncated gzip", b"\x00" * 257 + b"ustar" + b"\x00" * 300])
def test_a_corrupt_bundle_is_a_typed_error(tmp_path, data):
    _, adaptation = read(tmp_path, data)
    assert type(adaptation.error).__name__ in {"MalformedDocumentError", "NonConformantError"}


def test_a_150_mb_bundle_goes_through_in_bounded_memory(corpus, tmp_path):
    """Measured in a fresh process: the annexes stream to the store, only the XML is read."""
    big = tmp_path / "transmission.tar"
    with tarfile.open(big, "w") as tar:
        for name in (ENVELOPE, ACT):
            tar.add(corpus / "acts/messages-s2low" / name, arcname=name)
        annex = tmp_path / PDF
        with annex.open("wb") as out:
            chunk = b"%PDF-1.4 " + bytes(range(256)) * 4096
            while out.tell() < 150 * 1024 * 1024:
                out.write(chunk)
        tar.add(annex, arcname=PDF)
    annex.unlink()
    code = f"""
import resource
from pathlib import Path
from bus import LocalContentStore
from processors.ingress import DocumentReader
store = LocalContentStore(Path({str(tmp_path / 'store')!r}))
ref = store.put(Path({str(big)!r}), media_type="application/x-tar", file_name="t.tar", max_bytes=1 << 30)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = DocumentReader(store, max_bytes=1 << 20).read(ref.to_record(), None)
assert result.error is None, result.error
size = [p for p in result.pivots if p.schema == "fr.dcant.acts.Act"][0].data["documents"][0]["content"]["size"]
print(size, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    size, grown_mb = map(int, out.stdout.split())
    assert size >= 150 * 1024 * 1024
    assert grown_mb < 64, f"reading a 150 MB bundle grew the process by {grown_mb} MB"


def test_a_sealed_bundle_is_read_by_a_recipient_and_its_files_stay_sealed(corpus, tmp_path):
    from bus._content import put_document, read_document
    from bus._errors import NotARecipientError
    from bus._sealed import DecryptionKeyring, DocumentKey, generate_encryption_key

    pdf = b"%PDF-1.4 the signed deliberation, confidential until published"
    mine, other = generate_encryption_key("210100012"), generate_encryption_key("230300018")
    store = LocalContentStore(tmp_path / "store")
    ref = put_document(store, bundle(corpus, files={PDF: pdf}), key=DocumentKey.fresh([mine.public]),
                       media_type="application/gzip", file_name="transmission.tar.gz")
    adaptation = DocumentReader(store, max_bytes=1 << 20, decryption=DecryptionKeyring([mine])).read(
        ref.to_record(), None, ("210100012",))
    assert adaptation.error is None and adaptation.format == BUNDLE_FORMAT
    act = next(p for p in adaptation.pivots if p.schema == "fr.dcant.acts.Act")
    stored = act.data["documents"][0]["content"]["sha256"]
    assert b"confidential" not in store.path(stored).read_bytes()
    with read_document(store, stored, DecryptionKeyring([mine])) as (handle, key):
        assert handle.read() == pdf and key is not None and key.sirens() == ("210100012",)
    with pytest.raises(NotARecipientError):
        DocumentReader(store, max_bytes=1 << 20, decryption=DecryptionKeyring([other])).read(ref.to_record(), None)
