"""The barometer as people read it: the latest figures per cell, French labels, open data files.

The barometer processor publishes ``fr.dcant.barometer.Barometer`` events on the compacted
``barometer`` topic, one subject per administration, flow and month; the latest verified event
per subject is the figure. :func:`read_barometer` reads them back (signatures verified),
:func:`write_open_data` writes them as open data: ``barometre.csv`` and ``barometre.json`` with
``datapackage.json``, a Frictionless Table Schema whose field descriptions are the Avro schema's
``doc``, so the published files document themselves. The command line and the console share it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ._catalog import Catalog
from ._settings import BusSettings

__all__ = ["FLOW_FIELDS", "LABELS", "SCHEMA", "read_barometer", "select", "write_open_data"]

SCHEMA = "fr.dcant.barometer.Barometer"

LABELS: dict[str, str] = {
    "administration": "Administration (SIREN)", "flow": "Flux", "month": "Mois", "events": "Volume d'événements",
    "acts_transmitted": "Actes transmis par voie électronique", "acts_executory": "Actes devenus exécutoires",
    "transmission_to_executory_days_total": "Jours de la transmission au caractère exécutoire (total)",
    "transmission_to_executory_days_average": "Délai moyen transmission → exécutoire (jours)",
    "candidatures": "Candidatures", "candidatures_siret_only": "Candidatures avec le seul SIRET",
    "documents_reused": "Pièces réutilisées (Dites-le-nous une fois)", "documents_requested": "Pièces demandées",
    "grade_optimal": "Démarches optimales (0–1 pièce demandée)", "grade_partial": "Démarches partielles (2–4 pièces)",
    "grade_weak": "Démarches faibles (plus de 4 pièces)", "invoices_received": "Factures reçues",
    "invoices_rejected": "Factures rejetées", "invoices_suspended": "Factures suspendues",
    "rejection_reasons": "Motifs de rejet ou de suspension", "payments": "Paiements",
    "payment_delay_days_total": "Jours de délai de paiement (total)",
    "payment_delay_days_average": "Délai global de paiement moyen (jours)",
    "paid_within_deadline": "Paiements dans le délai légal",
    "paid_within_deadline_share": "Part des paiements dans le délai légal (30 jours)",
    "late_payments": "Paiements en retard", "days_late_total": "Jours de retard (total)",
    "late_interest": "Intérêts moratoires (€)", "late_indemnities": "Indemnités forfaitaires de recouvrement (€)",
    "transfers_accepted": "Transferts d'archives acceptés", "transfers_refused": "Transferts d'archives refusés",
    "closure_to_archive_days_total": "Jours de la clôture à l'archivage (total)",
    "closure_to_archive_days_average": "Délai moyen clôture → archivage (jours)",
}
FLOW_LABELS = {"acts": "Actes (contrôle de légalité)", "procurement": "Commande publique",
               "invoices": "Factures et paiement", "archives": "Archivage"}
#: The figures that say something for each flow (the others stay at zero there).
FLOW_FIELDS: dict[str, tuple[str, ...]] = {
    "acts": ("events", "acts_transmitted", "acts_executory", "transmission_to_executory_days_average"),
    "procurement": ("events", "candidatures", "candidatures_siret_only", "documents_reused", "documents_requested",
                    "grade_optimal", "grade_partial", "grade_weak"),
    "invoices": ("events", "invoices_received", "invoices_rejected", "invoices_suspended", "rejection_reasons",
                 "documents_reused", "documents_requested", "payments", "payment_delay_days_average",
                 "paid_within_deadline_share", "late_payments", "days_late_total", "late_interest", "late_indemnities"),
    "archives": ("events", "transfers_accepted", "transfers_refused", "closure_to_archive_days_average"),
}
_TYPES = {"int": "integer", "string": "string"}
#: Decimals travel as strings in Avro (exact), and are numbers in the open data.
_DECIMALS = frozenset({"transmission_to_executory_days_average", "payment_delay_days_average",
                       "paid_within_deadline_share", "late_interest", "late_indemnities",
                       "closure_to_archive_days_average"})


async def read_barometer(settings: BusSettings) -> list[dict[str, Any]]:
    """The latest verified figures of every cell, sorted by administration, flow and month."""
    from ._runtime import BusContext
    from .client import read_topic

    from ._wire import Wire

    ctx = await BusContext.connect(settings, create_topics=False)
    wire = Wire(ctx.catalog, ctx.directory, None, max_event_bytes=settings.max_event_bytes)
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for record in await read_topic(settings, ctx.topic("barometer")):
        received = wire.open(record)
        if received.schema.name != SCHEMA:
            continue
        seen = latest.get(received.subject)
        if seen is None or record.offset > seen[0]:
            latest[received.subject] = (record.offset, received.data)
    return sorted((data for _, data in latest.values()),
                  key=lambda d: (d["administration"], d["flow"], d["month"]))


def select(cells: list[dict[str, Any]], *, month: str | None = None, siren: str | None = None) -> list[dict[str, Any]]:
    """The cells of one month (``YYYY-MM``) and/or one administration."""
    return [c for c in cells if month in (None, c["month"]) and siren in (None, c["administration"])]


def _csv_value(value: Any) -> str:
    if isinstance(value, list):  # rejection reasons
        return ";".join(f"{r['reason']}:{r['count']}" for r in value)
    return "" if value is None else str(value)


def _table_schema(catalog: Catalog) -> dict[str, Any]:
    fields = []
    docs = {f["name"]: (f.get("doc", ""), f["type"]) for f in catalog.latest(SCHEMA).raw["fields"]}
    for name in LABELS:
        doc, kind = docs.get(name, ("", "string"))
        if isinstance(kind, list):
            kind = next(k for k in kind if k != "null")
        if isinstance(kind, dict):
            kind = "string"
        fields.append({"name": name, "title": LABELS[name], "description": doc,
                       "type": "number" if name in _DECIMALS else _TYPES.get(kind, "string")})
    return {"fields": fields, "primaryKey": ["administration", "flow", "month"]}


def write_open_data(cells: list[dict[str, Any]], out: Path, catalog: Catalog) -> list[Path]:
    """Write ``barometre.csv``, ``barometre.json`` and ``datapackage.json`` into ``out``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    names = list(LABELS)
    csv_path, json_path, package_path = out / "barometre.csv", out / "barometre.json", out / "datapackage.json"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for cell in cells:
            writer.writerow([_csv_value(cell.get(n)) for n in names])
    json_path.write_text(json.dumps([{n: cell.get(n) for n in names} for cell in cells], ensure_ascii=False,
                                    indent=1) + "\n", encoding="utf-8")
    schema = _table_schema(catalog)
    package = {
        "name": "barometre-services-publics-numeriques", "title": "Baromètre des services publics numériques",
        "description": "Indicateurs par administration, flux et mois, calculés par le bus d'échanges DcANT à partir "
                       "des événements signés (recommandation 5). Une ligne par administration, flux et mois.",
        "licenses": [{"name": "etalab-2.0", "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
                      "title": "Licence Ouverte / Open Licence version 2.0"}],
        "resources": [
            {"name": "barometre-csv", "path": csv_path.name, "format": "csv", "mediatype": "text/csv",
             "encoding": "utf-8", "schema": schema,
             "description": "rejection_reasons: REGLE:nombre séparés par « ; »"},
            {"name": "barometre-json", "path": json_path.name, "format": "json", "mediatype": "application/json",
             "encoding": "utf-8", "schema": schema,
             "description": "Tableau d'objets; rejection_reasons: liste de {reason, count}"},
        ],
    }
    package_path.write_text(json.dumps(package, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return [csv_path, json_path, package_path]
