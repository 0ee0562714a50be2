"""Avro schema compatibility, as the Confluent Schema Registry defines it.

``can_read(reader, writer)`` applies the schema resolution rules of the Avro specification
(primitive promotions, records matched by name or alias, reader fields missing from the writer
need a default, enum symbols, fixed sizes, arrays, maps and unions) to two parsed schemas and
returns every :class:`Incompatibility` found, named with Avro Java's ``SchemaIncompatibilityType``
(the names the Schema Registry reports). Logical types are resolved as their underlying type, but
a change of logical type (``date`` to ``timestamp-micros``, a decimal's precision or scale) is a
``TYPE_MISMATCH`` too: the bytes would still decode, but to a different value. ``check(versions,
mode)`` runs the registry's modes (``BACKWARD``, ``FORWARD``, ``FULL`` and their ``_TRANSITIVE``
forms) over the versions of one subject, newest last. Locations follow Avro Java: a path of
``fields/<position>/type``, ``items``, ``values``, ``name``, ``size``, ``symbols`` and, where the
writer is a union, the index of the writer's branch; ``path`` says the same in field names
(``Invoice.lines[].price``, ``{}`` for map values). Schemas are parsed with fastavro first; one
that does not parse raises :class:`bus._errors.SchemaError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, get_args

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, UnknownType

from bus._errors import SchemaError

__all__ = ["Compatibility", "Incompatibility", "can_read", "check"]

Compatibility = Literal[
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
]

_Kind = Literal[
    "FIXED_SIZE_MISMATCH",
    "MISSING_ENUM_SYMBOLS",
    "MISSING_UNION_BRANCH",
    "NAME_MISMATCH",
    "READER_FIELD_MISSING_DEFAULT_VALUE",
    "TYPE_MISMATCH",
]

# an Avro schema as loaded from .avsc JSON: a type's object, a union's list, or a type's name
_AvroSchema = dict[str, Any] | list[Any] | str

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
# writer type -> reader types that can read it (Avro specification, "Schema Resolution")
_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


@dataclass(frozen=True)
class Incompatibility:
    """One reason why data written with one schema cannot be read with another.

    ``kind`` is Avro Java's ``SchemaIncompatibilityType`` name, ``location`` a JSON-pointer-like
    path in Avro Java's convention, ``path`` the same in field names, ``message`` the reason.
    ``reader_version`` and ``writer_version`` (1-based) are set by :func:`check`.
    """

    kind: _Kind
    location: str
    path: str
    message: str
    reader_version: int | None = None
    writer_version: int | None = None

    def __str__(self) -> str:
        return f"{self.kind} at {self.path} ({self.location}): {self.message}"


class _Found(NamedTuple):
    """An incompatibility relative to the (reader, writer) pair being compared."""

    kind: _Kind
    location: tuple[str, ...]
    path: tuple[str, ...]
    message: str


def _under(found: Iterable[_Found], location: Sequence[str], path: str = "") -> list[_Found]:
    """Re-anchor incompatibilities found in a child under ``location`` and ``path``."""
    prefix = tuple(location)
    return [f._replace(location=prefix + f.location, path=((path,) if path else ()) + f.path) for f in found]


class _Schema:
    """A parsed schema and its named types, by full name."""

    def __init__(self, schema: Any, what: str) -> None:
        self.what = what
        self.named: dict[str, Any] = {}
        try:
            self.root = parse_schema(schema, named_schemas=self.named, _write_hint=False)
        except (SchemaParseException, UnknownType, TypeError, ValueError, KeyError, AttributeError) as exc:
            hint = "fix the .avsc so that it parses"
            raise SchemaError(f"the {what} does not parse: {exc}", hint=hint) from exc
        self._check_unions(self.root)

    def _check_unions(self, node: Any) -> None:
        # fastavro accepts unions the specification forbids; resolving against them is ambiguous
        if isinstance(node, list):
            seen: set[str] = set()
            for branch in node:
                resolved = self.resolve(branch)
                if isinstance(resolved, list):
                    raise SchemaError(f"in the {self.what}, a union contains a union: {node}", hint="flatten the union")
                key = resolved["name"] if resolved["type"] in _NAMED else resolved["type"]
                if key in seen:
                    message = f"in the {self.what}, union {node} has two branches of type {key}"
                    raise SchemaError(message, hint="keep one branch per type")
                seen.add(key)
                self._check_unions(branch)
        elif isinstance(node, dict):
            if node.get("type") in ("record", "error"):
                for field in node["fields"]:
                    self._check_unions(field["type"])
            elif node.get("type") == "array":
                self._check_unions(node["items"])
            elif node.get("type") == "map":
                self._check_unions(node["values"])

    def resolve(self, node: Any) -> Any:
        """A node as a dict with ``type`` (or a union as a list), named references followed."""
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return {"type": node}
            return self.named[node]
        if isinstance(node, dict) and isinstance(node.get("type"), (dict, list)):
            return self.resolve(node["type"])
        if isinstance(node, dict) and node.get("type") not in _PRIMITIVES | _NAMED | {"array", "map"}:
            return self.resolve(node["type"])
        return node


def _kind_of(node: Any) -> str:
    if isinstance(node, list):
        return "union"
    kind = node["type"]
    return "record" if kind == "error" else str(kind)


def _logical(node: Any) -> str | None:
    """The logical type of a resolved node as text (``decimal(10,2)``), or None."""
    if not isinstance(node, dict) or "logicalType" not in node:
        return None
    logical = str(node["logicalType"])
    if logical == "decimal":
        return f"decimal({node.get('precision')},{node.get('scale', 0)})"
    return logical


def _describe(node: Any, schema: _Schema) -> str:
    kind = _kind_of(node)
    if kind == "union":
        return "union [" + ", ".join(_describe(schema.resolve(b), schema) for b in node) + "]"
    if kind in _NAMED:
        return f"{kind} '{node['name']}'"
    logical = _logical(node)
    return f"{kind} ({logical})" if logical else kind


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _aliases(node: dict[str, Any]) -> set[str]:
    """The full names of a named type's aliases (unqualified aliases take its namespace)."""
    namespace = node["name"].rpartition(".")[0]
    return {a if "." in a or not namespace else f"{namespace}.{a}" for a in node.get("aliases", ())}


