"""Write an invoice pivot as a Factur-X PDF/A-3: a readable page, with the CII XML embedded.

Three maintained libraries do the work, none of it is hand-made PDF:

1. the CII D16B XML comes from :mod:`._cii_write` (the ``cii`` writer), with BT-24 set to a
   Factur-X profile (the pivot's own when it is one, else EN 16931, ``urn:cen.eu:en16931:2017``);
2. ``reportlab`` draws the visual representation (French labels, the Vera TrueType font that
   reportlab ships, embedded as PDF/A requires), and ``pypdf`` adds the sRGB output intent PDF/A
   asks for (the ICC profile made by Pillow's LittleCMS binding);
3. ``factur-x`` (Akretion) checks the XML against the Factur-X XSD of its profile and turns the
   PDF into PDF/A-3: XMP with ``pdfaid`` and the ``fx:`` extension schema, ``factur-x.xml`` as an
   associated file with AFRelationship Data.

The written PDFs pass veraPDF (PDF/A-3b) in the conformance tests, once the XMP is re-serialised
the way Adobe's XMP parser needs (:func:`_xmp_for_adobe_parsers`).
"""

from __future__ import annotations

import decimal
import functools
import io
import unicodedata
from collections.abc import Mapping
from typing import Any

import facturx
from lxml import etree
from PIL import ImageCms
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, StreamObject, TextStringObject
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from bus._errors import NonConformantError

from ._cii_write import write as write_cii

__all__ = ["EN16931_PROFILE", "FACTURX_PROFILES", "write_facturx"]

EN16931_PROFILE = "urn:cen.eu:en16931:2017"
#: BT-24 values of the Factur-X profiles the writer keeps as they are.
FACTURX_PROFILES = (
    "urn:factur-x.eu:1p0:minimum",
    "urn:factur-x.eu:1p0:basicwl",
    "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
    EN16931_PROFILE,
    "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended",
)
_FONT, _BOLD = "Vera", "VeraBd"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def write_facturx(inv: Mapping[str, Any], *, document: str) -> bytes:
    """The Factur-X PDF/A-3 bytes of the invoice pivot record ``inv``.

    A pivot whose XML the Factur-X XSD refuses is a :class:`NonConformantError` (rule ``FX-XSD``).
    """
    record = dict(inv)
    if record.get("profile") not in FACTURX_PROFILES:
        record["profile"] = EN16931_PROFILE
    xml = write_cii(record)
    try:
        pdf = facturx.generate_from_binary(_pdfa_base(record), xml, flavor="factur-x", check_xsd=True, lang="fr-FR")
    # factur-x raises bare Exception for an XSD failure (and ValueError for a level it cannot detect).
    except Exception as exc:  # noqa: BLE001
        first = " ".join(str(exc).split())[:400]
        raise NonConformantError(f"the Factur-X XML of the pivot is refused: {first}", document=document,
                                 rule="FX-XSD", hint="correct the pivot values the Factur-X XSD names") from exc
    return _xmp_for_adobe_parsers(pdf)


def _xmp_for_adobe_parsers(pdf: bytes) -> bytes:
    """The PDF with its XMP re-serialised as Adobe's XMP parser (veraPDF's, Acrobat's) requires.

    factur-x 7.8 declares every namespace on ``x:xmpmeta`` and writes ``rdf:Description`` without
    ``rdf:about``; Adobe's parser refuses an ``rdf:RDF`` that carries no attribute ("Invalid
    attributes of rdf:RDF element"), so veraPDF fails PDF/A clauses 6.6.2.1 and 6.6.4. The same
    properties are written back with the declarations on ``rdf:RDF`` and ``rdf:about=""``.
    """
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    stream = writer.root_object["/Metadata"].get_object()
    old = etree.fromstring(stream.get_data(), etree.XMLParser(resolve_entities=False, no_network=True))
    old_rdf = old.find(f"{{{_RDF}}}RDF")
    namespaces = {k: v for k, v in old.nsmap.items() if k not in ("x", None)}
    root = etree.Element(old.tag, nsmap={"x": old.nsmap["x"]})
    rdf = etree.SubElement(root, old_rdf.tag, nsmap=namespaces)
    for description in old_rdf:
        description.set(f"{{{_RDF}}}about", "")
        rdf.append(description)
    body = etree.tostring(root, encoding="UTF-8")
    stream.set_data(b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body
                    + b'\n<?xpacket end="w"?>')
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@functools.cache
def _fonts() -> None:
    pdfmetrics.registerFont(TTFont(_FONT, "Vera.ttf"))
    pdfmetrics.registerFont(TTFont(_BOLD, "VeraBd.ttf"))


@functools.cache
def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _pdfa_base(inv: Mapping[str, Any]) -> bytes:
    """The visual invoice (one or more A4 pages) with the sRGB output intent PDF/A needs."""
    reader = PdfReader(io.BytesIO(_visual(inv)))
    writer = PdfWriter(clone_from=reader)
    profile = StreamObject()
    profile.set_data(_srgb_profile())
    profile[NameObject("/N")] = NumberObject(3)
    intent = DictionaryObject({
        NameObject("/Type"): NameObject("/OutputIntent"),
        NameObject("/S"): NameObject("/GTS_PDFA1"),
        NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB IEC61966-2.1"),
        # A stream must be an indirect object; pypdf has no public call for adding one.
        NameObject("/DestOutputProfile"): writer._add_object(profile),
    })
    writer.root_object[NameObject("/OutputIntents")] = ArrayObject([intent])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _drawable(text: str) -> str:
    """``text`` with each character the Vera fonts lack replaced by its base letter, else by "?".

    PDF/A forbids showing a glyph the font does not have (.notdef): "Ő" becomes "O", "東" "?".
    Only the page changes; the embedded XML keeps every character.
    """
    glyphs = _glyphs()
    out = []
    for char in text:
        if ord(char) in glyphs:
            out.append(char)
            continue
        base = [c for c in unicodedata.normalize("NFKD", char) if ord(c) in glyphs and not unicodedata.combining(c)]
        out.append("".join(base) or "?")
    return "".join(out)


