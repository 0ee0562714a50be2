"""Factur-X written from a pivot: PDF/A-3 with ``factur-x.xml``, valid, and read back to the same pivot.

Oracles from outside the bus: the ``factur-x`` library's own XSD check and profile detection, and
the Factur-X schematron it ships (``FACTUR-X_EN16931.xslt``, with its code list), run by Saxon;
the CEN EN 16931 schematron on the embedded CII; the bus's packaging checks (FX-*); and veraPDF,
the PDF Association's PDF/A validator (resolved from Maven Central by ``verapdf-pom.xml``), on
PDF/A-3b: one JVM run checks every written PDF and, as a control, the corpus's Factur-X sample.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import facturx as facturx_lib
import pytest
from lxml import etree

from adapters import detect, facturx, parse_xml
from adapters._base import Pivot
from adapters._schematron import schematron_findings
from bus._errors import NonConformantError

INVOICES = Path("invoices")
CII = [f"en16931-cii/CII_example{i}.xml" for i in range(1, 7)] + ["en16931-cii/CII_business_example_01.xml"]
FACTURX_XML = [f"factur-x/factur-x-{p}.xml" for p in ("minimum", "basicwl", "basic", "en16931", "extended")]
UBL = ["en16931-ubl/ubl-tc434-example1.xml", "en16931-ubl/guide-example1.xml"]
RULES = Path(facturx_lib.__file__).parent / "xsd_and_schematron" / "facturx-en16931"
CODEDB = (("FACTUR-X_EN16931_codedb.xml", RULES / "FACTUR-X_EN16931_codedb.xml"),)


def _pivot(corpus: Path, name: str) -> Pivot:
    data = (corpus / INVOICES / name).read_bytes()
    return detect(data, name=name).to_pivot(data, name=name)


def _fatal(findings: list) -> list:
    return [f for f in findings if f.severity == "fatal"]


@pytest.mark.parametrize("name", CII + FACTURX_XML)
def test_export_reads_back_to_the_same_pivot(corpus: Path, name: str) -> None:
    pivot = _pivot(corpus, name)
    pdf = facturx.from_pivot(pivot)
    assert pdf.startswith(b"%PDF-")
    back = facturx.to_pivot(pdf, name="written.pdf")
    assert back.format == "facturx"
    assert back.data == pivot.data


@pytest.mark.parametrize("name", CII + FACTURX_XML)
def test_embedded_xml_passes_the_factur_x_library_xsd_check(corpus: Path, name: str) -> None:
    pivot = _pivot(corpus, name)
    xml, spec, _ = facturx.extract(facturx.from_pivot(pivot))
    assert spec["name"] == "factur-x.xml" and spec["relationship"] == "Data"
    tree = etree.fromstring(xml)
    assert facturx_lib.xml_check_xsd(tree, flavor="factur-x", level=facturx_lib.get_level(tree)) is True
    assert facturx.expected_level(pivot.data["profile"]).lower().replace(" ", "") == facturx_lib.get_level(tree)


@pytest.mark.parametrize("name", CII)
def test_written_pdf_passes_packaging_xsd_and_both_schematrons(corpus: Path, official_packages: Path, name: str) -> None:
    pdf = facturx.from_pivot(_pivot(corpus, name))
    assert facturx.validate(pdf, schema_dir=corpus, name="written.pdf") == []  # FX-*, CII XSD, EN 16931 pre-check
    xml, _, _ = facturx.extract(pdf)
    root = parse_xml(xml, name="factur-x.xml")
    assert _fatal(schematron_findings(RULES / "FACTUR-X_EN16931.xslt", root, documents=CODEDB)) == []
    from adapters import cii

    assert _fatal(cii.validate(xml, schema_dir=corpus, name="factur-x.xml", rules_dir=official_packages)) == []


@pytest.mark.parametrize("name", FACTURX_XML)
def test_written_profiles_pass_their_own_factur_x_schematron(corpus: Path, name: str) -> None:
    """MINIMUM … EXTENDED: the embedded XML passes the schematron factur-x ships for its level."""
    from facturx import facturx as library

    xml, _, _ = facturx.extract(facturx.from_pivot(_pivot(corpus, name)))
    root = parse_xml(xml, name="factur-x.xml")
    rules = RULES.parent / library.FACTURX_LEVEL2schematron[facturx_lib.get_level(root)]
    codedb = rules.parent / Path(library.CODEDB_FACTURX_LEVEL2URL[facturx_lib.get_level(root)]).name
    assert _fatal(schematron_findings(rules, root, documents=((codedb.name, codedb),))) == []


def test_factur_x_schematron_reads_its_code_list(corpus: Path) -> None:
    """A currency outside the Factur-X code list fails the schematron: the code list was read."""
    xml, _, _ = facturx.extract(facturx.from_pivot(_pivot(corpus, CII[0])))
    bad = parse_xml(xml.replace(b"<ram:InvoiceCurrencyCode>EUR<", b"<ram:InvoiceCurrencyCode>QQQ<"), name="bad")
    assert b"QQQ" in etree.tostring(bad)
    assert _fatal(schematron_findings(RULES / "FACTUR-X_EN16931.xslt", bad, documents=CODEDB))


@pytest.mark.parametrize("name", UBL)
def test_a_ubl_pivot_becomes_an_en16931_factur_x(corpus: Path, name: str) -> None:
    pivot = _pivot(corpus, name)
    back = facturx.to_pivot(facturx.from_pivot(pivot), name="from-ubl.pdf")
    assert back.data["profile"] == "urn:cen.eu:en16931:2017"
    assert (back.data["number"], back.data["totals"]) == (pivot.data["number"], pivot.data["totals"])


def test_writer_refuses_what_the_factur_x_xsd_refuses(corpus: Path) -> None:
    pivot = _pivot(corpus, CII[0])
    broken = Pivot(type=pivot.type, schema=pivot.schema, subject=pivot.subject, format=pivot.format,
                   data={**pivot.data, "number": None})
    with pytest.raises(NonConformantError) as caught:
        facturx.from_pivot(broken)
    assert caught.value.context["rule"] == "FX-XSD"


def test_a_profile_that_cannot_hold_the_invoice_is_refused_on_write_and_on_validate(corpus: Path) -> None:
    """EN 16931 content declared MINIMUM: the MINIMUM XSD has no invoice lines."""
    pivot = _pivot(corpus, CII[0])
    minimum = Pivot(type=pivot.type, schema=pivot.schema, subject=pivot.subject, format=pivot.format,
                    data={**pivot.data, "profile": "urn:factur-x.eu:1p0:minimum"})
    with pytest.raises(NonConformantError) as caught:
        facturx.from_pivot(minimum)
    assert caught.value.context["rule"] == "FX-XSD"
    xml, _, _ = facturx.extract(facturx.from_pivot(pivot))
    bad_xml = xml.replace(b"urn:cen.eu:en16931:2017<", b"urn:factur-x.eu:1p0:minimum<")
    base = facturx.from_pivot(pivot)  # any PDF/A-3 will do as the visual: factur-x replaces the attachment
    bad = facturx_lib.generate_from_binary(base, bad_xml, flavor="factur-x", level="minimum", check_xsd=False)
    rules = [f.rule for f in facturx.validate(bad, schema_dir=corpus, name="bad.pdf")]
    assert "FX-XSD" in rules


def test_writer_refuses_other_pivots(corpus: Path) -> None:
    data = (corpus / "reference/sirene/unite_legale.json").read_bytes()
    company = detect(data, name="u.json").to_pivot(data, name="u.json")
    with pytest.raises(NonConformantError, match="cannot write"):
        facturx.from_pivot(company)


VERAPDF_POM = Path(__file__).with_name("verapdf-pom.xml")


@pytest.fixture(scope="module")
def verapdf_verdicts(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """veraPDF's PASS/FAIL (PDF/A-3b) of the PDFs written from the samples, and of the corpus's own Factur-X PDF."""
    mvn, java = shutil.which("mvn"), shutil.which("java")
    if mvn is None or java is None:
        pytest.fail("veraPDF needs Maven and Java 17, which the bus's own broker needs too")
    tmp = tmp_path_factory.mktemp("verapdf")
    resolved = subprocess.run([mvn, "-q", "-B", "-f", str(VERAPDF_POM), "dependency:build-classpath",
                               f"-Dmdep.outputFile={tmp / 'cp.txt'}"], capture_output=True, text=True, timeout=600)
    assert resolved.returncode == 0, resolved.stdout[-2000:] + resolved.stderr[-2000:]
    files = {"control": corpus / INVOICES / "factur-x" / "invoice_EN16931.pdf"}
    for name in CII + FACTURX_XML:
        files[name] = tmp / (Path(name).stem + ".pdf")
        files[name].write_bytes(facturx.from_pivot(_pivot(corpus, name)))
    files["glyphs"] = tmp / "glyphs.pdf"
    files["glyphs"].write_bytes(facturx.from_pivot(_far_glyphs(corpus)))
    files["pages"] = tmp / "pages.pdf"
    files["pages"].write_bytes(facturx.from_pivot(_many_lines(corpus)))
    run = subprocess.run([java, "-cp", (tmp / "cp.txt").read_text().strip(), "org.verapdf.apps.GreenfieldCliWrapper",
                          "--flavour", "3b", "--format", "text", *map(str, files.values())],
                         capture_output=True, text=True, timeout=600)
    verdicts = {line.split(" ", 1)[1]: line.split(" ", 1)[0] for line in run.stdout.splitlines()
                if line.startswith(("PASS ", "FAIL "))}
    return {name: verdicts.get(str(path), f"no verdict: {run.stdout[-500:]} {run.stderr[-500:]}")
            for name, path in files.items()}


def _far_glyphs(corpus: Path) -> Pivot:
    """CII example 1 with names in scripts the page's font does not carry."""
    pivot = _pivot(corpus, CII[0])
    seller = {**pivot.data["seller"], "name": "Őrség Kft. Łódź Ж東京"}
    return Pivot(type=pivot.type, schema=pivot.schema, subject=pivot.subject, format=pivot.format,
                 data={**pivot.data, "seller": seller})