def _names_match(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    return _short(reader["name"]) == _short(writer["name"]) or writer["name"] in _aliases(reader)


def _field_label(field: dict[str, Any]) -> str:
    doc = str(field.get("doc", "")).strip().splitlines()
    return f"'{field['name']}' ({doc[0][:80]})" if doc else f"'{field['name']}'"


class _Checker:
    """Compares one reader schema with one writer schema, memoising named-type pairs."""

    def __init__(self, reader: _Schema, writer: _Schema) -> None:
        self.reader = reader
        self.writer = writer
        self._memo: dict[tuple[str, str], list[_Found]] = {}
        self._active: dict[tuple[str, str], int] = {}
        # per active named pair: the shallowest active pair its result assumed compatible
        self._low: list[int] = []

    def check(self, r_node: Any, w_node: Any) -> list[_Found]:
        reader, writer = self.reader.resolve(r_node), self.writer.resolve(w_node)
        r_kind, w_kind = _kind_of(reader), _kind_of(writer)
        if w_kind == "union":
            found: list[_Found] = []
            for index, branch in enumerate(writer):
                if r_kind == "union":
                    sub = self._against_union(reader, self.writer.resolve(branch), writer_branch=index)
                else:
                    sub = self.check(reader, branch)
                found += _under(sub, [str(index)])
            return found
        if r_kind == "union":
            return self._against_union(reader, writer, writer_branch=None)
        if r_kind != w_kind:
            if r_kind in _PROMOTIONS.get(w_kind, ()):
                return self._logical(reader, writer)
            return [self._mismatch(reader, writer)]
        if r_kind in _NAMED:
            return self._named(reader, writer)
        if r_kind == "array":
            return _under(self.check(reader["items"], writer["items"]), ["items"], "[]")
        if r_kind == "map":
            return _under(self.check(reader["values"], writer["values"]), ["values"], "{}")
        return self._logical(reader, writer)

    def _mismatch(self, reader: Any, writer: Any) -> _Found:
        r_type, w_type = _describe(reader, self.reader), _describe(writer, self.writer)
        message = f"reader type {r_type} cannot read writer type {w_type}"
        return _Found("TYPE_MISMATCH", (), (), message)

    def _logical(self, reader: Any, writer: Any) -> list[_Found]:
        r_logical, w_logical = _logical(reader), _logical(writer)
        if r_logical == w_logical:
            return []
        message = (
            f"logical type changed from {w_logical or 'none'} (writer {_kind_of(writer)}) "
            f"to {r_logical or 'none'} (reader {_kind_of(reader)}): the same bytes would mean another value"
        )
        return [_Found("TYPE_MISMATCH", (), (), message)]

    def _against_union(self, reader: list[Any], writer: Any, *, writer_branch: int | None) -> list[_Found]:
        """A non-union writer against a reader union: some reader branch must read it."""
        candidate: list[_Found] | None = None
        promoted: list[_Found] | None = None
        w_kind = _kind_of(writer)
        for branch in reader:
            found = self.check(branch, writer)
            if not found:
                return []
            resolved = self.reader.resolve(branch)
            r_kind = _kind_of(resolved)
            # the branch a reader would pick (same type, same name) explains the failure best
            if candidate is None and r_kind == w_kind and (r_kind not in _NAMED or _names_match(resolved, writer)):
                candidate = found
            elif promoted is None and r_kind in _PROMOTIONS.get(w_kind, ()):
                promoted = found
        if candidate is not None:
            return candidate
        if promoted is not None:
            return promoted
        which = f"writer union branch {writer_branch} " if writer_branch is not None else "writer type "
        r_type, w_type = _describe(reader, self.reader), _describe(writer, self.writer)
        message = f"reader {r_type} has no branch that can read {which}{w_type}"
        return [_Found("MISSING_UNION_BRANCH", (), (), message)]

    def _named(self, reader: dict[str, Any], writer: dict[str, Any]) -> list[_Found]:
        key = (reader["name"], writer["name"])
        if key in self._memo:
            return self._memo[key]
        if key in self._active:
            # a recursive reference: assume compatible; a real difference is found one level up
            self._low[-1] = min(self._low[-1], self._active[key])
            return []
        depth = len(self._low)
        self._active[key] = depth
        self._low.append(depth)
        try:
            found = self._compare_named(reader, writer)
        finally:
            low = self._low.pop()
            del self._active[key]
        if low >= depth:
            self._memo[key] = found
        else:
            # depends on an outer pair still being compared: not final, so not memoised
            self._low[-1] = min(self._low[-1], low)
        return found

    def _compare_named(self, reader: dict[str, Any], writer: dict[str, Any]) -> list[_Found]:
        kind = _kind_of(reader)
        found: list[_Found] = []
        if not _names_match(reader, writer):
            message = (
                f"reader {kind} '{reader['name']}' cannot read writer {kind} '{writer['name']}': "
                f"the names differ and '{writer['name']}' is not an alias of the reader"
            )
            found.append(_Found("NAME_MISMATCH", ("name",), (), message))
        if kind == "fixed":
            if reader["size"] != writer["size"]:
                message = f"reader fixed '{reader['name']}' has size {reader['size']}, writer size {writer['size']}"
                found.append(_Found("FIXED_SIZE_MISMATCH", ("size",), (), message))
            found += self._logical(reader, writer)
        elif kind == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                message = f"reader enum '{reader['name']}' lacks writer symbols {missing} and has no default symbol"
                found.append(_Found("MISSING_ENUM_SYMBOLS", ("symbols",), (), message))
        else:
            found += self._fields(reader, writer)
        return found

    def _fields(self, reader: dict[str, Any], writer: dict[str, Any]) -> list[_Found]:
        by_name = {f["name"]: f for f in writer["fields"]}
        found: list[_Found] = []
        for position, field in enumerate(reader["fields"]):
            # the writer's field of the same name, else one the reader field names as an alias
            names = [field["name"], *field.get("aliases", ())]
            source = next((by_name[n] for n in names if n in by_name), None)
            where, name = ("fields", str(position)), "." + field["name"]
            if source is not None:
                found += _under(self.check(field["type"], source["type"]), [*where, "type"], name)
            elif "default" not in field:
                message = (
                    f"reader field {_field_label(field)} has no default "
                    f"and is missing from the writer '{writer['name']}'"
                )
                found.append(_Found("READER_FIELD_MISSING_DEFAULT_VALUE", where, (name,), message))
        return found


def _root_label(schema: _Schema) -> str:
    root = schema.resolve(schema.root)
    kind = _kind_of(root)
    return _short(root["name"]) if kind in _NAMED else kind


def _can_read(reader: _Schema, writer: _Schema) -> list[Incompatibility]:
    found = _Checker(reader, writer).check(reader.root, writer.root)
    label = _root_label(reader)
    out: list[Incompatibility] = []
    for f in found:
        incompatibility = Incompatibility(f.kind, "/" + "/".join(f.location), label + "".join(f.path), f.message)
        if incompatibility not in out:
            out.append(incompatibility)
    return out


def can_read(reader: _AvroSchema, writer: _AvroSchema) -> list[Incompatibility]:
    """Why data written with ``writer`` cannot be read with ``reader``; empty when it can.

    ``reader`` and ``writer`` are Avro schemas as loaded from ``.avsc`` JSON (a dict, or a
    list for a union, or a primitive's name). Raises :class:`SchemaError` if either does not parse.
    """
    return _can_read(_Schema(reader, "reader schema"), _Schema(writer, "writer schema"))


def _pairs(count: int, mode: Compatibility) -> list[tuple[int, int]]:
    """(reader, writer) index pairs that ``mode`` requires for the newest of ``count`` versions."""
    newest = count - 1
    if mode == "NONE" or count < 2:
        return []
    previous = list(range(newest - 1, -1, -1)) if mode.endswith("_TRANSITIVE") else [newest - 1]
    pairs: list[tuple[int, int]] = []
    for old in previous:
        if mode.startswith(("BACKWARD", "FULL")):
            pairs.append((newest, old))
        if mode.startswith(("FORWARD", "FULL")):
            pairs.append((old, newest))
    return pairs


def check(versions: Sequence[_AvroSchema], mode: Compatibility) -> list[Incompatibility]:
    """Check the newest of ``versions`` (oldest first) against its predecessors under ``mode``.

    ``BACKWARD``: the new schema reads data written with the previous one; ``FORWARD``: the
    previous one reads data written with the new one; ``FULL``: both; ``*_TRANSITIVE``: against
    every previous version, not only the last; ``NONE``: nothing is checked (the schemas must
    still parse). Each :class:`Incompatibility` carries the 1-based reader and writer versions.
    """
    if mode not in get_args(Compatibility):
        modes = ", ".join(get_args(Compatibility))
        raise SchemaError(f"unknown compatibility mode {mode!r}", hint=f"use one of {modes}")
    parsed = [_Schema(v, f"schema version {i}") for i, v in enumerate(versions, start=1)]
    out: list[Incompatibility] = []
    for r, w in _pairs(len(parsed), mode):
        prefix = f"v{r + 1} reading data written with v{w + 1}: "
        for found in _can_read(parsed[r], parsed[w]):
            out.append(
                dataclasses.replace(found, message=prefix + found.message, reader_version=r + 1, writer_version=w + 1)
            )
    return out
