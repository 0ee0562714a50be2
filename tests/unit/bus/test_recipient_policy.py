"""Who may read, by policy (issue 12 item 3): recipients a flow adds to every addressed event."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from bus import DecryptionKeyring, NotARecipientError, Wire
from bus._sealed import generate_encryption_key
from bus._settings import BusSettings
from bus._topics import topic_map

from .conftest import T0, company_event

COMMUNE, PREFECTURE, ARCHIVES, OTHER = "213105554", "130006000", "130000001", "210100012"


def test_the_policy_is_read_per_flow_and_kept_with_the_topic_table():
    s = BusSettings(recipient_policy="archives=130000001;accounting=110000002, 130000003")
    assert s.recipient_policy == {"archives": ("130000001",), "accounting": ("110000002", "130000003")}
    specs = topic_map(s)
    assert specs["archives"].extra_recipients == ("130000001",)
    assert specs["acts"].extra_recipients == () and specs["reference.companies"].extra_recipients == ()


@pytest.mark.parametrize("value", ["payroll=130000001", "archives=", "archives=1300", "acts=13000000x"])
def test_a_policy_naming_no_flow_or_no_siren_is_refused(value):
    with pytest.raises(ValidationError):
        BusSettings(recipient_policy=value)


@pytest.fixture(scope="module")
def enc():
    return {s: generate_encryption_key(s) for s in (PREFECTURE, ARCHIVES, OTHER)}


def _wire(catalog, directory, key, enc, *, policy=None, reader: str | None = None) -> Wire:
    return Wire(catalog, directory, key, source=f"urn:siren:{COMMUNE}:test", clock=lambda: T0,
                encryption_keys={s: k.public for s, k in enc.items()}, recipient_policy=policy,
                decryption=DecryptionKeyring([enc[reader]]) if reader else None)


def test_an_addressed_event_of_a_flow_with_a_policy_is_also_encrypted_to_its_extra_recipients(
        catalog, directory, key, enc):
    from bus._topics import topic_for_schema

    flow = topic_for_schema(company_event().schema)  # the Wire keys its policy by logical topic
    producer = _wire(catalog, directory, key, enc, policy={flow: (ARCHIVES,)})
    record = producer.seal(dataclasses.replace(company_event(), recipients=(PREFECTURE,)))
    for reader in (PREFECTURE, ARCHIVES):  # the addressee, and the recipient the policy added
        opened = _wire(catalog, directory, key, enc, reader=reader).open(record)
        assert opened.envelope.recipient_sirens == (ARCHIVES, PREFECTURE) and opened.data["name"] == "ACME"
    with pytest.raises(NotARecipientError):
        _wire(catalog, directory, key, enc, reader=OTHER).open(record)
    broadcast = producer.seal(company_event())  # a broadcast stays a broadcast: the policy adds readers, not secrecy
    assert Wire(catalog, directory).open(broadcast).envelope.recipients is None


def test_a_policy_of_another_flow_adds_no_one(catalog, directory, key, enc):
    producer = _wire(catalog, directory, key, enc, policy={"nonexistent-flow": (ARCHIVES,)})
    record = producer.seal(dataclasses.replace(company_event(), recipients=(PREFECTURE,)))
    assert _wire(catalog, directory, key, enc, reader=PREFECTURE).open(record).envelope.recipient_sirens == (PREFECTURE,)
