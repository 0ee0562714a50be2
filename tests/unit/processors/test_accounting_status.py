"""What the supplier hears back: the lifecycle statuses (InvoiceStatusChanged) of the accounting chain.

Driven like the other chain tests (:mod:`.accounting_factories`): every status goes through the
real envelope and Avro codec to the invoices topic, and is read back from there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters import invoice_status
from adapters._base import Pivot
from bus import DecryptionKeyring, NotARecipientError, Received, Wire, generate_encryption_key, generate_key
from bus.cli import app
from bus.cli._documents import pivot_to_json

from .accounting_factories import BUYER, HOLDER, STRANGER, Chain, every_status, invoice_life
from .accounting_factories import acquittement, award, invoice, payment, pes_retour, service_fait

SUBJECT = f"invoice:{HOLDER}:F-2026-001"


def _codes(statuses: list[Received]) -> list[str]:
    return [s.data["status_code"] for s in statuses]


def test_the_supplier_hears_each_step_through_to_paid() -> None:
    chain = Chain("2026-01-05")
    statuses = invoice_life(chain)
    assert [(s.data["status_code"], s.data["status_label"]) for s in statuses] == [
        ("202", "Reçue"), ("204", "Prise en charge"), ("211", "Paiement transmis"), ("212", "Encaissée")]
    assert {(s.type, s.subject, s.data["source"]) for s in statuses} == {
        ("fr.dcant.invoices.InvoiceStatusChanged", SUBJECT, "BUS")}
    assert {s.record.key for s in statuses} == {SUBJECT.encode()}  # ordered with the invoice's other events
    assert [s.data["issuer_role"] for s in statuses] == ["WK", "BY", "BY", "BY"]
    first = statuses[0].data
    assert (first["invoice_number"], first["invoice_issue_date"], first["invoice_type_code"]) == (
        "F-2026-001", dt.date(2026, 1, 2), "380")
    assert (first["seller_id"], first["seller_id_scheme"], first["buyer_id"], first["buyer_id_scheme"]) == (
        HOLDER, "0009", BUYER, "0009")
    assert all(s.data["reason_code"] is None for s in statuses)
    paid = statuses[-1].data
    assert paid["amounts"] == [{"type_code": "MEN", "amount": "12000.00", "currency": "EUR", "vat_rate": "20.00"}]
    assert paid["amount_paid"] == "12000.00"
    assert paid["status_time"] == chain.clock.now
    # Each status is caused by the step it reports, in the invoice's correlation.
    checked = chain.emitted("InvoiceChecked")[0]
    assert statuses[1].envelope.causationid == checked.envelope.causationid
    assert {s.envelope.correlationid for s in statuses} == {checked.envelope.correlationid}
    assert chain.read("InvoiceStatusChanged") == []  # none on the accounting topic
    assert all(s.envelope.recipients is None for s in statuses)  # the invoice was broadcast: so are they


def test_partial_payments_are_each_a_212_with_their_own_amount() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="10000.00"))
    chain.pipe(invoice())
    chain.pipe(payment(amount="5000.00", paid_on=dt.date(2026, 1, 20)))
    chain.pipe(payment(amount="7000.00", paid_on=dt.date(2026, 1, 30)))
    paid = [s.data for s in chain.statuses() if s.data["status_code"] == "212"]
    assert [(p["amount_paid"], p["amounts"][0]["amount"]) for p in paid] == [("5000.00", "5000.00"), ("7000.00", "7000.00")]


def test_a_payment_of_an_invoice_with_two_vat_rates_is_split_over_them() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="10000.00"))
    sent = invoice(vat="1500.00")
    chain.pipe(dataclasses.replace(sent, data={**sent.data, "vat_breakdown": [
        {"taxable_amount": "5000.00", "tax_amount": "1000.00", "category": "S", "rate": "20.00"},
        {"taxable_amount": "5000.00", "tax_amount": "500.00", "category": "S", "rate": "10"}]}))
    chain.pipe(payment(amount="5750.00"))  # half of 11 500 TTC
    *_, paid = chain.statuses()
    assert [(a["vat_rate"], a["amount"]) for a in paid.data["amounts"]] == [("10.00", "2750.00"), ("20.00", "3000.00")]
    assert paid.data["amount_paid"] == "5750.00"


@pytest.mark.parametrize(("options", "code", "reason"), [
    ({"seller": STRANGER}, "210", "EMMET_INC"),
    ({"excl": "20000.00", "vat": "4000.00"}, "210", "MONTANTTOTAL_ERR"),
    ({"contract": None}, "210", "REF_CT_ABSENT"),
    ({"line_total": "9999.00"}, "207", "CALCUL_ERR"),
    ({"seller": STRANGER, "line_total": "1.00"}, "210", "EMMET_INC"),  # the refusal's own rule, not the suspension's
])
def test_a_refused_or_disputed_invoice_tells_why(options, code, reason) -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="10000.00"))
    chain.pipe(invoice(**options))
    received, checked = chain.statuses()
    assert (received.data["status_code"], checked.data["status_code"], checked.data["reason_code"]) == ("202", code, reason)
    assert checked.data["reason_text"]  # in French, for the supplier
    assert checked.data["status_label"] == {"210": "Refusée", "207": "Litige"}[code]


def test_an_invoice_awaiting_its_contract_is_suspended_then_taken_in_charge() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(invoice())
    assert [(s.data["status_code"], s.data["reason_code"]) for s in chain.statuses()] == [("202", None), ("208", "REF_ERR")]
    chain.pipe(award(value="10000.00"))
    (taken,) = chain.statuses()
    assert (taken.data["status_code"], taken.subject) == ("204", SUBJECT)


def test_a_correction_failing_again_is_refused_with_the_reason_of_its_fault() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="10000.00"))
    chain.pipe(invoice(line_total="9999.00"))
    chain.pipe(invoice(line_total="9998.00"))  # the same BT-1, corrected, still wrong: the suspension is used
    assert [(s.data["status_code"], s.data["reason_code"]) for s in chain.statuses()] == [
        ("202", None), ("207", "CALCUL_ERR"), ("202", None), ("210", "CALCUL_ERR")]


def test_a_mandat_in_anomaly_tells_nothing_until_the_new_one_is_accepted() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="10000.00"))
    chain.pipe(invoice())
    chain.pipe(service_fait())
    (issued,) = chain.read("BordereauIssued")
    chain.statuses()
    chain.pipe(acquittement(issued.data["file"]["file_name"], accepted=False))
    assert chain.read("MandatInAnomaly") and chain.statuses() == []
    chain.pipe(service_fait(bordereau="43", mandat="1043"))
    (again,) = chain.read("BordereauIssued")
    chain.pipe(acquittement(again.data["file"]["file_name"], bordereau="43"))
    assert _codes(chain.statuses()) == ["211"]


def test_the_same_input_twice_emits_no_new_status() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="10000.00"))
    records = [chain.pipe(invoice())]
    records.append(chain.pipe(service_fait()))
    (issued,) = chain.read("BordereauIssued")
    records.append(chain.pipe(acquittement(issued.data["file"]["file_name"])))
    records.append(chain.pipe(pes_retour(paid="12000.00")))
    assert _codes(chain.statuses()) == ["202", "204", "211", "212"]
    for record in records:
        chain.replay(record)  # the very same records (same ce_id)
    chain.pipe(invoice())  # the same invoice sent again (a new ce_id) while it is processed
    chain.pipe(pes_retour(paid="12000.00"))  # the same return read again: nothing more paid
    assert chain.statuses() == []


def _addressed_chain(enc: dict) -> tuple[Chain, Wire]:
    """A chain whose worker reads for the buyer, and a producer sealing to the buyer (its flows' keys)."""
    chain = Chain("2026-01-05")
    driver = chain.driver
    driver.wire.decryption = DecryptionKeyring([enc[BUYER[:9]]])
    driver.wire.encryption_keys = {s: k.public for s, k in enc.items()}
    signer = generate_key("213100000", "plateforme", valid_from=chain.clock.now - dt.timedelta(days=30))
    driver.directory.add(signer.public)
    producer = Wire(driver.catalog, driver.directory, signer, source="urn:siren:213100000:test", clock=chain.clock,
                    encryption_keys=driver.wire.encryption_keys)
    return chain, producer


def test_statuses_of_an_addressed_invoice_are_addressed_to_its_seller_and_buyer() -> None:
    enc = {s: generate_encryption_key(s) for s in (HOLDER[:9], BUYER[:9])}
    chain, producer = _addressed_chain(enc)
    chain.pipe(award(value="10000.00"))
    chain.driver.input_topic("invoices").pipe_record(producer.seal(dataclasses.replace(invoice(), recipients=(BUYER[:9],))))
    chain.pipe(payment())  # broadcast: its 212 is still the invoice's, so addressed alike
    statuses = chain.statuses()
    assert _codes(statuses) == ["202", "204", "212"]
    assert {s.envelope.recipient_sirens for s in statuses} == {tuple(sorted((HOLDER[:9], BUYER[:9])))}
    assert chain.emitted("InvoiceChecked")[0].envelope.recipient_sirens == (BUYER[:9],)  # the step's rule, unchanged
    seller = Wire(chain.driver.catalog, chain.driver.directory, None, decryption=DecryptionKeyring([enc[HOLDER[:9]]]))
    assert seller.open(statuses[-1].record).data["amount_paid"] == "12000.00"
    stranger = Wire(chain.driver.catalog, chain.driver.directory, None,
                    decryption=DecryptionKeyring([generate_encryption_key(STRANGER[:9])]))
    with pytest.raises(NotARecipientError):
        stranger.open(statuses[-1].record)


def test_every_status_of_a_life_exports_to_a_valid_cdar(corpus: Path, tmp_path: Path) -> None:
    """received → accepted → service fait → mandat → acquittement → PES_Retour paid, plus a refused,
    a disputed and a suspended invoice: each status through ``bus export cdar``, valid against the
    CDAR D22B XSD and the BR-FR-CDV rules, and read back the same."""
    statuses = every_status()
    assert sorted(set(_codes(statuses))) == ["202", "204", "207", "208", "210", "211", "212"]
    assert {(s.data["status_code"], s.data["reason_code"]) for s in statuses if s.data["reason_code"]} == {
        ("210", "EMMET_INC"), ("207", "CALCUL_ERR"), ("208", "REF_ERR"), ("210", "REF_CT_ABSENT"),
        ("210", "MONTANTTOTAL_ERR")}
    runner = CliRunner()
    for i, status in enumerate(statuses):
        pivot = Pivot(status.type, invoice_status.SCHEMA, status.subject, status.data, invoice_status.FORMAT)
        source, written = tmp_path / f"status-{i}.json", tmp_path / f"status-{i}.xml"
        source.write_text(json.dumps(pivot_to_json(pivot)))
        out = runner.invoke(app, ["export", "cdar", str(source), "--out", str(written)])
        assert out.exit_code == 0, out.output
        xml = written.read_bytes()
        assert invoice_status.validate(xml, schema_dir=corpus, name=written.name) == [], status.data["status_code"]
        back = invoice_status.to_pivot(xml).data
        assert (back["status_code"], back["reason_code"], back["amount_paid"], back["seller_id"]) == (
            status.data["status_code"], status.data["reason_code"], status.data["amount_paid"],
            status.data["seller_id"])
        assert back["status_label"] == status.data["status_label"]
