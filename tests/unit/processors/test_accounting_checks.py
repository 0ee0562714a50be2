"""Invoice checks of the accounting chain, through the driver: holder, subcontractor,
engagement, ceiling and EN 16931 arithmetic, with their lifecycle and Chorus Pro statuses."""

from __future__ import annotations

import pytest

from processors._contract_checks import RULE_OUTCOME, STATUSES, terms_from_award, terms_from_decp

from .accounting_factories import (
    CONTRACT,
    HOLDER,
    STRANGER,
    SUBCONTRACTOR,
    Chain,
    award,
    decp,
    invoice,
)


def _check(chain: Chain):
    (checked,) = chain.read("InvoiceChecked")
    return checked.data


def test_an_invoice_above_the_ceiling_is_rejected() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="50000.00"))
    chain.pipe(invoice("F-1", excl="30000.00", vat="6000.00"))
    assert _check(chain)["outcome"] == "accepted"
    chain.pipe(invoice("F-2", excl="20000.01", vat="4000.00"))
    data = _check(chain)
    assert (data["outcome"], data["lifecycle_status"], data["lifecycle_label"], data["chorus_status"]) == (
        "rejected", "210", "Refusée", "REJETEE")
    ((rule, location, message),) = [(f["rule"], f["location"], f["message"]) for f in data["findings"]]
    assert (rule, location) == ("CONTRACT-CEILING", "BT-109")
    assert "30000.00" in message and "50000.00" in message
    assert data["payment_deadline"] is None
    assert (data["contract_invoiced"], chain.state()["totals"]["invoiced"]) == ("30000.00", "30000.00")
    chain.pipe(invoice("F-3", excl="20000.00", vat="4000.00"))
    assert _check(chain)["outcome"] == "accepted"  # exactly the ceiling


def test_an_invoice_from_a_company_outside_the_contract_is_rejected() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award())
    chain.pipe(invoice(seller=STRANGER))
    data = _check(chain)
    assert data["outcome"] == "rejected"
    assert [(f["rule"], f["location"]) for f in data["findings"]] == [("CONTRACT-HOLDER", "BT-30")]
    assert data["seller_siret"] == STRANGER


def test_a_declared_subcontractor_is_accepted() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp())
    chain.pipe(invoice(seller=SUBCONTRACTOR, excl="15000.00", vat="3000.00"))
    assert _check(chain)["outcome"] == "accepted"
    assert chain.state()["invoices"][f"invoice:{SUBCONTRACTOR}:F-2026-001"]["role"] == "subcontractor"


def test_a_subcontractor_beyond_its_act_amount_is_rejected() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp())  # acte de sous-traitance: 20 000 €
    chain.pipe(invoice("S-1", seller=SUBCONTRACTOR, excl="15000.00", vat="3000.00"))
    chain.pipe(invoice("S-2", seller=SUBCONTRACTOR, excl="5000.01", vat="1000.00"))
    first, second = chain.read("InvoiceChecked")
    assert first.data["outcome"] == "accepted"
    assert second.data["outcome"] == "rejected"
    assert [f["rule"] for f in second.data["findings"]] == ["CONTRACT-CEILING"]
    assert "sous-traitance" in second.data["findings"][0]["message"]


def test_the_award_subcontractor_is_accepted_without_decp() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award())
    chain.pipe(invoice(seller=SUBCONTRACTOR))
    assert _check(chain)["outcome"] == "accepted"


def test_a_seller_identified_by_siren_matches_the_holder_siret() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp())
    chain.pipe(invoice(seller=HOLDER[:9]))
    assert _check(chain)["outcome"] == "accepted"


def test_an_invoice_for_a_contract_not_known_yet_is_held_suspended() -> None:
    # Used to be rejected CONTRACT-UNKNOWN; now held until the contract's data arrives.
    chain = Chain("2026-01-05")
    chain.pipe(invoice(contract="2026M9999"))
    data = _check(chain)
    assert (data["outcome"], data["lifecycle_status"], data["chorus_status"]) == ("suspended", "208", "SUSPENDUE")
    assert [(f["rule"], f["location"]) for f in data["findings"]] == [("CONTRACT-AWAITED", "BT-12")]
    assert data["contract_id"] == "2026M9999"
    assert chain.state("2026M9999")["held"]["invoices_awaiting_contract"] == [f"invoice:{HOLDER}:F-2026-001"]


