"""DECP v2 (données essentielles de la commande publique, JSON) to and from ContractData pivots.

A DECP file is a package ``{"marches": {"marche": [...], "contrat-concession": [...]}}``; each
contract becomes one ``fr.dcant.procurement.ContractDataPublished`` pivot keyed
``contract:<id>``, followed by one ``fr.dcant.procurement.ContractModified`` per entry of its
``modifications`` (:func:`modification_pivots`, in id order, same key). :func:`to_pivots` reads a
whole package, :func:`to_pivot` the ContractData of a package holding exactly one contract. :func:`from_pivot` writes a one-contract package and :func:`from_pivots`
a package of several; what it writes is checked against the official v2 JSON schema by
:func:`validate`. DECP v1.5 packages (``"marches": [...]``) are recognised and refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bus._errors import MalformedDocumentError, NonConformantError, UnknownFormatError

from ._base import Finding, Pivot, Sniff
from ._decp_jsonschema import check, load_schema
from ._decp_map import PIVOT_KIND, Num, dump_json, read_contract, write_contract
from ._xml import DEFAULT_MAX_XML_BYTES
from .procurement_lifecycle import contract_end

__all__ = ["FAMILY", "FORMAT", "detect", "from_pivot", "from_pivots", "modification_pivots", "to_pivot", "to_pivots",
           "validate"]

FORMAT = "decp"
FAMILY = "procurement"

_SCHEMA = "procurement/decp/v2/schema_decp_v2.0.3.json"
_KINDS = ("marche", "contrat-concession")
_CONTRACT_DATA = "fr.dcant.procurement.ContractData"
_MEMBER = {pivot_kind: member for member, pivot_kind in PIVOT_KIND.items()}


def detect(sniff: Sniff) -> bool:
    """A DECP package is JSON whose top-level object has a ``marches`` member."""
    return sniff.kind == "json" and b'"marches"' in sniff.head


def _load(data: bytes, name: str, *, raw_numbers: bool) -> Any:
    if len(data) > DEFAULT_MAX_XML_BYTES:
        raise MalformedDocumentError(f"document is {len(data)} bytes, too large for a DECP package", document=name)
    try:
        text = data.decode("utf-8-sig")
        if raw_numbers:
            # Numbers are kept as the text written so amounts round-trip digit for digit.
            return json.loads(text, parse_float=Num, parse_int=Num, parse_constant=_no_constant)
        return json.loads(text, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedDocumentError(f"not valid UTF-8 JSON: {exc}", document=name) from exc


def _no_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _contracts(package: Any, name: str) -> Iterable[tuple[str, int, Any]]:
    if not isinstance(package, dict) or "marches" not in package:
        raise UnknownFormatError("not a DECP package: no top-level 'marches' member", document=name)
    body = package["marches"]
    if isinstance(body, list):
        raise UnknownFormatError(
            "this is a DECP v1.5 package ('marches' is an array); the bus reads DECP v2",
            document=name,
            hint="convert the package to DECP v2 (schema_decp_v2.0.3.json) before sending it",
        )
    if not isinstance(body, dict):
        raise NonConformantError("'marches' must be an object", document=name, xpath="/marches", rule="DECP-type")
    found = False
    for kind in _KINDS:
        items = body.get(kind)
        if items is None:
            continue
        if not isinstance(items, list):
            raise NonConformantError(
                f"'{kind}' must be an array", document=name, xpath=f"/marches/{kind}", rule="DECP-type"
            )
        for index, item in enumerate(items):
            found = True
            yield kind, index, item
    if not found:
        raise NonConformantError(
            "the package holds no 'marche' nor 'contrat-concession'", document=name, xpath="/marches", rule="DECP-anyOf"
        )


def to_pivots(data: bytes, *, name: str = "<bytes>") -> list[Pivot]:
    """Per contract of the DECP v2 package in ``data``: its ContractData pivot, then its ContractModified."""
    package = _load(data, name, raw_numbers=True)
    out = []
    for kind, index, item in _contracts(package, name):
        record, warnings = read_contract(item, kind, f"/marches/{kind}/{index}", name)
        out.append(
            Pivot(
                type="fr.dcant.procurement.ContractDataPublished",
                schema=_CONTRACT_DATA,
                subject=f"contract:{record['id']}",
                data=record,
                format=FORMAT,
                warnings=tuple(warnings),
            )
        )
        out.extend(modification_pivots(record))
    return out


def modification_pivots(record: Mapping[str, Any]) -> list[Pivot]:
    """A ContractModified pivot per DECP ``modifications`` entry of a ContractData ``record``, by id.

    The new end date is the contract's ``dateNotification`` plus the modification's
    ``dureeMois`` (the contract's whole duration after it), when both are given.
    """
    out = []
    entries = sorted(record.get("modifications") or [], key=lambda m: (m.get("id") is None, m.get("id") or 0))
    for position, entry in enumerate(entries, start=1):
        amount = entry.get("amount")
        data = {
            "contract_id": record["id"],
            "modification_id": str(entry["id"] if entry.get("id") is not None else position),
            "source": "decp",
            "new_amount": amount,
            "new_amount_currency": "EUR" if amount is not None else None,
            "new_global_value": entry.get("global_value"),
            "new_duration_months": entry.get("duration_months"),
            "new_end_date": contract_end(record.get("notification_date"), entry.get("duration_months")),
            "new_holder_sirets": [h["id"] for h in entry.get("holders") or [] if h.get("id_type") == "SIRET" and h.get("id")],
            "legal_basis": None,
            "legal_basis_article": None,
            "reason": None,
            "description": None,
            "modified_notice_id": None,
            "notification_date": entry.get("notification_date"),
            "publication_date": entry.get("publication_date"),
            "signature_date": entry.get("signature_date"),
        }
        out.append(Pivot(type="fr.dcant.procurement.ContractModified", schema="fr.dcant.procurement.ContractModified",
                         subject=f"contract:{record['id']}", data=data, format=FORMAT))
    return out


def to_pivot(data: bytes, *, name: str = "<bytes>") -> Pivot:
    """The ContractData pivot of a DECP package holding exactly one contract (see :func:`to_pivots`)."""
    pivots = [p for p in to_pivots(data, name=name) if p.schema == _CONTRACT_DATA]
    if len(pivots) != 1:
        raise NonConformantError(
            f"the package holds {len(pivots)} contracts; to_pivot reads a one-contract package",
            document=name,
            xpath="/marches",
            rule="DECP-one-contract",
            hint="read multi-contract packages with adapters.decp.to_pivots",
        )
    return pivots[0]


def from_pivots(pivots: Iterable[Pivot | Mapping[str, Any]]) -> bytes:
    """A DECP v2 package (UTF-8 JSON) holding the contracts of ``pivots``, in their order.

    ContractModified pivots are skipped: their content is in their contract's ``modifications``.
    """
    body: dict[str, list[Any]] = {}
    for pivot in pivots:
        if isinstance(pivot, Pivot) and pivot.schema != _CONTRACT_DATA:
            continue
        record = dict(pivot.data if isinstance(pivot, Pivot) else pivot)
        member = _MEMBER.get(record.get("kind"))  # type: ignore[arg-type]
        if member is None or not record.get("id"):
            raise NonConformantError(
                "a ContractData record needs an id and a kind ('marche' or 'concession')",
                document=str(record.get("id")),
                rule="DECP-required",
            )
        body.setdefault(member, []).append(write_contract(record))
    if not body:
        raise NonConformantError("a DECP package needs at least one contract", rule="DECP-anyOf")
    ordered = {kind: body[kind] for kind in _KINDS if kind in body}
    return (dump_json({"marches": ordered}) + "\n").encode("utf-8")


def from_pivot(pivot: Pivot | Mapping[str, Any]) -> bytes:
    """A DECP v2 package (UTF-8 JSON) holding the one contract of ``pivot``."""
    return from_pivots([pivot])


def validate(data: bytes, *, schema_dir: Path | str, name: str = "<bytes>") -> list[Finding]:
    """Findings of the package against the official DECP v2 JSON schema (``DECP-<keyword>``).

    ``schema_dir`` is laid out as the corpus: ``procurement/decp/v2/schema_decp_v2.0.3.json``.
    """
    schema = load_schema(schema_dir, _SCHEMA)
    return check(_load(data, name, raw_numbers=False), schema)
