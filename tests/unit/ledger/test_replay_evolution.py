"""Replay after a schema evolution: each record decodes with its own writer schema into the newest shape."""

from __future__ import annotations

import dataclasses

from bus import Catalog, Event, Wire
from bus.ledger._replay import Opener, ReplayQuery, open_records

from .audit_factories import PRODUCER, T0, directory, sealed

V1 = {"type": "record", "name": "Thing", "namespace": "fr.dcant.test",
      "fields": [{"name": "label", "type": "string"}]}
V2 = {**V1, "fields": [*V1["fields"], {"name": "amount", "type": "string", "default": "0.00"}]}


def thing(label: str, **extra: str) -> Event:
    return Event(type="fr.dcant.test.ThingHappened", subject=f"thing:{label}", schema="fr.dcant.test.Thing",
                 data={"label": label, **extra}, time=T0)


def test_old_and_new_records_decode_each_with_its_writer_version():
    old_catalog, new_catalog = Catalog(), Catalog()
    old_catalog.add(V1, version=1)
    new_catalog.add(V1, version=1)
    new_catalog.add(V2, version=2)
    old = Wire(old_catalog, directory(), PRODUCER, clock=lambda: T0).seal(thing("a"))
    new = Wire(new_catalog, directory(), PRODUCER, clock=lambda: T0).seal(thing("b", amount="12.50"))
    got = open_records(Wire(new_catalog, directory()), [old, new])
    assert [(g.ok, g.writer_version, g.reader_version) for g in got] == [(True, 1, 2), (True, 2, 2)]
    assert [g.data for g in got] == [{"label": "a", "amount": "0.00"}, {"label": "b", "amount": "12.50"}]
    assert got[0].to_json()["writer_version"] == 1


def test_a_tampered_record_is_reported_not_raised():
    record = sealed(1)[0]
    value = bytearray(record.value)
    value[-1] ^= 1
    [bad] = open_records(Wire(Catalog(), directory()), [dataclasses.replace(record, value=bytes(value))])
    assert not bad.ok and bad.error_class == "SignatureError" and bad.subject == "company:42082007800012"


async def test_a_process_pool_gives_the_same_results_in_order():
    from bus import default_catalog

    records = sealed(8)
    wire = Wire(default_catalog(), directory())
    with Opener(wire, workers=2) as pool:
        pooled = await pool.open(records)
    assert pooled == open_records(wire, records)


def test_filters_match_type_prefix_source_and_dossier():
    record = sealed(1)[0]
    assert ReplayQuery(("t",), types=frozenset({"fr.dcant.reference."})).wants(record)
    assert not ReplayQuery(("t",), types=frozenset({"fr.dcant.invoices."})).wants(record)
    assert ReplayQuery(("t",), sources=frozenset({"urn:siren:213105554:test"})).wants(record)
    assert not ReplayQuery(("t",), subjects=frozenset({"company:1"})).wants(record)
