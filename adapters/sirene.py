"""INSEE SIRENE records (API Sirene JSON and stock CSV files) to ``fr.dcant.reference.Company``.

Accepts an ``etablissement`` or ``uniteLegale`` JSON object (bare, or wrapped as the API
returns it: ``{"etablissement": {...}}``, ``{"etablissements": [...]}``), and the stock CSV
files ``StockEtablissement`` / ``StockUniteLegale`` (header line of SIRENE variable names).
A file may hold several companies: :func:`to_pivots` returns them all, :func:`to_pivot` the
first.

Diffusion rule (INSEE, "statut de diffusion"): a unit whose ``statutDiffusion*`` is not
``O`` (``P`` partial since 2023, ``N`` before) publishes only its identifiers, activity,
legal form, state, dates and the commune of its address. The natural person's name, trade
names, acronym and the street part of the address are emptied, and ``redacted_fields`` lists
them, so a consumer can tell "unknown" from "withheld".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Mapping
from typing import Any

from bus._errors import MalformedDocumentError, NonConformantError

from ._base import Pivot, Sniff
from ._json import parse_json

__all__ = ["FAMILY", "FORMAT", "detect", "to_pivot", "to_pivots"]

FORMAT = "sirene"
FAMILY = "reference"
SCHEMA = "fr.dcant.reference.Company"
EVENT_TYPE = "fr.dcant.reference.CompanyRegistered"
_MAX_BYTES = 512 * 1024 * 1024  # the full stock files are large; they are streamed row by row

_STATES = {"A": "ACTIVE", "F": "CLOSED", "C": "CEASED"}
_DIFFUSION = {"O": "DIFFUSIBLE", "P": "PARTIAL", "N": "NON_DIFFUSIBLE"}
_STREET_FIELDS = ("street_number", "repetition_index", "street_type", "street_name", "complement",
                  "special_distribution", "cedex_code")
_NATURAL_PERSON_FORM = "1000"


def detect(sniff: Sniff) -> bool:
    if sniff.kind == "json":
        return b'"siren"' in sniff.head
    if sniff.kind == "csv":
        first = sniff.head.split(b"\n", 1)[0]
        return first.startswith(b"siren,") or first.startswith(b'"siren"')
    return False


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """The first company of the document."""
    for pivot in to_pivots(data, name=name):
        return pivot
    raise NonConformantError("no SIRENE record in the document", document=name, rule="SIRENE")


def to_pivots(data: bytes, *, name: str = "<bytes>") -> Iterator[Pivot]:
    """Every company of a SIRENE JSON document or stock CSV file, in order."""
    if len(data) > _MAX_BYTES:
        raise MalformedDocumentError(f"SIRENE file above {_MAX_BYTES} bytes", document=name)
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] in (b"{", b"["):
        for row in _json_rows(stripped, name):
            yield _pivot(row, "sirene-json", name)
    else:
        for row in _csv_rows(stripped, name):
            yield _pivot(row, "sirene-csv", name)


def _json_rows(data: bytes, name: str) -> Iterator[Mapping[str, Any]]:
    doc = parse_json(data, name=name, max_bytes=_MAX_BYTES)
    items: list[Any]
    if isinstance(doc, list):
        items = doc
    elif isinstance(doc, dict):
        for wrapper in ("etablissement", "uniteLegale"):
            if isinstance(doc.get(wrapper), dict) and "siren" in doc[wrapper]:
                doc = doc[wrapper]
                break
        for wrapper in ("etablissements", "unitesLegales"):
            if isinstance(doc.get(wrapper), list):
                items = doc[wrapper]
                break
        else:
            items = [doc]
    else:
        raise NonConformantError("SIRENE JSON must be an object or a list", document=name, rule="SIRENE")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("siren"), str):
            raise NonConformantError("a SIRENE record needs a 'siren' string", document=name, rule="SIRENE",
                                     xpath="$.siren")
        yield item


def _csv_rows(data: bytes, name: str) -> Iterator[Mapping[str, Any]]:
    header = data[:65536].split(b"\n", 1)[0]
    if b"siren" not in header:
        raise NonConformantError("CSV has no 'siren' column", document=name, rule="SIRENE",
                                 hint="use the INSEE stock files StockEtablissement or StockUniteLegale")
    # Decoded as it is read: a stock file of hundreds of MB never exists twice in memory.
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
    try:
        reader = csv.DictReader(text)
        if not reader.fieldnames or "siren" not in reader.fieldnames:
            raise NonConformantError("CSV has no 'siren' column", document=name, rule="SIRENE",
                                     hint="use the INSEE stock files StockEtablissement or StockUniteLegale")
        for line, row in enumerate(reader, start=2):
            if None in row:
                raise MalformedDocumentError(f"line {line} has more fields than the header", document=name, line=line)
            yield {k: (v if v != "" else None) for k, v in row.items()}
    except csv.Error as exc:
        raise MalformedDocumentError(f"bad CSV: {exc}", document=name) from exc
    except UnicodeDecodeError as exc:
        raise MalformedDocumentError("SIRENE CSV must be UTF-8", document=name) from exc


def _current_period(row: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    periods = row.get(key)
    if isinstance(periods, list):
        for period in periods:
            if isinstance(period, dict) and period.get("dateFin") is None:
                return period
    return {}


def _date(value: Any, field: str, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise NonConformantError(f"{field} {value!r} is not a date", document=name, rule="SIRENE", xpath=field) from exc


def _instant(value: Any, field: str, name: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise NonConformantError(f"{field} {value!r} is not a date-time", document=name, rule="SIRENE",
                                 xpath=field) from exc
    # INSEE publishes local Paris time without offset; the register is updated nightly,
    # so treating it as UTC shifts the version stamp by at most two hours.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in ("true", "O", "1"):
        return True
    if value in ("false", "N", "0"):
        return False
    return None


def _pivot(row: Mapping[str, Any], source_format: str, name: str) -> Pivot:
    siren = row["siren"]
    if not (isinstance(siren, str) and len(siren) == 9 and siren.isdigit()):
        raise NonConformantError(f"siren {siren!r} is not 9 digits", document=name, rule="SIRENE", xpath="siren")
    establishment = row.get("siret") is not None or row.get("nic") is not None
    unit = row.get("uniteLegale") if isinstance(row.get("uniteLegale"), dict) else {}
    unit_period = _current_period(row, "periodesUniteLegale")
    est_period = _current_period(row, "periodesEtablissement")

    def pick(*keys: str) -> Any:
        for source in (row, est_period, unit_period, unit):
            for key in keys:
                if source.get(key) not in (None, ""):
                    return source[key]
        return None

    suffix = "Etablissement" if establishment else "UniteLegale"
    status_code = pick(f"statutDiffusion{suffix}", "statutDiffusionUniteLegale") or "O"
    diffusion = _DIFFUSION.get(status_code)
    if diffusion is None:
        raise NonConformantError(f"unknown statutDiffusion {status_code!r}", document=name, rule="SIRENE")
    legal_form = pick("categorieJuridiqueUniteLegale")
    person = " ".join(p for p in (pick("prenomUsuelUniteLegale", "prenom1UniteLegale"),
                                  pick("nomUsageUniteLegale", "nomUniteLegale")) if p)
    state_code = pick(f"etatAdministratif{suffix}")
    siret = row.get("siret") or (siren + row["nic"] if row.get("nic") else None)
    if siret is not None and not (len(siret) == 14 and siret.isdigit() and siret.startswith(siren)):
        raise NonConformantError(f"siret {siret!r} is not the siren followed by 5 digits", document=name,
                                 rule="SIRENE", xpath="siret")
    address = None
    if establishment:
        addr = row.get("adresseEtablissement") if isinstance(row.get("adresseEtablissement"), dict) else row
        address = {
            "street_number": addr.get("numeroVoieEtablissement"),
            "repetition_index": addr.get("indiceRepetitionEtablissement"),
            "street_type": addr.get("typeVoieEtablissement"),
            "street_name": addr.get("libelleVoieEtablissement"),
            "complement": addr.get("complementAdresseEtablissement"),
            "special_distribution": addr.get("distributionSpecialeEtablissement"),
            "postal_code": addr.get("codePostalEtablissement"),
            "city_code": addr.get("codeCommuneEtablissement"),
            "city_name": addr.get("libelleCommuneEtablissement"),
            "cedex_code": addr.get("codeCedexEtablissement"),
            "foreign_city": addr.get("libelleCommuneEtrangerEtablissement"),
            "country_code": addr.get("codePaysEtrangerEtablissement"),
            "country_name": addr.get("libellePaysEtrangerEtablissement"),
        }
        if not any(address.values()):
            address = None
    data: dict[str, Any] = {
        "kind": "ESTABLISHMENT" if establishment else "LEGAL_UNIT",
        "siren": siren,
        "nic": row.get("nic"),
        "siret": siret,
        "name": pick("denominationUniteLegale") or person or None,
        "acronym": pick("sigleUniteLegale"),
        "trade_name": pick("enseigne1Etablissement", "denominationUsuelleEtablissement", "denominationUsuelle1UniteLegale"),
        "legal_form": legal_form,
        "naf": pick(f"activitePrincipale{suffix}", "activitePrincipaleUniteLegale"),
        "naf_nomenclature": pick(f"nomenclatureActivitePrincipale{suffix}", "nomenclatureActivitePrincipaleUniteLegale"),
        "administrative_state": _STATES.get(state_code or "", "UNKNOWN"),
        "head_office": _bool(row.get("etablissementSiege")),
        "employer": _bool(pick(f"caractereEmployeur{suffix}", "caractereEmployeurUniteLegale")),
        "employee_band": pick(f"trancheEffectifs{suffix}"),
        "company_category": pick("categorieEntreprise"),
        "creation_date": _date(pick(f"dateCreation{suffix}"), f"dateCreation{suffix}", name),
        "address": address,
        "diffusion_status": diffusion,
        "redacted_fields": [],
        "last_processed": _instant(pick(f"dateDernierTraitement{suffix}"), f"dateDernierTraitement{suffix}", name),
        "source_format": source_format,
    }
    if diffusion != "DIFFUSIBLE":
        _redact(data, natural_person=legal_form in (None, _NATURAL_PERSON_FORM) and not pick("denominationUniteLegale"))
    subject = f"company:{siret or siren}"
    return Pivot(type=EVENT_TYPE, schema=SCHEMA, subject=subject, data=data, format=FORMAT)


def _redact(data: dict[str, Any], *, natural_person: bool) -> None:
    """Apply the INSEE diffusion rule in place (see the module docstring)."""
    removed = []
    personal = ("name", "acronym", "trade_name") if natural_person else ("trade_name",)
    for field in personal:
        if data.get(field) is not None:
            data[field] = None
            removed.append(field)
    address = data.get("address")
    if address:
        for field in _STREET_FIELDS:
            if address.get(field) is not None:
                address[field] = None
                removed.append(f"address.{field}")
    data["redacted_fields"] = removed
