"""The ACL policy (:mod:`bus._acl`) gives each service just what it needs; computed without a broker."""

from __future__ import annotations

import datetime as dt

from bus import KeyDirectory, generate_key
from bus._acl import wanted_acls
from bus._settings import BusSettings
from bus._topics import topic_map
from bus.ledger._processor import LedgerProcessor


def test_the_ledger_writes_only_its_checkpoints_and_reads_only_what_it_checkpoints():
    settings = BusSettings(topic_prefix="t.")
    acls = [a for a in wanted_acls(settings, KeyDirectory([])) if a.principal == "User:ledger"]
    key = generate_key("130025265", "ledger", valid_from=dt.datetime.now(dt.UTC), purpose="LEDGER")
    ledger = LedgerProcessor(settings, key, KeyDirectory([]))  # what `bus ledger run` checkpoints by default
    catalog = topic_map(settings)["catalog"].name  # its context decodes nothing without the schemas

    assert {a.name for a in acls if a.operation == "WRITE"} == {ledger.checkpoint_topic}
    assert {a.name for a in acls if a.operation == "READ" and a.resource == "topic"} == {
        *ledger.topics, *ledger.reference_topics, ledger.checkpoint_topic, catalog}
    assert {(a.operation, a.resource, a.name, a.prefixed) for a in acls
            if a.operation not in ("READ", "WRITE") or a.resource != "topic"} == {
        ("DESCRIBE", "topic", "t.dcant.", True), ("DESCRIBE_CONFIGS", "topic", "t.dcant.", True),
        ("READ", "group", "t.dcant.ledger.", True)}  # no CREATE, no cluster right, its own groups only


def test_with_an_anchor_a_tenant_takes_part_while_an_approved_key_of_it_is_not_revoked():
    from bus._acl import tenants
    from bus._authority import Revocation, Trust, TrustAnchor
    from bus._directory import approval_for

    now = dt.datetime.now(dt.UTC)
    keys = {name: generate_key(siren, name, valid_from=now - dt.timedelta(days=30))
            for name, siren in (("approved", "219990017"), ("self-registered", "219990018"),
                                ("revoked", "219990019"), ("revoked later", "219990020"))}
    trust = Trust(TrustAnchor.parse("ab" * 32))
    directory = KeyDirectory([k.public for k in keys.values()], trust=trust)
    for name in ("approved", "revoked", "revoked later"):
        public = keys[name].public
        trust.approvals[public.key_id] = [approval_for(public, purposes=(), valid_from=None, valid_until=None,
                                                       legal_category=None, at=now)]
    for name, start in (("revoked", now - dt.timedelta(days=1)), ("revoked later", now + dt.timedelta(days=1))):
        trust.revocations[keys[name].key_id] = [Revocation(keys[name].key_id, keys[name].public.siren, start,
                                                           "laptop stolen", now)]

    assert tenants(directory) == ["219990017", "219990020"]
    assert tenants(directory, at=now + dt.timedelta(days=2)) == ["219990017"]
    assert tenants(KeyDirectory([k.public for k in keys.values()])) == sorted(
        k.public.siren for k in keys.values())  # without an anchor: every registered key, as before
    settings = BusSettings(topic_prefix="t.")
    revoked = {a for a in wanted_acls(settings, directory) if a.principal == "User:219990019"}
    assert revoked == set()  # its ACLs go with its last key: `bus acl apply` removes them
