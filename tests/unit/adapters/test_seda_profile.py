"""RelaxNG archiving profiles: compiled offline, external references refused, refusals name the element."""

from __future__ import annotations

import pytest

from adapters.seda import compile_profile, validate_transfer
from bus._errors import ProfileRefusedError, UnsafeProfileError
from tests.unit.processors.seda_profiles import SEDA22, act_profile


def transfer(agreement: str) -> bytes:
    return (f'<ArchiveTransfer xmlns="{SEDA22}"><Comment>versement</Comment>'
            f'<ArchivalAgreement>{agreement}</ArchivalAgreement></ArchiveTransfer>').encode()


def test_a_transfer_following_the_profile_passes():
    validate_transfer(compile_profile(act_profile()), transfer("CONV-AD031-ACTES"), profile="P v1")


def test_a_refusal_names_the_failing_element_and_its_path():
    with pytest.raises(ProfileRefusedError) as caught:
        validate_transfer(compile_profile(act_profile()), transfer("AUTRE"), profile="P v1", name="t-1")
    err = caught.value
    assert err.context["element"] == "ArchivalAgreement"
    assert err.context["xpath"] == "/ArchiveTransfer/ArchivalAgreement"
    assert "ArchivalAgreement" in err.message and err.to_headers()["error_element"] == "ArchivalAgreement"


@pytest.mark.parametrize("head", [
    '<include href="http://example.org/seda.rng"/>',
    '<define name="x"><externalRef href="https://example.org/other.rng"/></define>',
    '<include href="/etc/profile.rng"/>',
])
def test_a_profile_reaching_outside_itself_is_refused_before_compiling(head):
    with pytest.raises(UnsafeProfileError, match="refers outside itself"):
        compile_profile(act_profile(head=head), name="P")


@pytest.mark.parametrize("text, message", [
    ('<!DOCTYPE g [<!ENTITY x SYSTEM "http://example.org/x">]><grammar xmlns="http://relaxng.org/ns/structure/1.0"/>',
     "not a safe XML grammar"),
    ('<schema xmlns="http://www.w3.org/2001/XMLSchema"/>', "not a RelaxNG grammar"),
    ('<grammar xmlns="http://relaxng.org/ns/structure/1.0"><start><ref name="missing"/></start></grammar>',
     "not a valid RelaxNG grammar"),
])
def test_a_bad_profile_is_a_typed_error(text, message):
    with pytest.raises(UnsafeProfileError, match=message):
        compile_profile(text)
