"""The demo's addressing table (issue 12): who each party's message is encrypted for, decided in the stage."""

from __future__ import annotations

import datetime as dt
import types

import pytest

from bus import Event, KeyDirectory, generate_key
from bus._sealed import generate_encryption_key
from bus.demo._data import ADMINISTRATIONS
from bus.demo._keys import KEYS_VALID_FROM
from bus.demo._stage import ADDRESSED, SUBMISSIONS, Stage

SIREN = {role: admin["siren"] for role, admin in ADMINISTRATIONS.items()}
AT = dt.datetime(2025, 3, 21, 9, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def stage() -> Stage:
    directory = KeyDirectory()
    for siren in set(SIREN.values()):
        directory.add_encryption_key(generate_encryption_key(siren, valid_from=KEYS_VALID_FROM).public)
    keys = {role: generate_key(siren, role, valid_from=KEYS_VALID_FROM) for role, siren in SIREN.items()}
    return Stage(types.SimpleNamespace(directory=directory), keys, None, "urn:siren:130009970:worker")  # type: ignore[arg-type]


def _event(type_: str, **more) -> Event:
    return Event(type=type_, subject="s", schema="fr.dcant.acts.Act", data={}, **more)


@pytest.mark.parametrize(("role", "type_", "readers"), [
    ("commune", "fr.dcant.acts.ActTransmitted", {"commune", "prefecture"}),
    ("prefecture", "fr.dcant.acts.ActAcknowledged", {"commune", "prefecture"}),
    ("arpent", "fr.dcant.procurement.CandidatureSubmitted", {"commune", "arpent"}),
    ("travaux", "fr.dcant.invoices.InvoiceReceived", {"commune", "travaux"}),
    ("commune", "fr.dcant.accounting.ServiceFaitRecorded", {"commune", "dgfip"}),
    ("dgfip", "fr.dcant.accounting.PaymentRecorded", {"commune", "dgfip", "travaux"}),
])
def test_a_message_is_addressed_to_its_parties_and_its_sender(stage, role, type_, readers):
    addressed = stage.addressed(role, _event(type_))
    assert addressed.recipients == tuple(sorted(SIREN[r] for r in readers))


@pytest.mark.parametrize("type_", ["fr.dcant.acts.ActPublicationRecorded", "fr.dcant.procurement.NoticePublished",
                                   "fr.dcant.procurement.AwardPublished", "fr.dcant.procurement.ContractDataPublished",
                                   "fr.dcant.reference.AttestationSupplied"])
def test_what_is_public_by_nature_stays_broadcast(stage, type_):
    assert stage.addressed("commune", _event(type_)).recipients is None


def test_an_event_naming_its_recipients_keeps_them(stage):
    event = _event("fr.dcant.acts.ActTransmitted", recipients=(SIREN["archives"],))
    assert stage.addressed("commune", event) is event


def test_a_claim_checked_document_is_sealed_to_its_events_recipients(stage):
    key = stage.document_key("commune", "fr.dcant.acts.ActTransmitted", AT)
    assert key is not None and key.sirens() == stage.addressed("commune", _event("fr.dcant.acts.ActTransmitted")).recipients
    assert stage.document_key("commune", "fr.dcant.acts.ActPublicationRecorded", AT) is None


def test_the_tables_name_demo_parties_only():
    named = {r for roles in (*ADDRESSED.values(), *SUBMISSIONS.values()) for r in roles}
    assert named and named <= set(ADMINISTRATIONS)
