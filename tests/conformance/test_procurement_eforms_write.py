"""Conformance of the eForms notices the bus writes, on the official corpus's examples.

Every corpus notice of subtype 16 (contract notice, open procedure) or 29 (contract award notice)
is read into its pivot, written back with ``eforms.from_pivot``, and the result must be valid
against the eForms SDK's UBL 2.3 XSDs and the eForms rules the bus checks
(:mod:`adapters._eforms_rules`, under the SDK's schematron rule ids), and read back to the same
pivot. The SDK's own static schematron (1.15.1, resolved by ``bus/_packages.py``) runs on them too:
on each written notice it finds only rules the corpus notice itself breaks (``OFFICIAL_UNSATISFIABLE``):
the pivots carry what the official rules require of these notices, and invent nothing.

The demo's notice and award notice pass both, with nothing left.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from adapters import Pivot, eforms
from bus.demo import _procurement as demo

SUBTYPES = {"16": set(), "29": set()}
#: subtype -> official rule -> why the notice written from a corpus notice's pivot breaks it: only
#: what the corpus notice breaks itself (a pivot carries no field the notice does not give)
OFFICIAL_UNSATISFIABLE: dict[str, dict[str, str]] = {
    "16": {},
    "29": {
        "BR-BT-13713-0123": "the corpus notices themselves give no count of tenders from large enterprises "
                            "(t-large, BT-760): can_24_minimal and can_24_FRA_comments break it as published",
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


def test_corpus_pivots_written_back_break_only_the_official_rules_their_notice_breaks(
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
        original = (corpus / "procurement" / "eforms" / "notices" / name).read_bytes()
        own = {f.rule for f in eforms.validate(original, schema_dir=official_packages, name=name,
                                               rules_dir=official_packages) if f.severity == "fatal"}
        assert fatal <= own, (name, fatal - own)
        broken[subtype] |= fatal
    assert broken == {subtype: set(rules) for subtype, rules in OFFICIAL_UNSATISFIABLE.items()}


def _demo_notice(schema: str) -> bytes:
    stage = types.SimpleNamespace(run="C1")
    event = demo.notice_event(stage) if schema == "Notice" else demo.award_event(stage, "12345678900011")  # type: ignore[arg-type]
    return eforms.from_pivot(Pivot(type=event.type, schema=event.schema, subject=event.subject, data=event.data,
                                   format="eforms"))


@pytest.mark.parametrize("schema", ["Notice", "Award"])
def test_the_demo_pivots_written_are_valid(corpus: Path, schema: str) -> None:
    assert eforms.validate(_demo_notice(schema), schema_dir=corpus, name=f"demo {schema}") == []


@pytest.mark.parametrize("schema", ["Notice", "Award"])
def test_the_demo_pivots_written_pass_the_official_schematron(official_packages: Path, schema: str) -> None:
    findings = eforms.validate(_demo_notice(schema), schema_dir=official_packages, name=f"demo {schema}",
                               rules_dir=official_packages)
    assert [(f.rule, f.message) for f in findings if f.severity == "fatal"] == []
