"""Contract modifications in the accounting chain: a ContractModified moves the ceiling (and the
holders) the invoices that follow are checked against."""

from __future__ import annotations

import datetime as dt

from bus import Event

from .accounting_factories import CONTRACT, HOLDER, STRANGER, Chain, award, decp, invoice


def modified(amount: str | None, *, modification_id: str = "1", source: str = "eforms",
             notified: dt.date = dt.date(2026, 2, 1), holders: tuple[str, ...] = (),
             legal_basis: str | None = "add-wss") -> Event:
    """A ContractModified of contract CONTRACT: its new amount (HT) and holders (empty: unchanged)."""
    data = {
        "contract_id": CONTRACT, "modification_id": modification_id, "source": source, "new_amount": amount,
        "new_amount_currency": "EUR" if amount else None, "new_global_value": None, "new_duration_months": None,
        "new_end_date": None, "new_holder_sirets": list(holders), "legal_basis": legal_basis,
        "legal_basis_article": None, "reason": None, "description": None, "modified_notice_id": None,
        "notification_date": notified, "publication_date": None, "signature_date": None,
    }
    return Event(type="fr.dcant.procurement.ContractModified", subject=f"contract:{CONTRACT}",
                 schema="fr.dcant.procurement.ContractModified", data=data)


def outcome(chain: Chain) -> str:
    (checked,) = chain.read("InvoiceChecked")
    return checked.data["outcome"]


def test_an_invoice_over_the_old_ceiling_but_under_the_modified_one_is_accepted() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="50000.00"))
    chain.pipe(invoice("F-1", excl="40000.00", vat="8000.00"))
    assert outcome(chain) == "accepted"
    chain.pipe(modified("65000.00"))
    assert chain.read("InvoiceChecked") == []  # a modification checks nothing by itself
    chain.pipe(invoice("F-2", excl="20000.00", vat="4000.00"))  # 60000 > 50000, <= 65000
    assert outcome(chain) == "accepted"
    assert chain.state()["totals"]["awarded"] == "65000.00"


def test_an_invoice_over_the_modified_ceiling_is_rejected() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp(amount="100000.00"))
    chain.pipe(modified("120000.00", source="decp"))
    chain.pipe(invoice("F-1", excl="120000.01", vat="24000.00"))
    (checked,) = chain.read("InvoiceChecked")
    assert checked.data["outcome"] == "rejected"
    assert [f["rule"] for f in checked.data["findings"]] == ["CONTRACT-CEILING"]
    assert checked.data["contract_ceiling"] == "120000.00"


def test_a_lowered_ceiling_refuses_what_the_old_one_allowed() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(decp(amount="100000.00"))
    chain.pipe(modified("70000.00", legal_basis="mod-nonsubs"))
    chain.pipe(invoice("F-1", excl="80000.00", vat="16000.00"))
    assert outcome(chain) == "rejected"


def test_modifications_apply_in_the_order_they_were_notified() -> None:
    # DECP already carries a modification of 1 March; an eForms one of 1 February arrives later
    # and must not undo it.
    chain = Chain("2026-01-05")
    chain.pipe(decp(amount="100000.00", modifications=[
        {"id": 2, "amount": "150000.00", "notification_date": dt.date(2026, 3, 1)}]))
    chain.pipe(modified("120000.00", notified=dt.date(2026, 2, 1)))
    assert chain.state()["totals"]["awarded"] == "150000.00"
    chain.pipe(invoice("F-1", excl="140000.00", vat="28000.00"))
    assert outcome(chain) == "accepted"


def test_the_same_modification_twice_counts_once() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="50000.00"))
    chain.pipe(modified("65000.00"))
    chain.pipe(modified("65000.00"))
    assert list(chain.state()["contract"]["modifications"]) == ["eforms:1"]


def test_a_replaced_contractor_becomes_the_holder() -> None:
    chain = Chain("2026-01-05")
    chain.pipe(award(value="50000.00", subcontractor=None))
    chain.pipe(modified(None, holders=(STRANGER,), legal_basis="mod-repl"))
    chain.pipe(invoice("F-1", seller=STRANGER, excl="1000.00", vat="200.00"))
    assert outcome(chain) == "accepted"
    chain.pipe(invoice("F-2", seller=HOLDER, excl="1000.00", vat="200.00"))
    assert outcome(chain) == "rejected"
