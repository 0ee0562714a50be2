"""``bus profiles`` refuses bad input before any broker: one line, exit 2."""

from __future__ import annotations

import pytest

from tests.unit.processors.seda_profiles import act_profile

from .test_failures_cli import bus, no_broker, one_line  # noqa: F401  (no_broker: a fixture)


@pytest.mark.parametrize("head", ['<include href="http://example.org/seda.rng"/>',
                                  '<define name="x"><externalRef href="file:///etc/passwd"/></define>'])
def test_a_profile_with_an_external_reference_is_refused_before_sending(tmp_path, no_broker, head):
    profile = tmp_path / "p.rng"
    profile.write_text(act_profile(head=head), encoding="utf-8")
    line = one_line(bus("profiles", "publish", str(profile), "--id", "PR-1", "--version", "1", env=no_broker))
    assert "refers outside itself" in line and "inline every included grammar" in line


def test_a_profile_that_is_not_text_or_not_relaxng_is_refused(tmp_path, no_broker):
    binary, xsd = tmp_path / "p.bin", tmp_path / "p.xsd"
    binary.write_bytes(b"\xff\xfe\x00")
    xsd.write_text('<schema xmlns="http://www.w3.org/2001/XMLSchema"/>', encoding="utf-8")
    assert "not UTF-8" in one_line(bus("profiles", "publish", str(binary), "--id", "P", "--version", "1",
                                       env=no_broker))
    assert "not a RelaxNG grammar" in one_line(bus("profiles", "publish", str(xsd), "--id", "P", "--version", "1",
                                                   env=no_broker))


def test_an_archive_service_must_be_a_siren(no_broker):
    assert "is not a SIREN" in one_line(bus("profiles", "archive-service", "FRAD031", env=no_broker))


def test_without_a_broker_list_says_how_to_start_one(no_broker):
    assert "bus broker start" in one_line(bus("profiles", "list", env=no_broker))