@functools.cache
def _glyphs() -> frozenset[int]:
    _fonts()
    return frozenset(pdfmetrics.getFont(_FONT).face.charToGlyph) & frozenset(pdfmetrics.getFont(_BOLD).face.charToGlyph)


def _money(value: Any, currency: str | None) -> str:
    if value is None:
        return ""
    amount = decimal.Decimal(str(value)).quantize(decimal.Decimal("0.01"))
    text = f"{amount:,.2f}".replace(",", " ").replace(".", ",")
    return f"{text} {currency or ''}".strip()


def _party_lines(party: Mapping[str, Any] | None) -> list[str]:
    if not party:
        return []
    lines = [str(party.get("name") or "")]
    address = party.get("address") or {}
    lines += [str(address[k]) for k in ("line1", "line2", "line3") if address.get(k)]
    city = " ".join(str(address[k]) for k in ("post_code", "city") if address.get(k))
    if city or address.get("country_code"):
        lines.append(f"{city} {address.get('country_code') or ''}".strip())
    legal = party.get("legal_registration") or {}
    if legal.get("id"):
        lines.append(f"SIREN/SIRET : {legal['id']}")
    if party.get("vat_identifier"):
        lines.append(f"N° TVA : {party['vat_identifier']}")
    return lines


class _Page:
    """A reportlab canvas with a cursor that starts a new page when the bottom is reached."""

    def __init__(self, title: str) -> None:
        self.buffer = io.BytesIO()
        self.canvas = canvas.Canvas(self.buffer, pagesize=A4, invariant=1)
        self.canvas.setTitle(title)
        self.y = A4[1] - 50

    def line(self, text: str, *, x: float = 50, size: float = 9, bold: bool = False, step: float = 13) -> None:
        if self.y < 60:
            self.canvas.showPage()
            self.y = A4[1] - 50
        self.canvas.setFont(_BOLD if bold else _FONT, size)
        self.canvas.drawString(x, self.y, _drawable(text[:110]))
        self.y -= step

    def right(self, text: str, x: float, *, bold: bool = False) -> None:
        self.canvas.setFont(_BOLD if bold else _FONT, 9)
        self.canvas.drawRightString(x, self.y + 13, _drawable(text))

    def finish(self) -> bytes:
        self.canvas.showPage()
        self.canvas.save()
        return self.buffer.getvalue()


def _visual(inv: Mapping[str, Any]) -> bytes:
    _fonts()
    currency = inv.get("currency")
    kind = "AVOIR" if inv.get("is_credit_note") else "FACTURE"
    page = _Page(f"{kind} {inv.get('number') or ''}")
    page.line(f"{kind} N° {inv.get('number') or ''}", size=16, bold=True, step=22)
    page.line(f"Date d'émission : {inv.get('issue_date') or ''}")
    if inv.get("due_date"):
        page.line(f"Date d'échéance : {inv['due_date']}")
    if inv.get("buyer_reference"):
        page.line(f"Référence acheteur : {inv['buyer_reference']}")
    if inv.get("purchase_order_reference"):
        page.line(f"Bon de commande : {inv['purchase_order_reference']}")
    page.y -= 8
    seller, buyer = _party_lines(inv.get("seller")), _party_lines(inv.get("buyer"))
    top = page.y
    page.line("Vendeur", bold=True)
    for text in seller:
        page.line(text)
    bottom, page.y = page.y, top
    page.line("Acheteur", x=320, bold=True)
    for text in buyer:
        page.line(text, x=320)
    page.y = min(bottom, page.y) - 10
    page.line("Désignation", bold=True)
    for x, label in ((360, "Quantité"), (430, "Prix unit. HT"), (490, "TVA %"), (545, "Montant HT")):
        page.right(label, x, bold=True)
    for line in inv.get("lines") or []:
        item = line.get("item") or {}
        page.line(str(item.get("name") or line.get("id") or ""))
        price = (line.get("price") or {}).get("net_price")
        for x, value in ((360, str(line.get("quantity") or "")), (430, _money(price, None)),
                         (490, str(line.get("vat_rate") or line.get("vat_category") or "")),
                         (545, _money(line.get("net_amount"), None))):
            page.right(value, x)
    page.y -= 8
    totals = inv.get("totals") or {}
    for label, key in (("Total HT", "tax_exclusive"), ("TVA", "tax_total"), ("Total TTC", "tax_inclusive"),
                       ("Déjà payé", "prepaid"), ("Net à payer", "payable")):
        if totals.get(key) is not None:
            page.line(label, x=360, bold=key == "payable")
            page.right(_money(totals[key], currency), 545, bold=key == "payable")
    page.y -= 8
    for note in inv.get("notes") or []:
        page.line(str(note.get("text") or ""), size=8, step=11)
    return page.finish()
