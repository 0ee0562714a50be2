"""The eForms SDK's static schematron (1.15.1, compiled by SchXslt, run by saxonche) on the corpus notices.

Every valid corpus notice breaks no rule but the two below, which SDK 1.15.0 introduced after the
corpus notices (``eforms-sdk-1.15`` in their CustomizationID) and its SVRL reports were made; the
invalid notice with an SVRL report breaks exactly the rules the report names, at the same places.
The Python pre-check (:mod:`adapters._eforms_rules`) must agree with the official engine on the
rules it re-codes, on the corpus notices of subtypes 16 and 29 and on copies of them with one
mandatory element removed. Each phase compiles once per machine (cached beside the SDK) and once
per process.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from adapters import _eforms_rules, eforms
from adapters._ubl23 import NS

#: Rules SDK 1.15.0 introduced (its CHANGELOG) that corpus result notices written before them break.
NEW_IN_1_15 = {
    "BR-BT-13713-0123": "the number of tenders from large enterprises (statistics code t-large) is given exactly "
                        "once: the corpus result notices give the other statistics, not this new code",
    "BR-OPT-00322-0053": "a lot result refers to several contracts only under a framework agreement or a DPS",
}
#: notice -> the rules of NEW_IN_1_15 it breaks (the others break none)
BROKEN = {
    "can-desg_24.xml": {"BR-BT-13713-0123"},
    "can-social_24.xml": {"BR-BT-13713-0123"},
    "can_23_contracts.xml": {"BR-BT-13713-0123", "BR-OPT-00322-0053"},
    "can_24_FRA_comments.xml": {"BR-BT-13713-0123"},
    "can_24_minimal.xml": {"BR-BT-13713-0123"},
    "can_25_withheld.xml": {"BR-BT-13713-0123"},
}
VALID = ("can-desg_24.xml", "can-modif_24_value.xml", "can-social_24.xml", "can_23_contracts.xml",
         "can_24_FRA_comments.xml", "can_24_minimal.xml", "can_24_no_tenders.xml", "can_25_withheld.xml",
         "change-cn_24_void.xml", "cn-desg_24.xml", "cn-social_24.xml", "cn_23.xml", "cn_24_FRA_comments.xml",
         "cn_24_maximal.xml", "cn_24_minimal.xml", "cn_24_open.xml", "cn_25.xml", "pin-only_81_FRA.xml", "veat_24.xml")
INVALID = ("INVALID_can_24_stage-1.xml", "INVALID_cn_24_empty.xml")
#: Elements removed one at a time from the subtype 16 and 29 notices (pre-check agreement).
REMOVED = ("cbc:IssueDate", "cbc:IssueTime", "cbc:NoticeLanguageCode", "cbc:VersionID", "cbc:CustomizationID",
           "cac:ProcurementProject/cbc:Name", "cac:ProcurementProject/cbc:ProcurementTypeCode",
           "cac:ContractingParty/cac:Party/cac:PartyIdentification", "cac:TenderingTerms", "cac:ProcurementProjectLot")


def _report(path: Path) -> set[tuple[str, str]]:
    """(rule, location) of every failed assert and successful report of an SVRL file of the corpus."""
    svrl = etree.parse(str(path)).getroot()
    outcomes = svrl.iter("{http://purl.oclc.org/dsdl/svrl}failed-assert", "{http://purl.oclc.org/dsdl/svrl}successful-report")
    return {(o.get("id"), o.get("location")) for o in outcomes}


def _fatal(findings) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(rule, location) of the fatal findings, the location without the ``[1]`` the official reports leave out."""
    return {(f.rule, f.location.replace("[1]", "")) for f in findings if f.severity == "fatal"}


@pytest.mark.parametrize("name", VALID)
def test_official_rules_accept_the_corpus_notices(corpus: Path, official_packages: Path, name: str) -> None:
    folder = corpus / "procurement" / "eforms"
    findings = eforms.validate((folder / "notices" / name).read_bytes(), schema_dir=official_packages, name=name,
                               rules_dir=official_packages)
    assert [f for f in findings if f.rule == "XSD"] == []
    assert {rule for rule, _ in _fatal(findings)} == BROKEN.get(name, set())
    report = folder / "reports" / name.replace(".xml", ".svrl")
    if report.is_file():  # the validator's report: the same findings, but for the rules it predates
        assert {(r, loc) for r, loc in _fatal(findings) if r not in NEW_IN_1_15} == _report(report)


