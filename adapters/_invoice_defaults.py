"""The Invoice pivot's schema defaults: a record completed with every field of its Avro schema.

The UBL, CII and Factur-X readers (and the tests' factories) give only the fields a document
has; :func:`complete` fills in the others with the defaults of ``Invoice.v1.avsc``, in schema
order (as Avro writes them), nested records and arrays included, never sharing a mutable default.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_PATH", "complete", "defaults"]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "avro" / "invoices" / "Invoice.v1.avsc"


@functools.cache
def _schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        return json.load(handle)


@functools.cache
def _named_records() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "record":
                found[node["name"]] = node
                for field in node["fields"]:
                    walk(field["type"])
            elif node.get("type") == "array":
                walk(node["items"])
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(_schema())
    found["Invoice"] = _schema()
    return found


def _record_of(avro_type: Any) -> dict[str, Any] | None:
    """The record schema behind a field type (through unions and named references)."""
    if isinstance(avro_type, list):
        for branch in avro_type:
            found = _record_of(branch)
            if found is not None:
                return found
        return None
    if isinstance(avro_type, str):
        return _named_records().get(avro_type)
    if isinstance(avro_type, dict) and avro_type.get("type") == "record":
        return avro_type
    return None


@functools.cache
def _plan(record_name: str) -> tuple[tuple[str, Any, str | None, bool], ...]:
    """Per field: (name, default, nested record name, is array), computed once per record type."""
    plan = []
    for field in _named_records()[record_name]["fields"]:
        ftype = field["type"]
        is_array = isinstance(ftype, dict) and ftype.get("type") == "array"
        sub = _record_of(ftype["items"] if is_array else ftype)
        plan.append((field["name"], field.get("default"), sub["name"] if sub else None, is_array))
    return tuple(plan)


@functools.cache
def _layout(record_name: str) -> tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, str | None, bool], ...]]:
    """(every field with its default, the fields to recurse into or copy: records and arrays)."""
    plan = _plan(record_name)
    return (
        tuple((name, default) for name, default, _sub, _is_array in plan),
        tuple((name, sub, is_array) for name, _default, sub, is_array in plan if sub is not None or is_array),
    )


def _complete(record_name: str, value: Mapping[str, Any]) -> dict[str, Any]:
    defaults, nested = _layout(record_name)
    get = value.get
    out = {name: get(name, default) for name, default in defaults}  # schema order, as Avro writes it
    for name, sub, is_array in nested:
        item = out[name]
        if sub is not None and item is not None:
            out[name] = [_complete(sub, x) for x in item] if is_array else _complete(sub, item)
        elif is_array:
            out[name] = list(item or ())  # never share a mutable schema default
    return out


def complete(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every field of the Invoice schema present (defaults filled in)."""
    return _complete("Invoice", data)


def defaults(record_name: str) -> dict[str, Any]:
    """A new record ``record_name`` of the Invoice schema (``"Party"``, ``"Item"``...) with every field at its default."""
    return _complete(record_name, {})
