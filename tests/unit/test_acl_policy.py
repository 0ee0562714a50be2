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
