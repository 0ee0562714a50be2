"""EN 16931 business rules on the invoice pivot: for each rule a record that passes and one that fails."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from adapters import _en16931
from bus import NonConformantError


def _valid() -> dict[str, Any]:
    address = {"line1": "1 rue de la Paix", "city": "Paris", "post_code": "75002", "country_code": "FR"}
    return _en16931.complete({
        "syntax": "UBL", "profile": "urn:cen.eu:en16931:2017", "number": "F-1", "issue_date": dt.date(2024, 3, 1),
        "type_code": "380", "is_credit_note": False, "currency": "EUR", "due_date": dt.date(2024, 3, 31),
        "contract_reference": "MARCHE-42", "purchase_order_reference": "PO-7",
        "seller": {"name": "Seller SA", "identifiers": [{"id": "12345678900017", "scheme": "0009"}], "address": address},
        "buyer": {"name": "Commune", "legal_registration": {"id": "213105554", "scheme": "0002"}, "address": address},
        "allowance_charges": [
            {"charge": False, "amount": "10.00", "vat_category": "S", "vat_rate": "20", "reason": "Remise"},
            {"charge": True, "amount": "5.00", "vat_category": "S", "vat_rate": "20", "reason": "Port"},
        ],
        "totals": {"line_total": "100.01", "allowance_total": "10.00", "charge_total": "5.00", "tax_exclusive": "95.01",
                   "tax_total": "19.00", "tax_inclusive": "114.01", "prepaid": "14.01", "payable": "100.00"},
        "vat_breakdown": [{"taxable_amount": "95.01", "tax_amount": "19.00", "category": "S", "rate": "20"}],
        "lines": [
            {"id": "1", "quantity": "2", "unit_code": "C62", "net_amount": "60.005", "price": {"net_price": "30.0025"},
             "vat_category": "S", "vat_rate": "20", "item": {"name": "Chaises"}},
            {"id": "2", "quantity": "1", "unit_code": "C62", "net_amount": "40", "price": {"net_price": "40"},
             "vat_category": "S", "vat_rate": "20", "item": {"name": "Table"}},
        ],
    })


def _set(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(inv: dict[str, Any]) -> None:
        node: Any = inv
        for key in path[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[path[-1]] = value

    return mutate


BREAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "BR-01": _set("profile", value=" "),
    "BR-02": _set("number", value=None),
    "BR-03": _set("issue_date", value=None),
    "BR-04": _set("type_code", value=""),
    "BR-05": _set("currency", value=None),
    "BR-06": _set("seller", "name", value=None),
    "BR-07": _set("buyer", "name", value=""),
    "BR-08": _set("seller", "address", value=None),
    "BR-09": _set("seller", "address", "country_code", value=None),
    "BR-10": _set("buyer", "address", value=None),
    "BR-11": _set("buyer", "address", "country_code", value=""),
    "BR-12": _set("totals", "line_total", value=None),
    "BR-13": _set("totals", "tax_exclusive", value=None),
    "BR-14": _set("totals", "tax_inclusive", value=None),
    "BR-15": _set("totals", "payable", value=None),
    "BR-16": _set("lines", value=[]),
    "BR-21": _set("lines", "0", "id", value=""),
    "BR-22": _set("lines", "0", "quantity", value=None),
    "BR-23": _set("lines", "0", "unit_code", value=None),
    "BR-24": _set("lines", "0", "net_amount", value=None),
    "BR-25": _set("lines", "1", "item", "name", value=""),
    "BR-26": _set("lines", "1", "price", value=None),
    "BR-27": _set("lines", "1", "price", "net_price", value="-1"),
    "BR-28": _set("lines", "1", "price", "gross_price", value="-0.01"),
    "BR-31": _set("allowance_charges", "0", "amount", value=None),
    "BR-36": _set("allowance_charges", "1", "amount", value=None),
    "BR-45": _set("vat_breakdown", "0", "taxable_amount", value=None),
    "BR-46": _set("vat_breakdown", "0", "tax_amount", value=None),
    "BR-47": _set("vat_breakdown", "0", "category", value=None),
    "BR-CO-10": _set("totals", "line_total", value="100.02"),
    "BR-CO-11": _set("totals", "allowance_total", value="9.99"),
    "BR-CO-12": _set("totals", "charge_total", value=None),
    "BR-CO-13": _set("totals", "tax_exclusive", value="95.00"),
    "BR-CO-14": _set("totals", "tax_total", value="19.01"),
    "BR-CO-15": _set("totals", "tax_inclusive", value="114.00"),
    "BR-CO-16": _set("totals", "payable", value="100.01"),
    "BR-CO-17": _set("vat_breakdown", "0", "tax_amount", value="21.00"),
}


def test_the_reference_record_passes_every_rule() -> None:
    assert _en16931.check(_valid()) == []


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_each_rule_fails_when_its_term_is_broken(rule: str) -> None:
    inv = _valid()
    BREAKS[rule](inv)
    rules = {f.rule for f in _en16931.check(inv) if f.severity == "fatal"}
    assert rule in rules


def test_every_required_rule_is_implemented() -> None:
    required = {f"BR-{n:02d}" for n in range(1, 17)} | {f"BR-CO-{n}" for n in range(10, 18)}
    assert required <= set(BREAKS)


def test_br_co_10_uses_the_schematron_rounding() -> None:
    inv = _valid()
    # 60.005 + 40 = 100.005, which the Schematron rounds half up to 100.01
    inv["totals"]["line_total"] = "100.01"
    assert not [f for f in _en16931.check(inv) if f.rule == "BR-CO-10"]
    inv["totals"]["line_total"] = "100.00"
    assert [f for f in _en16931.check(inv) if f.rule == "BR-CO-10"]


def test_br_co_17_tolerates_one_unit_either_side() -> None:
    inv = _valid()
    inv["vat_breakdown"][0]["tax_amount"] = "19.99"
    inv["totals"]["tax_total"] = "19.99"
    assert not [f for f in _en16931.check(inv) if f.rule == "BR-CO-17"]


def test_zero_rate_requires_zero_tax() -> None:
    inv = _valid()
    inv["vat_breakdown"][0].update(rate="0", category="E", tax_amount="0.60")
    assert [f.location for f in _en16931.check(inv) if f.rule == "BR-CO-17"] == ["BG-23[0]/BT-117"]


def test_lineless_factur_x_profiles_only_warn_on_line_rules() -> None:
    inv = _valid()
    inv["profile"] = "urn:factur-x.eu:1p0:minimum"
    inv["lines"] = []
    inv["totals"]["line_total"] = None
    findings = _en16931.check(inv)
    assert {f.rule for f in findings} >= {"BR-16", "BR-12"}
    assert all(f.severity == "warning" for f in findings)


def test_build_pivot_rejects_with_every_failing_rule_listed() -> None:
    inv = _valid()
    BREAKS["BR-CO-14"](inv)
    BREAKS["BR-06"](inv)
    with pytest.raises(NonConformantError) as info:
        _en16931.build_pivot(inv, fmt="ubl", name="x.xml")
    assert info.value.context["rule"] == "BR-06"
    assert "BR-CO-14" in info.value.message and "BR-06" in info.value.message
    assert info.value.context["document"] == "x.xml"


def test_build_pivot_subject_and_keys() -> None:
    pivot = _en16931.build_pivot(copy.deepcopy(_valid()), fmt="ubl", name="x.xml")
    assert pivot.type == "fr.dcant.invoices.InvoiceReceived"
    assert pivot.subject == "invoice:123456789:F-1"
    assert pivot.data["seller_siret"] == "12345678900017"
    assert pivot.data["buyer_key"] == "213105554"


def test_a_filled_record_becomes_the_pivot_as_it_is() -> None:
    filled = _en16931.build_pivot(copy.deepcopy(_valid()), fmt="ubl", name="x.xml", filled=True)
    assert filled == _en16931.build_pivot(copy.deepcopy(_valid()), fmt="ubl", name="x.xml")


def test_defaults_are_fresh_records_of_the_schema() -> None:
    party = _en16931.defaults("Party")
    assert party == _en16931.complete({"seller": {}})["seller"]
    assert party["identifiers"] == [] and party["identifiers"] is not _en16931.defaults("Party")["identifiers"]


def test_subject_falls_back_to_vat_identifier() -> None:
    inv = _valid()
    inv["seller"]["identifiers"] = []
    inv["seller"]["vat_identifier"] = "FR11999999998"
    pivot = _en16931.build_pivot(inv, fmt="ubl", name="x.xml")
    assert pivot.subject == "invoice:FR11999999998:F-1"
    assert pivot.data["seller_siret"] is None


def test_terms_are_flat_and_omit_absent_terms() -> None:
    got = _en16931.terms(_valid())
    assert got["BT-1"] == "F-1"
    assert got["BT-2"] == "2024-03-01"
    assert got["BT-12"] == "MARCHE-42"
    assert got["BT-13"] == "PO-7"
    assert got["BT-29"] == "12345678900017" and got["BT-29-1"] == "0009"
    assert got["BT-47"] == "213105554"
    assert got["BT-106"] == "100.01"
    assert got["BT-115"] == "100.00"
    assert got["lines"] == 2
    assert "BT-10" not in got and "BT-114" not in got
    assert all(not isinstance(v, dict | list) for v in got.values())
