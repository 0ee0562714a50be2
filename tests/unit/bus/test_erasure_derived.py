"""Erasure reaches derived events (issue 12): a personal field nested in an array of records, and an
event that names the dossier whose key encrypts it (its subject is another one)."""

from __future__ import annotations

import dataclasses
import json

import fastavro
import pytest

from bus import Event, Wire
from bus._erasure import ERASED, ERASURE_TYPE, WITHHELD, _parse, dossier_of, is_personal, personal_fields
from bus.ledger._opening import open_records
from bus.ledger._trace import with_erasures

from .conftest import T0
from .test_erasure import producer, store  # noqa: F401 (the dossier key store and a wire that holds it)

DOSSIER = "act:213105554:DEL-2026-001"
TRANSFER = f"transfer:{DOSSIER}/transfer-1"
NAME = "Jeanne Martin"


def _unit(unit_id: str, parent: str | None, title: str | None, description: str | None) -> dict:
    return {"id": unit_id, "parent_id": parent, "archive_unit_ref_id": None, "archive_unit_profile": None,
            "management": None, "description_level": "File", "title": title, "description": description,
            "created_date": None, "transacted_date": None, "start_date": None, "end_date": None,
            "data_object_refs": [], "data_object_group_refs": []}


def transfer(title: str | None = f"Aide sociale à {NAME}", *, dossier: str | None = DOSSIER) -> Event:
    data = {"seda_version": "2.2", "message_identifier": f"{DOSSIER}/transfer-1", "date": T0, "comment": None,
            "archival_agreement": None, "archival_agency_identifier": "FRAD031",
            "transferring_agency_identifier": "213105554", "archival_profile": None, "service_level": None,
            "acquisition_information": None, "legal_status": None, "originating_agency_identifier": None,
            "submission_agency_identifier": None, "management": None,
            "archive_units": [_unit("AU-DOSSIER", None, title, f"Dossier {DOSSIER}"),
                              _unit("AU-1", "AU-DOSSIER", "delib.pdf", "Acte")],
            "binary_data_objects": [], "physical_data_objects": []}
    return Event(type="fr.dcant.archives.ArchiveTransferRequested", subject=TRANSFER,
                 schema="fr.dcant.archives.ArchiveTransfer", data=data, dossier=dossier,
                 id="0192f0c4-0000-7000-8000-0000000000a1")


def _strip(node):
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "personal"}
    return [_strip(v) for v in node] if isinstance(node, list) else node


def test_a_personal_field_inside_an_array_of_records_has_a_path_and_no_fingerprint(catalog):
    schema = catalog.latest("fr.dcant.archives.ArchiveTransfer")
    assert personal_fields(schema) == {"archive_units[].title": None}
    plain = _strip(json.loads(json.dumps(schema.raw)))
    assert fastavro.schema.to_parsing_canonical_form(fastavro.parse_schema(plain, _force=True)) == schema.canonical
    assert personal_fields(catalog.latest("fr.dcant.acts.Act")) == {"object": ""}  # a top-level one keeps its name


def test_the_derived_event_is_encrypted_under_the_dossier_it_names(producer, catalog, directory, store):
    record = producer.seal(transfer())
    assert NAME.encode() not in record.value and record.key == TRANSFER.encode()
    assert dossier_of(record.value, TRANSFER) == DOSSIER and _parse(record.value)[1] == ("archive_units[].title",)
    assert store.entry(DOSSIER) is not None and store.entry(TRANSFER) is None  # one key: the act dossier's
    got = Wire(catalog, directory, dossier_keys=store).open(record)
    assert [u["title"] for u in got.data["archive_units"]] == [f"Aide sociale à {NAME}", "delib.pdf"]
    assert got.hidden == () and got.dossier == DOSSIER and got.subject == TRANSFER


