"""Erasure by destroying keys (issue 12 item 5): personal fields under a per-dossier key, then shredded."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat

import fastavro
import pytest

from bus import (
    DecryptionError,
    DossierKeyStore,
    ErasedDossierError,
    Event,
    NotARecipientError,
    SignatureError,
    UnknownDossierError,
    Wire,
)
from bus._codec import fingerprint_of
from bus._erasure import ERASED, ERASURE_TYPE, WITHHELD, _parse, is_personal, personal_fields
from bus._sealed import DecryptionKeyring, generate_encryption_key
from bus._wire import Record
from bus.ledger._opening import open_records
from bus.ledger._trace import with_erasures

from .conftest import T0, company_event

DOSSIER = "act:213105554:DEL-2026-001"
NAME = "Jeanne Martin"


def publication(dossier: str = DOSSIER, *, title: str | None = f"Aide sociale à {NAME}",
                text: str | None = f"Le conseil accorde une aide à {NAME}.", names: bool = True) -> Event:
    data = {"act_id": None, "siren": "213105554", "number": dossier.rsplit(":", 1)[-1], "mode": "PUBLISHED",
            "date": dt.date(2026, 3, 1), "title": title, "text": text, "url": "https://mairie.example/actes/1",
            "personal_data": [{"field": "title", "value": NAME}, {"field": "text", "value": NAME}] if names else []}
    return Event(type="fr.dcant.acts.ActPublicationRecorded", subject=dossier,
                 schema="fr.dcant.acts.ActPublicationRecorded", data=data, id="0192f0c4-0000-7000-8000-000000000001")


@pytest.fixture
def store(tmp_path) -> DossierKeyStore:
    return DossierKeyStore(tmp_path / "dossier-keys")


@pytest.fixture
def producer(catalog, directory, key, store) -> Wire:
    return Wire(catalog, directory, key, source="urn:siren:213105554:test", clock=lambda: T0, dossier_keys=store)


def _resign(record: Record, key, value: bytes) -> Record:
    from bus._envelope import Envelope

    env = Envelope.from_headers(record.headers)
    headers = env.to_headers(signature=key.sign(env.signing_bytes(value)))
    return dataclasses.replace(record, value=value, headers=tuple(headers))


def test_personal_fields_come_from_the_schema_and_leave_its_fingerprint_alone(catalog):
    schema = catalog.latest("fr.dcant.acts.ActPublicationRecorded")
    assert personal_fields(schema) == {"title": None, "text": None, "personal_data": []}
    plain = json.loads(json.dumps(schema.raw))
    for field in plain["fields"]:
        field.pop("personal", None)
    canonical = fastavro.schema.to_parsing_canonical_form(fastavro.parse_schema(plain, _force=True))
    assert canonical == schema.canonical  # the attribute is not in the fingerprint: old records still decode
    assert personal_fields(catalog.latest("fr.dcant.acts.ActPublished")) == {}  # the pseudonymised publication


def test_the_holder_of_the_dossier_key_reads_every_field(producer, catalog, directory, store):
    record = producer.seal(publication())
    assert is_personal(record.value) and NAME.encode() not in record.value  # never in clear on the wire
    got = Wire(catalog, directory, dossier_keys=store).open(record)
    assert got.data["title"] == f"Aide sociale à {NAME}" and got.data["personal_data"][0]["value"] == NAME
    assert got.hidden == () and got.erasure is None


def test_a_reader_without_the_key_verifies_and_reads_the_rest(producer, catalog, directory):
    record = producer.seal(publication())
    got = Wire(catalog, directory).open(record)  # no store: the signature still verifies
    assert got.hidden == ("title", "text", "personal_data") and got.erasure is None
    assert (got.data["title"], got.data["text"], got.data["personal_data"]) == (WITHHELD, WITHHELD, [])
    assert (got.data["number"], got.data["date"], got.data["url"]) == ("DEL-2026-001", dt.date(2026, 3, 1),
                                                                        "https://mairie.example/actes/1")


def test_only_the_fields_that_hold_something_are_encrypted(producer, catalog, directory):
    record = producer.seal(publication(text=None, names=False))
    assert _parse(record.value)[1] == ("title",)
    got = Wire(catalog, directory).open(record)
    assert got.hidden == ("title",) and got.data["text"] is None


def test_destroying_the_key_erases_the_fields_and_nothing_else(producer, catalog, directory, store, key):
    record = producer.seal(publication())
    key_id = _parse(record.value)[0]
    key_hex = store.entry(DOSSIER)["key"]
    erasure = store.destroy(DOSSIER, basis="RGPD art. 17-1-a", at=T0, event_id="e-1")
    assert erasure.key_id == key_id and store.key(DOSSIER, key_id) is None
    on_disk = next(store.root.iterdir())
    assert key_hex not in on_disk.read_text() and stat.S_IMODE(on_disk.stat().st_mode) == 0o600
    got = Wire(catalog, directory, dossier_keys=store).open(record)  # signature unchanged, verified
    assert (got.data["title"], got.data["text"], got.data["personal_data"]) == (ERASED, ERASED, [])
    assert got.erasure is not None and got.erasure.basis == "RGPD art. 17-1-a" and got.data["siren"] == "213105554"
    with pytest.raises(ErasedDossierError):  # no new personal data under an erased dossier
        producer.seal(publication())
    with pytest.raises(ErasedDossierError):
        store.destroy(DOSSIER, basis="again", at=T0)


def test_unknown_dossier_is_refused(store):
    with pytest.raises(UnknownDossierError):
        store.family("act:213105554:NOPE")
    with pytest.raises(UnknownDossierError):
        store.destroy("act:213105554:NOPE", basis="x", at=T0)


def test_the_signature_covers_the_ciphertext(producer, catalog, directory):
    record = producer.seal(publication())
    flipped = bytearray(record.value)
    flipped[40] ^= 1
    with pytest.raises(SignatureError):
        Wire(catalog, directory).open(dataclasses.replace(record, value=bytes(flipped)))


def test_a_ciphertext_moved_under_another_envelope_does_not_decrypt(producer, catalog, directory, store, key):
    first = producer.seal(publication())
    second = producer.seal(dataclasses.replace(publication(), id="0192f0c4-0000-7000-8000-000000000002"))
    moved = _resign(second, key, first.value)  # a faulty producer signs another event's ciphertext
    with pytest.raises(DecryptionError):
        Wire(catalog, directory, dossier_keys=store).open(moved)


def test_events_without_personal_data_are_unchanged_on_the_wire(producer, wire, catalog):
    for event in (dataclasses.replace(company_event(), id="0192f0c4-0000-7000-8000-00000000000a"),
                  publication(title=None, text=None, names=False)):
        assert producer.seal(event) == wire.seal(event)
    assert not producer.dossier_keys.root.exists()  # no key made for a dossier without personal data


def test_personal_and_addressed(catalog, directory, key, store):
    enc = generate_encryption_key("210100012")
    producer = Wire(catalog, directory, key, source="urn:siren:213105554:test", clock=lambda: T0,
                    dossier_keys=store, encryption_keys={"210100012": enc.public})
    record = producer.seal(dataclasses.replace(publication(), recipients=["210100012"]))
    with pytest.raises(NotARecipientError):
        Wire(catalog, directory, dossier_keys=store).open(record)
    reader = Wire(catalog, directory, decryption=DecryptionKeyring([enc]))
    assert reader.open(record).data["title"] == WITHHELD  # a recipient without the dossier key
    store.destroy(DOSSIER, basis="RGPD art. 17", at=T0)
    full = Wire(catalog, directory, decryption=DecryptionKeyring([enc]), dossier_keys=store)
    assert full.open(record).data["title"] == ERASED


def test_replay_shows_the_fields_erased_and_the_ledgered_event_labels_them(producer, catalog, directory, store):
    record = dataclasses.replace(producer.seal(publication()), topic="acts", partition=0, offset=0)
    erasure = dataclasses.replace(producer.seal(Event(
        type=ERASURE_TYPE, subject=DOSSIER, schema=ERASURE_TYPE, id="0192f0c4-0000-7000-8000-0000000000ee",
        data={"dossier": DOSSIER, "basis": "RGPD art. 17", "erased_at": T0, "key_id": "dk:x", "family": "acts"})),
        topic="acts", partition=0, offset=1)
    assert fingerprint_of(erasure.value)  # a plain Avro payload: the erasure event itself names nobody
    opened = open_records(Wire(catalog, directory), [record, erasure])  # an auditor without the key store
    assert all(o.ok for o in opened)
    assert opened[0].to_json()["personal_data"] == {"state": "withheld", "fields": ["title", "text", "personal_data"]}
    labelled = with_erasures(opened)
    assert labelled[0].data["title"] == ERASED
    assert labelled[0].to_json()["personal_data"] == {
        "state": "erased", "fields": ["title", "text", "personal_data"], "basis": "RGPD art. 17",
        "erased_at": opened[1].data["erased_at"], "erasure_event": "0192f0c4-0000-7000-8000-0000000000ee"}


def test_the_store_never_shows_a_key(store):
    store.key_for_sealing(DOSSIER, "acts")
    assert repr(store) == f"DossierKeyStore({str(store.root)!r})"


def test_a_truncated_personal_value_is_refused_with_its_own_error(producer, catalog, directory, key):
    from bus import TruncatedCiphertextError

    record = producer.seal(publication())
    with pytest.raises(TruncatedCiphertextError):
        Wire(catalog, directory).open(_resign(record, key, record.value[:30]))


@dataclasses.dataclass
class Titles:
    """A core that keeps each act's title (as the register does)."""

    name: str = "titles"
    inputs: tuple[str, ...] = ("acts",)
    tables: tuple[str, ...] = ()
    types: frozenset[str] = frozenset({"fr.dcant.acts.ActPublicationRecorded"})

    def key(self, event, ctx):
        return event.subject

    def initial_state(self):
        return {"title": None}

    def process(self, state, event, ctx):
        state["title"] = event.data["title"]
        return state, []

    def on_time(self, state, key, ctx):
        return state, []


def test_a_worker_without_the_dossier_key_dead_letters_instead_of_acting_on_placeholders(
        producer, catalog, directory, store):
    from bus import Context, Emit, Fail, Step, WithheldPersonalDataError
    from bus._policy import Action

    record = producer.seal(publication())
    blind = Step(Wire(catalog, directory), name="titles", core=Titles())  # no dossier keys
    decision = blind.run(record, ctx=Context(now=T0), lookup=lambda k: None)
    assert isinstance(decision, Fail) and decision.action is Action.DEAD_LETTER
    assert isinstance(decision.error, WithheldPersonalDataError) and decision.dead_letter.value == record.value
    holder = Step(Wire(catalog, directory, dossier_keys=store), name="titles", core=Titles())
    assert isinstance(holder.run(record, ctx=Context(now=T0), lookup=lambda k: None), Emit)
    store.destroy(DOSSIER, basis="RGPD art. 17-1-a", at=T0, event_id="e-1")  # erased: acted on, as erased
    erased = holder.run(record, ctx=Context(now=T0), lookup=lambda k: None)
    assert isinstance(erased, Emit) and erased.entry.state["title"] == ERASED
