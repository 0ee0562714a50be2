"""Factur-X / ZUGFeRD PDF/A-3 invoices: extract the embedded CII XML and read it as the CII adapter does.

The invoice travels as an associated file of the PDF (``factur-x.xml``, ``zugferd-invoice.xml`` or
``xrechnung.xml``). :func:`to_pivot` extracts it (bounded), reads it through :mod:`adapters.cii`
and keeps the Factur-X profile (BT-24, ``GuidelineSpecifiedDocumentContextParameter``) in the
pivot. :func:`validate` adds the Factur-X packaging checks that can be made honestly without a
full PDF/A validator:

``FX-XMP-01`` the catalog has an XMP metadata stream;
``FX-XMP-02`` XMP identifies PDF/A-3 (``pdfaid:part`` 3, ``pdfaid:conformance`` A, B or U);
``FX-XMP-03`` XMP declares the Factur-X (``fx:``) namespace with DocumentFileName, DocumentType,
              Version and ConformanceLevel, and a PDF/A extension schema describing that prefix;
``FX-XMP-04`` ``fx:DocumentFileName`` names the embedded invoice;
``FX-XMP-05`` ``fx:ConformanceLevel`` matches the profile of the embedded XML;
``FX-AF-01``  the invoice is an associated file (catalog ``/AF``) with AFRelationship Data,
              Source or Alternative; ``FX-AF-02`` its embedded-file subtype is ``text/xml``;
``FX-XSD``    the XML passes the Factur-X XSD of its own profile (checked by the ``factur-x`` library).

It does not check the PDF/A-3 rendering rules (fonts, colour spaces, transparency), which need a
PDF/A validator such as veraPDF.

:func:`from_pivot` writes a Factur-X PDF/A-3 from an invoice pivot (:mod:`._facturx_write`: the
CII of the ``cii`` writer, a page drawn by reportlab, the PDF/A-3 packaging and the Factur-X XSD
check of the ``factur-x`` library); :func:`to_pivot` reads it back to the same pivot.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import facturx as facturx_library
import pypdf
from lxml import etree

from bus._errors import DocumentTooLargeError, MalformedDocumentError, NonConformantError

from . import _en16931, cii
from ._base import Finding, Pivot, Sniff
from ._facturx_write import write_facturx
from ._invoice_xsd import schema_at, xsd_findings
from ._xml import DEFAULT_MAX_XML_BYTES, parse_xml

__all__ = ["FAMILY", "FORMAT", "INVOICE_FILE_NAMES", "detect", "extract", "from_pivot", "terms", "to_pivot", "validate"]

FORMAT = "facturx"
FAMILY = "invoices"

INVOICE_FILE_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")
#: An embedded invoice XML above this is refused: the largest real ones are a few MB.
MAX_EMBEDDED_XML_BYTES = 32 * 1024 * 1024
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_PDFAID = "http://www.aiim.org/pdfa/ns/id/"
_FX_NAMESPACES = (
    "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
    "urn:zugferd:pdfa:CrossIndustryDocument:invoice:2p0#",
    "urn:ferd:pdfa:CrossIndustryDocument:invoice:1p0#",
)
_LEVELS = (  # (suffix of BT-24, XMP ConformanceLevel); first match wins
    ("factur-x.eu:1p0:minimum", "MINIMUM"),
    ("factur-x.eu:1p0:basicwl", "BASIC WL"),
    ("factur-x.eu:1p0:basic", "BASIC"),
    ("factur-x.eu:1p0:extended", "EXTENDED"),
    ("xrechnung", "XRECHNUNG"),
    ("urn:cen.eu:en16931:2017", "EN 16931"),
)


def detect(sniff: Sniff) -> bool:
    """True for any PDF: the embedded invoice is looked for by :func:`to_pivot`."""
    return sniff.kind == "pdf"


def _open(data: bytes, name: str) -> pypdf.PdfReader:
    if len(data) > DEFAULT_MAX_XML_BYTES:
        raise DocumentTooLargeError(f"PDF is {len(data)} bytes, above the {DEFAULT_MAX_XML_BYTES} bytes bound", document=name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            reader.trailer["/Root"].get_object()
            return reader
    # pypdf raises many unrelated types (KeyError, ValueError, AssertionError...) on corrupt input.
    except Exception as exc:  # noqa: BLE001
        raise MalformedDocumentError(f"cannot read the PDF: {type(exc).__name__}: {exc}", document=name) from exc


def _file_specs(reader: pypdf.PdfReader) -> list[dict[str, Any]]:
    """Every embedded file: name, AFRelationship, subtype, data getter (from /AF, then /Names)."""
    specs: list[dict[str, Any]] = []
    root = reader.trailer["/Root"].get_object()
    seen: set[str] = set()
    candidates = []
    af = root.get("/AF")
    if af is not None:
        candidates.extend((item.get_object(), True) for item in af.get_object())
    names = root.get("/Names")
    tree = names.get_object().get("/EmbeddedFiles") if names is not None else None
    if tree is not None:
        flat = tree.get_object().get("/Names") or []
        candidates.extend((flat[i + 1].get_object(), False) for i in range(0, len(flat) - 1, 2))
    for spec, associated in candidates:
        file_name = str(spec.get("/UF") or spec.get("/F") or "")
        ef = spec.get("/EF")
        stream = ef.get_object().get("/F") if ef is not None else None
        if not file_name or stream is None or file_name in seen:
            continue
        seen.add(file_name)
        stream = stream.get_object()
        specs.append({
            "name": file_name,
            "associated": associated,
            "relationship": str(spec.get("/AFRelationship") or "").lstrip("/") or None,
            "subtype": str(stream.get("/Subtype") or "").lstrip("/").replace("#2F", "/") or None,
            "stream": stream,
        })
    return specs


def extract(data: bytes, *, name: str = "<bytes>") -> tuple[bytes, dict[str, Any], pypdf.PdfReader]:
    """The embedded invoice XML, its file spec facts and the reader.

    Raises MalformedDocumentError for an unreadable PDF and NonConformantError when no
    Factur-X/ZUGFeRD/XRechnung XML is embedded.
    """
    reader = _open(data, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            specs = _file_specs(reader)
            spec = next((s for s in specs if s["name"].lower() in INVOICE_FILE_NAMES), None)
            if spec is None:
                found = ", ".join(s["name"] for s in specs) or "none"
                raise NonConformantError(
                    f"the PDF embeds no Factur-X invoice (embedded files: {found})",
                    document=name,
                    rule="FX-AF-01",
                    hint="send the Factur-X PDF/A-3 with its factur-x.xml attachment, or the CII/UBL XML itself",
                )
            declared = spec["stream"].get("/Length")
            if isinstance(declared, int) and declared > MAX_EMBEDDED_XML_BYTES:
                raise DocumentTooLargeError(f"embedded {spec['name']} is {declared} bytes", document=name)
            xml = spec["stream"].get_data()
    except (NonConformantError, DocumentTooLargeError):
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt streams raise arbitrary pypdf/zlib errors
        raise MalformedDocumentError(f"cannot read the embedded files of the PDF: {type(exc).__name__}: {exc}", document=name) from exc
    if len(xml) > MAX_EMBEDDED_XML_BYTES:
        raise DocumentTooLargeError(f"embedded {spec['name']} is {len(xml)} bytes", document=name)
    return xml, spec, reader


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """Read the invoice embedded in a Factur-X PDF; the pivot's ``profile`` is its Factur-X profile."""
    xml, _spec, _reader = extract(data, name=name)
    root = parse_xml(xml, name=f"{name}#{_spec['name']}", keep_blank_text=False)
    return _en16931.build_pivot(cii.read(root, name=name), fmt=FORMAT, name=name, filled=True)


