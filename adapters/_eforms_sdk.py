"""The eForms SDK's static schematron, run as published on eForms notices.

The SDK (``eforms-sdk`` 1.15.1, resolved by :mod:`bus._packages`) ships its rules as
``schematrons/static/complete-validation.sch``: one phase per notice subtype (``eforms-16``...),
each activating the shared patterns (stages 1a, 2b, 3a, 3b, 4m, 5, 5m: 2 MB of the 14 MB) and the
patterns of its subtype (1b-N, 2a-N, 3b-N, 4-N). The official validator runs the phase of the
notice's subtype. Compiling one phase takes SchXslt and Saxon about 9 s, mostly on the shared
patterns, so the bus compiles the same rules in two phases of its own: ``bus-shared`` (the
patterns every phase activates, compiled once) and ``bus-eforms-N`` (the others of phase
``eforms-N``). Patterns are evaluated independently, so the two SVRL reports hold exactly the
findings of the official phase. The compiled stylesheets are cached on disk beside the SDK
(``compiled-1/<phase>.xslt``) and in the process; the SDK's ``dynamic`` rules (which fetch the
changed notice over HTTP) are not run.

Findings keep the SDK's rule id, its role (``ERROR`` fatal, ``WARN`` a warning) and the location
of the failed assert (names written with the SDK's prefixes, ``/cn:ContractNotice[1]/cac:...``);
their message is the SDK's French text of the rule (``translations/rule_fr.xml``), or its message
key (``rule|text|<id>``) when the translation has none.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from pathlib import Path

from lxml import etree

from bus._errors import ConfigurationError

from ._base import Finding
from ._eforms_rules import ROOT_PREFIX
from ._schematron import SCHXSLT, compile_expanded, expand_schematron, schematron_findings
from ._ubl23 import NS

__all__ = ["MESSAGES", "SDK_SCHEMATRON", "compiled_phase", "sdk_findings"]

#: The static schematron of the SDK under the resolved packages' root (see bus._packages).
SDK_SCHEMATRON = "procurement/eforms/sdk-1.15/schematrons/static/complete-validation.sch"
#: Where the compiled phases are cached; its number changes when the phases the bus builds do.
_COMPILED = "procurement/eforms/sdk-1.15/compiled-1"
#: The SDK's rule texts in French, beside it.
MESSAGES = "procurement/eforms/sdk-1.15/translations/rule_fr.xml"
_SHARED = "bus-shared"
_SCH = "http://purl.oclc.org/dsdl/schematron"
_EQNAME = re.compile(r"Q\{([^}]*)\}")
_PREFIXES = {uri: prefix for prefix, uri in NS.items()} | {
    f"urn:oasis:names:specification:ubl:schema:xsd:{root}-2": prefix for root, prefix in ROOT_PREFIX.items()}
_SUBTYPE = "/*/ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/efext:EformsExtension/efac:NoticeSubType/cbc:SubTypeCode"


@functools.cache
def _schema(rules_dir: Path) -> str:
    """The SDK's schema, expanded by SchXslt, with the bus's phases added."""
    text = expand_schematron(rules_dir / SDK_SCHEMATRON, rules_dir / SCHXSLT)
    # The package's own file, expanded by SchXslt: no DOCTYPE, no entity; parsed without resolving any.
    schema = etree.fromstring(text.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True,
                                                                    huge_tree=True))
    phases = {p.get("id"): [a.get("pattern") for a in p.iterfind(f"{{{_SCH}}}active")]
              for p in schema.iterfind(f"{{{_SCH}}}phase")}
    shared = set.intersection(*(set(patterns) for patterns in phases.values()))
    anchor = schema.find(f"{{{_SCH}}}phase")
    for name, patterns in [(_SHARED, sorted(shared)),
                           *((f"bus-{p}", [a for a in v if a not in shared]) for p, v in phases.items())]:
        phase = etree.Element(f"{{{_SCH}}}phase", id=name)
        for pattern in patterns:
            etree.SubElement(phase, f"{{{_SCH}}}active", pattern=pattern)
        anchor.addprevious(phase)
    return etree.tostring(schema, encoding="unicode")


def compiled_phase(rules_dir: Path, phase: str) -> Path:
    """The compiled stylesheet of the bus phase ``phase`` (``bus-shared``, ``bus-eforms-16``...), compiled once."""
    target = rules_dir / _COMPILED / f"{phase}.xslt"
    if not target.is_file():
        xslt = compile_expanded(_schema(rules_dir), rules_dir / SCHXSLT, phase)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        partial.write_text(xslt, encoding="utf-8")
        partial.replace(target)  # atomic: another process compiling the same phase writes the same rules
    return target


def sdk_findings(root: etree._Element, subtype: str | None, *, rules_dir: Path) -> list[Finding]:
    """The findings of the SDK's phase of ``subtype`` on the notice ``root`` (from adapters._xml.parse_xml)."""
    rules_dir = Path(rules_dir)
    if not (rules_dir / SDK_SCHEMATRON).is_file():
        raise ConfigurationError(f"the eForms SDK schematron is not at {rules_dir / SDK_SCHEMATRON}",
                                 hint="resolve the official packages again (`bus rules`, or `make venv`)")
    findings = schematron_findings(compiled_phase(rules_dir, _SHARED), root)
    if subtype not in _subtypes(rules_dir):
        return [*(_readable(f, rules_dir) for f in findings), Finding(
            "SCHEMATRON", _SUBTYPE, f"the notice subtype {subtype!r} names no phase of the eForms SDK schematron")]
    findings += schematron_findings(compiled_phase(rules_dir, f"bus-eforms-{subtype}"), root)
    return [_readable(f, rules_dir) for f in findings]


def _readable(finding: Finding, rules_dir: Path) -> Finding:
    """The finding with the SDK's French message and its location's ``Q{namespace}`` names prefixed (``cn:``...)."""
    location = _EQNAME.sub(lambda m: f"{_PREFIXES[m.group(1)]}:" if m.group(1) in _PREFIXES else m.group(0),
                           finding.location)
    message = _messages(rules_dir).get(finding.message, finding.message)
    return dataclasses.replace(finding, location=location, message=message)


@functools.cache
def _messages(rules_dir: Path) -> dict[str, str]:
    """The SDK's French rule texts by message key; none when the packages were resolved without them."""
    path = rules_dir / MESSAGES
    if not path.is_file():
        return {}
    # A Java properties file of the package: its DOCTYPE names a DTD that is neither loaded nor fetched.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    return {e.get("key"): " ".join((e.text or "").split()) for e in etree.parse(str(path), parser).getroot()
            if e.tag == "entry" and (e.get("key") or "").startswith("rule|text|")}


@functools.cache
def _subtypes(rules_dir: Path) -> frozenset[str]:
    """The subtypes the SDK has a phase for, read from the phases of its main file (no include followed)."""
    main = etree.parse(str(rules_dir / SDK_SCHEMATRON), etree.XMLParser(resolve_entities=False, no_network=True))
    return frozenset(p.get("id").removeprefix("eforms-") for p in main.getroot().iterfind(f"{{{_SCH}}}phase"))
