"""The ingress core through the topology test driver: claim check in, signed pivot events out.

The document reader (the shell's I/O step) reads the bytes from a real content store and runs
the real adapters; its outcome reaches the core as the faust shell hands it over, in
``ctx.tables["ingress.documents"]``. Every hop goes through the real wire.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from adapters import Pivot
from bus import Event
from bus._content import LocalContentStore
from bus._errors import (
    ConfigurationError,
    DocumentSignatureError,
    DocumentTooLargeError,
    MalformedDocumentError,
    UnknownFormatError,
)
from bus.testing import TopologyTestDriver
from processors.ingress import DOCUMENTS, Adaptation, DocumentReader, IngressCore, submitted_event

UBL = "invoices/en16931-ubl/ubl-tc434-example1.xml"
SIRENE_CSV = "reference/sirene/sample_etablissements_OK.csv"


class Ingress:
    """A driver on the ingress core, a content store and the reader that fills ctx.tables."""

    def __init__(self, root: Path, *, max_bytes: int = 1024 * 1024, **signatures: object) -> None:
        self.store = LocalContentStore(root / "content")
        self.reader = DocumentReader(self.store, max_bytes=max_bytes, **signatures)  # type: ignore[arg-type]
        self.driver = TopologyTestDriver(IngressCore())
        self.driver.tables[DOCUMENTS] = {}
        self.raw = self.driver.input_topic("ingress.raw")

    def submit(self, data: bytes, name: str, *, declared_format: str | None = None, time: dt.datetime | None = None):
        ref = self.store.put(data, media_type="application/xml", file_name=name).to_record()
        self.driver.tables[DOCUMENTS][ref["sha256"]] = self.reader.read(ref, declared_format)
        return self.raw.pipe(submitted_event(ref, submitter_siren="213105554", declared_format=declared_format,
                                             time=time))


@pytest.fixture
def ingress(tmp_path) -> Ingress:
    return Ingress(tmp_path)


def test_an_invoice_becomes_one_signed_pivot_caused_by_its_submission(ingress, corpus):
    sent = ingress.submit((corpus / UBL).read_bytes(), "example1.xml")
    (invoice,) = ingress.driver.output_topic("invoices").read_all()
    headers = dict(sent.headers)
    assert invoice.type == "fr.dcant.invoices.InvoiceReceived"
    assert invoice.subject == "invoice:57151520:12115118"
    assert invoice.envelope.causationid == headers["ce_id"].decode()
    assert invoice.envelope.correlationid == headers["ce_id"].decode()
    assert invoice.envelope.sigkeyid.startswith("130000000:")
    assert not ingress.driver.dead_letters


def test_a_document_submitted_for_a_past_date_gives_pivots_of_that_date(ingress, corpus):
    received = dt.datetime(2025, 5, 3, 9, tzinfo=dt.UTC)
    ingress.submit((corpus / UBL).read_bytes(), "example1.xml", time=received)
    (invoice,) = ingress.driver.output_topic("invoices").read_all()
    assert invoice.time == received  # the accounting chain's payment period runs from it


def test_a_multi_record_file_gives_one_event_per_record_on_the_reference_topic(ingress, corpus):
    sent = ingress.submit((corpus / SIRENE_CSV).read_bytes(), "stock.csv")
    companies = ingress.driver.output_topic("reference.companies").read_all()
    assert [c.subject for c in companies] == ["company:00588003400011", "company:00600356000015",
                                              "company:00600465900014"]
    assert len({c.envelope.correlationid for c in companies}) == 1
    state = ingress.driver.state(sent.key.decode())
    assert state["pivots"] == 3 and state["submissions"] == 1


def test_the_same_submission_twice_is_adapted_once(ingress, corpus):
    record = ingress.submit((corpus / UBL).read_bytes(), "example1.xml")
    ingress.raw.pipe_record(record)
    assert len(ingress.driver.output_topic("invoices").read_all()) == 1


def test_a_resubmission_under_a_new_id_is_a_new_submission(ingress, corpus):
    ingress.submit((corpus / UBL).read_bytes(), "example1.xml")
    ingress.submit((corpus / UBL).read_bytes(), "example1.xml")
    assert len(ingress.driver.output_topic("invoices").read_all()) == 2


def test_a_malformed_document_is_dead_lettered_with_its_original_bytes(ingress):
    sent = ingress.submit(b'<?xml version="1.0"?><Invoice xmlns="urn:oasis:names:specification:ubl:schema:'
                          b'xsd:Invoice-2"><broken', "bad.xml")
    ((record, error),) = ingress.driver.dead_letters
    assert isinstance(error, MalformedDocumentError)
    assert error.context["document"] == "bad.xml"
    assert (record.key, record.value, record.headers) == (sent.key, sent.value, sent.headers)
    assert ingress.driver.output_topic("invoices").is_empty()


PES_ALR2 = "accounting/pes-samples/HELIOS_SIMU_ALR2_1496987735_826268894.xml"


def _signed_pes(corpus: Path, tmp_path: Path) -> tuple[bytes, Path]:
    from adapters import pes_aller
    from bus._pki import CertificateAuthority

    issued = CertificateAuthority.init(tmp_path / "ca").issue("219990017", tmp_path / "issued")
    pivot = pes_aller.to_pivot((corpus / PES_ALR2).read_bytes(), name="alr2.xml")
    return pes_aller.from_pivot(pivot, signer=pes_aller.PesSigner.from_files(issued.certfile, issued.keyfile)), issued.cafile


def test_a_signed_pes_is_verified_against_the_configured_ca(tmp_path, corpus):
    signed, ca = _signed_pes(corpus, tmp_path)
    ingress = Ingress(tmp_path, pes_trust_ca=ca, pes_require_signature=True)
    ingress.submit(signed, "signed.xml")
    (bordereau,) = ingress.driver.output_topic("accounting").read_all()
    assert bordereau.data["dematerialised"] is True
    ingress.submit(signed.replace(b'<MtHT V="', b'<MtHT V="1', 1), "tampered.xml")
    ((_, error),) = ingress.driver.dead_letters
    assert isinstance(error, DocumentSignatureError) and error.context["document"] == "tampered.xml"
    ingress.submit((corpus / PES_ALR2).read_bytes(), "unsigned.xml")
    assert [e.context["rule"] for _, e in ingress.driver.dead_letters] == ["PES-SIGNATURE", "PES-SIGNATURE-MISSING"]


def test_an_unknown_format_is_dead_lettered(ingress):
    ingress.submit(b"hello, world\n", "notes.txt", declared_format=None)
    ((_, error),) = ingress.driver.dead_letters
    assert isinstance(error, UnknownFormatError)


def test_a_declared_format_wins_over_detection(ingress, corpus):
    ingress.submit((corpus / UBL).read_bytes(), "example1.xml", declared_format="cii")
    ((_, error),) = ingress.driver.dead_letters
    assert error.__class__.__name__ in {"MalformedDocumentError", "NonConformantError", "UnknownFormatError"}


def test_a_document_over_the_bound_is_refused_before_parsing(tmp_path, corpus):
    small = Ingress(tmp_path, max_bytes=1000)
    small.submit((corpus / UBL).read_bytes(), "example1.xml")
    ((_, error),) = small.driver.dead_letters
    assert isinstance(error, DocumentTooLargeError)


def test_without_the_reader_the_core_refuses_rather_than_guessing(tmp_path, corpus):
    ingress = Ingress(tmp_path)
    ref = ingress.store.put((corpus / UBL).read_bytes(), media_type="application/xml", file_name="x.xml").to_record()
    ingress.raw.pipe(submitted_event(ref, submitter_siren="213105554"))
    ((_, error),) = ingress.driver.dead_letters
    assert isinstance(error, ConfigurationError)


def test_the_claim_check_goes_where_the_pivot_schema_has_a_document_field(ingress):
    ref = ingress.store.put(b"%PDF-1.7 attestation", media_type="application/pdf", file_name="urssaf.pdf")
    attestation = Pivot(type="fr.dcant.reference.AttestationIssued", schema="fr.dcant.reference.Attestation",
                        subject="attestation:URSSAF:A1", format="test",
                        data={"attestation_id": "A1", "kind": "URSSAF_VIGILANCE", "siren": "123456789",
                              "issuer": "URSSAF", "issued_on": dt.date(2026, 1, 1),
                              "valid_until": dt.date(2026, 7, 1), "status": "UP_TO_DATE"})
    ingress.driver.tables[DOCUMENTS][ref.sha256] = Adaptation(ref.sha256, "test", (attestation,))
    ingress.raw.pipe(submitted_event(ref.to_record(), submitter_siren="213105554"))
    (out,) = ingress.driver.output_topic("reference.attestations").read_all()
    assert out.data["document"]["sha256"] == ref.sha256
    assert out.data["document"]["uri"] == ref.uri and out.data["document"]["size"] == ref.size


def test_other_event_types_on_the_raw_topic_are_ignored(ingress):
    ingress.raw.pipe(Event(type="fr.dcant.reference.CompanyRegistered", subject="company:12345678900011",
                           schema="fr.dcant.reference.Company",
                           data={"kind": "ESTABLISHMENT", "siren": "123456789", "nic": "00011",
                                 "siret": "12345678900011", "administrative_state": "ACTIVE",
                                 "diffusion_status": "DIFFUSIBLE", "source_format": "sirene-json"}))
    assert not ingress.driver.states and not ingress.driver.dead_letters
    assert all(ingress.driver.output_topic(t).is_empty() for t in ("invoices", "reference.companies"))
