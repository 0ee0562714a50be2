"""Tell-us-once ("Dites-le-nous une fois"): complete candidatures and invoices from the reference tables.

A company answers a procurement with its SIRET only, and an invoice names only its seller's
SIRET. This pure core joins each ``fr.dcant.procurement.CandidatureSubmitted`` and
``fr.dcant.invoices.InvoiceReceived`` with two compacted reference tables and emits:

- ``fr.dcant.procurement.CandidatureEnriched`` / ``fr.dcant.invoices.SupplierVerified`` (same
  subject as the cause): the SIRENE company block (name, address, legal form, NAF,
  administrative state, head office, diffusion status), each value with its provenance
  (``INSEE SIRENE``, the record's ``last_processed`` version, the time the table was read, the
  table key), values INSEE withholds kept withheld; and the status of each required attestation
  (``VALID_REUSED``, ``EXPIRED``, ``MISSING``, ``NOT_UP_TO_DATE``, ``REVOKED``);
- ``fr.dcant.reference.DocumentRequested`` (subject = the dossier, for its buyer) for each
  document the bus cannot reuse: an expired, missing, not up-to-date or revoked attestation, or
  the identification of an active establishment when the company is unknown to SIRENE or closed
  (establishment ``CLOSED`` or legal unit ``CEASED``). While the company is not identified, its
  attestation requests are deferred (``DEFERRED``): they follow once it gives a valid SIRET.

Tables, as the shell fills ``ctx.tables[topic][subject] = data``:

- ``reference.companies``: ``company:<SIRET>`` (establishment) and ``company:<SIREN>`` (legal
  unit), as :mod:`adapters.sirene` publishes them. The establishment is read first; the legal
  unit completes the values it lacks and tells whether the unit has ceased.
- ``reference.attestations``: subject ``attestation:<SIREN>:<kind>`` (:func:`attestation_subject`),
  so the compacted topic keeps the latest attestation of each kind per company and the lookup is
  one key. Attestations are per legal unit (URSSAF vigilance and DGFiP fiscal regularity are
  issued for the SIREN).

An attestation is valid through its ``valid_until`` day in France (Europe/Paris): on that day it
is reused, the next day it is expired. "Never asked again": the state of a dossier keeps the
outstanding requests by ``<SIREN>:<kind>`` (``<SIRET or SIREN>:COMPANY_IDENTIFICATION``) and does
not emit one twice; a request is settled when a later check finds the document valid.

Each output carries its ``reused`` / ``requested`` counts; :func:`tally` sums a stream of outputs
into the programme's headline figure. The state of a dossier is JSON: the last processed event
ids (idempotence), the outstanding requests and running counters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from bus import Context, Event, Received, SchemaError, follow_up

__all__ = ["TellUsOnce", "attestation_subject", "tally"]

CANDIDATURE_SUBMITTED = "fr.dcant.procurement.CandidatureSubmitted"
INVOICE_RECEIVED = "fr.dcant.invoices.InvoiceReceived"
CANDIDATURE_ENRICHED = "fr.dcant.procurement.CandidatureEnriched"
SUPPLIER_VERIFIED = "fr.dcant.invoices.SupplierVerified"
DOCUMENT_REQUESTED = "fr.dcant.reference.DocumentRequested"

COMPANIES = "reference.companies"
ATTESTATIONS = "reference.attestations"
SIRENE = "INSEE SIRENE"
IDENTIFICATION = "COMPANY_IDENTIFICATION"
REQUIRED_KINDS = ("URSSAF_VIGILANCE", "DGFIP_FISCAL_REGULARITY")

_INPUT_SCHEMA = {CANDIDATURE_SUBMITTED: "fr.dcant.procurement.Candidature", INVOICE_RECEIVED: "fr.dcant.invoices.Invoice"}
_SIRET = re.compile(r"^\d{14}$")
_SIREN = re.compile(r"^\d{9}$")
_ADDRESS_FIELDS = ("street_number", "repetition_index", "street_type", "street_name", "complement",
                   "special_distribution", "postal_code", "city_code", "city_name", "cedex_code", "foreign_city",
                   "country_code", "country_name")
_EPOCH = dt.date(1970, 1, 1)


def attestation_subject(siren: str, kind: str) -> str:
    """The key of an attestation on ``reference.attestations``: ``attestation:<SIREN>:<kind>``."""
    return f"attestation:{siren}:{kind}"


def tally(events: Iterable[Event | Received]) -> dict[str, Any]:
    """The headline figure of a stream of this core's outputs: documents reused versus requested.

    ``events`` are outputs (sealed :class:`bus.Event` or opened :class:`bus.Received`), of any
    type: reused attestations are counted from CandidatureEnriched / SupplierVerified, requests
    from DocumentRequested; other types are skipped, and an event id seen twice counts once
    (redelivery). Returns ``{"reused": n, "requested": n, "by_kind": {kind: {"reused", "requested"}}}``.
    """
    by_kind: dict[str, dict[str, int]] = {}
    seen: set[str] = set()

    def bump(kind: str, what: str) -> None:
        by_kind.setdefault(kind, {"reused": 0, "requested": 0})[what] += 1

    for event in events:
        if event.id is not None:
            if event.id in seen:
                continue
            seen.add(event.id)
        if event.type in (CANDIDATURE_ENRICHED, SUPPLIER_VERIFIED):
            for check in event.data.get("attestations") or ():
                if check["status"] == "VALID_REUSED":
                    bump(check["kind"], "reused")
        elif event.type == DOCUMENT_REQUESTED:
            bump(event.data["document_kind"], "requested")
    return {
        "reused": sum(k["reused"] for k in by_kind.values()),
        "requested": sum(k["requested"] for k in by_kind.values()),
        "by_kind": dict(sorted(by_kind.items())),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class _Dossier:
    """What the core needs of an input event, whatever its family."""

    identifier: str | None
    siret: str | None
    siren: str | None
    buyer: str | None
    reference: str | None
    output_type: str
    output_schema: str
    header: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class _Company:
    """The SIRENE records found for a company: the main one and, besides an establishment, its legal unit."""

    reference: str
    record: Mapping[str, Any]
    unit_reference: str | None
    unit: Mapping[str, Any] | None


@dataclasses.dataclass(frozen=True)
class TellUsOnce:
    """Joins candidatures and invoices with the company and attestation tables (see the module doc).

    ``required`` are the attestation kinds a buyer must hold; ``timezone`` decides the day an
    attestation expires. A redelivered event is skipped by the runtime's step (:class:`bus.Step`).
    """

    name: str = "tell-us-once"
    inputs: tuple[str, ...] = ("procurement", "invoices")
    types = frozenset(_INPUT_SCHEMA)
    tables: tuple[str, ...] = (COMPANIES, ATTESTATIONS)
    required: tuple[str, ...] = REQUIRED_KINDS
    timezone: str = "Europe/Paris"

    def key(self, event: Received, ctx: Context) -> str | None:
        """The dossier (the Kafka key); None for the events this core does not handle (its own outputs)."""
        return event.subject if event.type in _INPUT_SCHEMA else None

    def initial_state(self) -> dict[str, Any]:
        return {"outstanding": {}, "reused": 0, "requested": 0}

    def on_time(self, state: dict[str, Any], key: str, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        """No timers: a request stays outstanding until the document shows up valid."""
        return state, []

    def process(self, state: dict[str, Any], event: Received, ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        """Check the company of a candidature or an invoice; emit the enriched event and the requests."""
        expected = _INPUT_SCHEMA.get(event.type)
        if expected is None:
            return state, []
        if event.schema.name != expected:
            raise SchemaError(f"{event.type} must carry {expected}, not {event.schema.name}",
                              schema=event.schema.name, subject=event.subject)
        dossier = _candidature(event.data) if event.type == CANDIDATURE_SUBMITTED else _invoice(event.data)
        return self._check(state, dossier, event, ctx)

    # ------------------------------------------------------------------ the check

    def _check(self, state: dict[str, Any], dossier: _Dossier, event: Received,
               ctx: Context) -> tuple[dict[str, Any], list[Event]]:
        now = ctx.now
        requests: list[Event] = []
        outstanding: dict[str, Any] = state["outstanding"]

        def request(okey: str, kind: str, reason: str, **details: Any) -> None:
            outstanding[okey] = {"reason": reason, "requested_at": now.isoformat(), "cause": event.id}
            requests.append(follow_up(event, type=DOCUMENT_REQUESTED, schema=DOCUMENT_REQUESTED, data={
                "document_kind": kind, "reason": reason, "identifier": dossier.identifier or "",
                "siren": dossier.siren, "siret": dossier.siret, "dossier": event.subject,
                "dossier_event_type": event.type, "document_reference": dossier.reference,
                "buyer_identifier": dossier.buyer, "requested_at": now, **details}))

        if dossier.siren is None:
            verdict, profile, checks = "NOT_IDENTIFIED", None, []
        else:
            company = _find_company(ctx.tables.get(COMPANIES, {}), dossier.siret, dossier.siren)
            profile = _profile(company, now) if company else None
            identity = _identity_problem(company)
            id_key = f"{dossier.siret or dossier.siren}:{IDENTIFICATION}"
            if identity is None:
                outstanding.pop(id_key, None)
            elif id_key not in outstanding:
                request(id_key, IDENTIFICATION, identity,
                        company_name=profile["name"]["value"] if profile else None,
                        administrative_state=_closing_state(company) if company else None)
            checks = []
            for kind in self.required:
                check = self._attestation(ctx.tables.get(ATTESTATIONS, {}), dossier.siren, kind, now)
                okey = f"{dossier.siren}:{kind}"
                if check["status"] == "VALID_REUSED":
                    outstanding.pop(okey, None)
                    check["request"] = "NOT_NEEDED"
                elif identity is not None:
                    check["request"] = "DEFERRED"
                elif okey in outstanding:
                    check["request"] = "ALREADY_REQUESTED"
                else:
                    check["request"] = "REQUESTED"
                    request(okey, kind, check["status"], previous_attestation_id=check["attestation_id"],
                            previous_valid_until=check["valid_until"],
                            company_name=profile["name"]["value"] if profile else None)
                checks.append(check)
            verdict = identity or ("COMPLIANT" if all(c["status"] == "VALID_REUSED" for c in checks)
                                   else "DOCUMENTS_PENDING")
        reused = sum(c["status"] == "VALID_REUSED" for c in checks)
        state["reused"] += reused
        state["requested"] += len(requests)
        enriched = follow_up(event, type=dossier.output_type, schema=dossier.output_schema, data={
            **dossier.header, "siret": dossier.siret, "siren": dossier.siren, "verdict": verdict,
            "company": profile, "attestations": checks, "reused": reused, "requested": len(requests),
            "checked_at": now})
        return state, [enriched, *requests]

    def _attestation(self, table: Mapping[str, Any], siren: str, kind: str, now: dt.datetime) -> dict[str, Any]:
        """The status of the latest attestation of ``kind`` for ``siren`` on the day of ``now``."""
        reference = attestation_subject(siren, kind)
        record = table.get(reference)
        check: dict[str, Any] = {"kind": kind, "status": "MISSING", "request": "NOT_NEEDED", "attestation_id": None,
                                 "issued_on": None, "valid_until": None, "provenance": None}
        # A record filed under another company's key is not this company's attestation.
        if record is None or record.get("siren") != siren or record.get("kind") != kind:
            return check
        valid_until = _as_date(record["valid_until"])
        today = now.astimezone(ZoneInfo(self.timezone)).date()
        if valid_until < today:
            status = "EXPIRED"
        elif record.get("status") in ("NOT_UP_TO_DATE", "REVOKED"):
            status = record["status"]
        else:
            status = "VALID_REUSED"
        check.update(status=status, attestation_id=record.get("attestation_id"),
                     issued_on=_as_date(record.get("issued_on")), valid_until=valid_until,
                     provenance={"source": record.get("issuer") or kind, "reference": reference,
                                 "record_version": None, "fetched_at": now})
        return check


# ---------------------------------------------------------------------- inputs


def _siret_siren(siret: str | None, siren: str | None) -> tuple[str | None, str | None]:
    siret = siret if siret and _SIRET.match(siret) else None
    if siret:
        return siret, siret[:9]
    return None, siren if siren and _SIREN.match(siren) else None


def _candidature(data: Mapping[str, Any]) -> _Dossier:
    operator = data["economic_operator"]
    siret, siren = _siret_siren(operator.get("siret"), operator.get("siren"))
    return _Dossier(
        identifier=operator["identifier"], siret=siret, siren=siren, buyer=data.get("buyer_identifier"),
        reference=data["espd_id"], output_type=CANDIDATURE_ENRICHED, output_schema=CANDIDATURE_ENRICHED,
        header={"espd_id": data["espd_id"], "procedure_reference": data.get("procedure_reference"),
                "buyer_identifier": data.get("buyer_identifier"), "identifier": operator["identifier"]})


def _invoice(data: Mapping[str, Any]) -> _Dossier:
    # Invoice.seller_siret holds a SIRET (scheme 0009) or a SIREN (scheme 0002).
    given = data.get("seller_siret")
    siret, siren = _siret_siren(given, given)
    identifier = data.get("seller_key") or given
    return _Dossier(
        identifier=identifier, siret=siret, siren=siren, buyer=data.get("buyer_key"), reference=data["number"],
        output_type=SUPPLIER_VERIFIED, output_schema=SUPPLIER_VERIFIED,
        header={"invoice_number": data["number"], "issue_date": data["issue_date"],
                "contract_reference": data.get("contract_reference"), "buyer_identifier": data.get("buyer_key"),
                "identifier": identifier})


# ---------------------------------------------------------------------- companies


def _find_company(table: Mapping[str, Any], siret: str | None, siren: str) -> _Company | None:
    """The establishment (or, failing it, the legal unit) of the company, with its legal unit."""
    unit_reference = f"company:{siren}"
    unit = table.get(unit_reference)
    if unit is not None and unit.get("siren") != siren:
        unit = None
    establishment = table.get(f"company:{siret}") if siret else None
    if establishment is not None and establishment.get("siren") == siren:
        return _Company(f"company:{siret}", establishment, unit_reference if unit else None, unit)
    if unit is not None:
        return _Company(unit_reference, unit, None, None)
    return None


def _identity_problem(company: _Company | None) -> str | None:
    if company is None:
        return "UNKNOWN_COMPANY"
    return "ESTABLISHMENT_CLOSED" if _closing_state(company) else None


def _closing_state(company: _Company) -> str | None:
    """CLOSED or CEASED when the establishment is closed or the legal unit has ceased."""
    for record in (company.record, company.unit):
        if record is not None and record.get("administrative_state") in ("CLOSED", "CEASED"):
            return str(record["administrative_state"])
    return None


def _profile(company: _Company, now: dt.datetime) -> dict[str, Any]:
    """The CompanyProfile block: each value from the record that has it, with that record's provenance."""
    main, unit = company.record, company.unit

    def provenance(reference: str, record: Mapping[str, Any]) -> dict[str, Any]:
        return {"source": SIRENE, "reference": reference, "record_version": _as_instant(record.get("last_processed")),
                "fetched_at": now}

    main_prov = provenance(company.reference, main)
    unit_prov = provenance(company.unit_reference, unit) if unit is not None and company.unit_reference else None
    # A value INSEE withholds in either record stays withheld: never filled from the other one.
    redacted = set(main.get("redacted_fields") or ()) | set((unit or {}).get("redacted_fields") or ())

    def text(field: str) -> dict[str, Any]:
        if field in redacted:
            return {"value": None, "redacted": True, "provenance": main_prov}
        if main.get(field) is not None or unit is None or unit.get(field) is None:
            return {"value": main.get(field), "redacted": False, "provenance": main_prov}
        return {"value": unit[field], "redacted": False, "provenance": unit_prov}

    address = main.get("address")
    if address is not None and "address" not in redacted:
        address = {name: None if f"address.{name}" in redacted else address.get(name) for name in _ADDRESS_FIELDS}
    else:
        address = None
    return {
        "siren": main["siren"],
        "siret": main.get("siret"),
        "name": text("name"),
        "address": {"value": address, "provenance": main_prov,
                    "redacted_fields": sorted(f for f in redacted if f == "address" or f.startswith("address."))},
        "legal_form": text("legal_form"),
        "naf": text("naf"),
        "administrative_state": {"value": main.get("administrative_state") or "UNKNOWN", "provenance": main_prov},
        "legal_unit_state": ({"value": unit.get("administrative_state") or "UNKNOWN", "provenance": unit_prov}
                             if unit is not None else None),
        "head_office": {"value": main.get("head_office"), "provenance": main_prov},
        "diffusion_status": {"value": main["diffusion_status"], "provenance": main_prov},
        "redacted_fields": sorted(redacted),
    }


# ---------------------------------------------------------------------- values from the tables

# The tables hold decoded Avro in the driver and JSON in the faust changelog: accept both.


def _as_date(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, int):
        return _EPOCH + dt.timedelta(days=value)
    return dt.date.fromisoformat(str(value))


def _as_instant(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, int):
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=value)
    elif isinstance(value, dt.datetime):
        moment = value
    else:
        moment = dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
