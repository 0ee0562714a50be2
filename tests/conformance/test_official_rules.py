"""The official EN 16931 rules (CEN schematron, run by saxonche) on the corpus, and the Python pre-check against them.

The Python rules (:mod:`adapters._en16931`) re-code 37 of the official rules as a fast pre-check on
the ingress path. Where they overlap they must agree with the official engine: on every corpus
sample, and on hundreds of invoices mutated by changing one amount, quantity, rate or code value.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from lxml import etree

from adapters import _en16931, cii, ubl

PYTHON_RULES = frozenset(_en16931.RULES)
SAMPLES = [("ubl", "en16931-ubl", name) for name in (
    "BIS3_Invoice_negativ.XML", "BIS3_Invoice_positive.XML", "guide-example1.xml", "guide-example2.xml", "issue116.xml",
    "ubl-tc434-creditnote1.xml", *(f"ubl-tc434-example{i}.xml" for i in range(1, 7)))] + [
    ("cii", "en16931-cii", name) for name in (
        "CII-BR-CO-10-RoundingIssue.xml", "CII_business_example_01.xml", "CII_business_example_Z.xml",
        *(f"CII_example{i}.xml" for i in range(1, 7)), "huf_example_cii.xml")]
MODULES = {"ubl": ubl, "cii": cii}
MUTANTS_PER_SAMPLE = 15


def _ids(findings) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.rule for f in findings if f.severity == "fatal" and f.rule in PYTHON_RULES}


def _numeric_mutants(data: bytes, seed: int) -> list[tuple[str, bytes]]:
    """The document with one numeric value changed (+0.01, +1, -3 or +100), ``MUTANTS_PER_SAMPLE`` times."""
    rng = random.Random(seed)
    mutants = []
    for _ in range(MUTANTS_PER_SAMPLE):
        root = etree.fromstring(data)
        numbers = [e for e in root.iter() if isinstance(e.tag, str) and len(e) == 0
                   and (e.text or "").strip().lstrip("-").replace(".", "", 1).isdigit()]
        element = rng.choice(numbers)
        element.text = f"{float(element.text) + rng.choice([0.01, 1, -3, 100]):.2f}"
        mutants.append((f"{etree.QName(element).localname}={element.text}", etree.tostring(root)))
    return mutants


@pytest.mark.parametrize(("syntax", "folder", "file_name"), SAMPLES, ids=[s[2] for s in SAMPLES])
def test_official_rules_accept_the_official_samples(corpus: Path, official_packages: Path, syntax, folder, file_name):
    data = (corpus / "invoices" / folder / file_name).read_bytes()
    findings = MODULES[syntax].validate(data, schema_dir=corpus, name=file_name, rules_dir=official_packages)
    assert [str(f) for f in findings if f.severity == "fatal"] == []


@pytest.mark.parametrize(("syntax", "folder", "file_name"), SAMPLES, ids=[s[2] for s in SAMPLES])
def test_python_rules_agree_with_the_official_engine(corpus: Path, official_packages: Path, syntax, folder, file_name):
    module = MODULES[syntax]
    data = (corpus / "invoices" / folder / file_name).read_bytes()
    disagreements = []
    for seed, (what, mutant) in enumerate([("as published", data), *_numeric_mutants(data, seed=len(file_name))]):
        python = _ids(module.validate(mutant, schema_dir=official_packages, name=what))
        official = _ids(module.validate(mutant, schema_dir=official_packages, name=what, rules_dir=official_packages))
        if python != official:
            disagreements.append(f"{what}: python {sorted(python - official)} official {sorted(official - python)}")
        assert seed > 0 or not official, "a published sample breaks an official rule"
    assert disagreements == []


def _vat_mutant(data: bytes, syntax: str, category: str) -> bytes:
    """Every VAT category code of the document (breakdown, lines, allowances) set to ``category``."""
    root = etree.fromstring(data)
    if syntax == "ubl":
        codes = [e for e in root.iter("{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}ID")
                 if etree.QName(e.getparent()).localname in ("TaxCategory", "ClassifiedTaxCategory")]
    else:
        codes = [e for e in root.iter("{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}CategoryCode")]
    for code in codes:
        code.text = category
    return etree.tostring(root)


@pytest.mark.parametrize("category", ["Z", "E", "AE", "K", "G", "O"])
@pytest.mark.parametrize(("syntax", "folder", "file_name"), [
    ("ubl", "en16931-ubl", "ubl-tc434-example1.xml"), ("cii", "en16931-cii", "CII_example1.xml")])
def test_vat_category_mutants_break_their_official_rules(corpus: Path, official_packages: Path, syntax, folder,
                                                          file_name, category):
    """A standard-rated invoice relabelled to another VAT category breaks that category's rules (BR-Z-*, BR-E-*…)."""
    family = {"Z": "BR-Z-", "E": "BR-E-", "AE": "BR-AE-", "K": "BR-IC-", "G": "BR-G-", "O": "BR-O-"}[category]
    mutant = _vat_mutant((corpus / "invoices" / folder / file_name).read_bytes(), syntax, category)
    findings = MODULES[syntax].validate(mutant, schema_dir=official_packages, name=f"{category}.xml",
                                        rules_dir=official_packages)
    broken = {f.rule for f in findings if f.severity == "fatal"}
    assert any(rule.startswith(family) for rule in broken), sorted(broken)
    assert all(f.location.startswith("/") for f in findings)


@pytest.mark.parametrize(("syntax", "file_name", "rules"), [
    ("ubl", "ubl-21-en16931.xml", "BR-FR-Flux2-Schematron-UBL.sch"),
    ("ubl", "ubl-21-extended-ctc-fr.xml", "BR-FR-Flux2-Schematron-UBL.sch")])
def test_french_ctc_rules_accept_the_french_samples(corpus: Path, official_packages: Path, syntax, file_name, rules):
    sch = corpus / "invoices/fr-ctc/validation" / rules
    findings = MODULES[syntax].validate((corpus / "invoices/fr-ctc" / file_name).read_bytes(), schema_dir=corpus,
                                        name=file_name, rules_dir=official_packages, extra_rules=(sch,))
    assert [str(f) for f in findings if f.severity == "fatal"] == []


@pytest.mark.parametrize(("syntax", "folder", "file_name", "rules"), [
    ("ubl", "en16931-ubl", "ubl-tc434-example1.xml", "BR-FR-Flux2-Schematron-UBL.sch"),
    ("cii", "en16931-cii", "CII_example1.xml", "BR-FR-Flux2-Schematron-CII.sch")])
def test_french_ctc_rules_refuse_an_invoice_without_the_french_mentions(corpus: Path, official_packages: Path, syntax,
                                                                       folder, file_name, rules):
    """A Dutch EN 16931 invoice lacks the legal mentions of French invoices (BR-FR-05: PMT, PMD, AAB notes)."""
    sch = corpus / "invoices/fr-ctc/validation" / rules
    findings = MODULES[syntax].validate((corpus / "invoices" / folder / file_name).read_bytes(), schema_dir=corpus,
                                        name=file_name, rules_dir=official_packages, extra_rules=(sch,))
    broken = {f.rule for f in findings if f.severity == "fatal"}
    assert any(rule.startswith("BR-FR-05") for rule in broken), sorted(broken)
    assert not any(rule.startswith("BR-") and not rule.startswith("BR-FR") for rule in broken)  # EN 16931 holds
