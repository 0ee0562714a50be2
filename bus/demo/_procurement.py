"""Demo phase 3, procurement: notice, SIRET-only candidatures (tell us once), award, contract data.

The URSSAF and the DGFiP publish their attestations on the compacted reference topic
(:func:`publish_attestations`, before the worker starts so its reference tables hold them).
The commune publishes its notice; three companies answer with their SIRET only; tell-us-once
completes each candidature from SIRENE and the attestations, reusing what is valid and
requesting what is not (an expired fiscal attestation, a closed establishment). The commune then
publishes the award and the contract's DECP data, which the bus writes as DECP JSON and which
gives the accounting chain the contract's holder and amount.

Around the award, the commune's buyer's profile reports the life of the tenders
(:func:`tender_phase`): each candidate's tender with the check of its signature, their opening,
the rejection letters with the délai de suspension they open (R2182-1), the notification of the
contract to its holder; after the DECP, a modification extending the contract (a DECP
``modifications`` entry read by the DECP adapter as ContractModified, amount unchanged so the
invoices that follow meet the same ceiling).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters import Pivot, decp
from adapters import procurement_lifecycle as lifecycle
from bus._wire import Event, Received
from processors.tell_us_once import attestation_subject, tally

from ._data import ADMINISTRATIONS, COMMUNE_SIRET, REVIEW_BODY_SIRET, company_siret
from ._stage import Stage, caused_by, ids_of
from ._worker import DemoWorker

__all__ = ["CONTRACT_AMOUNT", "award_event", "candidature_event", "contract_id", "notice_event", "procurement_phase",
           "publish_attestations"]

P = "fr.dcant.procurement."
CONTRACT_AMOUNT = "48000.00"
CANDIDATES = ("travaux", "arpent", "imprimerie")
#: (company role, kind, days of validity left when the demo runs: negative = expired)
ATTESTATIONS = (("travaux", "URSSAF_VIGILANCE", 150), ("travaux", "DGFIP_FISCAL_REGULARITY", 200),
                ("arpent", "URSSAF_VIGILANCE", 90), ("arpent", "DGFIP_FISCAL_REGULARITY", -20),
                ("imprimerie", "URSSAF_VIGILANCE", 60))


def contract_id(stage: Stage) -> str:
    """The contract's id (DECP ``id``, 16 characters at most), unique to the run."""
    return f"2025VOI{stage.run}"


def procedure_id(stage: Stage) -> str:
    """The procedure's id (BT-04, a UUID as eForms requires), unique to the run."""
    return f"00000000-0000-4000-a000-{stage.run.lower():0>12}"


async def publish_attestations(stage: Stage) -> int:
    """The URSSAF's and DGFiP's attestations of the candidates, on ``reference.attestations``.

    The tell-us-once core checks validity on the worker's clock (today), so validity is set
    relative to today: the demo's companies hold current attestations whatever the day it runs.
    """
    today = stage.ctx.clock().date()
    by_issuer: dict[str, list[Event]] = {"urssaf": [], "dgfip": []}
    for role, kind, days in ATTESTATIONS:
        siren = ADMINISTRATIONS[role]["siren"]
        issuer = "urssaf" if kind == "URSSAF_VIGILANCE" else "dgfip"
        valid_until = today + dt.timedelta(days=days)
        by_issuer[issuer].append(Event(
            type="fr.dcant.reference.AttestationSupplied", subject=attestation_subject(siren, kind),
            schema="fr.dcant.reference.Attestation",
            data={"attestation_id": f"{issuer.upper()}-{siren}-{valid_until:%Y%m%d}", "kind": kind, "siren": siren,
                  "siret": None, "issuer": "URSSAF" if issuer == "urssaf" else "DGFiP",
                  "issued_on": valid_until - dt.timedelta(days=180), "valid_until": valid_until,
                  "status": "UP_TO_DATE", "document": None}))
    count = 0
    for issuer, events in by_issuer.items():
        count += len(await stage.publish(issuer, events))
    return count


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), dt.UTC)