def test_an_invoice_naming_no_contract_is_rejected_in_its_own_state() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(invoice(contract=None))
    data = _check(chain)
    assert [(f["rule"], f["location"]) for f in data["findings"]] == [("CONTRACT-UNKNOWN", "BT-13")]
    assert data["contract_id"] is None
    assert list(chain.driver.states) == [f"unrouted:invoice:{HOLDER}:F-2026-001"]


def test_the_order_reference_routes_an_invoice_without_contract_reference() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp())
    chain.pipe(invoice(contract=None, order=CONTRACT))
    data = _check(chain)
    assert (data["outcome"], data["contract_id"], data["order_reference"]) == ("accepted", CONTRACT, CONTRACT)


def test_en16931_arithmetic_errors_suspend_the_invoice() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp())
    chain.pipe(invoice(line_total="9999.00"))
    data = _check(chain)
    assert (data["outcome"], data["lifecycle_status"], data["chorus_status"]) == ("suspended", "208", "SUSPENDUE")
    assert [(f["rule"], f["source_rule"]) for f in data["findings"]] == [
        ("EN16931-ARITHMETIC", "BR-CO-10"), ("EN16931-ARITHMETIC", "BR-CO-13")]
    assert data["remaining_days"] == 30 and data["payment_deadline"] is None


def test_a_rejection_wins_over_a_suspension() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp())
    chain.pipe(invoice(seller=STRANGER, line_total="1.00"))
    data = _check(chain)
    assert data["outcome"] == "rejected"
    assert {f["rule"] for f in data["findings"]} == {"CONTRACT-HOLDER", "EN16931-ARITHMETIC"}


def test_decp_modification_raises_the_ceiling_and_decp_wins_over_the_award() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="50000.00"))
    chain.pipe(decp(amount="60000.00", modifications=[{"id": 1, "amount": "80000.00"}]))
    chain.pipe(invoice(excl="75000.00", vat="15000.00"))
    data = _check(chain)
    assert (data["outcome"], data["contract_ceiling"]) == ("accepted", "80000.00")


def test_a_credit_note_gives_room_under_the_ceiling() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp(amount="10000.00"))
    chain.pipe(invoice("F-1", excl="10000.00", vat="2000.00"))
    chain.pipe(invoice("A-1", excl="1000.00", vat="200.00", credit_note=True))
    chain.pipe(invoice("F-2", excl="1000.00", vat="200.00"))
    outcomes = [r.data["outcome"] for r in chain.read("InvoiceChecked")]
    assert outcomes == ["accepted", "accepted", "accepted"]
    assert chain.state()["totals"]["invoiced"] == "10000.00"
    assert chain.state()["invoices"][f"invoice:{HOLDER}:A-1"]["dgp"] is None  # nothing to pay on a credit note


def test_terms_of_decp_and_award() -> None:
    decp_terms = terms_from_decp(decp(holders=(HOLDER, "12345678900011"), modifications=[
        {"id": 2, "holders": [{"id": "98765432100019"}]}, {"id": 1, "amount": "1.00"}]).data)
    assert decp_terms["holders"] == ["98765432100019"]  # the latest modification's holders
    assert decp_terms["ceiling"] == "1.00"
    assert decp_terms["subcontractors"] == [{"id": SUBCONTRACTOR, "amount": "20000.00"}]
    award_terms = terms_from_award(award(value="123.40").data)
    assert (award_terms["id"], award_terms["holders"], award_terms["ceiling"]) == (CONTRACT, [HOLDER], "123.40")
    assert award_terms["subcontractors"] == [{"id": SUBCONTRACTOR, "amount": None}]


@pytest.mark.parametrize("rule", sorted(RULE_OUTCOME))
def test_every_rule_maps_to_a_documented_status(rule: str) -> None:
    code, label, chorus = STATUSES[RULE_OUTCOME[rule]]
    assert code in {"204", "208", "210"} and label and chorus
