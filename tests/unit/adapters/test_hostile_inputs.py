"""Every adapter against hostile input: only a typed AdapterError, bounded memory, no file read.

The same attacks are run against every registered adapter, whatever its format: external
entities (XXE), entity expansion (billion laughs), an external DTD, a 200 MB document, wrong
encodings, a wrong namespace, a truncated PDF, garbage. None may read a local file, expand an
entity, or raise anything but :class:`bus.AdapterError`.
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from adapters import all_adapters, read_bounded
from bus import AdapterError, DocumentTooLargeError, UnsafeDocumentError

SECRET = "dcant-secret-marker-7f3a"
FORMATS = sorted(all_adapters())


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(SECRET)
    return path


def attacks(secret: Path) -> dict[str, bytes]:
    uri = secret.as_uri()
    return {
        "xxe": f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "{uri}">]><r>&x;</r>'.encode(),
        "xxe-parameter": f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "{uri}"> %p;]><r/>'.encode(),
        "billion-laughs": (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
                           + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode()
                                      for i in range(8))
                           + b"]><l>&i;</l>"),
        "external-dtd": f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{uri}"><r/>'.encode(),
        "xinclude": (f'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{uri}" parse="text"/></r>'
                     ).encode(),
        "wrong-namespace": b'<Invoice xmlns="urn:example:not-ubl"><ID>1</ID></Invoice>',
        "wrong-encoding": '<?xml version="1.0" encoding="UTF-8"?><r>é</r>'.encode("latin-1"),
        "unknown-encoding": b'<?xml version="1.0" encoding="x-klingon"?><r/>',
        "utf16-bomb-mismatch": b"\xff\xfe<\x00r\x00/\x00>\x00\x00\xd8",
        "truncated-pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nendobj\ntrailer",
        "garbage": bytes(range(256)) * 4,
        "empty": b"",
        "json-bomb": b"[" * 100_000 + b"]" * 100_000,
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_only_typed_errors_and_no_local_file_read(fmt, secret_file):
    module = all_adapters()[fmt]
    for name, data in attacks(secret_file).items():
        try:
            pivot = module.to_pivot(data, name=f"{name}.bin")
        except AdapterError as err:
            assert SECRET not in str(err), (fmt, name)
            continue
        # A format may legitimately accept some of these (e.g. a lenient JSON reader);
        # what it returns must not contain the secret file's content.
        assert SECRET not in repr(pivot.data), (fmt, name)


@pytest.mark.parametrize("fmt", FORMATS)
def test_entity_expansion_is_never_performed(fmt, secret_file):
    module = all_adapters()[fmt]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(AdapterError):
        module.to_pivot(attacks(secret_file)["billion-laughs"], name="bomb.xml")
    # Expanded, the bomb is 10^9 characters; refused unexpanded, it costs nothing.
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 16


@pytest.mark.parametrize("keep_blank_text", [True, False])
def test_the_shared_parser_names_the_doctype(secret_file, keep_blank_text):
    from adapters import parse_xml

    for name in ("xxe", "billion-laughs", "external-dtd", "xxe-parameter"):
        with pytest.raises(UnsafeDocumentError, match="DOCTYPE"):
            parse_xml(attacks(secret_file)[name], keep_blank_text=keep_blank_text)


def test_the_blank_free_parse_keeps_every_value():
    from adapters import parse_xml

    data = b'<r xml:space="default">\n  <a>  </a>\n  <b> x <!--c--> y </b>\n  <c><!--c-->  </c>\n</r>'
    kept, dropped = parse_xml(data), parse_xml(data, keep_blank_text=False)
    assert [(e.tag, (e.text or "").strip()) for e in kept.iter()] == [(e.tag, (e.text or "").strip()) for e in dropped.iter()]
    assert dropped.text is None and kept.text.strip() == ""  # only the indentation between elements goes


@pytest.fixture(scope="module")
def big() -> bytes:
    """A 200 MB document, built once for every adapter."""
    return b"<r>" + b" " * (200 * 1024 * 1024) + b"</r>"


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_200_mb_document_is_refused_in_bounded_memory(fmt, big):
    module = all_adapters()[fmt]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(AdapterError):
        module.to_pivot(big, name="big.xml")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 64, f"{fmt} grew the process by {grown_mb:.0f} MB refusing a 200 MB document"


def test_a_200_mb_file_is_refused_before_reading_it(tmp_path):
    path = tmp_path / "big.xml"
    with path.open("wb") as out:
        out.truncate(200 * 1024 * 1024)  # sparse: refusing it must not read it
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DocumentTooLargeError):
        read_bounded(path)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 16