def _org(org_id: str, name: str, siret: str, **extra: str) -> dict[str, Any]:
    org = {"organization_id": org_id, "name": name, "company_id": siret, "company_id_scheme": None,
           "french_id_type": "SIRET", "french_id": siret, "city": "SAINT-EXEMPLE-SUR-LOIRE", "postal_code": "45999",
           "nuts": "FRB06", "country": "FRA", "legal_type": None, "activity": None, "phone": None, "email": None,
           "company_size": None, "touch_points": []}
    return {**org, **extra}


def _buyer() -> dict[str, Any]:
    """The commune as buyer: a local authority (BT-11 ``la``) of general public services (BT-10)."""
    return _org("ORG-0001", "Commune de Saint-Exemple-sur-Loire", COMMUNE_SIRET, legal_type="la", activity="gen-pub",
                phone="+33 2 38 00 00 00", email="marches@saint-exemple.example")


#: the administrative court hearing appeals on the procedure (the lot's review body, OPT-301)
REVIEW_BODY = _org("ORG-0003", "Tribunal administratif de l'Exemple", REVIEW_BODY_SIRET, phone="+33 2 38 00 00 01",
                   email="greffe.ta-exemple@juradm.example")
_PLACE = {"description": None, "street": None, "additional_street": None, "city": "SAINT-EXEMPLE-SUR-LOIRE",
          "postal_code": "45999", "nuts": "FRB06", "region": None, "country": "FRA"}
#: the procedure's scope and terms, shared by the notice and the award notice
_PROCEDURE = {
    "title": "Réfection de la voirie communale 2025", "description": "Travaux de réfection de chaussées",
    "contract_nature": "works", "main_cpv": "45233141", "additional_cpv": [], "estimated_value": "50000.00",
    "estimated_value_currency": "EUR", "procedure_type": "open", "accelerated": "false",
    "accelerated_justification": None, "places": [_PLACE], "other_organizations": [REVIEW_BODY],
}


def _lot(stage: Stage) -> dict[str, Any]:
    """The procedure's single lot: six months of works, tenders through the buyer's profile, price 60 %, quality 40 %."""
    return {
        "lot_id": "LOT-0001", "internal_id": "1", "title": "Voirie",
        "description": "Réfection des chaussées et trottoirs des voies communales", "contract_nature": "works",
        "main_cpv": "45233141", "additional_cpv": [], "estimated_value": "50000.00", "estimated_value_currency": "EUR",
        "submission_deadline_date": dt.date(2025, 3, 3), "submission_deadline_time": "12:00:00+01:00",
        "participation_deadline_date": None, "participation_deadline_time": None, "planned_start_date": None,
        "planned_end_date": None, "duration": "6", "duration_unit": "MONTH", "places": [_PLACE],
        "esubmission": "required", "successive_reduction": None, "gpa": "true", "no_esubmission_reason": None,
        "no_esubmission_description": None, "limited_candidates": None, "max_candidates": None,
        "min_candidates": None, "auction": "false", "framework_agreement": "none", "dps": "none",
        "selection_criteria": [], "variants": "not-allowed", "eu_funded": "no-eu-funds",
        "documents": [{"document_id": f"DCE-{stage.run}", "document_type": "non-restricted-document",
                       "url": f"https://marches.saint-exemple.example/dce/{stage.run}", "official_languages": [],
                       "unofficial_languages": []}],
        "reserved_procurement": "none", "selection_criteria_sources": ["epo-procurement-document"],
        "reserved_execution": "no", "einvoicing": "required", "ecatalog": "not-allowed", "no_negotiation": None,
        "award_method_description": None,
        "award_criteria": [{"type": "price", "name": "Prix", "description": "Prix global et forfaitaire",
                            "weight_code": "per-exa", "weight": "60"},
                           {"type": "quality", "name": "Valeur technique", "description": "Mémoire technique",
                            "weight_code": "per-exa", "weight": "40"}],
        "additional_info_organization_id": "ORG-0001",
        "submission_url": "https://marches.saint-exemple.example/depot", "submission_organization_id": "ORG-0001",
        "tender_validity": "120", "tender_validity_unit": "DAY",
        "review_deadline": "Référé précontractuel jusqu'à la signature du marché "
                           "(L551-1 du code de justice administrative)",
        "review_info_organization_id": "ORG-0001", "review_organization_id": "ORG-0003", "languages": ["FRA"],
        "eordering": "false", "epayment": "true",
    }


