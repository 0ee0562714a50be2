"""``bus adapt``, ``bus export`` and ``bus validate``: native documents and pivots, offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import typer

from adapters import SIGNED_FORMATS, Pivot, adapter_for, detect, read_bounded, signature_options, to_json_value
from bus._catalog import default_catalog, from_json_value
from bus._errors import ConfigurationError, MalformedDocumentError, NonConformantError
from bus._packages import ensure_official_packages
from bus._settings import BusSettings

from ._common import console, print_json, settings

__all__ = ["OFFICIAL_RULES", "pivot_from_json", "pivot_to_json", "pivots_from_json", "pivots_of", "register", "validation_options"]


#: Formats whose business rules run as published (CEN EN 16931 schematron), with their BR-FR file.
OFFICIAL_RULES = {"ubl": "BR-FR-Flux2-Schematron-UBL.sch", "cii": "BR-FR-Flux2-Schematron-CII.sch"}
_FR_CTC = Path("invoices") / "fr-ctc" / "validation"
#: Formats whose XSDs and business rules come with the resolved packages (the folder of their XSDs).
_OFFICIAL_XSD = {"ubl": Path("invoices") / "xsd", "cii": Path("invoices") / "xsd",
                 "eforms": Path("procurement") / "eforms" / "schemas"}
#: The packages no registry carries, by family: named in the error when BUS_SCHEMA_DIR is unset.
_UNPUBLISHED = {"accounting": "the DGFiP PES V2 schemas (v5.17)", "acts": "the ACTES v1.1 schemas",
                "archives": "the SEDA 2.x schemas", "procurement": "the DECP and ESPD schemas",
                "invoices": "the Factur-X and CDAR schemas (FNFE-MPE)"}


def validation_options(fmt: str, family: str, user_dir: Path | None, fr_ctc: bool, s: BusSettings) -> dict[str, Any]:
    """The keyword arguments of ``validate``: schemas and rules from BUS_SCHEMA_DIR or the resolved packages.

    UBL, CII and eForms take their XSDs from ``user_dir`` when it holds them, else from the official
    packages resolved by Maven; the other formats need ``user_dir`` (their packages are on no registry).
    """
    if fmt not in _OFFICIAL_XSD:
        if user_dir is None:
            package = _UNPUBLISHED.get(family, "official schemas")
            raise ConfigurationError(f"{fmt} is validated against {package}, which no package registry publishes",
                                     hint="download them as README § 'Official rules and schemas' says and set "
                                          "BUS_SCHEMA_DIR to their folder")
        return {"schema_dir": user_dir}
    packages = ensure_official_packages(s)
    has_xsd = user_dir is not None and (Path(user_dir) / _OFFICIAL_XSD[fmt]).is_dir()
    options: dict[str, Any] = {"schema_dir": Path(user_dir) if has_xsd else packages, "rules_dir": packages}
    if fmt not in OFFICIAL_RULES:
        if fr_ctc:
            raise typer.BadParameter(f"--fr-ctc applies to {', '.join(sorted(OFFICIAL_RULES))}, not {fmt}")
        return options
    extra: tuple[Path, ...] = ()
    if fr_ctc:
        sch = Path(user_dir or ".") / _FR_CTC / OFFICIAL_RULES[fmt]
        if user_dir is None or not sch.is_file():
            raise ConfigurationError(f"the French CTC rules are not at {sch}",
                                     hint="unpack the FNFE-MPE BR-FR schematron as README § 'Official rules and "
                                          "schemas' says and set BUS_SCHEMA_DIR to that folder")
        extra = (sch,)
    return {**options, "extra_rules": extra}


def pivot_to_json(pivot: Pivot) -> dict:  # type: ignore[type-arg]
    return {"type": pivot.type, "schema": pivot.schema, "subject": pivot.subject, "format": pivot.format,
            "warnings": list(pivot.warnings), "data": to_json_value(pivot.data)}


def adapted(path: Path, fmt: str | None, s: BusSettings, *, trust: Path | None = None,
            require_signature: bool = False) -> tuple[ModuleType, list[Pivot]]:
    """The adapter of a native file and every pivot the file holds (a DECP package, a PES
    file or a SIRENE stock file hold several). ``trust`` and ``require_signature`` (given on the
    command line: an error for a format that signs nothing) and their settings go to the readers
    of ``adapters.SIGNED_FORMATS``."""
    data = read_bounded(path, max_bytes=s.max_document_bytes)
    module = adapter_for(fmt) if fmt else detect(data, name=str(path))
    if (trust or require_signature) and module.FORMAT not in SIGNED_FORMATS:
        raise typer.BadParameter(f"--trust-ca and --require-signature apply to {', '.join(sorted(SIGNED_FORMATS))}, "
                                 f"not {module.FORMAT}")
    options = signature_options(module.FORMAT, trust=trust or s.pes_trust_ca,
                                require_signature=require_signature or s.pes_require_signature)
    many = getattr(module, "to_pivots", None)
    return module, list(many(data, name=str(path), **options)) if many else [module.to_pivot(data, name=str(path))]


def pivots_of(path: Path, fmt: str | None, s: BusSettings) -> list[Pivot]:
    """Every pivot a native file holds (signatures checked as the settings say)."""
    return adapted(path, fmt, s)[1]


def pivots_from_json(path: Path) -> list[Pivot]:
    """The pivots of a file written by ``bus adapt``: JSON lines, one JSON object or a JSON array."""
    try:
        text = path.read_text(encoding="utf-8")
        try:
            docs = json.loads(text)
        except json.JSONDecodeError:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedDocumentError(f"not a pivot event JSON ({exc})", document=str(path),
                                     hint="give a file written by `bus adapt FILE > FILE.json`") from exc
    return [_pivot(doc, path) for doc in (docs if isinstance(docs, list) else [docs])]


def pivot_from_json(path: Path) -> Pivot:
    """Read one pivot event as ``bus adapt`` prints it, restoring Avro values (dates...)."""
    pivots = pivots_from_json(path)
    if len(pivots) != 1:
        raise MalformedDocumentError(f"the file holds {len(pivots)} pivot events, not one", document=str(path),
                                     hint="keep one line of the `bus adapt` output per file")
    return pivots[0]


def _pivot(doc: object, path: Path) -> Pivot:
    try:
        schema = default_catalog().latest(doc["schema"])  # type: ignore[index]
        data = from_json_value(schema.parsed, doc["data"])  # type: ignore[index]
        return Pivot(type=doc["type"], schema=doc["schema"], subject=doc["subject"], data=data,  # type: ignore[index]
                     format=doc.get("format", ""))  # type: ignore[attr-defined]
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedDocumentError(f"not a pivot event JSON ({type(exc).__name__}: {exc})", document=str(path),
                                     hint="give a file written by `bus adapt FILE > FILE.json`") from exc


def register(app: typer.Typer) -> None:
    @app.command("adapt")
    def adapt(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="native document"),
        fmt: str = typer.Option(None, "--format", "-f", help="native format (detected from the root element)"),
        terms: bool = typer.Option(False, "--terms", help="print the official terms (BT-n) instead of the pivot"),
        trust_ca: Path = typer.Option(None, "--trust-ca", dir_okay=False,
                                      help="PES_Aller: PEM file of the CAs trusted to issue signers' certificates "
                                           "(without it a signature is checked against the certificate it carries)"),
        require_signature: bool = typer.Option(False, "--require-signature",
                                               help="PES_Aller: refuse a file whose bordereaux are not signed"),
    ) -> None:
        """Print the pivot events of a native document as JSON lines (one per event the document holds).

        A PES_Aller's signatures are verified whenever present; a signature that does not verify
        fails the command.
        """
        s = settings()
        module, pivots = adapted(file, fmt, s, trust=trust_ca, require_signature=require_signature)
        if terms and not hasattr(module, "terms"):
            raise typer.BadParameter(f"format {module.FORMAT} has no term map")
        for pivot in pivots:
            print_json(to_json_value(module.terms(pivot)) if terms else pivot_to_json(pivot))

    @app.command("export")
    def export(
        fmt: str = typer.Argument(..., help="native format to write (ubl, cii, facturx, cdar, decp, eforms, pes-aller, actes, seda...)"),
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="pivot event JSON (from `bus adapt`)"),
        out: Path = typer.Option(None, "--out", "-o", help="output file (default: stdout)"),
        sign_cert: Path = typer.Option(None, "--sign-cert", exists=True, dir_okay=False,
                                       help="pes-aller: the signer's PEM certificate (then its chain): signs each "
                                            "bordereau (XAdES, DGFiP policy)"),
        sign_key: Path = typer.Option(None, "--sign-key", exists=True, dir_okay=False,
                                      help="pes-aller: the signer's PEM private key (BUS_KEY_PASSPHRASE when encrypted)"),
    ) -> None:
        """Write the native document of pivot events (several only where the format holds several)."""
        module = adapter_for(fmt)
        if not hasattr(module, "from_pivot"):
            raise typer.BadParameter(f"the bus does not write {fmt}")
        options: dict[str, Any] = {}
        if sign_cert or sign_key:
            if module.FORMAT not in SIGNED_FORMATS:
                raise typer.BadParameter(f"--sign-cert and --sign-key apply to {', '.join(sorted(SIGNED_FORMATS))}, not {fmt}")
            if not (sign_cert and sign_key):
                raise typer.BadParameter("signing needs both --sign-cert and --sign-key")
            secret = settings().key_passphrase
            options["signer"] = module.PesSigner.from_files(
                sign_cert, sign_key, passphrase=secret.get_secret_value().encode() if secret else None)
        pivots = pivots_from_json(file)
        if len(pivots) > 1 and not hasattr(module, "from_pivots"):
            raise typer.BadParameter(f"{file} holds {len(pivots)} pivot events and a {fmt} document holds one; "
                                     "give one line of `bus adapt` per file")
        native = module.from_pivots(pivots) if len(pivots) > 1 else module.from_pivot(pivots[0], **options)
        if out:
            out.write_bytes(native)
            console.print(f"wrote {out} ({len(native)} bytes)")
        else:
            sys.stdout.buffer.write(native)

    @app.command("rules")
    def rules() -> None:
        """Resolve the official validation packages (EN 16931 and eForms rules, UBL/CII/eForms XSDs) from Maven Central; print where."""
        print(ensure_official_packages(settings()))

    @app.command("validate")
    def validate(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="native document"),
        fmt: str = typer.Option(None, "--format", "-f", help="native format (detected when omitted)"),
        schema_dir: Path = typer.Option(None, help="official schemas root (default: BUS_SCHEMA_DIR)"),
        fr_ctc: bool = typer.Option(False, "--fr-ctc", help="also run the French CTC rules (BR-FR, UBL and CII; "
                                    "the .sch under <schema dir>/invoices/fr-ctc/validation)"),
    ) -> None:
        """Run the official XSD and business rules; list each failure with its rule and location.

        UBL and CII run the CEN EN 16931 schematron against the UBL 2.1 / CII D16B XSDs, eForms notices
        the eForms SDK's static schematron against its UBL 2.3 XSDs, all resolved from Maven Central
        into the cache (no setting needed); other formats need BUS_SCHEMA_DIR.
        """
        s = settings()
        data = read_bounded(file, max_bytes=s.max_document_bytes)
        module = adapter_for(fmt) if fmt else detect(data, name=str(file))
        if not hasattr(module, "validate"):
            raise typer.BadParameter(f"format {module.FORMAT} has no validation")
        findings = module.validate(data, name=str(file), **validation_options(
            module.FORMAT, module.FAMILY, schema_dir or s.schema_dir, fr_ctc, s))
        fatal = [f for f in findings if f.severity == "fatal"]
        for finding in findings:
            console.print(f"{'[red]✗' if finding.severity == 'fatal' else '[yellow]!'}[/] {finding}")
        if fatal:
            first = fatal[0]
            raise NonConformantError(f"{len(fatal)} rule(s) failed, first {first.rule} at {first.location}: "
                                     f"{first.message}", document=str(file), rule=first.rule, xpath=first.location)
        console.print(f"[green]✓[/] {file.name} is valid {module.FORMAT}")
