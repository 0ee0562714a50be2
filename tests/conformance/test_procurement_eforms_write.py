"""Conformance of the eForms notices the bus writes, on the official corpus's examples.

Every corpus notice of subtype 16 (contract notice, open procedure) or 29 (contract award notice)
is read into its pivot, written back with ``eforms.from_pivot``, and the result must be valid
against the eForms SDK's UBL 2.3 XSDs and the eForms rules the bus checks
(:mod:`adapters._eforms_rules`, under the SDK's schematron rule ids), and read back to the same
pivot. The SDK's own static schematron (1.15.1, resolved by ``bus/_packages.py``) runs on them too:
it finds only the rules of ``OFFICIAL_UNSATISFIABLE``, each for a field the pivot does not carry
or one the corpus notice itself breaks (nothing is invented).

The demo's pivots carry less again (see ``DEMO_UNSATISFIABLE``).
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from adapters import Pivot, eforms
from bus.demo import _procurement as demo

SUBTYPES = {"16": set(), "29": set()}
#: subtype -> official rule -> why the pivot written from a corpus notice cannot satisfy it
OFFICIAL_UNSATISFIABLE = {
    "16": {
        "ND-LotTenderingTerms-16": "no lot tendering terms (BT-60, BT-71, BT-98, BT-97, review terms...) in a Notice pivot",
        "BR-BT-00031-0073": "no maximum number of lots per tenderer (BT-31) in a Notice pivot",
        "BR-BT-00067-0022": "no exclusion grounds (BT-67) in a Notice pivot, which the notice itself may be the source of",
        "BR-BT-01351-0022": "no accelerated procedure justification (BT-1351) in a Notice pivot (cn_24_maximal)",
        "BR-BT-00661-0022": "no limited number of candidates indicator (BT-661) in a Notice pivot (cn_24_maximal)",
        "BR-BT-00019-0022": "no reason for not using e-submission (BT-19) in a Notice pivot (cn_24_maximal)",
        "BR-BT-00745-0022": "no description of why e-submission is not allowed (BT-745) in a Notice pivot (cn_24_maximal)",
    },
    "29": {
        "ND-LotProcurementScope-29": "an Award pivot's lots carry their ids only",
        "ND-LotTenderingProcess-29": "an Award pivot's lots carry their ids only",
        "ND-LotTenderingTerms-29": "an Award pivot's lots carry their ids only",
        "BR-BT-13713-0123": "the corpus notices themselves give no count of tenders from large enterprises "
                            "(t-large, BT-760): can_24_minimal and can_24_FRA_comments break it as published",
    },
}
#: rule -> why the demo's pivot cannot satisfy it
DEMO_UNSATISFIABLE = {
    "Notice": {
        "ND-ProcedureTerms-16": "no procedure tendering terms in a Notice pivot",
        "BR-BT-00004-0052": "the demo's procedure id SEL-2025-VOIRIE-… is not the UUID eForms requires for BT-04",
        "BR-BT-00005-0074": "the demo's notice has no dispatch time (BT-05(b))",
        "BR-BT-00010-0022": "the demo's buyer has no activity (BT-10)",
        "BR-BT-00011-0022": "the demo's buyer has no legal type (BT-11)",
    },
    "Award": {
        "BR-BT-00004-0052": "the demo's procedure id SEL-2025-VOIRIE-… is not the UUID eForms requires for BT-04",
        "BR-BT-00005-0088": "the demo's award has no dispatch time (BT-05(b))",
        "BR-BT-00010-0036": "the demo's buyer has no activity (BT-10)",
        "BR-BT-00011-0036": "the demo's buyer has no legal type (BT-11)",
        "BR-BT-00702-0036": "the demo's award has no notice language (BT-702)",
    },
}


def _samples(corpus: Path) -> list[tuple[str, Pivot]]:
    found = []
    for path in sorted((corpus / "procurement" / "eforms" / "notices").glob("*.xml")):
        pivots = eforms.to_pivots(path.read_bytes(), name=path.name)
        found += [(path.name, p) for p in pivots if p.data.get("notice_subtype") in SUBTYPES]
    return found


def test_the_corpus_has_notices_of_both_subtypes(corpus: Path) -> None:
    subtypes = {p.data["notice_subtype"] for _, p in _samples(corpus)}
    assert subtypes == set(SUBTYPES)


def test_corpus_pivots_written_back_are_valid_and_read_back_the_same(corpus: Path) -> None:
    samples = _samples(corpus)
    assert len(samples) >= 2
    for name, pivot in samples:
        written = eforms.from_pivot(pivot)
        findings = eforms.validate(written, schema_dir=corpus, name=f"written from {name}")
        assert [f for f in findings if f.rule == "XSD"] == [], name
        assert {f.rule for f in findings} == SUBTYPES[pivot.data["notice_subtype"]], name
        back = eforms.to_pivot(written, name=f"written from {name}")
        assert (back.type, back.schema, back.subject) == (pivot.type, pivot.schema, pivot.subject), name
        assert back.data == pivot.data, name


def test_corpus_pivots_written_back_break_only_the_official_rules_they_cannot_satisfy(
        corpus: Path, official_packages: Path) -> None:
    broken: dict[str, set[str]] = {subtype: set() for subtype in OFFICIAL_UNSATISFIABLE}
    for name, pivot in _samples(corpus):
        subtype = pivot.data["notice_subtype"]
        written = eforms.from_pivot(pivot)
        assert b"<cbc:CustomizationID>eforms-sdk-1.15</cbc:CustomizationID>" in written
        findings = eforms.validate(written, schema_dir=official_packages, name=f"written from {name}",
                                   rules_dir=official_packages)
        assert [f for f in findings if f.rule == "XSD"] == [], name
        fatal = {f.rule for f in findings if f.severity == "fatal"}
        assert fatal <= set(OFFICIAL_UNSATISFIABLE[subtype]), (name, fatal - set(OFFICIAL_UNSATISFIABLE[subtype]))
        broken[subtype] |= fatal
    assert broken == {subtype: set(rules) for subtype, rules in OFFICIAL_UNSATISFIABLE.items()}


@pytest.mark.parametrize("schema", ["Notice", "Award"])
def test_the_demo_pivots_written_are_xsd_valid_and_break_only_what_they_cannot_say(corpus: Path, schema: str) -> None:
    stage = types.SimpleNamespace(run="C1")
    event = demo.notice_event(stage) if schema == "Notice" else demo.award_event(stage, "12345678900011")  # type: ignore[arg-type]
    pivot = Pivot(type=event.type, schema=event.schema, subject=event.subject, data=event.data, format="eforms")
    findings = eforms.validate(eforms.from_pivot(pivot), schema_dir=corpus, name=f"demo {schema}")
    assert [f for f in findings if f.rule == "XSD"] == []
    assert {f.rule for f in findings} == set(DEMO_UNSATISFIABLE[schema])
