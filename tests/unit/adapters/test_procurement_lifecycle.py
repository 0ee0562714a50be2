"""Unit tests of the procurement lifecycle pivots: tender, opening, rejection, notification."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters import Pivot
from adapters import procurement_lifecycle as pl
from bus._catalog import default_catalog
from bus._codec import decode, encode
from bus._errors import NonConformantError

UTC = dt.UTC
TENDERER = "55210055400013"
WINNER = "73282932000074"


def roundtrip(pivot: Pivot) -> dict:
    """The pivot's data after the real Avro codec, with the schema it names."""
    catalog = default_catalog()
    schema = catalog.latest(pivot.schema)
    writer, record = decode(catalog, encode(schema, pivot.data))
    assert writer.name == pivot.schema
    return record


def check(status: str = "valid") -> dict:
    return pl.signature_check(status, checked_at=dt.datetime(2026, 3, 2, 10, 5, tzinfo=UTC),
                              checker="https://profil.example.fr (DSS 6.1)", signature_format="PAdES",
                              level="QES", signer="CN=Jeanne Martin", details=["TOTAL_PASSED", "chain: 3 certificates"])


def test_tender_submitted_carries_the_profile_signature_check() -> None:
    pivot = pl.tender_submitted(procedure_id="PROC-1", lot_id="LOT-0001", tender_id="TEN-0007",
                                tenderer_siret="552 100 554 00013", value="1200.50", value_currency="EUR",
                                received_at=dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC), signature=check())
    record = roundtrip(pivot)
    assert pivot.type == "fr.dcant.procurement.TenderSubmitted"
    assert pivot.subject == "notice:PROC-1"
    assert record["tenderer_siret"] == TENDERER
    assert record["signature"]["checked_by"] == "buyer_profile"
    assert record["signature"]["status"] == "valid"
    assert record["signature"]["details"] == ["TOTAL_PASSED", "chain: 3 certificates"]


@pytest.mark.parametrize("siret", ["552100554", "5521005540001X", "55210055400014", None])
def test_tender_submitted_refuses_a_tenderer_without_siret(siret: str | None) -> None:
    with pytest.raises(NonConformantError, match="tenderer_siret"):
        pl.tender_submitted(procedure_id="PROC-1", lot_id="LOT-0001", tender_id="TEN-1", tenderer_siret=siret,  # type: ignore[arg-type]
                            received_at=dt.datetime(2026, 3, 2, tzinfo=UTC), signature=check())


def test_la_poste_sirets_follow_their_own_check() -> None:
    # 35600000000042 fails the Luhn check but its digits add up to 20: a valid La Poste SIRET.
    rejected = pl.tender_rejected(procedure_id="P", lot_id="LOT-0001", tender_id="T", tenderer_siret="35600000000042",
                                  reasons=[("irregular", None)], sent_on=dt.date(2026, 3, 1), sent_electronically=True)
    assert rejected.data["tenderer_siret"] == "35600000000042"
    with pytest.raises(NonConformantError, match="check digit"):
        pl.tender_rejected(procedure_id="P", lot_id="LOT-0001", tender_id="T", tenderer_siret="35600000000043",
                           reasons=[("irregular", None)], sent_on=dt.date(2026, 3, 1), sent_electronically=True)


def test_signature_check_refuses_an_unknown_status_and_a_naive_time() -> None:
    with pytest.raises(NonConformantError, match="status"):
        check("probably")
    with pytest.raises(NonConformantError, match="checked_at"):
        pl.signature_check("valid", checked_at=dt.datetime(2026, 3, 2))


def test_tender_submitted_refuses_a_hand_written_signature() -> None:
    with pytest.raises(NonConformantError, match="signature_check"):
        pl.tender_submitted(procedure_id="PROC-1", lot_id="LOT-0001", tender_id="TEN-1", tenderer_siret=TENDERER,
                            received_at=dt.datetime(2026, 3, 2, tzinfo=UTC), signature={"status": "valid"})


def test_tenders_opened_counts_the_tenders() -> None:
    pivot = pl.tenders_opened(procedure_id="PROC-1", lot_id="LOT-0001", opened_at=dt.datetime(2026, 3, 3, 14, tzinfo=UTC),
                              tender_ids=["TEN-1", "TEN-2", "TEN-3"], late_tenders=1)
    record = roundtrip(pivot)
    assert (record["tenders_received"], record["late_tenders"]) == (3, 1)
    with pytest.raises(NonConformantError, match="twice"):
        pl.tenders_opened(procedure_id="PROC-1", lot_id="LOT-0001", opened_at=dt.datetime(2026, 3, 3, tzinfo=UTC),
                          tender_ids=["TEN-1", "TEN-1"])


@pytest.mark.parametrize(("electronic", "days", "end"), [(True, 11, dt.date(2026, 3, 21)),
                                                          (False, 16, dt.date(2026, 3, 26))])
def test_rejection_opens_the_standstill_of_r2182_1(electronic: bool, days: int, end: dt.date) -> None:
    pivot = pl.tender_rejected(procedure_id="PROC-1", lot_id="LOT-0001", tender_id="TEN-2", tenderer_siret=TENDERER,
                               reasons=[("not_ranked_first", "classée 2e sur 3"), ("abnormally_low", None)],
                               sent_on=dt.date(2026, 3, 10), sent_electronically=electronic,
                               winner_name="Entreprise Gagnante", winner_siret=WINNER)
    record = roundtrip(pivot)
    assert (record["standstill_days"], record["standstill_end_date"]) == (days, end)
    assert [r["code"] for r in record["reasons"]] == ["not_ranked_first", "abnormally_low"]
    assert record["reasons"][1]["label"].startswith("Offre anormalement basse")


def test_standstill_crosses_the_end_of_a_month() -> None:
    assert pl.standstill(dt.date(2026, 2, 20), electronic=True) == (11, dt.date(2026, 3, 3))


@pytest.mark.parametrize(("reasons", "message"), [([], "at least one reason"), ([("too-expensive", None)], "unknown")])
def test_rejection_needs_known_reasons(reasons: list, message: str) -> None:
    with pytest.raises(NonConformantError, match=message):
        pl.tender_rejected(procedure_id="PROC-1", lot_id="LOT-0001", tender_id="TEN-2", tenderer_siret=TENDERER,
                           reasons=reasons, sent_on=dt.date(2026, 3, 10), sent_electronically=True)


def test_contract_notified_starts_the_contract_and_ends_it_after_its_duration() -> None:
    pivot = pl.contract_notified(contract_id="2026-M-042", notification_date=dt.date(2026, 1, 31),
                                 holder_sirets=[WINNER], signature_date=dt.date(2026, 1, 28), amount="50000",
                                 duration_months=13, procedure_id="PROC-1")
    record = roundtrip(pivot)
    assert pivot.subject == "contract:2026-M-042"
    assert record["notification_date"] == dt.date(2026, 1, 31)
    assert record["end_date"] == dt.date(2027, 2, 27)  # 13 months on is 28 February (no 31st), less one day
    with pytest.raises(NonConformantError, match="signed before it is notified"):
        pl.contract_notified(contract_id="2026-M-042", notification_date=dt.date(2026, 1, 2),
                             holder_sirets=[WINNER], signature_date=dt.date(2026, 1, 3))


def test_add_months_clamps_to_the_last_day() -> None:
    assert pl.add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert pl.add_months(dt.date(2026, 11, 15), 14) == dt.date(2028, 1, 15)