def _many_lines(corpus: Path) -> Pivot:
    """CII example 1 with its lines repeated to 200 (ids kept unique): a page of them does not hold.

    Its totals no longer add up (BR-CO-10): the page layout is what is tested, not the amounts.
    """
    pivot = _pivot(corpus, CII[0])
    lines = [{**line, "id": f"{n}-{line['id']}"} for n in range(200 // len(pivot.data["lines"]) + 1)
             for line in pivot.data["lines"]][:200]
    return Pivot(type=pivot.type, schema=pivot.schema, subject=pivot.subject, format=pivot.format,
                 data={**pivot.data, "lines": lines})


def test_a_long_invoice_runs_over_several_pages(corpus: Path) -> None:
    import io

    import pypdf

    pdf = facturx.from_pivot(_many_lines(corpus))
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) > 3
    xml, _, _ = facturx.extract(pdf)
    assert xml.count(b"<ram:IncludedSupplyChainTradeLineItem>") == 200


def test_characters_the_font_lacks_stay_in_the_xml(corpus: Path) -> None:
    pdf = facturx.from_pivot(_far_glyphs(corpus))
    assert facturx.to_pivot(pdf, name="glyphs.pdf").data["seller"]["name"] == "Őrség Kft. Łódź Ж東京"


@pytest.mark.parametrize("name", ["control", "glyphs", "pages", *CII, *FACTURX_XML])
def test_written_pdf_is_pdf_a_3b_for_verapdf(verapdf_verdicts: dict[str, str], name: str) -> None:
    assert verapdf_verdicts[name] == "PASS"