@pytest.mark.parametrize("name", INVALID)
def test_official_rules_name_what_the_reports_of_the_invalid_notices_name(corpus: Path, official_packages: Path,
                                                                         name: str) -> None:
    folder = corpus / "procurement" / "eforms"
    findings = eforms.validate((folder / "notices-invalid" / name).read_bytes(), schema_dir=corpus, name=name,
                               rules_dir=official_packages)
    report = folder / "reports" / name.replace(".xml", ".svrl")
    if report.is_file():
        assert _fatal(findings) == _report(report)
    else:  # stage 1 passes, the subtype 29 mandatory fields are missing
        assert {"BR-BT-00701-0036", "BR-BT-00757-0036", "BR-BT-00005-0088", "BR-OPT-00300-0136",
                "element-not-empty", "BR-BT-00004-0052", "OPP-070-notice-List_MA"} <= {r for r, _ in _fatal(findings)}
    assert {f.rule for f in findings if f.rule.startswith("EFORMS-")} == set()  # pattern ids are not findings


def test_official_findings_say_in_french_what_the_rule_wants(corpus: Path, official_packages: Path) -> None:
    data = (corpus / "procurement" / "eforms" / "notices-invalid" / "INVALID_cn_24_empty.xml").read_bytes()
    findings = {f.rule: f for f in eforms.validate(data, schema_dir=official_packages, rules_dir=official_packages)}
    assert findings["BR-BT-00701-0022"].message == ("'Identifiant/version de l’avis' (BT-701-notice) est obligatoire "
                                                    "(dans '16 – Avis de marché – directive générale, régime ordinaire')")
    assert findings["BR-BT-00701-0022"].location == "/cn:ContractNotice[1]"


def _subtype(data: bytes) -> str:
    return etree.fromstring(data).findtext(".//efac:NoticeSubType/cbc:SubTypeCode", namespaces=NS).strip()


def _without(data: bytes, path: str) -> bytes | None:
    """The notice without the first element at ``path`` (relative to the root), None when it has none."""
    root = etree.fromstring(data)
    found = root.find(path, NS)
    if found is None:
        return None
    found.getparent().remove(found)
    return etree.tostring(root)


def test_python_rules_agree_with_the_official_engine(corpus: Path, official_packages: Path) -> None:
    folder = corpus / "procurement" / "eforms"
    documents = [(p.name, p.read_bytes()) for p in [*(folder / "notices").glob("*.xml"),
                                                     *(folder / "notices-invalid").glob("*.xml")]]
    documents = [(name, data) for name, data in documents if _subtype(data) in ("16", "29")]
    assert len(documents) >= 8
    cases = [*documents, *((f"{name} without {path}", mutant) for name, data in documents
                           for path in REMOVED if (mutant := _without(data, path)) is not None)]
    disagreements, compared = [], 0
    for what, data in cases:
        recoded = _eforms_rules.recoded_rules(_subtype(data))
        python = {f.rule for f in eforms.validate(data, schema_dir=official_packages, name=what) if f.rule != "XSD"}
        official = {f.rule for f in eforms.validate(data, schema_dir=official_packages, name=what,
                                                    rules_dir=official_packages) if f.severity == "fatal"}
        compared += bool(python)
        if python != official & recoded:
            disagreements.append(f"{what}: python only {sorted(python - official)}, "
                                 f"official only {sorted((official & recoded) - python)}")
    assert disagreements == []
    assert compared >= len(REMOVED)  # the mutants broke re-coded rules: the comparison had findings to compare


def test_an_unknown_subtype_is_one_fatal_finding(official_packages: Path, corpus: Path) -> None:
    data = (corpus / "procurement" / "eforms" / "notices" / "cn_24_minimal.xml").read_bytes()
    data = re.sub(rb'(listName="notice-subtype">)16<', rb"\g<1>99<", data)
    findings = eforms.validate(data, schema_dir=official_packages, rules_dir=official_packages)
    assert [(f.rule, f.severity) for f in findings if "99" in f.message] == [("SCHEMATRON", "fatal")]
