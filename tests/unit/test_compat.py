"""Tests for ``bus._compat``: each resolution rule, the registry modes, and a cross-check with fastavro.

Every rule has a compatible and an incompatible case. The cross-check generates (hypothesis,
derandomised) a writer schema and a reader derived from it by one or more random evolution steps; whenever
``can_read`` accepts the pair, a random datum written with the writer must be read by fastavro
with the reader, and whenever it reports a missing default, a type mismatch, a name or size
mismatch on a part every datum goes through, fastavro must refuse the datum.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections import Counter
from typing import Any

import fastavro
import pytest
from fastavro.read import SchemaResolutionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bus._compat as compat
from bus._compat import Incompatibility, can_read, check
from bus._errors import SchemaError

NS = "fr.dcant.invoices"


def record(name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": NS, "fields": list(fields), **extra}


def field(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


def kinds(found: list[Incompatibility]) -> list[str]:
    return [f.kind for f in found]


def roundtrip(writer: Any, reader: Any, datum: Any) -> Any:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(writer), datum)
    buf.seek(0)
    return fastavro.schemaless_reader(buf, fastavro.parse_schema(writer), fastavro.parse_schema(reader))


# --- public surface -------------------------------------------------------------------------


def test_all_is_sorted_and_exact() -> None:
    assert compat.__all__ == sorted(compat.__all__)
    assert set(compat.__all__) == {"Compatibility", "Incompatibility", "can_read", "check"}


def test_incompatibility_is_frozen() -> None:
    found = Incompatibility("TYPE_MISMATCH", "/", "int", "m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.kind = "NAME_MISMATCH"  # type: ignore[misc]


# --- primitives -----------------------------------------------------------------------------

PROMOTIONS = [("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"), ("long", "double"),
              ("float", "double"), ("string", "bytes"), ("bytes", "string")]
PRIMITIVES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]


@pytest.mark.parametrize("type_", PRIMITIVES)
def test_same_primitive_is_compatible(type_: str) -> None:
    assert can_read(type_, type_) == []
    assert can_read({"type": type_}, type_) == []


@pytest.mark.parametrize(("writer", "reader"), PROMOTIONS)
def test_promotion_is_compatible(writer: str, reader: str) -> None:
    assert can_read({"type": reader}, {"type": writer}) == []


@pytest.mark.parametrize(
    ("writer", "reader"),
    [(w, r) for w in PRIMITIVES for r in PRIMITIVES if w != r and (w, r) not in PROMOTIONS],
)
def test_other_primitive_pairs_mismatch(writer: str, reader: str) -> None:
    [found] = can_read({"type": reader}, {"type": writer})
    assert (found.kind, found.location, found.path) == ("TYPE_MISMATCH", "/", reader)
    assert found.message == f"reader type {reader} cannot read writer type {writer}"


# --- records --------------------------------------------------------------------------------


def test_reader_field_with_default_missing_from_writer_is_compatible() -> None:
    writer = record("Invoice", field("id", "string"))
    reader = record("Invoice", field("id", "string"), field("note", ["null", "string"], default=None))
    assert can_read(reader, writer) == []


def test_reader_field_without_default_missing_from_writer() -> None:
    writer = record("Invoice", field("id", "string"), field("total", "string"))
    reader = record("Invoice", field("id", "string"), field("total", "string"),
                    field("due_date", {"type": "int", "logicalType": "date"}, doc="BT-9 Payment due date"))
    [found] = can_read(reader, writer)
    assert found.kind == "READER_FIELD_MISSING_DEFAULT_VALUE"
    assert (found.location, found.path) == ("/fields/2", "Invoice.due_date")
    assert "reader field 'due_date' (BT-9 Payment due date) has no default and is missing from the writer" in found.message


def test_writer_field_missing_from_reader_is_ignored() -> None:
    writer = record("Invoice", field("id", "string"), field("legacy", "int"))
    assert can_read(record("Invoice", field("id", "string")), writer) == []


def test_field_alias_matches_renamed_writer_field() -> None:
    writer = record("Invoice", field("number", "string"))
    assert can_read(record("Invoice", field("id", "string", aliases=["number"])), writer) == []
    assert kinds(can_read(record("Invoice", field("id", "string")), writer)) == ["READER_FIELD_MISSING_DEFAULT_VALUE"]


def test_field_types_are_checked_recursively() -> None:
    line = {"type": "record", "name": "Line", "fields": [field("label", "string"), field("price", "long")]}
    writer = record("Invoice", field("lines", {"type": "array", "items": line}))
    promoted = {**line, "fields": [field("label", "string"), field("price", "double")]}
    assert can_read(record("Invoice", field("lines", {"type": "array", "items": promoted})), writer) == []
    narrowed = {**line, "fields": [field("label", "string"), field("price", "int")]}
    [found] = can_read(record("Invoice", field("lines", {"type": "array", "items": narrowed})), writer)
    assert found.kind == "TYPE_MISMATCH"
    assert (found.location, found.path) == ("/fields/0/type/items/fields/1/type", "Invoice.lines[].price")


def test_record_name_mismatch() -> None:
    [found] = can_read(record("Bill", field("id", "string")), record("Invoice", field("id", "string")))
    assert (found.kind, found.location) == ("NAME_MISMATCH", "/name")
    assert "'fr.dcant.invoices.Bill' cannot read writer record 'fr.dcant.invoices.Invoice'" in found.message


def test_record_alias_and_unqualified_name_match() -> None:
    writer = record("Invoice", field("id", "string"))
    assert can_read(record("Bill", field("id", "string"), aliases=["Invoice"]), writer) == []
    assert can_read(record("Bill", field("id", "string"), aliases=[f"{NS}.Invoice"]), writer) == []
    # the specification matches records by unqualified name
    assert can_read({**writer, "namespace": "fr.dcant.other"}, writer) == []


# --- enums, fixed, arrays, maps -------------------------------------------------------------

STATUS = {"type": "enum", "name": "Status", "namespace": NS, "symbols": ["DRAFT", "SENT"]}


def test_enum_writer_symbols_must_be_in_the_reader() -> None:
    assert can_read({**STATUS, "symbols": ["DRAFT", "SENT", "PAID"]}, STATUS) == []
    [found] = can_read(STATUS, {**STATUS, "symbols": ["DRAFT", "SENT", "PAID", "VOID"]})
    assert (found.kind, found.location) == ("MISSING_ENUM_SYMBOLS", "/symbols")
    assert "['PAID', 'VOID']" in found.message


def test_enum_reader_default_covers_missing_symbols() -> None:
    assert can_read({**STATUS, "default": "DRAFT"}, {**STATUS, "symbols": ["DRAFT", "SENT", "PAID"]}) == []
    assert kinds(can_read({**STATUS, "name": "State"}, STATUS)) == ["NAME_MISMATCH"]


HASH = {"type": "fixed", "name": "Hash", "namespace": NS, "size": 32}


def test_fixed_name_and_size_must_match() -> None:
    assert can_read(HASH, dict(HASH)) == []
    [found] = can_read({**HASH, "size": 16}, HASH)
    assert (found.kind, found.location) == ("FIXED_SIZE_MISMATCH", "/size")
    assert "size 16, writer size 32" in found.message
    assert kinds(can_read({**HASH, "name": "Digest"}, HASH)) == ["NAME_MISMATCH"]


def test_array_items() -> None:
    assert can_read({"type": "array", "items": "long"}, {"type": "array", "items": "int"}) == []
    [found] = can_read({"type": "array", "items": "int"}, {"type": "array", "items": "long"})
    assert (found.kind, found.location, found.path) == ("TYPE_MISMATCH", "/items", "array[]")


def test_map_values() -> None:
    assert can_read({"type": "map", "values": "bytes"}, {"type": "map", "values": "string"}) == []
    [found] = can_read({"type": "map", "values": "boolean"}, {"type": "map", "values": "string"})
    assert (found.kind, found.location, found.path) == ("TYPE_MISMATCH", "/values", "map{}")


def test_array_is_not_map() -> None:
    assert kinds(can_read({"type": "map", "values": "int"}, {"type": "array", "items": "int"})) == ["TYPE_MISMATCH"]


# --- unions ---------------------------------------------------------------------------------


def test_union_writer_branches_all_readable() -> None:
    assert can_read(["null", "string", "long"], ["null", "int"]) == []


def test_union_writer_branch_missing_from_reader() -> None:
    [found] = can_read(["null", "string"], ["null", "string", "int"])
    assert (found.kind, found.location) == ("MISSING_UNION_BRANCH", "/2")
    assert "writer union branch 2 int" in found.message


def test_non_union_writer_against_reader_union() -> None:
    assert can_read(["null", "long"], "int") == []
    [found] = can_read(["null", "long"], "string")
    assert (found.kind, found.location) == ("MISSING_UNION_BRANCH", "/")


def test_non_union_reader_against_union_writer() -> None:
    assert can_read("double", ["int", "long", "float"]) == []
    [found] = can_read("long", ["null", "int"])
    assert (found.kind, found.location) == ("TYPE_MISMATCH", "/0")


def test_union_branch_reports_the_nested_reason() -> None:
    address = {"type": "record", "name": "Address", "fields": [field("city", "string")]}
    writer = record("Invoice", field("address", ["null", address], default=None))
    stricter = {**address, "fields": [field("city", "string"), field("postcode", "string")]}
    reader = record("Invoice", field("address", ["null", stricter], default=None))
    [found] = can_read(reader, writer)
    assert found.kind == "READER_FIELD_MISSING_DEFAULT_VALUE"
    assert (found.location, found.path) == ("/fields/0/type/1/fields/1", "Invoice.address.postcode")


def test_making_a_field_optional_is_backward_but_not_forward() -> None:
    v1 = record("Invoice", field("id", "string"))
    v2 = record("Invoice", field("id", ["null", "string"], default=None))
    assert can_read(v2, v1) == []
    [found] = can_read(v1, v2)
    assert (found.kind, found.location) == ("TYPE_MISMATCH", "/fields/0/type/0")


# --- logical types --------------------------------------------------------------------------

DATE = {"type": "int", "logicalType": "date"}
MILLIS = {"type": "long", "logicalType": "timestamp-millis"}
MICROS = {"type": "long", "logicalType": "timestamp-micros"}


def decimal(precision: int, scale: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "bytes", "logicalType": "decimal", "precision": precision}
    return out if scale is None else {**out, "scale": scale}


@pytest.mark.parametrize(("reader", "writer"), [(DATE, DATE), (MICROS, MICROS), (decimal(10, 2), decimal(10, 2)),
                                                (decimal(10, 0), decimal(10))])
def test_same_logical_type_is_compatible(reader: dict[str, Any], writer: dict[str, Any]) -> None:
    assert can_read(reader, writer) == []


@pytest.mark.parametrize(("reader", "writer", "text"), [
    (MILLIS, DATE, "from date (writer int) to timestamp-millis (reader long)"),
    (MICROS, MILLIS, "from timestamp-millis"),
    (decimal(12, 2), decimal(10, 2), "from decimal(10,2) (writer bytes) to decimal(12,2)"),
    (decimal(10, 3), decimal(10, 2), "to decimal(10,3)"),
    (DATE, {"type": "int"}, "from none (writer int) to date"),
    ({"type": "int"}, DATE, "from date (writer int) to none"),
])
def test_logical_type_change_is_flagged(reader: dict[str, Any], writer: dict[str, Any], text: str) -> None:
    [found] = can_read(reader, writer)
    assert found.kind == "TYPE_MISMATCH"
    assert text in found.message


def test_logical_type_change_inside_union_is_flagged() -> None:
    [found] = can_read(["null", MICROS], ["null", MILLIS])
    assert (found.kind, found.location) == ("TYPE_MISMATCH", "/1")


# --- recursive named types ------------------------------------------------------------------

NODE = record("Node", field("value", "int"), field("next", ["null", "Node"], default=None))


def test_recursive_record_is_compatible_with_itself_and_a_promotion() -> None:
    assert can_read(NODE, NODE) == []
    promoted = record("Node", field("value", "long"), field("next", ["null", "Node"], default=None))
    assert can_read(promoted, NODE) == []


def test_recursive_record_incompatibility_is_reported_once() -> None:
    narrowed = record("Node", field("value", "string"), field("next", ["null", "Node"], default=None))
    found = can_read(narrowed, NODE)
    assert [(f.kind, f.location) for f in found] == [("TYPE_MISMATCH", "/fields/0/type")]


def test_mutually_recursive_records() -> None:
    def tree(leaf: str) -> dict[str, Any]:
        child = {"type": "record", "name": "Child", "fields": [field("parent", ["null", "Tree"], default=None),
                                                               field("weight", leaf)]}
        return record("Tree", field("children", {"type": "array", "items": child}))

    assert can_read(tree("double"), tree("float")) == []
    [found] = can_read(tree("float"), tree("double"))
    assert found.path == "Tree.children[].weight"


def test_named_type_pairs_are_compared_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # each level uses the next one three times: 3**12 comparisons without memoisation
    levels = [{"type": "record", "name": "L12", "fields": [field("leaf", "int")]}]
    for depth in range(11, -1, -1):
        below = levels[-1]
        levels.append({"type": "record", "name": f"L{depth}",
                       "fields": [field("x", below), field("y", below["name"]), field("z", below["name"])]})
    compared: Counter[tuple[str, str]] = Counter()
    compare = compat._Checker._compare_named

    def counting(self: Any, reader: dict[str, Any], writer: dict[str, Any]) -> Any:
        compared[reader["name"], writer["name"]] += 1
        return compare(self, reader, writer)

    monkeypatch.setattr(compat._Checker, "_compare_named", counting)
    assert can_read(levels[-1], levels[-1]) == []
    assert len(compared) == 13 and set(compared.values()) == {1}


def test_shared_named_type_is_reported_at_each_use() -> None:
    money = {"type": "record", "name": "Money", "fields": [field("amount", "string")]}
    writer = record("Invoice", field("net", money), field("gross", "Money"))
    stricter = {**money, "fields": [field("amount", "string"), field("currency", "string")]}
    found = can_read(record("Invoice", field("net", stricter), field("gross", "Money")), writer)
    assert [f.path for f in found] == ["Invoice.net.currency", "Invoice.gross.currency"]


# --- registry modes -------------------------------------------------------------------------

V1 = record("Invoice", field("id", "string"))
V2_REQUIRED = record("Invoice", field("id", "string"), field("buyer", "string"))
V2_OPTIONAL = record("Invoice", field("id", "string"), field("buyer", ["null", "string"], default=None))


@pytest.mark.parametrize(("versions", "mode", "expected"), [
    ([V1, V2_REQUIRED], "BACKWARD", ["READER_FIELD_MISSING_DEFAULT_VALUE"]),
    ([V1, V2_REQUIRED], "FORWARD", []),
    ([V1, V2_REQUIRED], "FULL", ["READER_FIELD_MISSING_DEFAULT_VALUE"]),
    ([V2_REQUIRED, V1], "BACKWARD", []),
    ([V2_REQUIRED, V1], "FORWARD", ["READER_FIELD_MISSING_DEFAULT_VALUE"]),
    ([V1, V2_OPTIONAL], "FULL", []),
    ([V1, V2_REQUIRED], "NONE", []),
    ([V1], "FULL_TRANSITIVE", []),
    ([], "BACKWARD", []),
])
def test_modes(versions: list[dict[str, Any]], mode: compat.Compatibility, expected: list[str]) -> None:
    assert kinds(check(versions, mode)) == expected


def test_incompatibilities_name_the_version_pair() -> None:
    retyped = record("Invoice", field("id", "boolean"))
    [backward, forward] = check([retyped, V1, retyped], "FULL")
    assert (backward.reader_version, backward.writer_version) == (3, 2)
    assert backward.message.startswith("v3 reading data written with v2: ")
    assert (forward.reader_version, forward.writer_version) == (2, 3)


def test_transitive_modes_check_every_previous_version() -> None:
    v1 = record("Invoice", field("total", "int"))
    v2 = record("Invoice", field("total", "int"), field("note", "string", default=""))
    v3 = record("Invoice", field("total", "int"), field("note", "string"))  # drops note's default
    assert check([v1, v2, v3], "BACKWARD") == []
    [found] = check([v1, v2, v3], "BACKWARD_TRANSITIVE")
    assert (found.reader_version, found.writer_version, found.path) == (3, 1, "Invoice.note")
    assert check([v1, v2, v3], "FORWARD_TRANSITIVE") == []
    assert [(f.reader_version, f.writer_version) for f in check([v1, v2, v3], "FULL_TRANSITIVE")] == [(3, 1)]


def test_unknown_mode_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="unknown compatibility mode"):
        check([V1, V1], "SIDEWAYS")


# --- schemas that do not parse --------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"type": "record", "name": "X", "fields": [{"name": "a", "type": "Nope"}]},
    {"type": "record", "fields": []},
    {"type": "enum", "name": "E", "symbols": ["A", "A"]},
    {"type": "bytes", "logicalType": "decimal", "precision": -1},
    42,
])
def test_unparsable_schema_raises_schema_error_from_fastavro(bad: Any) -> None:
    with pytest.raises(SchemaError) as info:
        can_read(bad, V1)
    assert info.value.__cause__ is not None
    with pytest.raises(SchemaError):
        check([V1, bad], "NONE")


@pytest.mark.parametrize("bad", [["int", "int"], ["null", ["int", "string"]],
                                 ["null", {"type": "array", "items": ["long", "long"]}]])
def test_invalid_union_raises_schema_error(bad: Any) -> None:
    with pytest.raises(SchemaError, match="union"):
        can_read(record("R", field("a", bad)), record("R", field("a", "int")))


# --- designed cases: fastavro refuses what the checker rejects ------------------------------

DESIGNED = [
    (V2_REQUIRED, V1, {"id": "F-1"}, "READER_FIELD_MISSING_DEFAULT_VALUE"),
    ({"type": "int"}, {"type": "string"}, "x", "TYPE_MISMATCH"),
    ({"type": "int"}, {"type": "long"}, 1, "TYPE_MISMATCH"),
    ({"type": "float"}, {"type": "double"}, 1.5, "TYPE_MISMATCH"),
    (record("Invoice", field("id", "int")), V1, {"id": "F-1"}, "TYPE_MISMATCH"),
    (STATUS, {**STATUS, "symbols": ["DRAFT", "SENT", "PAID"]}, "PAID", "MISSING_ENUM_SYMBOLS"),
    ({**HASH, "size": 16}, HASH, b"\x00" * 32, "FIXED_SIZE_MISMATCH"),
    (record("Bill", field("id", "string")), V1, {"id": "F-1"}, "NAME_MISMATCH"),
    (["null", "int"], ["null", "string"], "x", "MISSING_UNION_BRANCH"),
    ("string", ["null", "string"], None, "TYPE_MISMATCH"),
]


@pytest.mark.parametrize(("reader", "writer", "datum", "kind"), DESIGNED)
def test_fastavro_refuses_what_the_checker_rejects(reader: Any, writer: Any, datum: Any, kind: str) -> None:
    assert kind in kinds(can_read(reader, writer))
    with pytest.raises(SchemaResolutionError):
        roundtrip(writer, reader, datum)


# --- cross-check with fastavro on generated schema pairs ------------------------------------
# Named types are named after their position, so a reader derived from a writer keeps the names;
# no type is referenced twice, so a datum can be generated from the JSON alone.

SIMPLE = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
SYMBOLS = ["A", "B", "C", "D"]
FIELD_NAMES = ["a", "b", "c", "d"]
WIDER = {"int": ["long", "float", "double"], "long": ["float", "double"], "float": ["double"],
         "string": ["bytes"], "bytes": ["string"]}
_NO_DEFAULT = object()


def kind_of(schema: Any) -> str:
    return "union" if isinstance(schema, list) else schema if isinstance(schema, str) else schema["type"]


def default_for(schema: Any) -> Any:
    """A valid default value for ``schema`` as .avsc JSON, or ``_NO_DEFAULT``."""
    kind = kind_of(schema)
    simple = {"null": None, "boolean": False, "int": 0, "long": 0, "float": 0.0, "double": 0.0, "bytes": "",
              "string": "", "array": [], "map": {}}
    if kind in simple:
        return simple[kind]
    if kind in ("union", "enum"):
        return default_for(schema[0]) if kind == "union" else schema["symbols"][0]
    if kind == "fixed":
        return "\u0000" * schema["size"]
    values = {f["name"]: default_for(f["type"]) for f in schema["fields"]}
    return _NO_DEFAULT if _NO_DEFAULT in values.values() else values


@st.composite
def enums(draw: st.DrawFn, name: str) -> dict[str, Any]:
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=4, unique=True))
    out = {"type": "enum", "name": name + "_E", "symbols": symbols}
    return {**out, "default": symbols[0]} if draw(st.booleans()) else out


@st.composite
def fields(draw: st.DrawFn, name: str, field_name: str, depth: int) -> dict[str, Any]:
    type_ = draw(schemas(f"{name}_{field_name}", depth))
    default = default_for(type_)
    if default is not _NO_DEFAULT and draw(st.booleans()):
        return field(field_name, type_, default=default)
    return field(field_name, type_)


# hypothesis's one_of favours some branches heavily; drawing the kind from a list keeps the mix
SHAPES = ["simple"] * 4 + ["enum", "enum", "fixed"]
NESTED = ["array", "map", "union", "union", "record", "record", "record"]


@st.composite
def schemas(draw: st.DrawFn, name: str, depth: int) -> Any:
    shape = draw(st.sampled_from(SHAPES + (NESTED if depth > 0 else [])))
    if shape == "simple":
        # promotable types twice as often: promotions are what evolution exercises most
        return draw(st.sampled_from(SIMPLE + list(WIDER)))
    if shape == "enum":
        return draw(enums(name))
    if shape == "fixed":
        return {"type": "fixed", "name": name + "_F", "size": draw(st.integers(1, 3))}
    if shape == "array":
        return {"type": "array", "items": draw(schemas(name + "_i", depth - 1))}
    if shape == "map":
        return {"type": "map", "values": draw(schemas(name + "_i", depth - 1))}
    if shape == "union":
        branches = draw(st.lists(st.sampled_from(SIMPLE), min_size=1, max_size=3, unique=True))
        return branches + ([draw(enums(name + "_u"))] if draw(st.booleans()) else [])
    return draw(records(name, depth))


@st.composite
def records(draw: st.DrawFn, name: str, depth: int) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=4, unique=True))
    return {"type": "record", "name": name + "_R", "fields": [draw(fields(name, n, depth - 1)) for n in names]}


@st.composite
def evolved(draw: st.DrawFn, schema: Any, name: str, depth: int, single: bool) -> Any:
    """``schema`` after random evolution steps, some compatible, some not; one step if ``single``.

    A single step isolates one rule, so that reading in both directions tests it on its own.
    """
    step = draw(st.integers(0, 9))
    if step == 0:
        return draw(schemas(name, min(depth, 1)))
    if step == 1 and kind_of(schema) not in ("union", "null"):
        return ["null", schema]
    kind = kind_of(schema)
    if kind in WIDER and step < 7:
        return draw(st.sampled_from(WIDER[kind]))
    if kind == "enum":
        symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=4, unique=True))
        out = {k: v for k, v in schema.items() if k != "default"}
        return {**out, "symbols": symbols, **({"default": symbols[0]} if draw(st.booleans()) else {})}
    if kind == "fixed":
        return {**schema, "size": draw(st.integers(1, 3))}
    if kind in ("array", "map"):
        key = "items" if kind == "array" else "values"
        return {**schema, key: draw(evolved(schema[key], name + "_i", depth - 1, single))}
    if kind == "union":
        keep = draw(st.lists(st.sampled_from(range(len(schema))), min_size=1, unique=True))
        branches = [schema[i] for i in sorted(keep)]
        extra = [b for b in draw(st.lists(st.sampled_from(SIMPLE), max_size=2, unique=True)) if b not in branches]
        return branches + extra
    if kind == "record":
        return draw(evolved_record(schema, name, depth, single))
    return schema


def evolve_field(draw: st.DrawFn, f: dict[str, Any], name: str, depth: int, single: bool) -> dict[str, Any]:
    new = field(f["name"], draw(evolved(f["type"], f"{name}_{f['name']}", depth - 1, single)))
    default = default_for(new["type"])
    return new if default is _NO_DEFAULT else {**new, "default": default}


@st.composite
def evolved_record(draw: st.DrawFn, schema: dict[str, Any], name: str, depth: int, single: bool) -> dict[str, Any]:
    out_fields = list(schema["fields"])
    if single:
        action = draw(st.sampled_from(["add", "drop", "evolve", "evolve"] if out_fields else ["add"]))
        at = draw(st.integers(0, max(len(out_fields) - 1, 0)))
        if action == "drop":
            del out_fields[at]
        elif action == "evolve":
            out_fields[at] = evolve_field(draw, out_fields[at], name, depth, single)
    else:
        fates = [draw(st.integers(0, 4)) for _ in out_fields]  # 0: dropped, 1-2: evolved, 3-4: kept
        out_fields = [evolve_field(draw, f, name, depth, single) if fate in (1, 2) else f
                      for f, fate in zip(out_fields, fates) if fate]
    free = [n for n in FIELD_NAMES if n not in {f["name"] for f in out_fields}]
    if free and (not single or action == "add"):
        for extra_name in draw(st.lists(st.sampled_from(free), unique=True, min_size=int(single),
                                        max_size=1 if single else 2)):
            out_fields.append(draw(fields(name, extra_name, 0)))
    return {**schema, "fields": out_fields}


def datums(schema: Any) -> st.SearchStrategy[Any]:
    kind = kind_of(schema)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(), "boolean": st.booleans(), "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1), "float": st.floats(width=32, allow_nan=False),
        "double": st.floats(allow_nan=False), "string": st.text(max_size=4),
        # the specification promotes bytes to string: bytes written by Avro users are text in practice
        "bytes": st.text(max_size=4).map(str.encode),
    }
    if kind in simple:
        return simple[kind]
    if kind == "union":
        return st.one_of(*(datums(branch) for branch in schema))
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind == "array":
        return st.lists(datums(schema["items"]), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=2), datums(schema["values"]), max_size=3)
    return st.fixed_dictionaries({f["name"]: datums(f["type"]) for f in schema["fields"]})


def pairs() -> st.SearchStrategy[tuple[Any, Any]]:
    # pivots are records: most writers are, the rest is any schema
    writers = st.sampled_from(["record", "record", "any"]).flatmap(
        lambda shape: records("T", 2) if shape == "record" else schemas("T", 2)
    )
    return st.tuples(writers, st.booleans()).flatmap(
        lambda ws: st.tuples(st.just(ws[0]), evolved(ws[0], "T", 2, single=ws[1]))
    )


# a datum goes through every record field and every reader union, but maybe not through an array
# item, a map value or a given writer union branch: only there can fastavro be sure to fail
ALWAYS_REACHED = re.compile(r"^(/fields/\d+/type)*(/fields/\d+|/name|/size)?$")
MUST_FAIL = {"READER_FIELD_MISSING_DEFAULT_VALUE", "TYPE_MISMATCH", "NAME_MISMATCH", "FIXED_SIZE_MISMATCH",
             "MISSING_UNION_BRANCH"}


def test_checker_agrees_with_fastavro_on_generated_pairs() -> None:
    seen: Counter[str] = Counter()

    @settings(derandomize=True, max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(pair=pairs(), data=st.data())
    def agree(pair: tuple[Any, Any], data: st.DataObject) -> None:
        for reader, writer in (pair, pair[::-1]):
            found = can_read(reader, writer)
            datum = data.draw(datums(writer))
            if not found:
                seen["compatible"] += 1
                roundtrip(writer, reader, datum)
            elif any(f.kind in MUST_FAIL and ALWAYS_REACHED.match(f.location.rstrip("/")) for f in found):
                seen["refused"] += 1
                with pytest.raises(SchemaResolutionError):
                    roundtrip(writer, reader, datum)
            else:
                seen["maybe"] += 1

    agree()
    # the generator must exercise both verdicts, not just one
    assert seen["compatible"] >= 150 and seen["refused"] >= 150, seen