def from_pivot(pivot: Pivot) -> bytes:
    """The Factur-X PDF/A-3 of an invoice pivot: a readable page with ``factur-x.xml`` (CII) embedded.

    BT-24 keeps the pivot's profile when it is a Factur-X one, else becomes EN 16931. A pivot
    the Factur-X XSD refuses is a :class:`NonConformantError` (rule ``FX-XSD``).
    """
    if pivot.schema != "fr.dcant.invoices.Invoice":
        raise NonConformantError(f"cannot write a {pivot.schema} pivot as Factur-X", document=pivot.subject,
                                 rule="FX-PIVOT", hint="facturx writes fr.dcant.invoices.Invoice pivots only")
    return write_facturx(pivot.data, document=pivot.subject)


def terms(pivot: Pivot) -> dict[str, Any]:
    """The flat EN 16931 terms map of the pivot (see :func:`adapters._en16931.terms`)."""
    return _en16931.terms(pivot.data)


def _xmp(reader: pypdf.PdfReader, name: str) -> etree._Element | None:
    metadata = reader.trailer["/Root"].get_object().get("/Metadata")
    if metadata is None:
        return None
    try:
        return parse_xml(metadata.get_object().get_data(), name=f"{name}#XMP")
    except (MalformedDocumentError, NonConformantError):
        return None


def _xmp_value(xmp: etree._Element, namespace: str, local: str) -> str | None:
    """A simple XMP property, written either as an attribute or as an element of rdf:Description."""
    for desc in xmp.iter(f"{{{_RDF}}}Description"):
        value = desc.get(f"{{{namespace}}}{local}")
        if value is not None:
            return value.strip()
        child = desc.find(f"{{{namespace}}}{local}")
        if child is not None:
            return (child.text or "").strip()
    return None


def expected_level(profile: str | None) -> str | None:
    """The XMP ConformanceLevel matching a BT-24 profile (None when unknown)."""
    text = (profile or "").lower()
    for suffix, level in _LEVELS:
        if suffix in text:
            return level
    return None