#: what an award notice says of a lot (subtype 29 refuses the competition's deadlines, documents and submission terms)
_AWARD_LOT = ("lot_id", "internal_id", "title", "description", "contract_nature", "main_cpv", "additional_cpv",
              "estimated_value", "estimated_value_currency", "duration", "duration_unit", "places", "gpa", "auction",
              "framework_agreement", "dps", "eu_funded", "award_criteria", "review_deadline",
              "review_info_organization_id", "review_organization_id")


def _award_lot(stage: Stage) -> dict[str, Any]:
    lot = _lot(stage)
    return {key: (value if key in _AWARD_LOT else [] if isinstance(value, list) else None) for key, value in lot.items()}


def notice_event(stage: Stage) -> Event:
    """The commune's contract notice of this run (eForms subtype 16 as a Notice pivot)."""
    data = {
        "notice_id": f"00000000-0000-4000-8000-{stage.run.lower():0>12}", "notice_version": "01",
        "procedure_id": procedure_id(stage), "notice_type": "cn-standard", "form_type": "competition",
        "notice_subtype": "16", "regulatory_domain": "32014L0024", "dispatch_date": dt.date(2025, 2, 3),
        "dispatch_time": "09:00:00+01:00", "notice_language": "FRA", "changed_notice_id": None, "change_reason": None,
        "buyers": [_buyer()], **_PROCEDURE, "exclusion_grounds_sources": ["epo-procurement-document"],
        "exclusion_grounds": [], "max_lots_submitted": None, "max_lots_awarded": None, "lots": [_lot(stage)],
    }
    return Event(type=P + "NoticePublished", subject=f"notice:{procedure_id(stage)}", schema=P + "Notice", data=data,
                 time=_at(dt.date(2025, 2, 3)))


def candidature_event(stage: Stage, n: int, role: str) -> Event:
    """Candidate ``role``'s ESPD candidature (number ``n``) to this run's procedure."""
    siret = company_siret(role)
    data = {"espd_id": f"ESPD-{stage.run}-{n}", "uuid": None, "procedure_reference": procedure_id(stage),
            "issue_date": dt.date(2025, 2, 20 + n), "issue_time": None, "profile": None, "procedure_type": "open",
            "buyer_identifier": COMMUNE_SIRET, "buyer_name": "Commune de Saint-Exemple-sur-Loire", "lot_ids": ["LOT-0001"],
            # "Dites-le-nous une fois": the company gives its SIRET, nothing else about itself.
            "economic_operator": {"identifier": siret, "identifier_scheme": "SIRET", "siret": siret, "siren": None,
                                  "name": None, "country": "FR", "role": None, "size": None},
            "answers": []}
    return Event(type=P + "CandidatureSubmitted", subject=f"notice:{procedure_id(stage)}", schema=P + "Candidature",
                 data=data, time=_at(dt.date(2025, 2, 20 + n), 15))


