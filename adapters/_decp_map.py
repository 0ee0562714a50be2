"""The one mapping between a DECP v2 contract (JSON) and the ContractData pivot, read both ways.

Each entry names a DECP property, the pivot field it fills and how the value is carried: reading
and writing walk the same table, so a field read is a field written and the round trip cannot
drift. Numbers keep the text they were written with (the pivot holds decimals as strings); the
writer puts that text back as a JSON number.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from bus._errors import NonConformantError

__all__ = ["CONCESSION", "MARCHE", "Num", "PIVOT_KIND", "dump_json", "pivot_fields", "read_contract", "write_contract"]


class Num(str):
    """A JSON number kept as the text it was written with (``575000``, ``0.1``, ``25.0``)."""


# Field kinds: str, int, bool, num (decimal text), date; ("wrap", inner) a list wrapped in an
# object (``{"technique": [...]}``); ("obj", table) an object flattened with its own table;
# ("records", wrapper, table) a list of ``{wrapper: {...}}`` read with ``table``.
_HOLDER = (("typeIdentifiant", "id_type", "str"), ("id", "id", "str"))
_HOLDERS_MARCHE = ("records", "titulaire", _HOLDER)
_HOLDERS_CONCESSION = ("records", "concessionnaire", _HOLDER)

MARCHE: tuple[tuple[str, str, Any], ...] = (
    ("id", "id", "str"),
    ("acheteur", "", ("obj", (("id", "buyer_id", "str"),))),
    ("nature", "nature", "str"),
    ("objet", "subject", "str"),
    ("codeCPV", "cpv_code", "str"),
    ("techniques", "techniques", ("wrap", "technique")),
    ("modalitesExecution", "execution_modalities", ("wrap", "modaliteExecution")),
    ("idAccordCadre", "framework_agreement_id", "str"),
    ("marcheInnovant", "innovative", "bool"),
    ("ccag", "ccag", "str"),
    ("offresRecues", "tenders_received", "int"),
    ("attributionAvance", "advance_granted", "bool"),
    ("tauxAvance", "advance_rate", "num"),
    ("typeGroupementOperateurs", "operator_grouping", "str"),
    ("sousTraitanceDeclaree", "subcontracting_declared", "bool"),
    (
        "actesSousTraitance",
        "subcontracting_acts",
        (
            "records",
            "acteSousTraitance",
            (
                ("id", "id", "int"),
                ("sousTraitant", "", ("obj", (("typeIdentifiant", "subcontractor_id_type", "str"), ("id", "subcontractor_id", "str")))),
                ("dureeMois", "duration_months", "int"),
                ("dateNotification", "notification_date", "date"),
                ("montant", "amount", "num"),
                ("variationPrix", "price_variation", "str"),
                ("datePublicationDonnees", "publication_date", "date"),
            ),
        ),
    ),
    ("procedure", "procedure", "str"),
    ("lieuExecution", "", ("obj", (("code", "execution_place_code", "str"), ("typeCode", "execution_place_code_type", "str")))),
    ("dureeMois", "duration_months", "int"),
    ("dateNotification", "notification_date", "date"),
    ("datePublicationDonnees", "publication_date", "date"),
    ("montant", "amount", "num"),
    ("typesPrix", "price_types", ("wrap", "typePrix")),
    ("formePrix", "price_form", "str"),
    ("origineUE", "origin_eu", "num"),
    ("origineFrance", "origin_france", "num"),
    ("titulaires", "holders", _HOLDERS_MARCHE),
    ("considerationsSociales", "social_considerations", ("wrap", "considerationSociale")),
    ("considerationsEnvironnementales", "environmental_considerations", ("wrap", "considerationEnvironnementale")),
    (
        "modifications",
        "modifications",
        (
            "records",
            "modification",
            (
                ("id", "id", "int"),
                ("dureeMois", "duration_months", "int"),
                ("montant", "amount", "num"),
                ("titulaires", "holders", _HOLDERS_MARCHE),
                ("dateNotificationModification", "notification_date", "date"),
                ("datePublicationDonneesModification", "publication_date", "date"),
            ),
        ),
    ),
    (
        "modificationsActesSousTraitance",
        "subcontracting_act_modifications",
        (
            "records",
            "modificationActeSousTraitance",
            (
                ("id", "id", "int"),
                ("dureeMois", "duration_months", "int"),
                ("dateNotificationModificationSousTraitance", "notification_date", "date"),
                ("montant", "amount", "num"),
                ("datePublicationDonnees", "publication_date", "date"),
            ),
        ),
    ),
)

CONCESSION: tuple[tuple[str, str, Any], ...] = (
    ("id", "id", "str"),
    ("autoriteConcedante", "", ("obj", (("id", "buyer_id", "str"),))),
    ("nature", "nature", "str"),
    ("objet", "subject", "str"),
    ("procedure", "procedure", "str"),
    ("dureeMois", "duration_months", "int"),
    ("dateSignature", "signature_date", "date"),
    ("datePublicationDonnees", "publication_date", "date"),
    ("dateDebutExecution", "execution_start_date", "date"),
    ("valeurGlobale", "global_value", "num"),
    ("montantSubventionPublique", "public_subsidy_amount", "num"),
    (
        "donneesExecution",
        "execution_data",
        (
            "records",
            "donneesAnnuelles",
            (
                ("datePublicationDonneesExecution", "publication_date", "date"),
                ("depensesInvestissement", "investment_expenses", "num"),
                ("tarifs", "tariffs", ("records", "tarif", (("intituleTarif", "label", "str"), ("tarif", "amount", "num")))),
            ),
        ),
    ),
    ("concessionnaires", "holders", _HOLDERS_CONCESSION),
    ("considerationsSociales", "social_considerations", ("wrap", "considerationSociale")),
    ("considerationsEnvironnementales", "environmental_considerations", ("wrap", "considerationEnvironnementale")),
    (
        "modifications",
        "modifications",
        (
            "records",
            "modification",
            (
                ("id", "id", "int"),
                ("dateSignatureModification", "signature_date", "date"),
                ("datePublicationDonneesModification", "publication_date", "date"),
                ("dureeMois", "duration_months", "int"),
                ("valeurGlobale", "global_value", "num"),
            ),
        ),
    ),
)

_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def pivot_fields(table: tuple[tuple[str, str, Any], ...]) -> list[str]:
    """The pivot field names ``table`` fills, flattened objects included."""
    out = []
    for _key, field, kind in table:
        if isinstance(kind, tuple) and kind[0] == "obj":
            out.extend(pivot_fields(kind[1]))
        else:
            out.append(field)
    return out


def _bad(message: str, pointer: str, document: str, rule: str) -> NonConformantError:
    return NonConformantError(message, document=document, xpath=pointer, rule=rule)


def _read_value(value: Any, kind: Any, pointer: str, document: str) -> Any:
    if kind == "str":
        if not isinstance(value, str) or isinstance(value, Num):
            raise _bad(f"expected a string, got {value!r}", pointer, document, "DECP-type")
        return str(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _bad(f"expected true or false, got {value!r}", pointer, document, "DECP-type")
        return value
    if kind == "int":
        if not isinstance(value, Num) or not re.fullmatch(r"-?[0-9]+(\.0+)?", value):
            raise _bad(f"expected an integer, got {value!r}", pointer, document, "DECP-type")
        return int(value.split(".")[0])
    if kind == "num":
        if not isinstance(value, Num):
            raise _bad(f"expected a number, got {value!r}", pointer, document, "DECP-type")
        return str(value)
    if kind == "date":
        try:
            if not isinstance(value, str) or isinstance(value, Num):
                raise ValueError(value)
            return dt.date.fromisoformat(value[:10])
        except ValueError as exc:
            raise _bad(f"expected a date YYYY-MM-DD, got {value!r}", pointer, document, "DECP-pattern") from exc
    tag = kind[0]
    if tag == "wrap":
        inner = value.get(kind[1]) if isinstance(value, dict) else None
        if not isinstance(inner, list) or not all(isinstance(v, str) and not isinstance(v, Num) for v in inner):
            raise _bad(f"expected {{{kind[1]!r}: [strings]}}", pointer, document, "DECP-type")
        return [str(v) for v in inner]
    if tag == "records":
        if not isinstance(value, list):
            raise _bad("expected an array", pointer, document, "DECP-type")
        out = []
        for index, item in enumerate(value):
            body = item.get(kind[1]) if isinstance(item, dict) else None
            if not isinstance(body, dict):
                raise _bad(f"expected {{{kind[1]!r}: {{...}}}}", f"{pointer}/{index}", document, "DECP-type")
            out.append(read_table(body, kind[2], f"{pointer}/{index}/{kind[1]}", document))
        return out
    raise AssertionError(f"unknown DECP field kind {kind!r}")  # pragma: no cover - table bug


def read_table(obj: dict[str, Any], table: tuple[tuple[str, str, Any], ...], pointer: str, document: str) -> dict[str, Any]:
    """Read ``obj`` with ``table``: every pivot field present, None (or [] for lists) when absent."""
    out: dict[str, Any] = {}
    for key, field, kind in table:
        value = obj.get(key)
        if isinstance(kind, tuple) and kind[0] == "obj":
            sub = value if isinstance(value, dict) else {}
            if value is not None and not isinstance(value, dict):
                raise _bad("expected an object", f"{pointer}/{key}", document, "DECP-type")
            out.update(read_table(sub, kind[1], f"{pointer}/{key}", document))
        elif value is None:
            # An absent list stays None so the writer can tell "absent" from "empty".
            out[field] = None
        else:
            out[field] = _read_value(value, kind, f"{pointer}/{key}", document)
    return out


def read_contract(obj: Any, kind: str, pointer: str, document: str) -> tuple[dict[str, Any], list[str]]:
    """(ContractData record, warnings) for one ``marche`` or ``contrat-concession`` object."""
    if not isinstance(obj, dict):
        raise _bad("a contract must be a JSON object", pointer, document, "DECP-type")
    table = MARCHE if kind == "marche" else CONCESSION
    known = {key for key, _f, _k in table}
    warnings = [f"{pointer}/{key}: property not in DECP v2, ignored" for key in obj if key not in known]
    record = {name: None for name in _ALL_FIELDS}
    record.update(read_table(obj, table, pointer, document))
    record["kind"] = PIVOT_KIND[kind]
    if record["id"] is None:
        raise _bad("the contract has no id", f"{pointer}/id", document, "DECP-required")
    return record, warnings


def _write_value(value: Any, kind: Any) -> Any:
    if kind in ("str", "bool", "int"):
        return value
    if kind == "num":
        if not _NUMBER.fullmatch(value):
            raise NonConformantError(f"{value!r} is not a decimal number", rule="DECP-type")
        return Num(value)
    if kind == "date":
        return value.isoformat()
    if kind[0] == "wrap":
        return {kind[1]: list(value)}
    return [{kind[1]: write_table(item, kind[2])} for item in value]


def write_table(record: dict[str, Any], table: tuple[tuple[str, str, Any], ...]) -> dict[str, Any]:
    """The DECP object ``table`` describes, from a pivot record; None fields are left out."""
    out: dict[str, Any] = {}
    for key, field, kind in table:
        if isinstance(kind, tuple) and kind[0] == "obj":
            sub = write_table(record, kind[1])
            if sub:
                out[key] = sub
        elif record.get(field) is not None:
            out[key] = _write_value(record[field], kind)
    return out


def write_contract(record: dict[str, Any]) -> dict[str, Any]:
    """The DECP v2 object of one ContractData record."""
    return write_table(record, MARCHE if record["kind"] == "marche" else CONCESSION)


#: DECP package member -> ContractData ``kind`` (an Avro enum symbol cannot hold a hyphen).
PIVOT_KIND = {"marche": "marche", "contrat-concession": "concession"}


def dump_json(value: Any, indent: str = "", step: str = "  ") -> str:
    """JSON text of ``value``, writing :class:`Num` as the number text it holds."""
    if isinstance(value, Num):
        return str(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = indent + step
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dump_json(v, inner, step)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        inner = indent + step
        return "[\n" + ",\n".join(inner + dump_json(v, inner, step) for v in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


_ALL_FIELDS = ["id", "kind"] + [f for f in dict.fromkeys(pivot_fields(MARCHE) + pivot_fields(CONCESSION)) if f != "id"]