def packaging_findings(reader: pypdf.PdfReader, spec: dict[str, Any], profile: str | None, *, name: str) -> list[Finding]:
    """The FX-* checks of the module docstring."""
    findings: list[Finding] = []
    if not spec["associated"] or spec["relationship"] not in ("Data", "Source", "Alternative"):
        findings.append(Finding("FX-AF-01", "/Root/AF", f"{spec['name']} must be an associated file with AFRelationship Data, Source or Alternative (found {spec['relationship']})"))
    if spec["subtype"] != "text/xml":
        findings.append(Finding("FX-AF-02", "/Root/AF/EF/F/Subtype", f"embedded file subtype is {spec['subtype']}, not text/xml"))
    xmp = _xmp(reader, name)
    if xmp is None:
        findings.append(Finding("FX-XMP-01", "/Root/Metadata", "the PDF has no readable XMP metadata stream"))
        return findings
    part, conformance = _xmp_value(xmp, _PDFAID, "part"), _xmp_value(xmp, _PDFAID, "conformance")
    if part != "3" or conformance not in ("A", "B", "U"):
        findings.append(Finding("FX-XMP-02", "XMP pdfaid", f"XMP does not identify PDF/A-3 (part={part}, conformance={conformance})"))
    declared = {ns for el in xmp.iter() if isinstance(el.tag, str) for ns in (el.nsmap or {}).values()}
    fx_ns = next((ns for ns in _FX_NAMESPACES if ns in declared), None)
    if fx_ns is None:
        findings.append(Finding("FX-XMP-03", "XMP fx", "XMP does not declare the Factur-X (fx:) namespace"))
        return findings
    values = {key: _xmp_value(xmp, fx_ns, key) for key in ("DocumentFileName", "DocumentType", "Version", "ConformanceLevel")}
    missing = [key for key, value in values.items() if not value]
    # PDF/A requires custom XMP namespaces to be described by a pdfaExtension schema.
    described = any(
        isinstance(el.tag, str) and etree.QName(el).localname == "namespaceURI" and (el.text or "").strip() == fx_ns
        for el in xmp.iter()
    )
    if not described:
        missing.append("PDF/A extension schema describing fx")
    if missing:
        findings.append(Finding("FX-XMP-03", "XMP fx", f"XMP Factur-X properties missing: {', '.join(missing)}"))
    if values["DocumentFileName"] and values["DocumentFileName"] != spec["name"]:
        findings.append(Finding("FX-XMP-04", "XMP fx:DocumentFileName", f"XMP names {values['DocumentFileName']} but the embedded invoice is {spec['name']}"))
    level, expected = (values["ConformanceLevel"] or "").upper(), expected_level(profile)
    if expected and level and level != expected:
        findings.append(Finding("FX-XMP-05", "XMP fx:ConformanceLevel", f"XMP declares {level} but the embedded XML's profile {profile} is {expected}"))
    return findings


#: The factur-x library's name of each Factur-X profile (XMP ConformanceLevel → level).
_LIBRARY_LEVELS = {"MINIMUM": "minimum", "BASIC WL": "basicwl", "BASIC": "basic", "EN 16931": "en16931",
                   "EXTENDED": "extended"}


def profile_xsd_findings(root: etree._Element, profile: str | None) -> list[Finding]:
    """``FX-XSD``: the embedded XML against the Factur-X XSD of its own profile (the ``factur-x`` library's).

    The CII D16B XSD accepts every profile; this one refuses what the profile leaves out. ZUGFeRD
    1.0 and XRechnung XML have no Factur-X profile and get no finding here.
    """
    level = _LIBRARY_LEVELS.get(expected_level(profile) or "")
    if level is None:
        return []
    try:
        facturx_library.xml_check_xsd(root, flavor="factur-x", level=level)
    # The library raises a bare Exception naming the XSD error.
    except Exception as exc:  # noqa: BLE001
        return [Finding("FX-XSD", "/", f"the Factur-X {level} XSD refuses the XML: {' '.join(str(exc).split())[:300]}")]
    return []


def validate(data: bytes, *, schema_dir: Path, name: str = "<bytes>") -> list[Finding]:
    """Packaging (FX-*), CII D16B XSD and EN 16931 findings of a Factur-X PDF."""
    try:
        xml, spec, reader = extract(data, name=name)
    except NonConformantError as exc:
        return [Finding(str(exc.context.get("rule", "FX-AF-01")), "/Root/AF", exc.message)]
    root = parse_xml(xml, name=f"{name}#{spec['name']}")
    profile = root.findtext(f"{{{cii.RSM}}}ExchangedDocumentContext/{{{cii.RAM}}}GuidelineSpecifiedDocumentContextParameter/{{{cii.RAM}}}ID")
    findings = packaging_findings(reader, spec, profile, name=name)
    findings += xsd_findings(schema_at(Path(schema_dir), cii.XSD, package="the UN/CEFACT CII D16B schemas"), root)
    findings += profile_xsd_findings(root, profile)
    return [*findings, *cii.check_root(root, name=name)]
