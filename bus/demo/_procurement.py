"""Demo phase 3, procurement: notice, SIRET-only candidatures (tell us once), award, contract data.

The URSSAF and the DGFiP publish their attestations on the compacted reference topic
(:func:`publish_attestations`, before the worker starts so its reference tables hold them).
The commune publishes its notice; three companies answer with their SIRET only; tell-us-once
completes each candidature from SIRENE and the attestations, reusing what is valid and
requesting what is not (an expired fiscal attestation, a closed establishment). The commune then
publishes the award and the contract's DECP data, which the bus writes as DECP JSON and which
gives the accounting chain the contract's holder and amount.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters import decp
from bus._wire import Event, Received
from processors.tell_us_once import attestation_subject, tally

from ._data import ADMINISTRATIONS, COMMUNE_SIRET, company_siret
from ._stage import Stage, caused_by, ids_of
from ._worker import DemoWorker

__all__ = ["CONTRACT_AMOUNT", "contract_id", "procurement_phase", "publish_attestations"]

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
    return f"SEL-2025-VOIRIE-{stage.run}"


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


def _org(org_id: str, name: str, siret: str) -> dict[str, Any]:
    return {"organization_id": org_id, "name": name, "company_id": siret, "company_id_scheme": None,
            "french_id_type": "SIRET", "french_id": siret, "city": "SAINT-EXEMPLE-SUR-LOIRE", "postal_code": "45999",
            "nuts": None, "country": "FRA", "legal_type": None, "activity": None}


def _notice(stage: Stage) -> Event:
    data = {
        "notice_id": f"00000000-0000-4000-8000-{stage.run.lower():0>12}", "notice_version": "01",
        "procedure_id": procedure_id(stage), "notice_type": "cn-standard", "form_type": "competition",
        "notice_subtype": "16", "regulatory_domain": None, "dispatch_date": dt.date(2025, 2, 3), "dispatch_time": None,
        "notice_language": "FRA", "changed_notice_id": None, "change_reason": None,
        "buyers": [_org("ORG-0001", "Commune de Saint-Exemple-sur-Loire", COMMUNE_SIRET)],
        "title": "Réfection de la voirie communale 2025", "description": "Travaux de réfection de chaussées",
        "contract_nature": "works", "main_cpv": "45233141", "additional_cpv": [], "estimated_value": "50000.00",
        "estimated_value_currency": "EUR", "procedure_type": "open",
        "lots": [{"lot_id": "LOT-0001", "internal_id": "1", "title": "Voirie", "description": None,
                  "contract_nature": "works", "main_cpv": "45233141", "additional_cpv": [], "estimated_value": "50000.00",
                  "estimated_value_currency": "EUR", "submission_deadline_date": dt.date(2025, 3, 3),
                  "submission_deadline_time": "12:00:00+01:00", "participation_deadline_date": None,
                  "participation_deadline_time": None, "planned_start_date": None, "planned_end_date": None}],
    }
    return Event(type=P + "NoticePublished", subject=f"notice:{procedure_id(stage)}", schema=P + "Notice", data=data,
                 time=_at(dt.date(2025, 2, 3)))


def _candidature(stage: Stage, n: int, role: str) -> Event:
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


def _award(stage: Stage, holder: str) -> Event:
    name = ADMINISTRATIONS["travaux"]["name"]
    data = {"notice_id": f"00000000-0000-4000-9000-{stage.run.lower():0>12}", "notice_version": "01",
            "procedure_id": procedure_id(stage), "notice_subtype": "29", "dispatch_date": dt.date(2025, 4, 16),
            "buyers": [_org("ORG-0001", "Commune de Saint-Exemple-sur-Loire", COMMUNE_SIRET)],
            "contracts": [{"contract_id": "CON-0001", "contract_reference": contract_id(stage),
                           "title": "Réfection de la voirie communale 2025", "tender_ids": ["TEN-0001"]}],
            "winners": [{"lot_id": "LOT-0001", "tender_id": "TEN-0001", "contract_id": "CON-0001", "role": "tenderer",
                         "value": CONTRACT_AMOUNT, "value_currency": "EUR",
                         "organization": _org("ORG-0002", name, holder)}]}
    return Event(type=P + "AwardPublished", subject=f"notice:{procedure_id(stage)}", schema=P + "Award", data=data,
                 time=_at(dt.date(2025, 4, 16)))


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
    await stage.publish("commune", [_notice(stage)])
    sent = []
    for n, role in enumerate(CANDIDATES, 1):
        sent += await stage.publish(role, [_candidature(stage, n, role)])
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
    await stage.publish("commune", [_award(stage, holder)])
    data = _contract_data(stage, holder)
    stage.write(f"decp-{data['id']}.json", decp.from_pivot(data))
    (record,) = await stage.publish("commune", [Event(type=P + "ContractDataPublished", subject=f"contract:{data['id']}",
                                                      schema=P + "ContractData", data=data,
                                                      time=_at(dt.date(2025, 4, 16), 10))])
    # The accounting chain says nothing about a contract until an invoice comes: wait until the
    # worker has handled the contract data, so the invoices are checked against it.
    await worker.handled(record, "the accounting chain to take the contract data")
    console.print(f"contract [bold]{data['id']}[/] awarded to {ADMINISTRATIONS['travaux']['name']} ({holder}) for "
                  f"{CONTRACT_AMOUNT} € HT; DECP published")
    counts = tally([*enriched, *requests()])
    return {"candidatures": len(enriched), "candidature verdicts": {e.data["identifier"]: e.data["verdict"]
                                                                    for e in enriched},
            "candidature documents reused": counts["reused"], "candidature documents requested": counts["requested"],
            "contract": data["id"]}
