"""The ACL policy (bus._acl): which rights the directory's principals get, and the plan against live ACLs."""

from __future__ import annotations

import datetime as dt

from bus import KeyDirectory, generate_key
from bus._acl import kind_of, plan, wanted_acls
from bus._admin import Acl
from bus._directory import approval_for
from bus._settings import BusSettings
from bus._topics import FAMILIES

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
COMMUNE, SUPPLIER = "219990017", "800000010"
SETTINGS = BusSettings(topic_prefix="t.")


def directory(*sirens: str) -> KeyDirectory:
    return KeyDirectory([generate_key(s, f"party {s}", valid_from=T0).public for s in sirens])


def approve(d: KeyDirectory, siren: str, category: str) -> None:
    (key,) = d.for_siren(siren)
    d.trust.approvals[key.key_id] = [approval_for(key, purposes=("EVENTS",), valid_from=None, valid_until=None,
                                                  legal_category=category, at=T0)]


def test_a_public_body_writes_the_families_a_supplier_only_procurement_and_invoices_no_tenant_reads_them():
    acls = set(wanted_acls(SETTINGS, directory(COMMUNE, SUPPLIER)))
    writes = {(a.principal, a.name) for a in acls if a.operation == "WRITE"}

    assert {(f"User:{COMMUNE}", f"t.dcant.{f}") for f in FAMILIES} <= writes
    assert {n for p, n in writes if p == f"User:{SUPPLIER}" and n.split("dcant.")[1] in FAMILIES} == {
        "t.dcant.procurement", "t.dcant.invoices"}
    tenant_reads = {a.name for a in acls if a.operation == "READ" and a.principal[5:].isdigit()}
    assert not tenant_reads & {f"t.dcant.{f}" for f in FAMILIES}
    assert Acl("User:ledger", "WRITE", "topic", "t.dcant.ledger.checkpoints") in acls
    assert Acl("User:worker", "CREATE", "topic", "t.dcant-bus", prefixed=True) in acls
    assert Acl(f"User:{COMMUNE}", "READ", "group", f"t.dcant.{COMMUNE}.", prefixed=True) in acls
    assert all(a.name.startswith("t.dcant") for a in acls)


def test_the_approved_legal_category_decides_the_kind_and_an_unchecked_one_falls_back_on_the_siren():
    d = directory(COMMUNE, SUPPLIER, "130009996")
    approve(d, COMMUNE, "5710")  # a company, whatever its number looks like
    approve(d, SUPPLIER, "7210")  # a commune
    approve(d, "130009996", "unchecked")  # approved without the SIRENE check

    assert (kind_of(COMMUNE, d), kind_of(SUPPLIER, d), kind_of("130009996", d)) == (
        "supplier", "public body", "public body")


def test_the_plan_removes_stale_acls_of_the_namespace_and_leaves_the_others():
    d = directory(COMMUNE)
    wanted = wanted_acls(SETTINGS, d)
    stale = Acl("User:999999999", "WRITE", "topic", "t.dcant.acts")
    foreign = Acl("User:999999999", "WRITE", "topic", "other-topic")

    difference = plan(SETTINGS, d, [*wanted[1:], stale, foreign])

    assert difference.add == (wanted[0],)
    assert difference.remove == (stale,)
    assert not plan(SETTINGS, d, [*wanted, foreign])
