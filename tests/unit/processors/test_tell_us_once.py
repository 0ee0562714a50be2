"""Tell-us-once core through the topology test driver: real Avro and signatures at every hop."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from bus import Context, Event, Processor
from bus._topics import topic_for_schema
from bus.testing import FakeClock, TopologyTestDriver
from processors.tell_us_once import TellUsOnce, attestation_subject, tally

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
SIRET = "42082007800012"
SIREN = SIRET[:9]
DOSSIER = "notice:2026-042"
VERSION = dt.datetime(2025, 11, 3, 14, 12, 5, tzinfo=dt.UTC)
UNIT_VERSION = dt.datetime(2025, 6, 1, 7, 0, tzinfo=dt.UTC)
REQUESTED = "fr.dcant.reference.DocumentRequested"
KINDS = ("URSSAF_VIGILANCE", "DGFIP_FISCAL_REGULARITY")


# ---------------------------------------------------------------------- factories


def establishment(siret: str = SIRET, **overrides) -> Event:
    data = {"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret, "name": "ACME TRAVAUX",
            "legal_form": "5710", "naf": "43.21A", "naf_nomenclature": "NAFRev2", "administrative_state": "ACTIVE",
            "head_office": True, "diffusion_status": "DIFFUSIBLE", "last_processed": VERSION,
            "address": {"street_number": "12", "street_type": "RUE", "street_name": "DES LILAS", "postal_code": "31000",
                        "city_code": "31555", "city_name": "TOULOUSE"},
            "source_format": "sirene-json"}
    data.update(overrides)
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}",
                 schema="fr.dcant.reference.Company", data=data)


def legal_unit(siren: str = SIREN, **overrides) -> Event:
    data = {"kind": "LEGAL_UNIT", "siren": siren, "name": "ACME TRAVAUX", "legal_form": "5710", "naf": "43.21A",
            "administrative_state": "ACTIVE", "diffusion_status": "DIFFUSIBLE", "last_processed": UNIT_VERSION,
            "source_format": "sirene-json"}
    data.update(overrides)
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siren}",
                 schema="fr.dcant.reference.Company", data=data)


def attestation(kind: str = "URSSAF_VIGILANCE", *, siren: str = SIREN, valid_until: dt.date = TODAY + dt.timedelta(days=90),
                status: str = "UP_TO_DATE", attestation_id: str | None = None) -> Event:
    issuer = "URSSAF" if kind == "URSSAF_VIGILANCE" else "DGFiP"
    return Event(type="fr.dcant.reference.AttestationSupplied", subject=attestation_subject(siren, kind),
                 schema="fr.dcant.reference.Attestation",
                 data={"attestation_id": attestation_id or f"{issuer}-{siren}-{valid_until:%Y%m%d}", "kind": kind,
                       "siren": siren, "issuer": issuer, "issued_on": valid_until - dt.timedelta(days=180),
                       "valid_until": valid_until, "status": status})


def candidature(siret: str | None = SIRET, *, espd_id: str = "ESPD-1", subject: str = DOSSIER,
                identifier: str | None = None, country: str = "FR") -> Event:
    operator = {"identifier": identifier or siret, "identifier_scheme": "SIRET" if siret else None, "siret": siret,
                "siren": siret[:9] if siret else None, "name": "Acme", "country": country}
    return Event(type="fr.dcant.procurement.CandidatureSubmitted", subject=subject,
                 schema="fr.dcant.procurement.Candidature",
                 data={"espd_id": espd_id, "procedure_reference": subject.split(":", 1)[1],
                       "buyer_identifier": "21310555400017", "economic_operator": operator})


def invoice(seller: str | None = SIRET, number: str = "F-2026-001") -> Event:
    party = {"name": "ACME", "identifiers": [], "legal_registration": {"id": seller, "scheme": "0009"}}
    return Event(type="fr.dcant.invoices.InvoiceReceived", subject=f"invoice:{seller}:{number}",
                 schema="fr.dcant.invoices.Invoice",
                 data={"syntax": "UBL", "profile": "urn:cen.eu:en16931:2017", "number": number,
                       "issue_date": dt.date(2026, 1, 2), "type_code": "380", "is_credit_note": False,
                       "currency": "EUR", "seller_siret": seller, "seller_key": seller, "buyer_key": "21310555400017",
                       "contract_reference": "M-2025-17", "seller": party, "buyer": {"name": "Commune"},
                       "totals": {"payable": "1250.50"}})


def driver_with(*reference: Event, clock: FakeClock | None = None) -> TopologyTestDriver:
    driver = TopologyTestDriver(TellUsOnce(), clock=clock or FakeClock(NOW))
    for event in reference:
        topic = "reference.attestations" if event.schema.endswith("Attestation") else "reference.companies"
        driver.input_topic(topic).pipe(event)
    return driver


def known_company() -> list[Event]:
    return [establishment(), legal_unit(), attestation("URSSAF_VIGILANCE"), attestation("DGFIP_FISCAL_REGULARITY")]


def requests(driver: TopologyTestDriver):
    return driver.output_topic(topic_for_schema(REQUESTED)).read_all()


def checks(enriched) -> dict[str, dict]:
    return {c["kind"]: c for c in enriched.data["attestations"]}


# ---------------------------------------------------------------------- candidatures


def test_known_company_with_valid_attestations_reuses_both():
    driver = driver_with(*known_company())
    sent = driver.input_topic("procurement").pipe(candidature())
    enriched, = driver.output_topic("procurement").read_all()
    assert enriched.type == "fr.dcant.procurement.CandidatureEnriched"
    assert enriched.subject == DOSSIER
    assert enriched.envelope.causationid == dict(sent.headers)["ce_id"].decode()
    assert enriched.data["verdict"] == "COMPLIANT"
    assert (enriched.data["reused"], enriched.data["requested"]) == (2, 0)
    company = enriched.data["company"]
    assert company["name"]["value"] == "ACME TRAVAUX"
    assert company["address"]["value"]["city_name"] == "TOULOUSE"
    assert (company["legal_form"]["value"], company["naf"]["value"]) == ("5710", "43.21A")
    assert company["administrative_state"]["value"] == "ACTIVE"
    assert company["head_office"]["value"] is True
    assert company["diffusion_status"]["value"] == "DIFFUSIBLE"
    urssaf = checks(enriched)["URSSAF_VIGILANCE"]
    assert urssaf["status"] == "VALID_REUSED" and urssaf["request"] == "NOT_NEEDED"
    assert urssaf["attestation_id"] == f"URSSAF-{SIREN}-{TODAY + dt.timedelta(days=90):%Y%m%d}"
    assert urssaf["valid_until"] == TODAY + dt.timedelta(days=90)
    assert checks(enriched)["DGFIP_FISCAL_REGULARITY"]["status"] == "VALID_REUSED"
    assert requests(driver) == []
    assert tally([enriched]) == {"reused": 2, "requested": 0, "by_kind": {
        "DGFIP_FISCAL_REGULARITY": {"reused": 1, "requested": 0}, "URSSAF_VIGILANCE": {"reused": 1, "requested": 0}}}


def test_every_value_carries_its_provenance():
    clock = FakeClock(NOW)
    driver = driver_with(establishment(legal_form=None), legal_unit(legal_form="5499"),
                         attestation("URSSAF_VIGILANCE"), clock=clock)
    clock.advance(dt.timedelta(hours=2))
    driver.input_topic("procurement").pipe(candidature())
    enriched = driver.output_topic("procurement").read()
    company = enriched.data["company"]
    read_at = NOW + dt.timedelta(hours=2)
    assert company["name"]["provenance"] == {"source": "INSEE SIRENE", "reference": f"company:{SIRET}",
                                             "record_version": VERSION, "fetched_at": read_at}
    # The establishment lacks the legal form: the legal unit gives it, under its own provenance.
    assert company["legal_form"]["value"] == "5499"
    assert company["legal_form"]["provenance"] == {"source": "INSEE SIRENE", "reference": f"company:{SIREN}",
                                                   "record_version": UNIT_VERSION, "fetched_at": read_at}
    assert company["legal_unit_state"]["provenance"]["reference"] == f"company:{SIREN}"
    assert checks(enriched)["URSSAF_VIGILANCE"]["provenance"] == {
        "source": "URSSAF", "reference": f"attestation:{SIREN}:URSSAF_VIGILANCE", "record_version": None,
        "fetched_at": read_at}
    assert checks(enriched)["DGFIP_FISCAL_REGULARITY"]["provenance"] is None


def test_expired_urssaf_is_requested_and_counted():
    driver = driver_with(establishment(), attestation("URSSAF_VIGILANCE", valid_until=TODAY - dt.timedelta(days=1)),
                         attestation("DGFIP_FISCAL_REGULARITY"))
    driver.input_topic("procurement").pipe(candidature())
    enriched = driver.output_topic("procurement").read()
    assert enriched.data["verdict"] == "DOCUMENTS_PENDING"
    assert (enriched.data["reused"], enriched.data["requested"]) == (1, 1)
    assert checks(enriched)["URSSAF_VIGILANCE"]["status"] == "EXPIRED"
    assert checks(enriched)["URSSAF_VIGILANCE"]["request"] == "REQUESTED"
    request, = requests(driver)
    assert request.subject == DOSSIER
    assert request.envelope.correlationid == enriched.envelope.correlationid
    assert {k: request.data[k] for k in ("document_kind", "reason", "siren", "siret", "dossier", "document_reference",
                                         "buyer_identifier", "company_name", "previous_valid_until")} == {
        "document_kind": "URSSAF_VIGILANCE", "reason": "EXPIRED", "siren": SIREN, "siret": SIRET, "dossier": DOSSIER,
        "document_reference": "ESPD-1", "buyer_identifier": "21310555400017", "company_name": "ACME TRAVAUX",
        "previous_valid_until": TODAY - dt.timedelta(days=1)}
    assert request.data["requested_at"] == NOW
    assert tally([enriched, request])["requested"] == 1
    assert driver.state(DOSSIER)["requested"] == 1


@pytest.mark.parametrize("status", ["NOT_UP_TO_DATE", "REVOKED"])
def test_an_attestation_that_is_not_clean_is_not_reused(status):
    driver = driver_with(establishment(), attestation("URSSAF_VIGILANCE", status=status),
                         attestation("DGFIP_FISCAL_REGULARITY"))
    driver.input_topic("procurement").pipe(candidature())
    assert checks(driver.output_topic("procurement").read())["URSSAF_VIGILANCE"]["status"] == status
    assert [(r.data["document_kind"], r.data["reason"]) for r in requests(driver)] == [("URSSAF_VIGILANCE", status)]


def test_missing_attestations_are_requested_per_kind():
    driver = driver_with(establishment())
    driver.input_topic("procurement").pipe(candidature())
    enriched = driver.output_topic("procurement").read()
    assert {k: c["status"] for k, c in checks(enriched).items()} == {k: "MISSING" for k in KINDS}
    assert sorted((r.data["document_kind"], r.data["reason"]) for r in requests(driver)) == [
        ("DGFIP_FISCAL_REGULARITY", "MISSING"), ("URSSAF_VIGILANCE", "MISSING")]
    assert enriched.data["requested"] == 2


def test_an_attestation_filed_under_another_company_is_not_reused():
    other = attestation("URSSAF_VIGILANCE", siren="552100554")
    forged = dataclasses.replace(other, subject=attestation_subject(SIREN, "URSSAF_VIGILANCE"))
    driver = driver_with(establishment(), forged, attestation("DGFIP_FISCAL_REGULARITY"))
    driver.input_topic("procurement").pipe(candidature())
    assert checks(driver.output_topic("procurement").read())["URSSAF_VIGILANCE"]["status"] == "MISSING"


def test_unknown_company_asks_for_identification_and_defers_attestations():
    driver = driver_with()
    driver.input_topic("procurement").pipe(candidature())
    enriched = driver.output_topic("procurement").read()
    assert enriched.data["verdict"] == "UNKNOWN_COMPANY" and enriched.data["company"] is None
    assert {c["request"] for c in enriched.data["attestations"]} == {"DEFERRED"}
    request, = requests(driver)
    assert (request.data["document_kind"], request.data["reason"]) == ("COMPANY_IDENTIFICATION", "UNKNOWN_COMPANY")
    assert request.data["identifier"] == SIRET


@pytest.mark.parametrize(("records", "state"), [
    ((establishment(administrative_state="CLOSED"),), "CLOSED"),
    ((establishment(), legal_unit(administrative_state="CEASED")), "CEASED"),
])
def test_closed_establishment_or_ceased_unit_is_announced(records, state):
    driver = driver_with(*records, attestation("URSSAF_VIGILANCE"), attestation("DGFIP_FISCAL_REGULARITY"))
    driver.input_topic("procurement").pipe(candidature())
    enriched = driver.output_topic("procurement").read()
    assert enriched.data["verdict"] == "ESTABLISHMENT_CLOSED"
    request, = requests(driver)
    assert (request.data["document_kind"], request.data["reason"], request.data["administrative_state"]) == (
        "COMPANY_IDENTIFICATION", "ESTABLISHMENT_CLOSED", state)


def test_non_diffusible_company_keeps_its_redaction():
    hidden = establishment(name=None, diffusion_status="NON_DIFFUSIBLE", legal_form="1000",
                           address={"postal_code": "31000", "city_code": "31555", "city_name": "TOULOUSE"},
                           redacted_fields=["name", "address.street_number", "address.street_name"])
    # An older legal-unit record still names the person: the withheld name must not leak from it.
    driver = driver_with(hidden, legal_unit(name="JEAN DUPONT", legal_form="1000"),
                         attestation("URSSAF_VIGILANCE"), attestation("DGFIP_FISCAL_REGULARITY"))
    driver.input_topic("procurement").pipe(candidature())
    company = driver.output_topic("procurement").read().data["company"]
    assert company["name"]["value"] is None and company["name"]["redacted"] is True
    assert company["diffusion_status"]["value"] == "NON_DIFFUSIBLE"
    assert company["address"]["value"]["street_name"] is None
    assert company["address"]["value"]["city_name"] == "TOULOUSE"
    assert company["address"]["redacted_fields"] == ["address.street_name", "address.street_number"]
    assert company["legal_form"] == {"value": "1000", "redacted": False, "provenance": company["name"]["provenance"]}
    assert "name" in company["redacted_fields"]


def test_an_outstanding_request_is_not_repeated_and_a_supplied_attestation_is_reused():
    driver = driver_with(establishment(), attestation("DGFIP_FISCAL_REGULARITY"))
    procurement, enriched = driver.input_topic("procurement"), driver.output_topic("procurement")
    asked = driver.output_topic(topic_for_schema(REQUESTED))
    procurement.pipe(candidature(espd_id="ESPD-1"))
    assert checks(enriched.read())["URSSAF_VIGILANCE"]["request"] == "REQUESTED"
    assert len(asked.read_all()) == 1
    procurement.pipe(candidature(espd_id="ESPD-2"))
    second = enriched.read()
    assert second.data["espd_id"] == "ESPD-2"
    assert checks(second)["URSSAF_VIGILANCE"]["request"] == "ALREADY_REQUESTED"
    assert second.data["requested"] == 0 and asked.is_empty()
    assert list(driver.state(DOSSIER)["outstanding"]) == [f"{SIREN}:URSSAF_VIGILANCE"]
    driver.input_topic("reference.attestations").pipe(attestation("URSSAF_VIGILANCE"))
    procurement.pipe(candidature(espd_id="ESPD-3"))
    third = enriched.read()
    assert third.data["verdict"] == "COMPLIANT" and third.data["reused"] == 2
    assert asked.is_empty() and driver.state(DOSSIER)["outstanding"] == {}
    assert (driver.state(DOSSIER)["reused"], driver.state(DOSSIER)["requested"]) == (1 + 1 + 2, 1)


def test_another_dossier_gets_its_own_request():
    driver = driver_with(establishment(), attestation("DGFIP_FISCAL_REGULARITY"))
    driver.input_topic("procurement").pipe(candidature(subject="notice:A"))
    driver.input_topic("procurement").pipe(candidature(subject="notice:B"))
    assert [r.subject for r in requests(driver)] == ["notice:A", "notice:B"]


def test_the_same_record_twice_yields_one_output():
    driver = driver_with(establishment())
    procurement = driver.input_topic("procurement")
    record = procurement.pipe(candidature())
    procurement.pipe_record(record)
    assert len(driver.output_topic("procurement").read_all()) == 1
    assert len(requests(driver)) == 2
    assert driver.state(DOSSIER)["requested"] == 2


def test_own_outputs_read_back_are_ignored():
    driver = driver_with(*known_company())
    procurement = driver.input_topic("procurement")
    procurement.pipe(candidature())
    procurement.pipe_record(driver.outputs["procurement"][0])
    assert len(driver.output_topic("procurement").read_all()) == 1
    assert driver.dead_letters == []


def test_a_foreign_operator_is_out_of_scope():
    driver = driver_with(*known_company())
    driver.input_topic("procurement").pipe(candidature(None, identifier="DE811569869", country="DE"))
    enriched = driver.output_topic("procurement").read()
    assert enriched.data["verdict"] == "NOT_IDENTIFIED"
    assert enriched.data["attestations"] == [] and enriched.data["identifier"] == "DE811569869"
    assert requests(driver) == []


def test_a_candidature_type_with_another_schema_goes_to_dead_letters():
    driver = driver_with()
    wrong = dataclasses.replace(invoice(), type="fr.dcant.procurement.CandidatureSubmitted")
    driver.input_topic("procurement").pipe(wrong)
    (_, error), = driver.dead_letters
    assert type(error).__name__ == "SchemaError"
    assert driver.output_topic("procurement").is_empty()


# ---------------------------------------------------------------------- validity boundary


def test_valid_until_today_is_reused_and_the_next_day_expired():
    clock = FakeClock(NOW)
    driver = driver_with(establishment(), attestation("URSSAF_VIGILANCE", valid_until=TODAY),
                         attestation("DGFIP_FISCAL_REGULARITY"), clock=clock)
    out = driver.output_topic("procurement")
    driver.input_topic("procurement").pipe(candidature(subject="notice:A"))
    assert checks(out.read())["URSSAF_VIGILANCE"]["status"] == "VALID_REUSED"
    clock.advance(dt.timedelta(days=1))
    driver.input_topic("procurement").pipe(candidature(subject="notice:B"))
    assert checks(out.read())["URSSAF_VIGILANCE"]["status"] == "EXPIRED"


def test_the_day_is_the_french_day():
    # 23:30 UTC on 5 January is already 6 January in Paris: an attestation valid until the 5th has expired.
    clock = FakeClock(NOW)
    driver = driver_with(establishment(), attestation("URSSAF_VIGILANCE", valid_until=TODAY),
                         attestation("DGFIP_FISCAL_REGULARITY"), clock=clock)
    clock.set(dt.datetime(2026, 1, 5, 22, 59, tzinfo=dt.UTC))
    driver.input_topic("procurement").pipe(candidature(subject="notice:A"))
    clock.set(dt.datetime(2026, 1, 5, 23, 30, tzinfo=dt.UTC))
    driver.input_topic("procurement").pipe(candidature(subject="notice:B"))
    first, second = driver.output_topic("procurement").read_all()
    assert checks(first)["URSSAF_VIGILANCE"]["status"] == "VALID_REUSED"
    assert checks(second)["URSSAF_VIGILANCE"]["status"] == "EXPIRED"


# ---------------------------------------------------------------------- invoices


def test_an_invoice_seller_is_verified():
    driver = driver_with(*known_company())
    sent = invoice()
    driver.input_topic("invoices").pipe(sent)
    verified, = driver.output_topic("invoices").read_all()
    assert verified.type == "fr.dcant.invoices.SupplierVerified"
    assert verified.subject == sent.subject
    assert verified.data["invoice_number"] == "F-2026-001"
    assert verified.data["contract_reference"] == "M-2025-17"
    assert (verified.data["siret"], verified.data["siren"]) == (SIRET, SIREN)
    assert verified.data["verdict"] == "COMPLIANT" and verified.data["reused"] == 2
    assert verified.data["company"]["name"]["value"] == "ACME TRAVAUX"


def test_an_invoice_with_a_siren_only_uses_the_legal_unit():
    driver = driver_with(legal_unit(), attestation("URSSAF_VIGILANCE", valid_until=TODAY - dt.timedelta(days=3)),
                         attestation("DGFIP_FISCAL_REGULARITY"))
    driver.input_topic("invoices").pipe(invoice(SIREN))
    verified = driver.output_topic("invoices").read()
    assert verified.data["siret"] is None
    assert verified.data["company"]["name"]["provenance"]["reference"] == f"company:{SIREN}"
    request, = requests(driver)
    assert (request.subject, request.data["reason"], request.data["document_reference"]) == (
        f"invoice:{SIREN}:F-2026-001", "EXPIRED", "F-2026-001")
    assert request.data["dossier_event_type"] == "fr.dcant.invoices.InvoiceReceived"


# ---------------------------------------------------------------------- tally


def test_tally_sums_reused_and_requested_once_per_event():
    driver = driver_with(establishment(), attestation("DGFIP_FISCAL_REGULARITY"))
    driver.input_topic("procurement").pipe(candidature(subject="notice:A"))
    driver.input_topic("invoices").pipe(invoice())
    outputs = [*driver.output_topic("procurement").read_all(), *driver.output_topic("invoices").read_all(),
               *requests(driver)]
    assert len(outputs) == 4
    assert tally([*outputs, outputs[0], outputs[-1]]) == {
        "reused": 2, "requested": 2,
        "by_kind": {"DGFIP_FISCAL_REGULARITY": {"reused": 2, "requested": 0},
                    "URSSAF_VIGILANCE": {"reused": 0, "requested": 2}}}
    assert tally([]) == {"reused": 0, "requested": 0, "by_kind": {}}


# ---------------------------------------------------------------------- shell contract


def test_state_is_json_and_json_tables_are_read():
    """The faust shell keeps state and table values as JSON: ISO strings instead of dates."""
    driver = driver_with()
    as_json = json.loads(json.dumps({**establishment().data, "last_processed": VERSION.isoformat()}))
    urssaf = attestation("URSSAF_VIGILANCE", valid_until=TODAY).data
    driver.tables["reference.companies"][f"company:{SIRET}"] = as_json
    driver.tables["reference.attestations"][attestation_subject(SIREN, "URSSAF_VIGILANCE")] = json.loads(
        json.dumps(urssaf, default=str))
    driver.input_topic("procurement").pipe(candidature())
    enriched = driver.output_topic("procurement").read()
    assert enriched.data["company"]["name"]["provenance"]["record_version"] == VERSION
    assert checks(enriched)["URSSAF_VIGILANCE"]["valid_until"] == TODAY
    assert checks(enriched)["URSSAF_VIGILANCE"]["status"] == "VALID_REUSED"
    assert json.loads(json.dumps(driver.state(DOSSIER))) == driver.state(DOSSIER)


def test_the_core_honours_the_processor_contract():
    core = TellUsOnce()
    assert isinstance(core, Processor)
    assert core.on_time(core.initial_state(), DOSSIER, Context(now=NOW)) == (core.initial_state(), [])
