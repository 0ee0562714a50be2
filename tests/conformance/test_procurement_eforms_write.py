"""Conformance of the eForms notices the bus writes, on the official corpus's examples.

Every corpus notice of subtype 16 (contract notice, open procedure) or 29 (contract award notice)
is read into its pivot, written back with ``eforms.from_pivot``, and the result must be valid
against the eForms SDK's UBL 2.3 XSDs and the eForms rules the bus checks
(:mod:`adapters._eforms_rules`, under the SDK's schematron rule ids), and read back to the same
pivot. The SDK's own static schematron (1.15.1, resolved by ``bus/_packages.py``) runs on them too:
it finds only the rules of ``OFFICIAL_UNSATISFIABLE``, each for a field the pivot does not carry.

Rules a pivot cannot satisfy, because it does not carry what they require (nothing is invented):

* ``ND-ProcedureTerms-16``: a contract notice needs the procedure's ``cac:TenderingTerms``
  (exclusion grounds source, BT-806...); the Notice pivot carries no procedure terms.

The demo's pivots carry less again (see ``DEMO_UNSATISFIABLE``).
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from adapters import Pivot, eforms
from bus.demo import _procurement as demo

SUBTYPES = {"16": {"ND-ProcedureTerms-16"}, "29": set()}
_PHONE_EMAIL = "the organisations' contact phone (BT-503) and e-mail (BT-506): not in the pivot's organisations"
_PLACE = "the place of performance (BT-727): not in the pivot"
#: subtype -> official rule -> why the pivot written from a corpus notice cannot satisfy it
OFFICIAL_UNSATISFIABLE = {
    "16": {
        "ND-ProcedureTerms-16": "no procedure tendering terms in a Notice pivot",
        "ND-LotTenderingTerms-16": "no lot tendering terms (BT-31, BT-751...) in a Notice pivot",
        "ND-AuctionTerms-16": "no electronic auction (BT-767) in a Notice pivot",
        "BR-BT-00017-0022": "no electronic submission (BT-17) in a Notice pivot",
        "BR-BT-00106-0022": "no accelerated procedure (BT-106) in a Notice pivot",
        "BR-BT-00115-0073": "no GPA coverage (BT-115) in a Notice pivot",
        "BR-BT-00765-0073": "no framework agreement (BT-765) in a Notice pivot",
        "BR-BT-00766-0022": "no dynamic purchasing system (BT-766) in a Notice pivot",
        "BR-BT-00050-0022": "no minimum number of candidates (BT-50) in a Notice pivot (cn_24_maximal)",
        "BR-BT-00052-0022": "no successive reduction (BT-52) in a Notice pivot (cn_24_maximal)",
        "BR-BT-00137-0214": "a lot duration given as a duration (BT-36), not as dates, is not in the pivot",
        "BR-BT-00503-0022": _PHONE_EMAIL, "BR-BT-00506-0022": _PHONE_EMAIL,
        "BR-BT-00727-0228": _PLACE, "BR-BT-00727-0230": _PLACE,
    },
    "29": {
        "ND-LotProcurementScope-29": "an Award pivot's lots carry their ids only",
        "ND-LotTenderingProcess-29": "an Award pivot's lots carry their ids only",
        "ND-LotTenderingTerms-29": "an Award pivot's lots carry their ids only",
        "BR-BT-00144-0036": "no reason why no winner was chosen (BT-144) in an Award pivot (can_24_no_tenders)",
        "BR-BT-00165-0036": "no winner company size (BT-165) in an Award pivot",
        "BR-BT-00773-0036": "no subcontracting (BT-773) in an Award pivot",
        **dict.fromkeys(("BR-BT-13713-0117", "BR-BT-13713-0118", "BR-BT-13713-0119", "BR-BT-13713-0122",
                         "BR-BT-13713-0123"), "an Award pivot keeps the count of tenders received, not the "
                                              "other statistics (SMEs, e-submissions, EEA, large enterprises)"),
        "BR-BT-00503-0036": _PHONE_EMAIL, "BR-BT-00506-0036": _PHONE_EMAIL,
        "BR-BT-00727-0228": _PLACE,
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
