"""What a contract allows, and the checks an invoice must pass against it.

Contract terms come from two pivots: the DECP data of the contract
(``fr.dcant.procurement.ContractData``: holders' SIRET, declared subcontractors with their
acte de sous-traitance amount, amount and amended amount) and the eForms award notice
(``fr.dcant.procurement.Award``: winners with their role and tender value). DECP is the French
legal record of the contract, so where both give a term DECP wins (:func:`effective_terms`).
Modifications (``fr.dcant.procurement.ContractModified``, from an eForms modification notice or
a DECP ``modifications`` entry: :func:`terms_from_modification`) then apply in the order they
were notified: the latest one naming an amount sets the ceiling, the latest naming holders the
holders.

An invoice (``fr.dcant.invoices.Invoice``) is then checked (:func:`check_invoice`, whose
contract part :func:`check_against_terms` is also run alone on an invoice held for its
contract's data, with the invoice's own findings kept from its first check); each
failure is a finding with one of the rule ids below, and the worst finding decides the outcome
(:data:`RULE_OUTCOME`), reported with the French invoice lifecycle status and the Chorus Pro
status of :data:`STATUSES`:

=====================  ==========  ===========================================================
rule                   outcome     meaning
=====================  ==========  ===========================================================
CONTRACT-UNKNOWN       rejected    the invoice names no contract (BT-12) nor engagement (BT-13)
CONTRACT-AWAITED       suspended   the invoice names a contract/engagement whose data (DECP,
                                   award notice) the buyer has not received yet: the reference
                                   cannot be verified, a ground for suspension (art. 10); the
                                   invoice is checked again when the contract's terms arrive
CONTRACT-HOLDER        rejected    the seller (BT-30 SIRET/SIREN) is neither a holder of the
                                   contract nor a declared subcontractor
CONTRACT-CEILING       rejected    the amount invoiced without VAT (BT-109), with what is
                                   already accepted, exceeds the contract amount (or the
                                   subcontractor exceeds its acte de sous-traitance)
EN16931-ARITHMETIC     suspended   an EN 16931 BR-CO calculation rule fails: the request is
                                   incoherent, which is a ground for suspension of the délai
                                   de paiement (décret 2013-269 art. 10)
SUSPENSION-USED        rejected    the invoice corrects a suspended one and fails again: the
                                   period can be suspended only once (art. 10)
=====================  ==========  ===========================================================

The supplier is told why with the BR-FR-CDV-CL-09 reason code of the deciding rule
(:data:`RULE_REASON`: REF_CT_ABSENT, REF_ERR, EMMET_INC, MONTANTTOTAL_ERR, CALCUL_ERR).

Amounts are compared as :class:`decimal.Decimal`; contract amounts are without VAT (DECP
``montant`` and eForms BT-720 are HT).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from adapters._en16931 import RULES as EN16931_RULES

__all__ = [
    "Outcome",
    "RULE_OUTCOME",
    "RULE_REASON",
    "STATUSES",
    "CONTRACT_AWAITED",
    "award_contract_id",
    "check_against_terms",
    "check_invoice",
    "decimal_of",
    "effective_terms",
    "outcome_of",
    "seller_role",
    "terms_from_award",
    "terms_from_decp",
    "terms_from_modification",
]

Outcome = Literal["accepted", "suspended", "rejected"]

#: The rule of an invoice held until its contract's data is published.
CONTRACT_AWAITED = "CONTRACT-AWAITED"

RULE_OUTCOME: dict[str, Outcome] = {
    "CONTRACT-UNKNOWN": "rejected",
    CONTRACT_AWAITED: "suspended",
    "CONTRACT-HOLDER": "rejected",
    "CONTRACT-CEILING": "rejected",
    "EN16931-ARITHMETIC": "suspended",
    "SUSPENSION-USED": "rejected",
}

#: outcome -> (French lifecycle status code, its label, Chorus Pro status). Codes of the invoice
#: lifecycle of the French e-invoicing reform (AFNOR XP Z12-012 / DGFiP specifications: 204 prise
#: en charge, 208 suspendue, 210 refusée); Chorus Pro statuses as its API names them.
STATUSES: dict[Outcome, tuple[str, str, str]] = {
    "accepted": ("204", "Prise en charge", "MISE_A_DISPOSITION"),
    "suspended": ("208", "Suspendue", "SUSPENDUE"),
    "rejected": ("210", "Refusée", "REJETEE"),
}

#: rule -> (BR-FR-CDV-CL-09 reason code MDT-113, reason text MDT-114 for the supplier, in French).
#: Every code is allowed by the schematron for the status the rule leads to (BR-FR-CDV-CL-09_MDT-113_<code>):
#: 210 for the rejections, 208 for CONTRACT-AWAITED, 207 for EN16931-ARITHMETIC (see
#: :mod:`processors._accounting_status`). SUSPENSION-USED has none of its own: the refusal gives the
#: reason of the finding that failed again.
RULE_REASON: dict[str, tuple[str, str]] = {
    "CONTRACT-UNKNOWN": ("REF_CT_ABSENT", "La facture ne cite ni marché (BT-12) ni engagement (BT-13)."),
    CONTRACT_AWAITED: ("REF_ERR", "Le marché cité n'est pas encore connu de l'acheteur : la facture est en "
                                  "attente de ses données, le délai de paiement suspendu."),
    "CONTRACT-HOLDER": ("EMMET_INC", "Le vendeur n'est ni titulaire du marché ni sous-traitant déclaré."),
    "CONTRACT-CEILING": ("MONTANTTOTAL_ERR", "Le montant facturé dépasse le montant du marché (ou de l'acte de "
                                             "sous-traitance)."),
    "EN16931-ARITHMETIC": ("CALCUL_ERR", "Les montants de la facture sont incohérents (règles de calcul EN 16931) : "
                                         "envoyez une facture rectificative."),
}

_HOLDER_ROLES = frozenset({"tenderer", "group-leader", "group-member"})
_SEVERITY = {"accepted": 0, "suspended": 1, "rejected": 2}


def decimal_of(text: Any) -> Decimal | None:
    """A decimal amount as written, or None when absent or not a number."""
    if text is None:
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _digits(identifier: Any) -> str | None:
    if identifier is None:
        return None
    text = "".join(str(identifier).split())
    return text or None


# ---------------------------------------------------------------------------- contract terms


def terms_from_decp(data: Mapping[str, Any]) -> dict[str, Any]:
    """Contract terms of a DECP ContractData pivot.

    The latest modification (by id) that names holders or an amount replaces them: DECP
    ``modification/montant`` is the contract's amount after the modification.
    """
    holders = [h["id"] for h in data.get("holders") or [] if _digits(h.get("id"))]
    amount = data.get("amount") or data.get("global_value")
    for modification in sorted(data.get("modifications") or [], key=lambda m: m.get("id") or 0):
        if modification.get("holders"):
            holders = [h["id"] for h in modification["holders"] if _digits(h.get("id"))]
        if modification.get("amount") is not None:
            amount = modification["amount"]
    subcontractors = [
        {"id": _digits(act["subcontractor_id"]), "amount": act.get("amount")}
        for act in data.get("subcontracting_acts") or []
        if _digits(act.get("subcontractor_id"))
    ]
    return {
        "id": data["id"],
        "buyer_id": data.get("buyer_id"),
        "title": data.get("subject"),
        "holders": [_digits(h) for h in holders],
        "subcontractors": subcontractors,
        "ceiling": amount,
        # Kept dated so that a modification from another source is ordered with them.
        "modifications": [terms_from_modification({
            "modification_id": str(m.get("id")), "source": "decp", "notification_date": m.get("notification_date"),
            "new_amount": m.get("amount"), "new_global_value": m.get("global_value"),
            "new_holder_sirets": [h.get("id") for h in m.get("holders") or []],
        }) for m in data.get("modifications") or []],
    }


def _single_contract(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    contracts = data.get("contracts") or []
    return contracts[0] if len(contracts) == 1 else None


def award_contract_id(data: Mapping[str, Any]) -> str | None:
    """The contract an award notice opens: the BT-150 identifier of its one settled contract.

    A notice settling several contracts (several lots) names no single contract: it has to be
    split per contract upstream, so None is returned and the notice is ignored.
    """
    contract = _single_contract(data)
    return contract.get("contract_reference") if contract else None


def terms_from_award(data: Mapping[str, Any]) -> dict[str, Any]:
    """Contract terms of the single contract of an eForms award notice.

    Holders are the winners acting as tenderer or group member, subcontractors the winners'
    declared subcontractors, identified by their French registration number (BT-501); the
    ceiling is the sum of the distinct winning tenders' values (BT-720).
    """
    contract = _single_contract(data) or {}
    technical_id = contract.get("contract_id")
    winners = [w for w in data.get("winners") or []
               if technical_id is None or w.get("contract_id") in (None, technical_id)]
    holders, subcontractors, values = [], [], {}
    for winner in winners:
        org = winner.get("organization") or {}
        ident = _digits(org.get("french_id")) if org.get("french_id_type") else None
        if ident is None:
            continue
        if winner.get("role") == "subcontractor":
            subcontractors.append({"id": ident, "amount": None})
        elif winner.get("role") in _HOLDER_ROLES:
            holders.append(ident)
        if winner.get("value") is not None:
            values[winner.get("tender_id") or ident] = winner["value"]
    amounts = [decimal_of(v) for v in values.values()]
    ceiling = str(sum((a for a in amounts if a is not None), Decimal(0))) if values else None
    buyers = [b.get("french_id") for b in data.get("buyers") or [] if b.get("french_id")]
    return {
        "id": contract.get("contract_reference"),
        "buyer_id": buyers[0] if buyers else None,
        "title": contract.get("title") or data.get("title"),
        "holders": holders,
        "subcontractors": subcontractors,
        "ceiling": ceiling,
    }


def terms_from_modification(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a ContractModified pivot changes: the ceiling (new amount, or new global value of a
    concession) and the holders (empty: unchanged), with the modification's notification date."""
    notified = data.get("notification_date")
    return {
        "modification_id": data["modification_id"],
        "source": data["source"],
        "date": notified.isoformat() if notified is not None else None,
        "ceiling": data.get("new_amount") or data.get("new_global_value"),
        "holders": [h for h in (_digits(s) for s in data.get("new_holder_sirets") or []) if h],
    }


