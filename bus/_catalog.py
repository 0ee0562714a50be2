"""The schema catalog: every pivot schema version, by name and by fingerprint.

Schemas are the ``schemas/avro/<family>/<Record>.v<N>.avsc`` files shipped in the package;
each is parsed once. Historic writer schemas learnt from the catalog topic are added with
:meth:`Catalog.add`, so a replay decodes every record with the schema its producer used.
The catalog also converts pivot values to and from JSON for the command line.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, fingerprint, to_parsing_canonical_form

from ._errors import SchemaError, UnknownSchemaError

__all__ = ["Catalog", "Schema", "default_catalog", "from_json_value", "schema_root"]

_FILE = re.compile(r"^(?P<record>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>\d+)\.avsc$")
COMPATIBILITY_MODES = {
    "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE",
}


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Schema:
    """One version of one pivot schema, parsed once."""

    name: str
    version: int
    raw: Mapping[str, Any]
    parsed: Any
    canonical: str
    fingerprint: bytes
    compatibility: str = "BACKWARD"
    path: Path | None = None

    @property
    def family(self) -> str:
        """``invoices`` for ``fr.dcant.invoices.Invoice``."""
        parts = self.name.split(".")
        return parts[2] if len(parts) > 3 else parts[-2]

    @property
    def dataschema(self) -> str:
        """The value of the ``ce_dataschema`` header for events of this schema."""
        return f"urn:avro:{self.name}:v{self.version}:crc64:{self.fingerprint.hex()}"

    def to_catalog_record(self) -> bytes:
        """The JSON document published on the catalog topic for this schema version."""
        return json.dumps(
            {"name": self.name, "version": self.version, "fingerprint": self.fingerprint.hex(),
             "compatibility": self.compatibility, "schema": self.raw},
            sort_keys=True, separators=(",", ":"),
        ).encode()


def _build(raw: Mapping[str, Any], *, version: int, path: Path | None = None) -> Schema:
    try:
        parsed = fastavro.parse_schema(dict(raw), _write_hint=True, _force=True)
        canonical = to_parsing_canonical_form(parsed)
    except (SchemaParseException, ValueError, TypeError, KeyError) as exc:
        raise SchemaError(f"schema {path or raw.get('name')} does not parse: {exc}", path=path) from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SchemaError("a pivot schema must be a record", path=path)
    mode = str(raw.get("compatibility", "BACKWARD")).upper()
    if mode not in COMPATIBILITY_MODES:
        raise SchemaError(f"unknown compatibility {mode!r}", path=path, hint=f"use one of {sorted(COMPATIBILITY_MODES)}")
    return Schema(
        name=parsed["name"], version=version, raw=raw, parsed=parsed, canonical=canonical,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")), compatibility=mode, path=path,
    )


def schema_root() -> Path:
    """The ``schemas/avro`` folder shipped with the package."""
    return Path(str(resources.files("schemas") / "avro"))


class Catalog:
    """Every known schema version, indexed by fingerprint and by (name, version)."""

    def __init__(self, schemas: Iterable[Schema] = ()) -> None:
        self._by_fp: dict[bytes, Schema] = {}
        self._by_name: dict[str, dict[int, Schema]] = {}
        for schema in schemas:
            self._index(schema)

    @classmethod
    def load(cls, root: Path | None = None) -> Catalog:
        """Load every ``<Record>.v<N>.avsc`` below ``root`` (default: the shipped schemas)."""
        base = root or schema_root()
        found = []
        for path in sorted(base.rglob("*.avsc")):
            match = _FILE.match(path.name)
            if not match:
                raise SchemaError(f"schema file {path.name} is not named <Record>.v<N>.avsc", path=path)
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise SchemaError(f"{path} is not JSON: {exc}", path=path) from exc
            schema = _build(raw, version=int(match["version"]), path=path)
            if schema.name.rsplit(".", 1)[-1] != match["record"]:
                raise SchemaError(f"{path.name} defines {schema.name}", path=path, hint="name the file after its record")
            found.append(schema)
        return cls(found)

    def _index(self, schema: Schema) -> Schema:
        known = self._by_fp.get(schema.fingerprint)
        if known is not None:
            return known
        versions = self._by_name.setdefault(schema.name, {})
        if schema.version in versions and versions[schema.version].fingerprint != schema.fingerprint:
            raise SchemaError(
                f"{schema.name} v{schema.version} is defined twice with different content",
                hint="give the changed schema a new version number",
            )
        versions.setdefault(schema.version, schema)
        self._by_fp[schema.fingerprint] = schema
        return schema

    def add(self, raw: Mapping[str, Any], *, version: int) -> Schema:
        """Add a (historic) writer schema, e.g. read from the catalog topic."""
        return self._index(_build(raw, version=version))

    def add_catalog_record(self, value: bytes) -> Schema:
        """Add the schema of one catalog-topic record (see :meth:`Schema.to_catalog_record`)."""
        try:
            doc = json.loads(value)
            schema = self.add(doc["schema"], version=int(doc["version"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"malformed catalog record: {exc}") from exc
        if schema.fingerprint.hex() != doc.get("fingerprint"):
            raise SchemaError(f"catalog record for {schema.name} announces a wrong fingerprint")
        return schema

    def by_fingerprint(self, fp: bytes) -> Schema | None:
        return self._by_fp.get(bytes(fp))

    def versions(self, name: str) -> list[Schema]:
        """All versions of ``name``, oldest first."""
        versions = self._by_name.get(name)
        if not versions:
            raise UnknownSchemaError(f"no schema named {name!r}", hint="run `bus schemas list`")
        return [versions[v] for v in sorted(versions)]

    def latest(self, name: str) -> Schema:
        """The newest version of ``name`` (the reader schema of this process)."""
        return self.versions(name)[-1]

    def get(self, name: str, version: int | None = None) -> Schema:
        if version is None:
            return self.latest(name)
        for schema in self.versions(name):
            if schema.version == version:
                return schema
        raise UnknownSchemaError(f"{name} has no version {version}")

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __iter__(self) -> Iterator[Schema]:
        for name in self.names():
            yield from self.versions(name)

    def __len__(self) -> int:
        return len(self._by_fp)


_DEFAULT: Catalog | None = None


def default_catalog() -> Catalog:
    """The catalog of the shipped schemas, loaded once per process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Catalog.load()
    return _DEFAULT


