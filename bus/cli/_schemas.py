"""``bus schemas``: list, show and check the pivot schemas of the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from bus._catalog import Catalog, default_catalog
from bus._errors import IncompatibleSchemaError

from ._common import console, print_json

__all__ = ["register", "register_contract"]


def register(app: typer.Typer) -> None:
    schemas = typer.Typer(help="The Avro pivot schemas (schemas/avro/<family>/<Record>.v<N>.avsc).",
                          no_args_is_help=True)
    app.add_typer(schemas, name="schemas")

    @schemas.command("list")
    def list_cmd() -> None:
        """Every schema version with its fingerprint and declared compatibility."""
        table = Table("name", "version", "fingerprint (CRC-64-AVRO)", "compatibility", "file")
        for schema in default_catalog():
            table.add_row(schema.name, str(schema.version), schema.fingerprint.hex(), schema.compatibility,
                          str(schema.path.relative_to(schema.path.parents[2])) if schema.path else "")
        console.print(table)

    @schemas.command("show")
    def show(name: str = typer.Argument(..., help="full or short record name, e.g. Invoice"),
             version: int = typer.Option(None, help="a given version (default: the newest)")) -> None:
        """Print a schema as JSON."""
        catalog = default_catalog()
        full = _resolve(catalog, name)
        print(json.dumps(catalog.get(full, version).raw, indent=2, ensure_ascii=False))

    @schemas.command("check")
    def check(root: Path = typer.Option(None, help="schema folder (default: the shipped schemas)")) -> None:
        """Check that each schema's versions honour its declared compatibility (CI runs this)."""
        from bus._compat import check as check_versions

        catalog = Catalog.load(root) if root else default_catalog()
        failures = []
        for name in catalog.names():
            versions = catalog.versions(name)
            mode = versions[-1].compatibility
            for problem in check_versions([v.raw for v in versions], mode):
                failures.append(f"{name}: {mode}: {problem}")
        if failures:
            for line in failures:
                console.print(f"[red]✗[/] {line}")
            raise IncompatibleSchemaError(
                f"{len(failures)} compatibility problem(s), first: {failures[0]}")
        console.print(f"[green]✓[/] {len(catalog)} schema versions of {len(catalog.names())} records are compatible")


def _resolve(catalog: Catalog, name: str) -> str:
    if name in catalog.names():
        return name
    matches = [n for n in catalog.names() if n.rsplit(".", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    raise typer.BadParameter(f"unknown schema {name!r}; see `bus schemas list`")


def register_contract(app: typer.Typer) -> None:
    @app.command("asyncapi")
    def asyncapi_cmd(
        out: Path = typer.Option(None, "--out", "-o", help="write the whole contract (asyncapi.json, jsonschema/, "
                                                          "vectors/ from vectors/inputs/) under this folder"),
        check: Path = typer.Option(None, "--check", help="fail when the contract under this folder is stale"),
    ) -> None:
        """The contract for other languages: AsyncAPI 3 document (stdout), JSON Schemas, signing test vectors."""
        from bus._contract import asyncapi, check_contract, write_contract
        from bus._errors import ConfigurationError

        if check is not None:
            stale = check_contract(check)
            if stale:
                raise ConfigurationError(f"{len(stale)} contract file(s) differ from the sources, first {stale[0]}",
                                         hint=f"run `bus asyncapi --out {check}` and commit the result")
            console.print(f"[green]✓[/] the contract under {check} matches the schemas and topics")
        elif out is not None:
            written = write_contract(out)
            console.print(f"wrote {len(written)} file(s) under {out}")
        else:
            print_json(asyncapi())