def _modified(terms: dict[str, Any], modifications: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``terms`` after ``modifications``, oldest notified first (a DECP one last on the same day)."""
    ordered = sorted(modifications, key=lambda m: (m["date"] or "", m["source"] == "decp", m["modification_id"].zfill(12)))
    for modification in ordered:
        if modification["ceiling"] is not None:
            terms["ceiling"] = modification["ceiling"]
        if modification["holders"]:
            terms["holders"] = list(modification["holders"])
    return terms


def effective_terms(sources: Mapping[str, Any]) -> dict[str, Any] | None:
    """The contract as the checks see it: DECP terms over eForms terms; subcontractors of both;
    then the modifications in ``sources["modifications"]`` (keyed by source and id), if any."""
    decp, eforms = sources.get("decp"), sources.get("eforms")
    if decp is None and eforms is None:
        return None
    first, second = (decp, eforms) if decp is not None else (eforms, None)
    assert first is not None
    merged = dict(first)
    if second is not None:
        for key in ("buyer_id", "title", "ceiling"):
            if merged.get(key) is None:
                merged[key] = second.get(key)
        if not merged["holders"]:
            merged["holders"] = list(second["holders"])
        known = {s["id"] for s in merged["subcontractors"]}
        merged["subcontractors"] = [*merged["subcontractors"], *(s for s in second["subcontractors"] if s["id"] not in known)]
    modifications = {f"decp:{m['modification_id']}": m for m in (decp or {}).get("modifications") or []}
    modifications.update(sources.get("modifications") or {})
    return _modified(merged, modifications.values())


# ---------------------------------------------------------------------------- checks


def _same_company(seller: str, party: str) -> bool:
    """A SIRET matches itself; a SIREN matches every establishment (SIRET) of that company."""
    return seller == party or (len(seller) == 9 and party[:9] == seller) or (len(party) == 9 and seller[:9] == party)


def seller_role(terms: Mapping[str, Any], seller_id: str | None) -> tuple[str | None, Mapping[str, Any] | None]:
    """("holder" | "subcontractor" | None, the subcontracting act) of the invoice's seller."""
    seller = _digits(seller_id)
    if seller is None:
        return None, None
    if any(_same_company(seller, h) for h in terms.get("holders") or []):
        return "holder", None
    for act in terms.get("subcontractors") or []:
        if _same_company(seller, act["id"]):
            return "subcontractor", act
    return None, None


def _finding(rule: str, location: str, message: str, source_rule: str | None = None) -> dict[str, Any]:
    return {"rule": rule, "location": location, "message": message, "source_rule": source_rule}


def _arithmetic(invoice: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for rule_id, rule in EN16931_RULES.items():
        if not rule_id.startswith("BR-CO-"):
            continue
        for found in rule(invoice):
            yield _finding("EN16931-ARITHMETIC", found.location, found.message, found.rule)


def check_against_terms(terms: Mapping[str, Any], *, seller_siret: str | None, seller_label: str | None,
                        amount_excl_tax: Decimal, invoiced: Decimal, invoiced_by_seller: Decimal) -> list[dict[str, Any]]:
    """The findings of an invoice against the contract ``terms``: holder and ceilings.

    ``seller_siret`` is the invoice's BT-30 (``seller_label`` names the seller in messages when
    it is absent), ``amount_excl_tax`` its signed BT-109 (negative for a credit note),
    ``invoiced`` what the contract already accepted without VAT, ``invoiced_by_seller`` the part
    of it invoiced by this seller (checked against a subcontractor's act).
    """
    findings: list[dict[str, Any]] = []
    role, act = seller_role(terms, seller_siret)
    if role is None:
        findings.append(_finding(
            "CONTRACT-HOLDER", "BT-30",
            f"seller {seller_siret or seller_label!r} is neither a holder of contract "
            f"{terms['id']!r} nor a declared subcontractor"))
    ceiling = decimal_of(terms.get("ceiling"))
    if ceiling is not None and amount_excl_tax > 0 and invoiced + amount_excl_tax > ceiling:
        findings.append(_finding(
            "CONTRACT-CEILING", "BT-109",
            f"{invoiced} already invoiced + {amount_excl_tax} exceeds the contract amount {ceiling} (excl. VAT)"))
    act_amount = decimal_of(act.get("amount")) if act else None
    if act_amount is not None and amount_excl_tax > 0 and invoiced_by_seller + amount_excl_tax > act_amount:
        findings.append(_finding(
            "CONTRACT-CEILING", "BT-109",
            f"subcontractor: {invoiced_by_seller} already invoiced + {amount_excl_tax} exceeds its acte de "
            f"sous-traitance amount {act_amount}"))
    return findings


def check_invoice(terms: Mapping[str, Any] | None, invoice: Mapping[str, Any], *, amount_excl_tax: Decimal,
                  invoiced: Decimal, invoiced_by_seller: Decimal) -> list[dict[str, Any]]:
    """Every finding of ``invoice`` against the contract ``terms`` (None: not known yet, or no
    contract named), then its EN 16931 arithmetic; amounts as :func:`check_against_terms`."""
    findings: list[dict[str, Any]] = []
    reference = invoice.get("contract_reference") or invoice.get("purchase_order_reference")
    if terms is not None:
        findings = check_against_terms(terms, seller_siret=invoice.get("seller_siret"),
                                       seller_label=invoice.get("seller_key"), amount_excl_tax=amount_excl_tax,
                                       invoiced=invoiced, invoiced_by_seller=invoiced_by_seller)
    elif reference:
        findings.append(_finding(CONTRACT_AWAITED, "BT-12" if invoice.get("contract_reference") else "BT-13",
                                 f"no contract or engagement {reference!r} is known to the buyer yet: the invoice "
                                 "is held, its payment period suspended, until the contract data is published"))
    else:
        findings.append(_finding("CONTRACT-UNKNOWN", "BT-13", "the invoice names no contract (BT-12) nor order (BT-13)"))
    findings.extend(_arithmetic(invoice))
    return findings


def outcome_of(findings: Iterable[Mapping[str, Any]]) -> Outcome:
    """The worst outcome of the findings' rules (accepted when there is none)."""
    worst: Outcome = "accepted"
    for finding in findings:
        outcome = RULE_OUTCOME[finding["rule"]]
        if _SEVERITY[outcome] > _SEVERITY[worst]:
            worst = outcome
    return worst
