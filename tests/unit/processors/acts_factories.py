"""Factories for the acts, register and archiving core tests: ACTES pivot events of one act."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bus import Event

SIREN = "213105554"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def subject(number: str = "2026-001", siren: str = SIREN) -> str:
    return f"act:{siren}:{number}"


def act_id(number: str = "2026-001", decision: dt.date = dt.date(2026, 1, 2), nature: str = "DE",
           siren: str = SIREN) -> str:
    return f"031-{siren}-{decision:%Y%m%d}-{number}-{nature}"


def document(name: str, sha: str, *, role: str = "MAIN", size: int = 1234) -> dict[str, Any]:
    return {"role": role, "file_name": name, "media_type": "application/pdf", "signed": False,
            "content": {"sha256": sha, "size": size, "uri": f"cas://sha256/{sha}"}, "personal_data": None}


def transmitted(number: str = "2026-001", *, nature_code: int = 1, decision: dt.date = dt.date(2026, 1, 2),
                title: str = "Subvention au club de rugby", documents: list[dict[str, Any]] | None = None,
                siren: str = SIREN) -> Event:
    abbreviation = {1: "DE", 2: "AR", 3: "AI", 4: "CC", 5: "BF", 6: "AU"}[nature_code]
    data = {
        "act_id": act_id(number, decision, abbreviation, siren), "siren": siren, "department": "031",
        "arrondissement": None, "collectivity_nature": None, "number": number, "decision_date": decision,
        "nature_code": nature_code, "nature_label": None, "nature_abbreviation": abbreviation,
        "matiere_codes": [7, 5], "classification_code": "7.5", "object": title,
        "classification_date": dt.date(2024, 1, 1), "previous_act_id": None,
        "documents": documents if documents is not None else [document("delib.pdf", "a" * 64)],
        "personal_data": None, "referent": None, "return_addresses": [],
    }
    return Event(type="fr.dcant.acts.ActTransmitted", subject=subject(number, siren), schema="fr.dcant.acts.Act",
                 data=data)


def _ids(number: str, siren: str) -> dict[str, Any]:
    return {"act_id": act_id(number, siren=siren), "siren": siren, "department": "031", "number": number}


def acknowledged(reception: dt.date, number: str = "2026-001", siren: str = SIREN) -> Event:
    data = {**_ids(number, siren), "reception_date": reception, "classification_version_in_force": None,
            "received_act": None}
    return Event(type="fr.dcant.acts.ActAcknowledged", subject=subject(number, siren),
                 schema="fr.dcant.acts.ActAcknowledged", data=data)


def publication(on: dt.date, *, mode: str = "PUBLISHED", number: str = "2026-001", title: str | None = None,
                text: str | None = None, personal_data: list[tuple[str, str]] = (), siren: str = SIREN) -> Event:
    data = {"act_id": None, "siren": siren, "number": number, "mode": mode, "date": on, "title": title,
            "text": text, "url": f"https://mairie.example/actes/{number}",
            "personal_data": [{"field": f, "value": v} for f, v in personal_data]}
    return Event(type="fr.dcant.acts.ActPublicationRecorded", subject=subject(number, siren),
                 schema="fr.dcant.acts.ActPublicationRecorded", data=data)


def prefecture(kind: str, on: dt.date, *, code: str = "4-1", text: str | None = None,
               number: str = "2026-001", reception: dt.date | None = None) -> Event:
    prefecture_kinds = {"COURRIER_SIMPLE", "PIECES_COMPLEMENTAIRES", "LETTRE_OBSERVATIONS", "DEFERE",
                        "AR_REPONSE_PIECES_COMPLEMENTAIRES", "AR_LETTRE_OBSERVATIONS", "AR_REPONSE_LETTRE_OBSERVATIONS"}
    direction = "PREFECTURE_TO_COLLECTIVITY" if kind in prefecture_kinds else "COLLECTIVITY_TO_PREFECTURE"
    data = {"kind": kind, "message_code": code, "direction": direction, **_ids(number, SIREN), "message_date": on,
            "reception_date": reception, "text": text, "documents": []}
    return Event(type="fr.dcant.acts.PrefectureMessageReceived", subject=subject(number),
                 schema="fr.dcant.acts.PrefectureMessage", data=data)


def anomaly(on: dt.date, number: str = "2026-001") -> Event:
    data = {"scope": "ACT", **_ids(number, SIREN), "anomaly_date": on, "nature_code": "1",
            "detail": "Classification inconnue", "classification_version_in_force": None, "received_act": None,
            "received_forms": []}
    return Event(type="fr.dcant.acts.ActAnomalyReported", subject=subject(number),
                 schema="fr.dcant.acts.ActAnomaly", data=data)


def cancelled(stage: str, on: dt.date | None = None, number: str = "2026-001") -> Event:
    data = {"stage": stage, **_ids(number, SIREN), "reception_date": on}
    return Event(type="fr.dcant.acts.ActCancelled", subject=subject(number), schema="fr.dcant.acts.ActCancelled",
                 data=data)