def from_json_value(schema: Any, value: Any, named: dict[str, Any] | None = None) -> Any:
    """Turn a JSON value (as printed by ``bus adapt``) back into the Python value Avro expects.

    Dates and timestamps come back from ISO 8601 strings, bytes from hex; unions are resolved
    by trying each branch. ``schema`` is a parsed schema (or a part of one).
    """
    named = {} if named is None else named
    if isinstance(schema, str):
        if schema in named:
            return from_json_value(named[schema], value, named)
        if schema in ("bytes", "fixed") and isinstance(value, str):
            return bytes.fromhex(value)
        return value
    if isinstance(schema, list):
        if value is None and "null" in schema:
            return None
        branches = [b for b in schema if b != "null"]
        if len(branches) == 1:  # the pivots' optional fields: ["null", T]
            return from_json_value(branches[0], value, named)
        for branch in branches:
            try:
                converted = from_json_value(branch, value, named)
                parsed = fastavro.parse_schema(branch, named_schemas=dict(named), _force=True)
                if fastavro.validation.validate(converted, parsed, raise_errors=False):
                    return converted
            except (ValueError, TypeError, KeyError, SchemaParseException):
                continue
        return value
    if not isinstance(schema, dict):
        return value
    kind = schema.get("type")
    if "name" in schema and kind in ("record", "enum", "fixed"):
        named.setdefault(schema["name"], schema)
    logical = schema.get("logicalType")
    if logical == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if logical in ("timestamp-millis", "timestamp-micros") and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    if kind == "record" and isinstance(value, Mapping):
        return {f["name"]: from_json_value(f["type"], value.get(f["name"], f.get("default")), named)
                for f in schema["fields"] if f["name"] in value or "default" in f}
    if kind == "array" and isinstance(value, list):
        return [from_json_value(schema["items"], v, named) for v in value]
    if kind == "map" and isinstance(value, Mapping):
        return {k: from_json_value(schema["values"], v, named) for k, v in value.items()}
    if kind in ("bytes", "fixed") and isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            return base64.b64decode(value)
    if isinstance(kind, dict | list):
        return from_json_value(kind, value, named)
    return value