def award_event(stage: Stage, holder: str) -> Event:
    """The commune's contract award notice of this run to ``holder`` (SIRET; eForms subtype 29).

    Its result: three tenders received (:data:`TENDERS`) through the buyer's profile, from SMEs of
    France, the holder's won; the contract signed on 13 April (BT-145), as :func:`_notification` says.
    """
    name = ADMINISTRATIONS["travaux"]["name"]
    statistics = [{"type": kind, "count": count}
                  for kind, count in (("t-sme", "3"), ("t-esubm", "3"), ("t-oth-eea", "0"), ("t-no-eea", "0"),
                                      ("t-large", "0"))]
    data = {"notice_id": f"00000000-0000-4000-9000-{stage.run.lower():0>12}", "notice_version": "01",
            "procedure_id": procedure_id(stage), "notice_type": "can-standard", "form_type": "result",
            "notice_subtype": "29", "regulatory_domain": "32014L0024", "dispatch_date": dt.date(2025, 4, 16),
            "dispatch_time": "09:00:00+02:00", "notice_language": "FRA", "buyers": [_buyer()], **_PROCEDURE,
            "total_value": CONTRACT_AMOUNT, "total_value_currency": "EUR", "lot_ids": ["LOT-0001"],
            "lots": [_award_lot(stage)],
            "lot_results": [{"result_id": "RES-0001", "lot_id": "LOT-0001", "winner_chosen": "selec-w",
                             "tender_ids": ["TEN-0001"], "contract_ids": ["CON-0001"],
                             "received_tenders": str(len(TENDERS)), "no_winner_reason": None,
                             "statistics": statistics}],
            "tenders": [{"tender_id": "TEN-0001", "lot_id": "LOT-0001", "value": CONTRACT_AMOUNT,
                         "value_currency": "EUR", "rank": "1", "tendering_party_id": "TPA-0001",
                         "tender_reference": f"OFFRE-{stage.run}-1", "subcontracting": "no"}],
            "contracts": [{"contract_id": "CON-0001", "contract_reference": contract_id(stage),
                           "title": "Réfection de la voirie communale 2025", "award_date": dt.date(2025, 4, 1),
                           "conclusion_date": dt.date(2025, 4, 13), "tender_ids": ["TEN-0001"]}],
            "tendering_parties": [{"tendering_party_id": "TPA-0001",
                                   "members": [{"organization_id": "ORG-0002", "role": "tenderer"}]}],
            "winners": [{"lot_id": "LOT-0001", "tender_id": "TEN-0001", "contract_id": "CON-0001", "role": "tenderer",
                         "value": CONTRACT_AMOUNT, "value_currency": "EUR",
                         "organization": _org("ORG-0002", name, holder, company_size="small")}]}
    return Event(type=P + "AwardPublished", subject=f"notice:{procedure_id(stage)}", schema=P + "Award", data=data,
                 time=_at(dt.date(2025, 4, 16)))


def _event(pivot: Pivot, when: dt.datetime) -> Event:
    return Event(type=pivot.type, subject=pivot.subject, schema=pivot.schema, data=pivot.data, time=when)


#: (candidate, its tender value HT, signature status reported by the profile, rejection reason or None)
TENDERS = (("travaux", CONTRACT_AMOUNT, "valid", None),
           ("arpent", "51200.00", "valid", ("not_ranked_first", "classée 2e sur 3 (prix 60 %, valeur technique 40 %)")),
           ("imprimerie", "39900.00", "unsigned", ("irregular", "le bordereau des prix unitaires n'est pas renseigné")))
PROFILE = "profil d'acheteur de la commune (validation eIDAS, listes de confiance UE)"


def _tenders(stage: Stage) -> list[Event]:
    """Each candidate's tender as the profile received it, then their opening."""
    events = []
    for n, (role, value, status, _) in enumerate(TENDERS, 1):
        received = _at(dt.date(2025, 3, 3), 8) + dt.timedelta(minutes=17 * n)
        details = (["TOTAL_PASSED", "certificat qualifié (liste de confiance FR)", "révocation : OCSP, bon"]
                   if status == "valid" else ["aucune signature : elle sera demandée à l'attributaire"])
        check = lifecycle.signature_check(status, checked_at=received + dt.timedelta(minutes=1), checker=PROFILE,
                                          signature_format="PAdES" if status == "valid" else None,
                                          signer=f"CN=Représentant légal, O={ADMINISTRATIONS[role]['name']}"
                                          if status == "valid" else None, details=details)
        events.append(_event(lifecycle.tender_submitted(
            procedure_id=procedure_id(stage), lot_id="LOT-0001", tender_id=f"TEN-000{n}",
            tenderer_siret=company_siret(role), received_at=received, value=value, value_currency="EUR",
            signature=check), received))
    opened = _at(dt.date(2025, 3, 3), 13)
    events.append(_event(lifecycle.tenders_opened(procedure_id=procedure_id(stage), lot_id="LOT-0001", opened_at=opened,
                                                  tender_ids=[f"TEN-000{n}" for n in range(1, len(TENDERS) + 1)]),
                         opened))
    return events


