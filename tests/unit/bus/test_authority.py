"""The registration authority's rules, on directory records folded as a verifier folds them (no broker)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest

from bus import KeyDirectory, Wire, generate_key
from bus._authority import Authority, AuthorityKey, Revocation, Trust, TrustAnchor, fingerprint
from bus._directory import (
    approval_event,
    approval_for,
    authority_event,
    learn_record,
    registration_event,
    revocation_event,
)
from bus._errors import (
    ConfigurationError,
    ForgedApprovalError,
    ForgedRegistrationError,
    RegistrationRefusedError,
    RevokedKeyError,
    SignatureError,
    UnapprovedKeyError,
)
from bus._registration import check_siren
from bus._runtime import trust_of
from bus._settings import BusSettings

from .conftest import company_event

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SIREN = "213105554"


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


class Bus:
    """A directory topic in memory: records sealed as on the wire, stamped by a broker clock, folded."""

    def __init__(self, catalog, tmp_path, anchor: bool = True) -> None:
        self.catalog = catalog
        self.authority = Authority(tmp_path / "ra")
        self.ra = self.authority.create(T0)
        trust = Trust(TrustAnchor(fingerprint(self.ra.public.public_der)) if anchor else None)
        self.directory = KeyDirectory(trust=trust)
        self.publish(authority_event(AuthorityKey(self.ra.key_id, self.ra.public.public_der, T0), T0), self.ra, T0)

    def seal(self, event, signer, received: dt.datetime):
        record = Wire(self.catalog, KeyDirectory(), signer).seal(event)
        return dataclasses.replace(record, timestamp_ms=_ms(received))

    def publish(self, event, signer, received: dt.datetime) -> str:
        return learn_record(self.directory, self.catalog, self.seal(event, signer, received))

    def register(self, valid_from: dt.datetime = T0, siren: str = SIREN):
        key = generate_key(siren, "Commune", valid_from=valid_from)
        self.publish(registration_event(key), key, valid_from)
        return key

    def approve(self, key, at: dt.datetime = T0 + DAY, signer=None, **kw):
        approval = approval_for(key.public, purposes=kw.pop("purposes", ()), valid_from=kw.pop("valid_from", None),
                                valid_until=kw.pop("valid_until", None), legal_category="7210", at=at)
        return self.publish(approval_event(approval), signer or self.ra, at)

    def revoke(self, key, revoked_from: dt.datetime, at: dt.datetime):
        revocation = Revocation(key.key_id, key.public.siren, revoked_from, "compromise", at)
        return self.publish(revocation_event(revocation), self.ra, at)

    def event(self, key, at: dt.datetime, received: dt.datetime | None = None):
        wire = Wire(self.catalog, self.directory, key, source=f"urn:siren:{SIREN}:test")
        record = wire.seal(dataclasses.replace(company_event(), time=at))
        return wire, dataclasses.replace(record, timestamp_ms=_ms(received or at))


@pytest.fixture
def bus(catalog, tmp_path) -> Bus:
    return Bus(catalog, tmp_path)


def test_self_registered_key_is_refused(bus):
    key = bus.register()
    wire, record = bus.event(key, T0 + 2 * DAY)
    with pytest.raises(UnapprovedKeyError, match="self-registered"):
        wire.open(record)


def test_approved_key_opens_inside_its_approval_only(bus):
    key = bus.register()
    bus.approve(key, valid_from=T0 + DAY, valid_until=T0 + 10 * DAY)
    wire, record = bus.event(key, T0 + 2 * DAY)
    assert wire.open(record).data["siret"] == "42082007800012"
    for moment in (T0, T0 + 11 * DAY):
        wire, record = bus.event(key, moment)
        with pytest.raises(UnapprovedKeyError, match="no approval"):
            wire.open(record)


def test_approval_covers_only_its_purposes(bus):
    key = bus.register()
    bus.approve(key, purposes=("LEDGER",))
    wire, record = bus.event(key, T0 + 2 * DAY)
    with pytest.raises(UnapprovedKeyError, match="EVENTS"):
        wire.open(record)


def test_revoked_key_refused_from_the_revocation_date_valid_before(bus):
    key = bus.register()
    bus.approve(key)
    bus.revoke(key, revoked_from=T0 + 5 * DAY, at=T0 + 6 * DAY)
    wire, before = bus.event(key, T0 + 3 * DAY)
    assert wire.open(before).data["name"] == "ACME"  # signed and received before: still the SIREN's
    wire, after = bus.event(key, T0 + 7 * DAY)
    with pytest.raises(RevokedKeyError, match="compromise"):
        wire.open(after)
    wire, backdated = bus.event(key, T0 + 3 * DAY, received=T0 + 7 * DAY)
    with pytest.raises(RevokedKeyError):
        wire.open(backdated)  # dated before the revocation, but the broker got it after


def test_approval_signed_by_a_key_of_its_own_is_forged(bus, catalog, tmp_path):
    key = bus.register()
    pirate = Authority(tmp_path / "pirate").create(T0)
    with pytest.raises(ForgedApprovalError, match="not the trust anchor"):
        bus.publish(authority_event(AuthorityKey(pirate.key_id, pirate.public.public_der, T0), T0), pirate, T0)
    with pytest.raises(ForgedApprovalError, match="forged"):
        bus.approve(key, signer=pirate)
    wire, record = bus.event(key, T0 + 2 * DAY)
    with pytest.raises(ForgedApprovalError):
        wire.open(record)


def test_approval_altered_on_the_topic_is_forged(bus):
    key = bus.register()
    approval = approval_for(key.public, purposes=("EVENTS",), valid_from=None, valid_until=T0 + 2 * DAY,
                            legal_category="7210", at=T0 + DAY)
    record = bus.seal(approval_event(approval), bus.ra, T0 + DAY)
    longer = approval_for(key.public, purposes=("EVENTS",), valid_from=None, valid_until=None,
                          legal_category="7210", at=T0 + DAY)
    forged_value = Wire(bus.catalog, KeyDirectory(), bus.ra).seal(approval_event(longer)).value
    with pytest.raises(ForgedApprovalError, match="not signed"):
        learn_record(bus.directory, bus.catalog, dataclasses.replace(record, value=forged_value))
    wire, event = bus.event(key, T0 + 5 * DAY)
    with pytest.raises(ForgedApprovalError):
        wire.open(event)


def test_registration_forged_on_the_topic_is_refused(bus):
    key = bus.register(valid_from=T0 + 30 * DAY)
    bus.approve(key, at=T0 + 30 * DAY)
    backdated = dataclasses.replace(key.public, valid_from=T0 - 365 * DAY)  # proof no longer matches
    stolen = dataclasses.replace(key, public=backdated)
    with pytest.raises(SignatureError):  # the known key stays as registered; the altered record is refused
        bus.publish(registration_event(stolen), stolen, T0 + 31 * DAY)
    assert bus.directory.get(key.key_id).valid_from == T0 + 30 * DAY
    stranger = generate_key(SIREN, "Pirate", valid_from=T0)
    altered = dataclasses.replace(stranger, public=dataclasses.replace(stranger.public, owner="Mairie"))
    with pytest.raises(ForgedRegistrationError):
        bus.publish(registration_event(altered), altered, T0)
    wire, record = bus.event(stranger, T0 + DAY)
    with pytest.raises(ForgedRegistrationError):
        wire.open(record)


def test_authority_rotation(bus):
    key, other = bus.register(), bus.register()
    bus.approve(key)
    successor = bus.authority.create(T0 + 10 * DAY)
    introduced = AuthorityKey(successor.key_id, successor.public.public_der, T0 + 10 * DAY, bus.ra.key_id)
    assert bus.publish(authority_event(introduced, T0 + 10 * DAY), bus.ra, T0 + 10 * DAY) == "authority"
    wire, record = bus.event(key, T0 + 12 * DAY)
    assert wire.open(record)  # approved by the previous authority key before the rotation
    with pytest.raises(ForgedApprovalError, match="not the authority"):
        bus.approve(other, at=T0 + 11 * DAY)  # the old key no longer approves
    assert bus.approve(other, at=T0 + 11 * DAY, signer=successor) == "approval"
    wire, record = bus.event(other, T0 + 12 * DAY)
    assert wire.open(record)
    rogue = bus.authority.create(T0 + 12 * DAY)
    with pytest.raises(ForgedApprovalError):  # the retired key cannot introduce another successor
        bus.publish(authority_event(AuthorityKey(rogue.key_id, rogue.public.public_der, T0 + 12 * DAY,
                                                 bus.ra.key_id), T0 + 12 * DAY), bus.ra, T0 + 12 * DAY)


def test_keys_valid_at_a_date(bus):
    old, new = bus.register(), bus.register(valid_from=T0 + 20 * DAY)
    bus.approve(old, valid_until=T0 + 20 * DAY)
    bus.approve(new, at=T0 + 20 * DAY)
    bus.revoke(new, revoked_from=T0 + 40 * DAY, at=T0 + 40 * DAY)
    ids = lambda at: [k.key_id for k in bus.directory.valid_keys(SIREN, at)]  # noqa: E731
    assert ids(T0 + 5 * DAY) == [old.key_id]
    assert ids(T0 + 25 * DAY) == [new.key_id]
    assert ids(T0 + 45 * DAY) == []
    unapproved = bus.register(valid_from=T0 + 21 * DAY)
    assert unapproved.key_id not in ids(T0 + 25 * DAY)


def test_history_survives_newer_entries(bus):
    key = bus.register()
    bus.approve(key, valid_until=T0 + 5 * DAY)
    bus.approve(key, valid_from=T0 + 5 * DAY, at=T0 + 6 * DAY)
    bus.revoke(key, revoked_from=T0 + 50 * DAY, at=T0 + 50 * DAY)
    assert len(bus.directory.trust.approvals[key.key_id]) == 2
    wire, record = bus.event(key, T0 + 2 * DAY)
    assert wire.open(record)  # the first approval still answers for its period


def test_without_anchor_a_self_registered_key_is_trusted_and_it_is_said_once(catalog, tmp_path, caplog):
    import bus._authority as authority

    authority._warned = False
    assert not trust_of(BusSettings(trust_anchor=None)).enforced
    plain = Bus(catalog, tmp_path, anchor=False)
    key = plain.register()
    with caplog.at_level(logging.WARNING, logger="bus.trust"):
        for _ in range(2):
            wire, record = plain.event(key, T0 + DAY)
            assert wire.open(record)
    assert len(caplog.records) == 1 and "BUS_TRUST_ANCHOR" in caplog.records[0].message


def test_anchor_from_fingerprint_or_pem_file(tmp_path):
    authority = Authority(tmp_path / "ra")
    key = authority.create(T0)
    pem = authority.save(key)
    fp = fingerprint(key.public.public_der)
    assert TrustAnchor.parse(f"sha256:{fp.upper()}") == TrustAnchor(fp)
    from_file = TrustAnchor.parse(str(pem))
    assert from_file.fingerprint == fp and from_file.public_der == key.public.public_der
    assert oct((tmp_path / "ra" / "000000000" / f"{key.key_id.replace(':', '_')}.pem").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ConfigurationError):
        TrustAnchor.parse("not-a-fingerprint")


def test_anchor_file_trusts_the_authority_before_its_record_is_read(catalog, tmp_path):
    authority = Authority(tmp_path / "ra")
    ra = authority.create(T0)
    directory = KeyDirectory(trust=Trust(TrustAnchor.parse(str(authority.save(ra)))))
    assert directory.get(ra.key_id).public_der == ra.public.public_der


def test_reference_check_of_the_siren():
    companies = [
        {"kind": "LEGAL_UNIT", "siren": "213105554", "legal_form": "7210", "administrative_state": "ACTIVE"},
        {"kind": "LEGAL_UNIT", "siren": "420820078", "legal_form": "5710", "administrative_state": "ACTIVE"},
        {"kind": "LEGAL_UNIT", "siren": "552100554", "legal_form": "5599", "administrative_state": "CEASED"},
    ]
    assert check_siren(companies, "213105554") == "7210"
    with pytest.raises(RegistrationRefusedError, match="not a public body"):
        check_siren(companies, "420820078")
    assert check_siren(companies, "420820078", supplier=True) == "5710"
    with pytest.raises(RegistrationRefusedError, match="not an active company"):
        check_siren(companies, "552100554", supplier=True)
    with pytest.raises(RegistrationRefusedError, match="not in the reference"):
        check_siren(companies, "219990017")
