"""Personal data the cores copy into derived events and states (issue 12): erasing the act dossier
erases the archive transfer's title; the states keep no personal data they do not need."""

from __future__ import annotations

import datetime as dt

import pytest

from bus import DossierKeyStore
from bus._erasure import ERASED
from bus.testing import TopologyTestDriver
from processors.acts import ActsLifecycle
from processors.archiving import Archiving, packaged_profiles

from .acts_factories import KEY, SIREN, publication, subject, transmitted
from .test_archiving import STATE, TRANSFER, act_with_documents, digested, executory, of, reply

NAME = "Jeanne Martin"
TITLE = f"Attribution d'une aide sociale à {NAME}"


@pytest.fixture
def store(tmp_path) -> DossierKeyStore:
    return DossierKeyStore(tmp_path / "dossier-keys")


def archiving(store: DossierKeyStore) -> TopologyTestDriver:
    return TopologyTestDriver(Archiving(packaged_profiles()), dossier_keys=store)


def transferred(h: TopologyTestDriver):
    act = act_with_documents()
    act.data["object"] = TITLE
    h.input_topic("acts").pipe_all([act, executory()])
    h.input_topic("archives").pipe(digested())
    h.advance(dt.timedelta(days=360))
    reader = h.output_topic("archives")
    (request,) = of(reader.read_all(), TRANSFER)
    record = next(r for r in h.outputs["archives"] if dict(r.headers)["ce_type"] == TRANSFER.encode())
    return request, record


def test_the_transfer_title_is_encrypted_under_the_act_dossier_key(store):
    h = archiving(store)
    request, record = transferred(h)
    assert NAME.encode() not in record.value  # never in clear on the archives topic
    assert request.subject.startswith("transfer:") and request.dossier == subject()
    assert request.data["archive_units"][0]["title"] == TITLE  # the archive service's egress holds the key
    assert request.data["archive_units"][1]["title"] == "delib.pdf"  # the document units: file names
    assert store.entry(request.subject) is None  # no key of its own: the act's one covers it


def test_erasing_the_act_dossier_erases_the_transfer_title(store):
    h = archiving(store)
    _request, record = transferred(h)
    store.destroy(subject(), basis="RGPD art. 17-1-a", at=h.clock.now)
    got = h.wire.open(record)  # the same bytes, verified, read again
    assert got.erasure is not None and got.hidden == ("archive_units[].title",)
    assert got.data["archive_units"][0]["title"] == ERASED
    assert subject() in got.data["archive_units"][0]["description"]  # what names nobody stays readable
    assert got.data["message_identifier"] == got.subject.removeprefix("transfer:")


def test_the_state_drops_the_title_once_archived(store):
    h = archiving(store)
    request, _record = transferred(h)
    assert h.states[subject()]["description"]["title"] == TITLE  # a rejected transfer is made again
    h.input_topic("archives").pipe(reply(request.data["message_identifier"]))
    assert [o.data["state"] for o in of(h.output_topic("archives").read_all(), STATE)][-1] == "ARCHIVED"
    assert h.states[subject()]["description"]["title"] is None


def test_the_acts_core_keeps_no_objet_it_will_not_publish():
    h = TopologyTestDriver(ActsLifecycle({SIREN: KEY}))
    h.input_topic("acts").pipe(transmitted("2026-002", nature_code=3, title=TITLE))  # an individual decision
    assert h.states[subject("2026-002")]["act"]["object"] is None
    h.input_topic("acts").pipe(transmitted(title=TITLE))  # a deliberation: kept until its publication
    assert h.states[subject()]["act"]["object"] == TITLE


def test_the_acts_core_reads_the_objet_with_the_dossier_key_and_drops_it_once_published(store):
    from .acts_factories import acknowledged

    h = TopologyTestDriver(ActsLifecycle({SIREN: KEY}), dossier_keys=store)
    h.input_topic("acts").pipe_all([transmitted(title=TITLE), acknowledged(dt.date(2026, 1, 5)),
                                    publication(dt.date(2026, 1, 6), personal_data=[("title", NAME)])])
    h.advance(dt.timedelta(days=2))
    (published,) = [o for o in h.output_topic("acts").read_all() if o.type == "fr.dcant.acts.ActPublished"]
    assert NAME not in published.data["title"] and "[personne-" in published.data["title"]  # pseudonymised
    assert published.hidden == ()  # the publication the law requires is not erasable: it names nobody
    assert h.states[subject()]["act"]["object"] is None


def test_a_dossier_erased_before_its_transfer_is_transferred_with_the_title_erased(store):
    h = archiving(store)
    act = act_with_documents()
    act.data["object"] = TITLE
    h.input_topic("acts").pipe_all([act, executory()])
    h.input_topic("archives").pipe(digested())
    store.destroy(subject(), basis="RGPD art. 17-1-a", at=h.clock.now)  # the state still holds the title
    h.advance(dt.timedelta(days=360))
    (request,) = of(h.output_topic("archives").read_all(), TRANSFER)
    assert h.dead_letters == [] and request.data["archive_units"][0]["title"] == ERASED
    assert request.data["archive_units"][1]["title"] == ERASED  # every personal field of the copy
    assert not any(NAME.encode() in (r.value or b"") for r in h.outputs["archives"])


def test_an_act_read_after_its_erasure_is_transferred_with_the_title_erased(store):
    h = archiving(store)
    act = act_with_documents()
    act.data["object"] = TITLE
    sealed = h.seal_as("213100000", act, topic="acts")  # sent before the erasure, read after it
    store.destroy(subject(), basis="RGPD art. 17-1-a", at=h.clock.now)
    h.deliver(sealed)
    h.input_topic("acts").pipe(executory())
    h.input_topic("archives").pipe(digested())
    h.advance(dt.timedelta(days=360))
    (request,) = of(h.output_topic("archives").read_all(), TRANSFER)
    assert h.dead_letters == [] and request.data["archive_units"][0]["title"] == ERASED