def _rejections(stage: Stage, holder: str) -> list[Event]:
    """The rejection letters, sent electronically on 1 April: no signature before their standstill ends."""
    sent = dt.date(2025, 4, 1)
    return [_event(lifecycle.tender_rejected(
        procedure_id=procedure_id(stage), lot_id="LOT-0001", tender_id=f"TEN-000{n}",
        tenderer_siret=company_siret(role), reasons=[reason], sent_on=sent, sent_electronically=True,
        winner_name=ADMINISTRATIONS["travaux"]["name"], winner_siret=holder), _at(sent, 10))
        for n, (role, _, _, reason) in enumerate(TENDERS, 1) if reason is not None]


def _notification(stage: Stage, data: dict[str, Any], holder: str) -> Event:
    pivot = lifecycle.contract_notified(contract_id=data["id"], notification_date=data["notification_date"],
                                        holder_sirets=[holder], procedure_id=procedure_id(stage), lot_id="LOT-0001",
                                        buyer_id=COMMUNE_SIRET, signature_date=dt.date(2025, 4, 13),
                                        amount=data["amount"], duration_months=data["duration_months"])
    return _event(pivot, _at(data["notification_date"], 11))


def _modification(data: dict[str, Any]) -> Event:
    """The DECP entry of a modification extending the contract by three months (same amount).

    Dated before the first invoice: the worker runs on event time, and a later date on the
    contract's state would move its timers ahead of the invoices that follow.
    """
    entry = {"id": 1, "duration_months": 9, "amount": data["amount"], "holders": None,
             "notification_date": dt.date(2025, 4, 22), "publication_date": dt.date(2025, 4, 24),
             "signature_date": None, "global_value": None}
    (pivot,) = decp.modification_pivots({**data, "modifications": [entry]})
    return _event(pivot, _at(dt.date(2025, 4, 24), 10))


async def tender_phase(stage: Stage, console: Console, data: dict[str, Any], holder: str) -> dict[str, Any]:
    """Tenders, opening, rejection letters and notification (before the DECP), as the profile reports them."""
    await stage.publish("commune", _tenders(stage))
    rejections = _rejections(stage, holder)
    await stage.publish("commune", rejections)
    notified = _notification(stage, data, holder)
    await stage.publish("commune", [notified])
    table = Table("offre", "SIRET", "signature (profil)", "suite", title="offres reçues par le profil d'acheteur")
    letters = {e.data["tender_id"]: e.data for e in rejections}
    for n, (role, _, status, _) in enumerate(TENDERS, 1):
        letter = letters.get(f"TEN-000{n}")
        outcome = (f"rejetée ({letter['reasons'][0]['code']}), suspension jusqu'au {letter['standstill_end_date']:%d/%m/%Y}"
                   if letter else f"retenue, notifiée le {notified.data['notification_date']:%d/%m/%Y}")
        table.add_row(f"TEN-000{n}", company_siret(role), status, outcome)
    console.print(table)
    return {"tenders": len(TENDERS), "rejection letters": len(rejections),
            "standstill end": str(rejections[0].data["standstill_end_date"]),
            "contract notified": str(notified.data["notification_date"]),
            "contract end": str(notified.data["end_date"])}


def _contract_data(stage: Stage, holder: str) -> dict[str, Any]:
    return {
        "id": contract_id(stage), "kind": "marche", "buyer_id": COMMUNE_SIRET, "nature": "Marché",
        "subject": "Réfection de la voirie communale 2025", "cpv_code": "45233141-9", "techniques": ["Sans objet"],
        "execution_modalities": ["Sans objet"], "framework_agreement_id": None, "innovative": False, "ccag": "Travaux",
        "tenders_received": len(CANDIDATES), "advance_granted": False, "advance_rate": "0",
        "operator_grouping": "Pas de groupement", "subcontracting_declared": False, "subcontracting_acts": None,
        "procedure": "Procédure adaptée", "execution_place_code": "45999", "execution_place_code_type": "Code commune",
        "duration_months": 6, "notification_date": dt.date(2025, 4, 14), "publication_date": dt.date(2025, 4, 16),
        "amount": CONTRACT_AMOUNT, "price_types": ["Définitif ferme"], "price_form": "Forfaitaire",
        "origin_eu": "0", "origin_france": "0", "holders": [{"id_type": "SIRET", "id": holder}],
        "social_considerations": ["Pas de considération sociale"],
        "environmental_considerations": ["Pas de considération environnementale"], "modifications": None,
        "subcontracting_act_modifications": None, "signature_date": None, "execution_start_date": None,
        "global_value": None, "public_subsidy_amount": None, "execution_data": None,
    }


