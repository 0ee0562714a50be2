"""DECP v2 JSON Schema (draft-07) validation through the ``jsonschema`` library.

Each violation becomes a :class:`Finding` whose rule is ``DECP-<keyword>`` (the JSON Schema
keyword that failed: ``required``, ``pattern``, ``enum``...) and whose location is a JSON
Pointer, so a reader knows which constraint of the official schema failed and where.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema

from bus._errors import ConfigurationError

from ._base import Finding

__all__ = ["check", "load_schema"]


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, Any]:
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the DECP JSON schema {path}: {exc}") from exc
    return schema


def load_schema(schema_dir: Path | str, relative: str) -> dict[str, Any]:
    """The parsed JSON schema at ``schema_dir/relative``, read once per process."""
    path = (Path(schema_dir) / relative).resolve()
    if not path.is_file():
        raise ConfigurationError(
            f"DECP JSON schema not found: {path}",
            hint=(
                "fetch schema_decp_v2.0.3.json from github.com/139bercy/format-commande-publique and put it "
                f"under {path.parent}"
            ),
        )
    return _load(path)


def check(instance: Any, schema: dict[str, Any]) -> list[Finding]:
    """Every violation of ``schema`` by ``instance`` (an already parsed JSON value)."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    findings = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: (list(e.absolute_path), e.validator)):
        pointer = "/" + "/".join(str(p) for p in error.absolute_path)
        findings.append(Finding(rule=f"DECP-{error.validator}", location=pointer, message=error.message[:300]))
    return findings


@functools.lru_cache(maxsize=4)
def _validator(schema_json: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(schema_json))
