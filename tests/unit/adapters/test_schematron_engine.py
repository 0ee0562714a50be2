"""The official rules engine (saxonche) on its own: SVRL findings, the sandbox, the package unpacking.

Documents reach Saxon only after the hardened parser accepted them, so the hostile suite run
through ``validate`` with the official rules on ends in the typed error; stylesheets run with
every URI protocol refused, so not even a rule can read a local file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from adapters import _eforms_sdk, _schematron, cii, eforms, ubl
from bus import AdapterError, ConfigurationError
from bus._packages import _unpack

from test_hostile_inputs import SECRET, attacks

SVRL_RULES = """<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
  <xsl:template match="/">
    <svrl:schematron-output>
      <svrl:failed-assert id="R-1" flag="fatal" location="/r[1]"><svrl:text>first  rule</svrl:text></svrl:failed-assert>
      <svrl:failed-assert id="R-2" flag="warning" location="/r[1]/a[1]"><svrl:text>second</svrl:text></svrl:failed-assert>
      <svrl:successful-report id="R-3" location="/r[1]"><svrl:text><xsl:value-of select="count(//a)"/> a</svrl:text></svrl:successful-report>
    </svrl:schematron-output>
  </xsl:template>
</xsl:stylesheet>"""


@pytest.fixture
def secret_file(tmp_path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


def test_svrl_outcomes_become_findings_with_id_flag_and_location(tmp_path):
    from adapters._xml import parse_xml

    rules = tmp_path / "rules.xslt"
    rules.write_text(SVRL_RULES)
    findings = _schematron.schematron_findings(rules, parse_xml(b"<r><a/><a/></r>"))
    assert [(f.rule, f.severity, f.location, f.message) for f in findings] == [
        ("R-1", "fatal", "/r[1]", "first rule"),
        ("R-2", "warning", "/r[1]/a[1]", "second"),
        ("R-3", "fatal", "/r[1]", "2 a"),
    ]


def test_the_eforms_roles_give_the_severity(tmp_path):
    from adapters._xml import parse_xml

    rules = tmp_path / "roles.xslt"
    rules.write_text(SVRL_RULES.replace('flag="fatal"', 'role="ERROR"').replace(
        'flag="warning"', 'role="WARN" flag="LAWFULNESS"'))
    findings = _schematron.schematron_findings(rules, parse_xml(b"<r><a/></r>"))
    assert [(f.rule, f.severity) for f in findings] == [("R-1", "fatal"), ("R-2", "warning"), ("R-3", "fatal")]


@pytest.mark.parametrize("call", ["document", "unparsed-text", "doc-available"])
def test_a_rule_cannot_read_a_local_file(tmp_path, secret_file, call):
    from adapters._xml import parse_xml

    expression = {"document": f"string(document('{secret_file.as_uri()}'))",
                  "unparsed-text": f"unparsed-text('{secret_file.as_uri()}')",
                  "doc-available": f"string(doc-available('{secret_file.as_uri()}'))"}[call]
    rules = tmp_path / f"{call}.xslt"
    rules.write_text(SVRL_RULES.replace("first  rule", f"<xsl:value-of select=\"{expression}\"/>"))
    findings = _schematron.schematron_findings(rules, parse_xml(b"<r/>"))
    assert SECRET not in " ".join(f.message for f in findings)
    if call == "doc-available":
        assert findings[0].message == "false"
    else:  # the read is refused: the run stops with one finding saying so
        assert [f.rule for f in findings] == ["SCHEMATRON"]
        assert "prohibited" in findings[0].message, findings[0].message


@pytest.mark.parametrize("module", [ubl, cii, eforms], ids=["ubl", "cii", "eforms"])
def test_hostile_documents_through_validate_with_official_rules(module, official_packages, secret_file):
    for name, data in attacks(secret_file).items():
        try:
            findings = module.validate(data, schema_dir=official_packages, name=f"{name}.xml",
                                       rules_dir=official_packages)
        except AdapterError as err:
            assert SECRET not in str(err), name
        else:  # a well-formed document of another vocabulary: findings, never the file
            assert findings, name
            assert SECRET not in " ".join(map(str, findings)), name


def test_xinclude_inside_an_invoice_is_not_followed(official_packages, secret_file):
    data = (f'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
            f'xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{secret_file.as_uri()}" parse="text"/>'
            f'</Invoice>').encode()
    findings = ubl.validate(data, schema_dir=official_packages, name="xi.xml", rules_dir=official_packages)
    assert {f.rule for f in findings} >= {"XSD", "BR-01"}
    assert SECRET not in " ".join(map(str, findings))


def test_an_eforms_notice_with_an_entity_never_reaches_saxon(official_packages, secret_file):
    data = (f'<!DOCTYPE ContractNotice [<!ENTITY x SYSTEM "{secret_file.as_uri()}">]><ContractNotice '
            f'xmlns="urn:oasis:names:specification:ubl:schema:xsd:ContractNotice-2">&x;</ContractNotice>').encode()
    with pytest.raises(AdapterError) as info:
        eforms.validate(data, schema_dir=official_packages, name="xxe.xml", rules_dir=official_packages)
    assert SECRET not in str(info.value)


def test_the_resolved_packages_hold_rules_and_schemas(official_packages):
    for relative in (*_schematron.EN16931_XSLT.values(), _eforms_sdk.SDK_SCHEMATRON, _eforms_sdk.MESSAGES,
                     "procurement/eforms/schemas/maindoc/UBL-ContractNotice-2.3.xsd",
                     "invoices/xsd/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd",
                     "invoices/xsd/ubl-2.1/common/CCTS_CCT_SchemaModule-2.1.xsd", cii.XSD,
                     "tools/schxslt/xslt/2.0/compile-for-svrl.xsl"):
        assert (official_packages / relative).is_file(), relative


def test_unpacking_refuses_an_entry_leaving_its_folder(tmp_path):
    jar = tmp_path / "evil.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("external/ok.xsd", "<ok/>")
        archive.writestr("external/../../escape.xsd", "<no/>")
    with pytest.raises(ConfigurationError, match="outside its folder"):
        _unpack(jar, "external/", tmp_path / "out")
    assert not (tmp_path / "escape.xsd").exists()


def test_unpacking_one_file_copies_that_file_only(tmp_path):
    jar = tmp_path / "sdk.jar"
    with zipfile.ZipFile(jar, "w") as archive:
        for name in ("t/rule_fr.xml", "t/rule_fr.xml.bak", "t/rule_en.xml"):
            archive.writestr(name, f"<{name.rsplit('/', 1)[1].replace('.', '-')}/>")
    _unpack(jar, "t/rule_fr.xml", tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["rule_fr.xml"]
    assert (tmp_path / "out" / "rule_fr.xml").read_text() == "<rule_fr-xml/>"


def test_a_value_the_rules_cannot_evaluate_is_a_finding_not_a_crash(official_packages, capfd):
    data = (b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
            b'xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
            b'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
            b'<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode><cac:LegalMonetaryTotal>'
            b'<cbc:TaxExclusiveAmount currencyID="EUR">abc</cbc:TaxExclusiveAmount></cac:LegalMonetaryTotal></Invoice>')
    findings = ubl.validate(data, schema_dir=official_packages, name="nan.xml", rules_dir=official_packages)
    assert "XSD" in {f.rule for f in findings}
    assert any(f.rule == "SCHEMATRON" and "abc" in f.message for f in findings), [str(f) for f in findings]
    assert "at " not in capfd.readouterr().err  # Saxon's stack trace is not printed