async def procurement_phase(stage: Stage, worker: DemoWorker, console: Console) -> dict[str, Any]:
    """Play the procurement; returns its figures (candidatures, verdicts, documents reused/requested)."""
    console.rule("[bold]3. Procurement: notice, SIRET-only candidatures, award, DECP")
    watcher = stage.watcher
    await stage.publish("commune", [notice_event(stage)])
    sent = []
    for n, role in enumerate(CANDIDATES, 1):
        sent += await stage.publish(role, [candidature_event(stage, n, role)])
    ids = ids_of(sent)
    enriched = await watcher.expect(
        lambda: (found if len(found := watcher.of("CandidatureEnriched", where=caused_by(ids))) == len(ids) else None),
        "enriched candidatures")

    def requests() -> list[Received]:
        return watcher.of("DocumentRequested", where=caused_by(ids))

    table = Table("SIRET given", "company (from SIRENE)", "NAF", "verdict", "URSSAF", "DGFiP", "reused", "requested",
                  title="candidatures completed by tell-us-once")
    for event in sorted(enriched, key=lambda e: e.data["espd_id"]):
        d = event.data
        company = d["company"] or {}
        checks = {c["kind"]: f"{c['status']} / {c['request']}" for c in d["attestations"]}
        table.add_row(d["siret"] or d["identifier"], (company.get("name") or {}).get("value") or "-",
                      (company.get("naf") or {}).get("value") or "-", d["verdict"],
                      checks.get("URSSAF_VIGILANCE", "-"), checks.get("DGFIP_FISCAL_REGULARITY", "-"),
                      str(d["reused"]), str(d["requested"]))
    console.print(table)
    wanted = sum(e.data["requested"] for e in enriched)
    await watcher.expect(lambda: len(requests()) >= wanted, "documents requested from the candidates")
    for request in requests():
        d = request.data
        console.print(f"  requested from {d['siret'] or d['siren']}: [yellow]{d['document_kind']}[/] ({d['reason']})")
    holder = company_siret("travaux")
    data = _contract_data(stage, holder)
    tenders = await tender_phase(stage, console, data, holder)
    await stage.publish("commune", [award_event(stage, holder)])
    stage.write(f"decp-{data['id']}.json", decp.from_pivot(data))
    (record,) = await stage.publish("commune", [Event(type=P + "ContractDataPublished", subject=f"contract:{data['id']}",
                                                      schema=P + "ContractData", data=data,
                                                      time=_at(dt.date(2025, 4, 16), 10))])
    # The accounting chain says nothing about a contract until an invoice comes: wait until the
    # worker has handled the contract data, so the invoices are checked against it.
    await worker.handled(record, "the accounting chain to take the contract data")
    console.print(f"contract [bold]{data['id']}[/] awarded to {ADMINISTRATIONS['travaux']['name']} ({holder}) for "
                  f"{CONTRACT_AMOUNT} € HT; DECP published")
    modification = _modification(data)
    await stage.publish("commune", [modification])
    m = modification.data
    console.print(f"modification {m['modification_id']} of {data['id']}: {m['new_duration_months']} months, ends on "
                  f"{m['new_end_date']:%d/%m/%Y}, amount {m['new_amount']} € HT unchanged")
    counts = tally([*enriched, *requests()])
    return {"candidatures": len(enriched), "candidature verdicts": {e.data["identifier"]: e.data["verdict"]
                                                                    for e in enriched},
            "candidature documents reused": counts["reused"], "candidature documents requested": counts["requested"],
            "contract": data["id"], **tenders, "contract modified end": str(modification.data["new_end_date"])}
