"""The archiving core through the topology test driver; its ArchiveTransfer is valid SEDA 2.2."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from lxml import etree

from adapters import seda
from bus import ConfigurationError, Event
from bus.testing import TopologyTestDriver
from processors.archiving import Archiving, load_profile, packaged_profiles, transfer_identifier

from .acts_factories import SIREN, document, subject, transmitted

D = dt.date
STATE = "fr.dcant.archives.ArchiveStateChanged"
ASK = "fr.dcant.archives.DocumentsDigestRequested"
TRANSFER = "fr.dcant.archives.ArchiveTransferRequested"
NS = {"s": "fr:gouv:culture:archivesdefrance:seda:v2.2"}
FILES = {"delib.pdf": b"%PDF-1.4 deliberation", "annexe.pdf": b"%PDF-1.4 annexe"}
SHA = {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}


class Harness(TopologyTestDriver):
    """The driver with one reader of the archives topic."""

    def __init__(self, core: Archiving | None = None) -> None:
        super().__init__(core or Archiving(packaged_profiles()))
        self.reader = self.output_topic("archives")

    def pipe(self, topic: str, *events: Event) -> list:
        self.input_topic(topic).pipe_all(events)
        return self.reader.read_all()

    def advance_days(self, days: int) -> list:
        self.advance(dt.timedelta(days=days))
        return self.reader.read_all()


def of(outputs: list, event_type: str) -> list:
    return [o for o in outputs if o.type == event_type]


def act_with_documents() -> Event:
    return transmitted(title="Budget primitif 2026", documents=[
        document("delib.pdf", SHA["delib.pdf"], size=len(FILES["delib.pdf"])),
        document("annexe.pdf", SHA["annexe.pdf"], role="ANNEX", size=len(FILES["annexe.pdf"])),
    ])


def executory(on: D = D(2026, 1, 5)) -> Event:
    data = {"act_id": None, "siren": SIREN, "number": "2026-001", "nature_code": 1, "decision_date": D(2026, 1, 2),
            "transmission_date": on, "publicity_mode": "PUBLISHED", "publicity_date": on, "executory_date": on}
    return Event(type="fr.dcant.acts.ActBecameExecutory", subject=subject(), schema="fr.dcant.acts.ActExecutory",
                 data=data)


def digested(dossier: str = subject(), *, missing: tuple[str, ...] = (), sizes: dict[str, int] | None = None) -> Event:
    documents = [{"sha256": SHA[name], "sha512": hashlib.sha512(data).hexdigest(),
                  "size": (sizes or {}).get(name, len(data)), "media_type": "application/pdf", "file_name": name}
                 for name, data in FILES.items() if SHA[name] not in missing]
    return Event(type="fr.dcant.archives.DocumentsDigested", subject=dossier,
                 schema="fr.dcant.archives.DocumentsDigested",
                 data={"dossier": dossier, "documents": documents, "missing": list(missing)})


def reply(transfer_id: str, code: str = "OK", comment: str | None = None) -> Event:
    data = {"seda_version": "2.2", "message_identifier": f"ATR-{transfer_id}", "comment": comment,
            "date": dt.datetime(2027, 1, 4, 10, 0, tzinfo=dt.UTC), "archival_agreement": "CONV-AD031-ACTES",
            "reply_code": code, "message_request_identifier": transfer_id,
            "grant_date": dt.datetime(2027, 1, 4, 9, 0, tzinfo=dt.UTC) if code == "OK" else None,
            "archival_agency_identifier": "FRAD031", "transferring_agency_identifier": SIREN}
    return Event(type="fr.dcant.archives.ArchiveTransferReplied", subject=f"transfer:{transfer_id}",
                 schema="fr.dcant.archives.ArchiveTransferReply", data=data)


def transferred_act() -> tuple[Harness, object]:
    h = Harness()
    h.pipe("acts", act_with_documents(), executory())
    h.pipe("archives", digested())
    (transfer,) = of(h.advance_days(360), TRANSFER)
    return h, transfer


# -- the act dossier ---------------------------------------------------------------------------

def test_closing_asks_for_the_digests_of_every_document():
    h = Harness()
    out = h.pipe("acts", act_with_documents(), executory())
    (closed,) = of(out, STATE)
    assert closed.data["state"] == "CLOSED" and closed.data["closing_date"] == D(2026, 1, 5)
    assert closed.data["retention_start"] == D(2026, 12, 31)  # act profile: end of the closing year
    (ask,) = of(out, ASK)
    assert [d["sha256"] for d in ask.data["documents"]] == [SHA["delib.pdf"], SHA["annexe.pdf"]]
    assert ask.subject == subject() and ask.envelope.causationid is not None


def test_the_transfer_waits_for_the_retention_start():
    h = Harness()
    h.pipe("acts", act_with_documents(), executory())
    assert of(h.pipe("archives", digested()), TRANSFER) == []
    assert of(h.advance_days(359), TRANSFER) == []  # 30 December
    out = h.advance_days(1)
    (transfer,) = of(out, TRANSFER)
    assert transfer.subject == f"transfer:{transfer_identifier(subject(), 1)}"
    assert [o.data["state"] for o in of(out, STATE)] == ["TRANSFER_REQUESTED"]


def test_the_transfer_is_valid_seda_22_with_sha512_digests_and_profile_rules(corpus: Path):
    _h, transfer = transferred_act()
    xml = seda.from_pivot(transfer.data)
    assert seda.validate(xml, schema_dir=corpus, name="act transfer") == []
    root = etree.fromstring(xml)
    assert root.tag == "{fr:gouv:culture:archivesdefrance:seda:v2.2}ArchiveTransfer"
    digests = root.xpath("//s:BinaryDataObject/s:MessageDigest", namespaces=NS)
    assert [d.text for d in digests] == [hashlib.sha512(FILES[n]).hexdigest() for n in ("delib.pdf", "annexe.pdf")]
    assert {d.get("algorithm") for d in digests} == {"SHA-512"}
    text = lambda path: root.xpath(f"string({path})", namespaces=NS)  # noqa: E731
    assert text("s:ArchivalAgreement") == "CONV-AD031-ACTES"
    assert text("//s:ManagementMetadata/s:ArchivalProfile") == "PR-DCANT-ACTE-V1"
    assert text("//s:ManagementMetadata/s:OriginatingAgencyIdentifier") == SIREN
    assert text("//s:ManagementMetadata/s:AppraisalRule/s:Rule") == "APP-DCANT-ACTE"
    assert text("//s:ManagementMetadata/s:AppraisalRule/s:StartDate") == "2026-12-31"
    assert text("//s:ManagementMetadata/s:AppraisalRule/s:FinalAction") == "Keep"
    assert text("//s:ManagementMetadata/s:AccessRule/s:Rule") == "ACC-00001"
    assert text("//s:ArchiveUnit[@id='AU-DOSSIER']/s:Content/s:Title") == "Budget primitif 2026"
    assert text("//s:ArchiveUnit[@id='AU-DOSSIER']/s:Content/s:DescriptionLevel") == "File"
    assert text("s:ArchivalAgency/s:Identifier") == "FRAD031" and text("s:TransferringAgency/s:Identifier") == SIREN


def test_an_accepted_reply_archives_the_dossier():
    h, transfer = transferred_act()
    (archived,) = of(h.pipe("archives", reply(transfer.data["message_identifier"])), STATE)
    assert archived.data["state"] == "ARCHIVED" and archived.data["reply_code"] == "OK"
    assert archived.data["date"] == dt.datetime(2027, 1, 4, 10, 0, tzinfo=dt.UTC)
    assert h.pipe("acts", executory(D(2027, 2, 1))) == []  # an archived dossier is not closed again


def test_a_rejected_reply_reopens_the_dossier_with_its_reason_and_a_new_closing_transfers_again():
    h, transfer = transferred_act()
    first = transfer.data["message_identifier"]
    (reopened,) = of(h.pipe("archives", reply(first, "KO", "Profil d'archivage inconnu")), STATE)
    assert reopened.data["state"] == "REOPENED" and reopened.data["reason"] == "Profil d'archivage inconnu"
    assert h.pipe("archives", reply(first, "OK")) == []  # a late answer to the rejected transfer
    out = h.pipe("acts", executory(D(2027, 1, 10)))
    assert of(out, ASK) and of(out, STATE)[0].data["transfer_identifier"] == transfer_identifier(subject(), 2)


def test_a_reply_to_a_transfer_this_core_did_not_make_is_ignored():
    h, _transfer = transferred_act()
    assert h.pipe("archives", reply("TR-2024-0042"), reply(transfer_identifier("act:000000000:X", 1))) == []


# -- idempotence -------------------------------------------------------------------------------

def test_a_duplicated_closing_event_never_makes_a_second_transfer():
    h = Harness()
    h.pipe("acts", act_with_documents())
    closing = h.input_topic("acts").pipe(executory())
    h.input_topic("acts").pipe_record(closing)  # the same record redelivered
    h.input_topic("acts").pipe(executory())  # the same closing sent again (another ce_id)
    record = h.input_topic("archives").pipe(digested())
    h.input_topic("archives").pipe_record(record)
    out = h.reader.read_all() + h.advance_days(400)
    assert len(of(out, ASK)) == 1 and len(of(out, TRANSFER)) == 1
    assert [o.data["state"] for o in of(out, STATE)] == ["CLOSED", "TRANSFER_REQUESTED"]


# -- other dossiers and failures ---------------------------------------------------------------

def _paid_in_full(contract: str, paid: D) -> Event:
    data = {"contract_id": contract, "buyer_id": f"{SIREN}00017", "awarded_amount": "12000.00", "invoiced_excl_tax": "12000.00",
            "mandated_excl_tax": "12000.00", "paid": "14400.00", "invoice_count": 2, "late_payment_total": "0.00",
            "last_payment_date": paid}
    return Event(type="fr.dcant.accounting.ContractPaidInFull", subject=f"contract:{contract}",
                 schema="fr.dcant.accounting.ContractSettlement", data=data)


def test_a_contract_paid_in_full_is_transferred_at_once_and_validates(corpus: Path):
    h = Harness()
    out = h.pipe("accounting", _paid_in_full("2025-MAPA-07", D(2025, 12, 18)))
    (closed, requested) = of(out, STATE)
    assert closed.data["closing_date"] == D(2025, 12, 18) and closed.data["retention_start"] == D(2025, 12, 18)
    assert requested.data["state"] == "TRANSFER_REQUESTED" and of(out, ASK) == []
    (transfer,) = of(out, TRANSFER)
    assert transfer.data["management"]["appraisal_rule"]["final_action"] == "Destroy"
    # the buyer's SIREN (its SIRET's first nine digits), not the signer's (213100000, the worker's source)
    assert transfer.data["originating_agency_identifier"] == SIREN
    assert seda.validate(seda.from_pivot(transfer.data), schema_dir=corpus, name="contract transfer") == []


def test_any_configured_event_type_closes_a_dossier_reading_only_subject_and_time():
    core = Archiving(packaged_profiles(), closing_events={"fr.dcant.test.DossierClosed": None})
    h = Harness(core)
    closing = Event(type="fr.dcant.test.DossierClosed", subject="contract:X-1", schema="fr.dcant.reference.Company",
                    data={"kind": "ESTABLISHMENT", "siren": "420820078", "administrative_state": "CLOSED",
                          "diffusion_status": "DIFFUSIBLE", "source_format": "sirene-json"})
    out = h.pipe("accounting", closing)
    assert of(out, STATE)[0].data["closing_date"] == D(2026, 1, 5)  # the event's time
    assert h.pipe("acts", executory()) == []  # not a configured closing type any more


def test_a_document_missing_from_the_content_store_blocks_the_dossier():
    h = Harness()
    h.pipe("acts", act_with_documents(), executory())
    (blocked,) = of(h.pipe("archives", digested(missing=(SHA["annexe.pdf"],))), STATE)
    assert blocked.data["state"] == "DOCUMENTS_MISSING" and SHA["annexe.pdf"] in blocked.data["reason"]
    assert of(h.advance_days(400), TRANSFER) == []


def test_a_document_of_another_size_than_its_claim_check_counts_as_missing():
    h = Harness()
    h.pipe("acts", act_with_documents(), executory())
    (blocked,) = of(h.pipe("archives", digested(sizes={"delib.pdf": 1})), STATE)
    assert blocked.data["state"] == "DOCUMENTS_MISSING" and SHA["delib.pdf"] in blocked.data["reason"]


def test_dossiers_without_profile_are_ignored():
    h = Harness(Archiving({"contract": packaged_profiles()["contract"]}))
    assert h.pipe("acts", act_with_documents(), executory()) == []
    assert h.states == {}


# -- profiles ----------------------------------------------------------------------------------

def test_packaged_profiles_load():
    profiles = packaged_profiles()
    assert set(profiles) == {"act", "contract"}
    assert profiles["act"].appraisal_rule.final_action == "Keep" and profiles["act"].appraisal_rule.duration == "P10Y"
    assert profiles["contract"].retention_start_date(D(2025, 3, 4)) == D(2025, 3, 4)
    assert profiles["act"].retention_start_date(D(2025, 3, 4)) == D(2025, 12, 31)


@pytest.mark.parametrize(("change", "message"), [
    ({"appraisal_rule": {"rule_id": "APP-1", "duration": "P10Y", "final_action": "Burn"}}, "final_action"),
    ({"appraisal_rule": {"rule_id": "APP-1", "duration": "10 ans", "final_action": "Keep"}}, "duration"),
    ({"description_level": "Dossier"}, "DescriptionLevel"),
    ({"retention_start": "whenever"}, "retention_start"),
    ({"archival_agreement": ""}, "archival_agreement"),
    ({"extra": 1}, "unknown"),
])
def test_a_bad_profile_is_refused_with_the_key_named(change, message):
    raw = json.loads((Path(__file__).parents[3] / "processors" / "profiles" / "act.json").read_text(encoding="utf-8"))
    with pytest.raises(ConfigurationError, match=message):
        load_profile(json.dumps({**raw, **change}), name="bad.json")
    with pytest.raises(ConfigurationError, match="not JSON"):
        load_profile("{", name="broken.json")


def test_profiles_are_frozen():
    profile = packaged_profiles()["act"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.archival_profile = "other"  # type: ignore[misc]
