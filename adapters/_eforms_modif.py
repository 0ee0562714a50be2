"""Read the contract modifications of an eForms contract modification notice (subtypes 38–40).

A modification notice is a ContractAwardNotice whose extension holds one
``efac:ContractModification`` per modified contract: BT-1501(n) the notice that published the
contract, BT-1501(s) the contract's technical id (``CON-xxxx``) in this notice, BT-202 what
changed, BT-200 / BT-201 the justification. The rest of the notice is read as an award
(:func:`adapters._eforms_read.read_award`), which gives the contract's BT-150 identifier and the
tender value (BT-720) after the modification. BT-200 codes are mapped to the article of the
code de la commande publique that allows the modification (directive 2014/24/EU art. 72).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from ._eforms_read import EXTENSION
from ._ubl23 import NS as _NS
from ._ubl23 import first_text

__all__ = ["LEGAL_BASIS_ARTICLES", "read_modifications"]

#: eForms BT-200 (codelist modification-justification) -> article of the code de la commande publique.
LEGAL_BASIS_ARTICLES = {
    "mod-revcl": "R2194-1",  # clause de réexamen (art. 72(1)(a))
    "add-wss": "R2194-2",  # prestations supplémentaires (art. 72(1)(b))
    "mod-cirinc": "R2194-5",  # circonstances imprévues (art. 72(1)(c))
    "mod-repl": "R2194-6",  # nouveau titulaire (art. 72(1)(d))
    "mod-nonsubs": "R2194-7",  # modification non substantielle (art. 72(1)(e))
    "mod-minv": "R2194-8",  # faible montant (art. 72(2))
}

_SECTION = f"{EXTENSION}/efac:ContractModification"


def _new_amount(award: Mapping[str, Any], contract: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(BT-720 of the contract's tender, its currency); else the notice's BT-161 when it settles one contract."""
    tender_ids = set(contract.get("tender_ids") or [])
    values = [(t["value"], t["value_currency"]) for t in award.get("tenders") or []
              if t.get("tender_id") in tender_ids and t.get("value") is not None]
    if len(values) == 1:
        return values[0]
    if len(award.get("contracts") or []) == 1:
        return award.get("total_value"), award.get("total_value_currency")
    return None, None


def read_modifications(root: etree._Element, award: Mapping[str, Any], *, document: str) -> list[dict[str, Any]]:
    """The ContractModified records of a modification notice already read as ``award``."""
    sections = root.findall(_SECTION, _NS)
    if not sections:
        raise NonConformantError("a contract modification notice has no ContractModification section",
                                 document=document, xpath=f"/*/{_SECTION}", rule="BR-BT-01501")
    contracts = {c.get("contract_id"): c for c in award.get("contracts") or []}
    out = []
    for index, section in enumerate(sections, start=1):
        xpath = f"/*/{_SECTION}[{index}]"
        technical = first_text(section, "efbc:ModifiedContractIdentifier")
        contract = contracts.get(technical)
        if contract is None or not contract.get("contract_reference"):
            raise NonConformantError(
                f"the modified contract {technical!r} (BT-1501(s)) is not a settled contract of the notice with a "
                "BT-150 identifier", document=document, xpath=f"{xpath}/efbc:ModifiedContractIdentifier",
                rule="BR-BT-01501")
        amount, currency = _new_amount(award, contract)
        code = first_text(section, "efac:ChangeReason/cbc:ReasonCode")
        # Only a replacement of the contractor changes the holders; the winners are then the new ones.
        holders = [w["organization"]["french_id"] for w in award.get("winners") or []
                   if code == "mod-repl" and w.get("contract_id") == technical and w.get("role") != "subcontractor"
                   and w["organization"].get("french_id_type") == "SIRET"]
        out.append({
            "contract_id": contract["contract_reference"],
            "modification_id": f"{award['notice_id']}-{award['notice_version']}"
                               + (f"-{index}" if len(sections) > 1 else ""),
            "source": "eforms",
            "new_amount": amount,
            "new_amount_currency": currency,
            "new_global_value": None,
            "new_duration_months": None,
            "new_end_date": None,
            "new_holder_sirets": holders,
            "legal_basis": code,
            "legal_basis_article": LEGAL_BASIS_ARTICLES.get(code or ""),
            "reason": first_text(section, "efac:ChangeReason/efbc:ReasonDescription"),
            "description": first_text(section, "efac:Change/efbc:ChangeDescription"),
            "modified_notice_id": first_text(section, "efbc:ChangedNoticeIdentifier"),
            "notification_date": award["dispatch_date"],
            "publication_date": None,
            "signature_date": None,
        })
    return out
