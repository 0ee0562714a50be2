"""Chorus Pro invoice statuses (historique des statuts) to ``fr.dcant.invoices.InvoiceStatusChanged``.

Accepts the JSON the Chorus Pro API returns for an invoice's history: one entry
``{"identifiantFactureCPP": 123, "numeroFacture": "F-1", "siretFournisseur": "...",
"statutFacture": "MISE_A_DISPOSITION", "dateStatut": "2026-03-01T10:00:00+01:00", "motif": "..."}``
or ``{"historiqueStatuts": [...]}``, whose entries inherit the wrapper's invoice fields
(``identifiantFactureCPP``, ``numeroFacture``, ``siretFournisseur``) when they do not repeat
them. :func:`to_pivots` returns every entry, :func:`to_pivot` the first.

Each Chorus Pro status is mapped to the closest French lifecycle code (:data:`LIFECYCLE_CODES`)
and kept as is in ``chorus_status``: the public accountant's steps (mandat, prise en charge
comptable) have no lifecycle code of their own, so a consumer that needs them reads
``chorus_status``. A ``dateStatut`` without offset is Europe/Paris local time.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Iterator, Mapping
from typing import Any

from bus._errors import DocumentTooLargeError, MalformedDocumentError, NonConformantError

from ._base import Pivot, Sniff
from .invoice_status import status_event

__all__ = ["FAMILY", "FORMAT", "LIFECYCLE_CODES", "detect", "to_pivot", "to_pivots"]

FORMAT = "chorus-status"
FAMILY = "invoices"
_MAX_BYTES = 16 * 1024 * 1024
_PARIS = zoneinfo.ZoneInfo("Europe/Paris")
_RULE = "CHORUS-PRO"

#: Chorus Pro ``statutFacture`` -> French lifecycle status code (MDT-105, BR-FR-CDV-CL-06).
LIFECYCLE_CODES: dict[str, str] = {
    "DEPOSEE": "200",  # Déposée: same step
    # Doubtful: on its way from Chorus Pro to the buyer's service; 201 "émise par la plateforme"
    # is the closest transmission step (no label for 201 in the schematron).
    "EN_COURS_ACHEMINEMENT": "201",
    "MISE_A_DISPOSITION": "203",  # made available to the buyer: 203 (no label in the schematron)
    # Doubtful: the buyer's service sends it back to be re-addressed; 221 (Erreur de routage)
    # is the lifecycle's routing failure, without its ROUTAGE_ERR reason code.
    "A_RECYCLER": "221",
    # Chorus Pro REJETEE is the buyer's refusal on substance (its motifs are BR-FR-CDV-CL-09's
    # B2G refusal reasons), i.e. 210 Refusée; 213 Rejetée is a platform's technical rejection.
    "REJETEE": "210",
    "SUSPENDUE": "208",  # Suspendue (BR-FR-CDV-CL-09 label of 208)
    # Doubtful: Chorus Pro asks the supplier to complete a suspended invoice; the lifecycle has
    # no separate "to complete" step, so it stays 208 Suspendue.
    "A_COMPLETER": "208",
    "COMPLETEE": "209",  # the supplier completed the suspended invoice: 209 (no label in the schematron)
    # Doubtful, the accountant's chain: service fait, mandat and its handing over to and
    # booking by the public accountant all mean "approved for payment, not paid yet": 205.
    "SERVICE_FAIT": "205",
    "MANDATEE": "205",
    "MISE_A_DISPOSITION_COMPTABLE": "205",
    "COMPTABILISEE": "205",
    "MISE_EN_PAIEMENT": "211",  # payment sent: 211 (no label in the schematron)
    "ANNULEE": "220",  # cancelled by the supplier: 220
}


def detect(sniff: Sniff) -> bool:
    """True for JSON that speaks of a ``statutFacture``."""
    return sniff.kind == "json" and b"statutFacture" in sniff.head


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """The first status of the document."""
    for pivot in to_pivots(data, name=name):
        return pivot
    raise NonConformantError("no Chorus Pro status in the document", document=name, rule=_RULE,
                             xpath="$.historiqueStatuts")


def to_pivots(data: bytes, *, name: str = "<bytes>") -> Iterator[Pivot]:
    """Every status of a Chorus Pro status notification or history, in order."""
    if len(data) > _MAX_BYTES:
        raise DocumentTooLargeError(f"Chorus Pro status document is {len(data)} bytes, above {_MAX_BYTES}", document=name)
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedDocumentError(f"not JSON: {exc}", document=name) from exc
    if not isinstance(doc, dict):
        raise NonConformantError("a Chorus Pro status must be a JSON object", document=name, rule=_RULE, xpath="$")
    if "historiqueStatuts" in doc:
        entries = doc["historiqueStatuts"]
        if not isinstance(entries, list):
            raise NonConformantError("historiqueStatuts must be a list", document=name, rule=_RULE,
                                     xpath="$.historiqueStatuts")
        inherited = {k: doc[k] for k in ("identifiantFactureCPP", "numeroFacture", "siretFournisseur") if k in doc}
        for index, entry in enumerate(entries):
            where = f"$.historiqueStatuts[{index}]"
            if not isinstance(entry, dict):
                raise NonConformantError("a status entry must be an object", document=name, rule=_RULE, xpath=where)
            yield _pivot({**inherited, **entry}, name, where)
    else:
        yield _pivot(doc, name, "$")


def _string(entry: Mapping[str, Any], key: str, name: str, where: str, *, required: bool) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise NonConformantError(f"{key} must be a non-empty string", document=name, rule=_RULE, xpath=f"{where}.{key}")
    return value.strip()


def _pivot(entry: Mapping[str, Any], name: str, where: str) -> Pivot:
    number = _string(entry, "numeroFacture", name, where, required=True)
    status = _string(entry, "statutFacture", name, where, required=True)
    code = LIFECYCLE_CODES.get(status or "")
    if code is None:
        raise NonConformantError(f"unknown Chorus Pro statutFacture {status!r}", document=name, rule=_RULE,
                                 xpath=f"{where}.statutFacture",
                                 hint=f"known statuses: {', '.join(LIFECYCLE_CODES)}; add the new one to LIFECYCLE_CODES")
    siret = _string(entry, "siretFournisseur", name, where, required=False)
    if siret is not None and not (len(siret) == 14 and siret.isascii() and siret.isdigit()):
        raise NonConformantError(f"siretFournisseur {siret!r} is not 14 digits", document=name, rule=_RULE,
                                 xpath=f"{where}.siretFournisseur")
    cpp = entry.get("identifiantFactureCPP")
    if isinstance(cpp, str) and cpp.isascii() and cpp.isdigit():
        cpp = int(cpp)
    if cpp is not None and (type(cpp) is not int or not 0 <= cpp < 2**63):
        raise NonConformantError(f"identifiantFactureCPP {cpp!r} is not a positive integer", document=name, rule=_RULE,
                                 xpath=f"{where}.identifiantFactureCPP")
    stamp = _string(entry, "dateStatut", name, where, required=True) or ""
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError as exc:
        raise NonConformantError(f"dateStatut {stamp!r} is not an ISO 8601 date-time", document=name, rule=_RULE,
                                 xpath=f"{where}.dateStatut") from exc
    return status_event(
        invoice_number=number or "", status_code=code, status_time=moment if moment.tzinfo else moment.replace(tzinfo=_PARIS),
        seller_id=siret, seller_id_scheme="0009" if siret else None,
        reason_text=_string(entry, "motif", name, where, required=False),
        source="CHORUS_PRO", chorus_status=status, chorus_invoice_id=cpp, fmt=FORMAT, name=name,
    )
