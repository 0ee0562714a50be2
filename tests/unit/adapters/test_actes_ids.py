"""The ACTES identifier and file naming conventions (adapters._actes_common, adapters.actes.act_id)."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters import actes
from adapters._actes_common import media_type, message_file_name, parse_act_id, parse_file_name
from bus._errors import NonConformantError


def test_act_id_builds_the_identifier_of_the_s2low_anomaly_sample() -> None:
    assert actes.act_id("000000000", "034", dt.date(2017, 7, 1), "20170721D", 3) == "034-000000000-20170701-20170721D-AI"


@pytest.mark.parametrize(
    ("department", "nature", "expected"),
    [
        ("34", 1, "034-214502494-20170717-D201717-DE"),
        ("02A", "CC", "02A-214502494-20170717-D201717-CC"),
        ("2B", "5", "02B-214502494-20170717-D201717-BF"),
        ("976", 6, "976-214502494-20170717-D201717-AU"),
    ],
)
def test_act_id_pads_departments_and_accepts_codes_or_abbreviations(department: str, nature: object, expected: str) -> None:
    assert actes.act_id("214502494", department, "2017-07-17", "D201717", nature) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("siren", "department", "number", "nature"),
    [
        ("21450249", "045", "D201717", 1),  # 8-digit SIREN
        ("214502494", "45A1", "D201717", 1),  # department too long
        ("214502494", "145", "D201717", 1),  # first digit must be 0 or 9
        ("214502494", "045", "D2017/17", 1),  # '/' not allowed in NumeroInterne
        ("214502494", "045", "A1234567890123456", 1),  # longer than 15
        ("214502494", "045", "D201717-", 1),  # must end with a letter or digit
        ("214502494", "045", "D201717", 7),  # no nature 7
        ("214502494", "045", "D201717", "XX"),
    ],
)
def test_act_id_refuses_what_cannot_be_an_idacte(siren: str, department: str, number: str, nature: object) -> None:
    with pytest.raises(NonConformantError) as info:
        actes.act_id(siren, department, dt.date(2017, 7, 17), number, nature)  # type: ignore[arg-type]
    assert info.value.context["rule"] == "ACTES-IDACTE"


def test_act_id_refuses_a_non_date() -> None:
    with pytest.raises(NonConformantError):
        actes.act_id("214502494", "045", "17/07/2017", "D201717", 1)


def test_parse_file_name_reads_every_part_and_strips_the_folder() -> None:
    parsed = parse_file_name("/some/dir/007-210703385-20170519-2017_048-DE-1-1_0.xml")
    assert parsed is not None
    assert str(parsed.act) == "007-210703385-20170519-2017_048-DE"
    assert parsed.act.subject == "act:210703385:2017_048"
    assert (parsed.message_code, parsed.index, parsed.extension) == ("1-1", 0, "xml")
    assert parsed.act.decision_date == dt.date(2017, 5, 19)


def test_parse_file_name_handles_a_number_with_dashes() -> None:
    parsed = parse_file_name("034-000000000-20170701-A-12-B-AR-4-1_2.PDF")
    assert parsed is not None
    assert parsed.act.number == "A-12-B"
    assert parsed.act.nature_abbreviation == "AR"
    assert (parsed.message_code, parsed.index, parsed.extension) == ("4-1", 2, "pdf")


@pytest.mark.parametrize(
    "name",
    [
        "EACT--214502494--20170717-6.xml",
        "ar-actes-fakeTdt.xml",
        "034-000000000-20171301-20170721D-AI-1-3_0.xml",  # month 13
        "034-000000000-20170701-20170721D-AI-8-1_0.xml",  # no transaction 8
        "034-000000000-20170701-20170721D-AI-1-3.xml",
    ],
)
def test_parse_file_name_rejects_other_names(name: str) -> None:
    assert parse_file_name(name) is None


def test_parse_act_id_round_trips() -> None:
    parsed = parse_act_id(" 069-123456789-20130601-20130623C-AI ")
    assert parsed is not None
    assert str(parsed) == "069-123456789-20130601-20130623C-AI"
    assert parse_act_id("069-123456789-20130601-20130623C-ai") is None


def test_message_file_name_and_media_types() -> None:
    assert message_file_name("034-000000000-20170701-20170721D-AI", "1-1", 1, "pdf") == "034-000000000-20170701-20170721D-AI-1-1_1.pdf"
    assert media_type("x.PDF") == "application/pdf"
    assert media_type("x.jpeg") == "image/jpeg"
    assert media_type("x.xml") == "application/xml"
    assert media_type("noextension") == "application/octet-stream"
    assert media_type("x.exe") == "application/octet-stream"
