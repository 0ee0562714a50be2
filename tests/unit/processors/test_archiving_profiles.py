"""The profile bank (approved RelaxNG versions) and the directory's routing, as the archiving core uses them."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from adapters import seda
from bus._errors import ConfigurationError, ForgedApprovalError, UnapprovedProfileError, UnsafeProfileError
from bus._profiles import APPROVAL_SCHEMA, PROFILE_SCHEMA, BankedProfile, ProfileApproval, ProfileBank
from processors.archiving import Archiving, packaged_profiles

from .acts_factories import SIREN
from .seda_profiles import act_profile
from .test_archiving import STATE, TRANSFER, Harness, act_with_documents, digested, executory, of

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SERVICE, MUTUALISED, OTHER = "130000001", "250000002", "130000009"
ACT_PROFILE = "PR-DCANT-ACTE-V1"  # the JSON act profile's archival_profile
COLLECTIVITY = SIREN


def publish(bank: ProfileBank, version: str, text: str, at: dt.datetime = T0) -> BankedProfile:
    profile = BankedProfile.from_text(ACT_PROFILE, version, text, label="Actes", published_at=at)
    bank.learn(PROFILE_SCHEMA, profile.to_record(), signer_siren=COLLECTIVITY)
    return profile


def approve(bank: ProfileBank, profile: BankedProfile, service: str, at: dt.datetime = T0) -> None:
    approval = ProfileApproval(profile.profile_id, profile.version, profile.sha256, service, at)
    bank.learn(APPROVAL_SCHEMA, approval.to_record(), signer_siren=service)


# -- the bank ----------------------------------------------------------------------------------

def test_a_profile_is_usable_only_once_approved_and_only_the_approved_version():
    bank = ProfileBank()
    v1 = publish(bank, "1", act_profile())
    with pytest.raises(UnapprovedProfileError, match="aucune version approuvée.*versions publiées : 1"):
        bank.approved(ACT_PROFILE, SERVICE)
    approve(bank, v1, SERVICE)
    publish(bank, "2", act_profile("CONV-AUTRE"))  # published, not approved: not used
    assert bank.approved(ACT_PROFILE, SERVICE).version == "1"
    with pytest.raises(UnapprovedProfileError):
        bank.approved(ACT_PROFILE, OTHER)  # another service approved nothing


def test_the_latest_approval_of_a_service_wins():
    bank = ProfileBank()
    v1, v2 = publish(bank, "1", act_profile()), publish(bank, "2", act_profile("CONV-2"))
    approve(bank, v1, SERVICE, T0)
    approve(bank, v2, SERVICE, T0 + dt.timedelta(days=1))
    assert bank.approved(ACT_PROFILE, SERVICE).version == "2"


def test_an_approval_binds_the_bytes_a_republished_version_is_not_approved():
    bank = ProfileBank()
    approve(bank, publish(bank, "1", act_profile()), SERVICE)
    publish(bank, "1", act_profile("CONV-CHANGED"))  # same id and version, other bytes (compaction keeps this one)
    with pytest.raises(UnapprovedProfileError):
        bank.approved(ACT_PROFILE, SERVICE)


def test_an_approval_signed_by_another_siren_is_refused():
    bank = ProfileBank()
    v1 = publish(bank, "1", act_profile())
    approval = ProfileApproval(ACT_PROFILE, "1", v1.sha256, SERVICE, T0)
    with pytest.raises(ForgedApprovalError, match=f"signed by a key of {COLLECTIVITY}"):
        bank.learn(APPROVAL_SCHEMA, approval.to_record(), signer_siren=COLLECTIVITY)


def test_a_published_profile_with_an_external_reference_is_refused():
    bank = ProfileBank()
    record = {"profile_id": ACT_PROFILE, "version": "1", "label": None, "published_at": T0, "sha256": "0" * 64,
              "relaxng": act_profile(head='<include href="http://example.org/seda.rng"/>')}
    with pytest.raises(UnsafeProfileError):
        bank.learn(PROFILE_SCHEMA, record, signer_siren=COLLECTIVITY)
    assert bank.profiles == {}


@pytest.mark.parametrize("profile_id, version", [("../etc", "1"), ("P", "1 2"), ("", "1")])
def test_ids_and_versions_are_tokens(profile_id, version):
    with pytest.raises(ConfigurationError):
        BankedProfile.from_text(profile_id, version, act_profile(), published_at=T0)


def test_rows_list_each_version_with_its_approvers():
    bank = ProfileBank()
    approve(bank, publish(bank, "1", act_profile()), SERVICE)
    publish(bank, "2", act_profile("CONV-2"))
    assert [(r["version"], r["approved_by"]) for r in bank.rows()] == [("1", [SERVICE]), ("2", [])]


# -- the archiving core with the bank and the directory's routes -------------------------------

def run_to_transfer(core: Archiving) -> list:
    h = Harness(core)
    h.pipe("acts", act_with_documents(), executory())
    h.pipe("archives", digested())
    return h.advance_days(360)


def core_with(bank: ProfileBank, routes: dict[str, str] | None = None) -> Archiving:
    return Archiving(packaged_profiles(), bank=bank, routes={COLLECTIVITY: MUTUALISED} if routes is None else routes)


def test_a_transfer_following_the_approved_profile_is_routed_to_the_collectivitys_archive_service():
    bank = ProfileBank()
    approve(bank, publish(bank, "1", act_profile()), MUTUALISED)
    out = run_to_transfer(core_with(bank))
    (transfer,) = of(out, TRANSFER)
    assert transfer.data["archival_agency_identifier"] == MUTUALISED  # from the directory, not the JSON profile
    root = etree.fromstring(seda.from_pivot(transfer.data))
    assert root.findtext("{*}ArchivalAgency/{*}Identifier") == MUTUALISED
    assert [o.data["state"] for o in of(out, STATE)] == ["TRANSFER_REQUESTED"]


def test_a_transfer_not_following_the_profile_is_refused_naming_the_element_and_nothing_is_sent():
    bank = ProfileBank()
    approve(bank, publish(bank, "1", act_profile("CONV-MUTUALISEE")), MUTUALISED)
    out = run_to_transfer(core_with(bank))
    assert of(out, TRANSFER) == []
    (refused,) = of(out, STATE)
    assert refused.data["state"] == "PROFILE_REFUSED"
    assert "élément ArchivalAgreement (/ArchiveTransfer/ArchivalAgreement)" in refused.data["reason"]
    assert f"{ACT_PROFILE} v1" in refused.data["reason"]


def test_a_profile_approved_by_another_archive_service_is_not_used():
    bank = ProfileBank()
    approve(bank, publish(bank, "1", act_profile()), SERVICE)  # not the collectivity's service
    out = run_to_transfer(core_with(bank))
    assert of(out, TRANSFER) == []
    (refused,) = of(out, STATE)
    assert refused.data["state"] == "PROFILE_REFUSED" and MUTUALISED in refused.data["reason"]


def test_a_refused_dossier_is_transferred_by_a_new_closing_once_the_profile_is_approved():
    bank = ProfileBank()
    h = Harness(core_with(bank))
    h.pipe("acts", act_with_documents(), executory())
    h.pipe("archives", digested())
    assert [o.data["state"] for o in of(h.advance_days(360), STATE)] == ["PROFILE_REFUSED"]
    approve(bank, publish(bank, "1", act_profile()), MUTUALISED)
    h.pipe("acts", executory(on=dt.date(2026, 1, 6)))
    out = h.pipe("archives", digested())
    assert len(of(out, TRANSFER)) == 1


def test_a_collectivity_without_archive_service_in_the_directory_is_reported():
    bank = ProfileBank()
    approve(bank, publish(bank, "1", act_profile()), MUTUALISED)
    out = run_to_transfer(core_with(bank, routes={"200000000": MUTUALISED}))
    assert of(out, TRANSFER) == []
    (state,) = of(out, STATE)
    assert state.data["state"] == "NO_ARCHIVE_SERVICE" and COLLECTIVITY in state.data["reason"]


def test_the_worker_runs_the_bank_binding_only_when_asked(tmp_path):
    from bus import Binding, BusSettings
    from processors import CORES

    plain = CORES["archiving"](BusSettings(state_dir=tmp_path))
    assert isinstance(plain, Archiving) and plain.bank is None and plain.routes is None
    bound = CORES["archiving"](BusSettings(state_dir=tmp_path, archive_profile_bank=True))
    assert isinstance(bound, Binding) and isinstance(bound.core.bank, ProfileBank) and bound.core.routes == {}
