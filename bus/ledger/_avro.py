"""Compiled Avro readers: one straight-line Python function per writer schema, for the replay.

fastavro interprets the schema on every record (a dictionary walk per field), which costs a
replay more than reading the record from Kafka. :func:`compile_reader` turns a parsed writer
schema into the source of one function ``read(buf, pos) -> (record, pos)`` once, and the
replay calls it per record. It reads the same values fastavro returns (dicts in field order,
``date`` and UTC ``datetime`` for the logical types) but is deliberately narrower: anything
unusual (a multi-byte union or enum index, a block-size array, a boolean byte other than 0 or
1, a varint beyond 64 bits, an ``int`` outside 32 bits, a truncated body) raises, and the
caller then decodes the record with :func:`bus._codec.decode`, so a refused payload is
reported exactly as fastavro words it. Schemas with a construct it does not know (other
logical types, recursive types) get no compiled reader (``None``).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["CompiledReader", "compile_reader"]

CompiledReader = Callable[[bytes, int], tuple[dict[str, Any], int]]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAYS_SHIFT = dt.date(1970, 1, 1).toordinal()
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class Unsupported(Exception):
    """The schema uses a construct the compiler leaves to fastavro."""


def _long_tail(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """The rest of a zig-zag varint whose first byte ``first`` had its continuation bit set."""
    n, shift = first & 0x7F, 7
    while True:
        c = buf[pos]
        pos += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            if n >> 64:  # wider than the 64 bits fastavro's C reader holds: let it decide
                raise OverflowError("varint wider than 64 bits")
            return (n >> 1) ^ -(n & 1), pos
        shift += 7
        if shift > 63:
            raise OverflowError("varint longer than 10 bytes")


def _size(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """A string, bytes or block length whose first byte is not a small even number."""
    if not first & 0x80:
        raise ValueError("negative length")
    n, pos = _long_tail(buf, pos, first)
    if n < 0:
        raise ValueError("negative length")
    return n, pos


class _Bad(Exception):
    """The compiled reader gives up on this body (the caller falls back to fastavro)."""


_GLOBALS: dict[str, Any] = {
    "_long_tail": _long_tail, "_size": _size, "_BOOL": {0: False, 1: True}, "_Bad": _Bad,
    "_date": dt.date.fromordinal, "_td": dt.timedelta,
    "_EPOCH": _EPOCH, "_DAYS": _DAYS_SHIFT, "_f": struct.Struct("<f").unpack_from,
    "_d": struct.Struct("<d").unpack_from, "_IMIN": _INT_MIN, "_IMAX": _INT_MAX,
}


class _Emitter:
    """Writes the body of ``read(b, p)``; each value is assigned to the target name it is given.

    Lengths are not bounds-checked: a slice past the end leaves ``p`` beyond ``len(b)``, which
    the caller's final ``p == len(b)`` check (the trailing-bytes check) refuses.
    """

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}
        self.count = 0
        self.stack: list[str] = []

    def var(self) -> str:
        self.count += 1
        return f"v{self.count}"

    def constant(self, value: Any) -> str:
        name = f"_K{len(self.constants)}"
        self.constants[name] = value
        return name

    def emit(self, indent: int, *lines: str) -> None:
        self.lines += ["    " * indent + line for line in lines]

    def varint(self, indent: int, target: str) -> None:
        self.emit(indent, "c = b[p]; p += 1",
                  f"if c < 128: {target} = (c >> 1) ^ -(c & 1)",
                  f"else: {target}, p = _long_tail(b, p, c)")

    def size(self, indent: int, target: str) -> None:
        self.emit(indent, "c = b[p]",
                  f"if c & 0x81: {target}, p = _size(b, p + 1, c)",
                  f"else: {target} = c >> 1; p += 1")

    def indexed(self, indent: int, target: str, choices: tuple[str, ...]) -> None:
        """A union branch or enum symbol: the index is one byte (zig-zag ``2 * i``) or we give up."""
        table = self.constant({2 * i: value for i, value in enumerate(choices)})
        self.emit(indent, f"{target} = {table}[b[p]]; p += 1")

    def blob(self, indent: int, target: str, decode: bool) -> None:
        n, to_text = self.var(), ".decode()" if decode else ""
        self.emit(indent, "c = b[p]",
                  f"if c & 0x81: {n}, p = _size(b, p + 1, c); {target} = b[p:p + {n}]{to_text}; p += {n}",
                  f"else: {n} = p + 1 + (c >> 1); {target} = b[p + 1:{n}]{to_text}; p = {n}")

    def value(self, schema: Any, indent: int, target: str) -> None:
        """Emit code reading ``schema`` into ``target``."""
        if isinstance(schema, list):
            self.union(schema, indent, target)
            return
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                self.primitive(schema, indent, target)
                return
            if schema not in self.named:
                raise Unsupported(f"unknown named type {schema}")
            if schema in self.stack:
                raise Unsupported(f"recursive type {schema}")
            self.stack.append(schema)
            try:
                self.value(self.named[schema], indent, target)
            finally:
                self.stack.pop()
            return
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if logical is not None:
            self.logical(kind, logical, indent, target)
        elif kind in _PRIMITIVES:
            self.primitive(kind, indent, target)
        elif kind == "record" or kind == "error":
            self.record(schema, indent, target)
        elif kind == "enum":
            self.indexed(indent, target, tuple(schema["symbols"]))
        elif kind == "array":
            self.repeated(indent, schema["items"], target, keyed=False)
        elif kind == "map":
            self.repeated(indent, schema["values"], target, keyed=True)
        elif kind == "fixed":
            size = int(schema["size"])
            self.emit(indent, f"{target} = b[p:p + {size}]; p += {size}")
        elif isinstance(kind, list | dict) or (isinstance(kind, str) and kind in self.named):
            self.value(kind, indent, target)
        else:
            raise Unsupported(f"type {kind!r}")

    def primitive(self, kind: str, indent: int, target: str) -> None:
        if kind == "null":
            self.emit(indent, f"{target} = None")
        elif kind == "boolean":
            self.emit(indent, f"{target} = _BOOL[b[p]]; p += 1")
        elif kind in ("int", "long"):
            self.varint(indent, target)
            if kind == "int":
                self.emit(indent, f"if not _IMIN <= {target} <= _IMAX: raise _Bad")
        elif kind in ("float", "double"):
            fn, size = ("_f", 4) if kind == "float" else ("_d", 8)
            self.emit(indent, f"{target} = {fn}(b, p)[0]; p += {size}")
        else:
            self.blob(indent, target, decode=kind == "string")

    def logical(self, kind: Any, logical: str, indent: int, target: str) -> None:
        if kind == "int" and logical == "date":
            self.primitive("int", indent, target)
            self.emit(indent, f"{target} = _date({target} + _DAYS)")
        elif kind == "long" and logical in ("timestamp-micros", "timestamp-millis"):
            self.primitive("long", indent, target)
            scale = "" if logical == "timestamp-micros" else " * 1000"
            self.emit(indent, f"{target} = _EPOCH + _td(microseconds={target}{scale})")
        else:
            raise Unsupported(f"logical type {logical} on {kind}")

    def union(self, branches: list[Any], indent: int, target: str) -> None:
        self.emit(indent, "c = b[p]; p += 1")
        for i, branch in enumerate(branches):
            self.emit(indent, f"{'if' if i == 0 else 'elif'} c == {2 * i}:")
            self.value(branch, indent + 1, target)
        self.emit(indent, "else: raise _Bad")

    def record(self, schema: Mapping[str, Any], indent: int, target: str) -> None:
        names = [field["name"] for field in schema["fields"]]
        variables = [self.var() for _ in names]
        types = [field["type"] for field in schema["fields"]]
        i = 0
        while i < len(types):
            # A run of optional fields (null first) is often all null: one comparison reads them all.
            run = i
            while run < len(types) and isinstance(types[run], list) and types[run][:1] == ["null"]:
                run += 1
            if run - i >= 2:
                self.emit(indent, f"if b[p:p + {run - i}] == {bytes(run - i)!r}:",
                          f"    {' = '.join(variables[i:run])} = None; p += {run - i}", "else:")
                for j in range(i, run):
                    self.value(types[j], indent + 1, variables[j])
                i = run
            else:
                self.value(types[i], indent, variables[i])
                i += 1
        self.emit(indent, f"{target} = {{" + ", ".join(f"{n!r}: {v}" for n, v in zip(names, variables)) + "}")

    def repeated(self, indent: int, item: Any, target: str, *, keyed: bool) -> None:
        count, element = self.var(), self.var()
        self.emit(indent, f"{target} = {{}}" if keyed else f"{target} = []", "while True:")
        # Zero ends the array; a negative count (a block with its byte size) is left to fastavro.
        self.size(indent + 1, count)
        self.emit(indent + 1, f"if {count} == 0: break", f"if {count} > len(b): raise _Bad",
                  f"for _ in range({count}):")
        key = None
        if keyed:
            key = self.var()
            self.blob(indent + 2, key, decode=True)
        self.value(item, indent + 2, element)
        self.emit(indent + 2, f"{target}[{key}] = {element}" if keyed else f"{target}.append({element})")


def compile_reader(parsed: Mapping[str, Any]) -> CompiledReader | None:
    """A reader for records written with ``parsed`` (a fastavro parsed schema), or None."""
    emitter = _Emitter(parsed.get("__named_schemas", {}))
    try:
        emitter.value(dict(parsed), 1, "record")
    except (Unsupported, KeyError, TypeError, ValueError):
        return None
    source = "\n".join(["def read(b, p):", *emitter.lines, "    return record, p"])
    namespace: dict[str, Any] = {}
    scope = {**_GLOBALS, **emitter.constants}
    exec(compile(source, f"<avro reader {parsed.get('name')}>", "exec"), scope, namespace)  # noqa: S102
    reader: CompiledReader = namespace["read"]
    return reader