def test_erasing_the_dossier_erases_the_nested_titles_and_nothing_else(producer, catalog, directory, store):
    record = producer.seal(transfer())
    blind = Wire(catalog, directory).open(record)  # no key store: verified, titles withheld
    assert [u["title"] for u in blind.data["archive_units"]] == [WITHHELD, WITHHELD]
    store.destroy(DOSSIER, basis="RGPD art. 17-1-a", at=T0, event_id="e-1")
    got = Wire(catalog, directory, dossier_keys=store).open(record)  # the same bytes, still verified
    assert got.hidden == ("archive_units[].title",) and got.erasure is not None and got.erasure.dossier == DOSSIER
    assert [u["title"] for u in got.data["archive_units"]] == [ERASED, ERASED]
    assert [u["description"] for u in got.data["archive_units"]] == [f"Dossier {DOSSIER}", "Acte"]
    assert got.data["message_identifier"] == f"{DOSSIER}/transfer-1"


def test_an_event_of_its_own_dossier_keeps_the_first_format(producer, store):
    own = dataclasses.replace(transfer(dossier=None), subject=DOSSIER)
    record = producer.seal(own)
    assert record.value[:3] == b"\xdc\x5e\x02" and dossier_of(record.value, DOSSIER) == DOSSIER
    untitled = transfer(None)
    untitled.data["archive_units"][1]["title"] = None
    assert not is_personal(producer.seal(untitled).value)  # no title anywhere: plain Avro
    assert store.entry(TRANSFER) is None


def test_the_named_dossier_is_bound_to_the_ciphertext(producer, catalog, directory, store, key):
    from bus import DecryptionError
    from bus._envelope import Envelope

    other = "act:213105554:DEL-2026-002"
    producer.seal(dataclasses.replace(transfer(), dossier=other))  # makes the other dossier's key
    record = producer.seal(transfer())
    raw, moved = DOSSIER.encode(), other.encode()
    forged = record.value.replace(raw, moved, 1)  # same length: the value now names the other dossier
    store._path(other).write_text(json.dumps(  # the other dossier's file holds this key
        {**store.entry(other), "key_id": _parse(record.value)[0], "key": store.entry(DOSSIER)["key"]}))
    env = Envelope.from_headers(record.headers)  # a faulty producer re-signs it
    resigned = dataclasses.replace(record, value=forged,
                                   headers=tuple(env.to_headers(signature=key.sign(env.signing_bytes(forged)))))
    with pytest.raises(DecryptionError):  # even with the right key bytes, the associated data differs
        Wire(catalog, directory, dossier_keys=store).open(resigned)


def test_the_ledgered_erasure_of_the_dossier_labels_the_derived_event(producer, catalog, directory):
    record = dataclasses.replace(producer.seal(transfer()), topic="archives", partition=0, offset=0)
    erasure = dataclasses.replace(producer.seal(Event(
        type=ERASURE_TYPE, subject=DOSSIER, schema=ERASURE_TYPE, id="0192f0c4-0000-7000-8000-0000000000ee",
        data={"dossier": DOSSIER, "basis": "RGPD art. 17", "erased_at": T0, "key_id": "dk:x", "family": "acts"})),
        topic="acts", partition=0, offset=0)
    opened = open_records(Wire(catalog, directory), [record, erasure])  # an auditor without the key store
    assert opened[0].ok and opened[0].dossier == DOSSIER and opened[0].subject == TRANSFER
    labelled = with_erasures(opened)[0]
    assert [u["title"] for u in labelled.data["archive_units"]] == [ERASED, ERASED]
    assert labelled.to_json()["personal_data"]["state"] == "erased"
    assert labelled.to_json()["personal_data"]["fields"] == ["archive_units[].title"]


def test_a_personal_field_without_a_blank_is_refused_with_its_path(catalog):
    from bus import SchemaError
    from bus._catalog import Schema

    raw = {"type": "record", "name": "Nested", "namespace": "fr.dcant.test", "fields": [
        {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
            {"name": "count", "type": "int", "personal": True}]}}}]}
    parsed = fastavro.parse_schema(raw, _force=True)
    schema = Schema("fr.dcant.test.Nested", 1, raw, parsed, fastavro.schema.to_parsing_canonical_form(parsed), b"x")
    with pytest.raises(SchemaError, match=r"items\[\]\.count"):
        personal_fields(schema)

