"""Shared helpers of the invoice conformance tests: which corpus samples exist, the pivot schema."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import fastavro

ROOT = Path(__file__).resolve().parents[2]
UBL_SAMPLES = ("invoices/en16931-ubl", "invoices/fr-ctc")
CII_SAMPLES = ("invoices/en16931-cii", "invoices/factur-x")


def samples(corpus: Path, folders: tuple[str, ...], suffixes: tuple[str, ...] = (".xml", ".XML")) -> list[Path]:
    """Every sample file directly under the given corpus folders."""
    return sorted(p for folder in folders for p in (corpus / folder).iterdir() if p.is_file() and p.suffix in suffixes)


@functools.cache
def invoice_schema() -> Any:
    """The parsed Avro schema of the invoice pivot."""
    with (ROOT / "schemas" / "avro" / "invoices" / "Invoice.v1.avsc").open(encoding="utf-8") as handle:
        return fastavro.parse_schema(json.load(handle))


def assert_avro_valid(data: Any) -> None:
    """Raise when ``data`` does not fit the Invoice.v1 schema."""
    fastavro.validation.validate(dict(data), invoice_schema(), raise_errors=True)
