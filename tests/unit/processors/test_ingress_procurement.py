"""Procurement documents through the ingress core: modifications reach the procurement topic as
ContractModified events keyed by their contract, next to the contract's data."""

from __future__ import annotations

from .test_ingress import Ingress

MODIFICATION_NOTICE = "procurement/eforms/notices/can-modif_24_value.xml"
DECP_MODIFIED = "procurement/decp/v2/exemples/marches_avec_modifications.json"


def test_an_eforms_modification_notice_becomes_contract_modified(tmp_path, corpus):
    ingress = Ingress(tmp_path)
    ingress.submit((corpus / MODIFICATION_NOTICE).read_bytes(), "can-modif.xml")
    (modified,) = ingress.driver.output_topic("procurement").read_all()
    assert (modified.type, modified.subject) == ("fr.dcant.procurement.ContractModified",
                                                 "contract:MOD/CON/02-CHG/2021/PWC")
    assert (modified.data["new_amount"], modified.data["legal_basis_article"]) == ("6430000", "R2194-2")
    assert not ingress.driver.dead_letters


def test_a_decp_package_gives_each_contract_then_its_modifications(tmp_path, corpus):
    ingress = Ingress(tmp_path)
    ingress.submit((corpus / DECP_MODIFIED).read_bytes(), "decp.json", declared_format="decp")
    events = ingress.driver.output_topic("procurement").read_all()
    kinds = [(e.type.rsplit(".", 1)[1], e.subject) for e in events]
    first = kinds.index(("ContractDataPublished", "contract:TEST2022"))
    assert kinds[first + 1] == ("ContractModified", "contract:TEST2022")
    assert events[first + 1].data["new_amount"] == "123457.87"
    assert not ingress.driver.dead_letters
