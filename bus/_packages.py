"""Official validation packages resolved from Maven Central, out of the box.

:func:`ensure_official_packages` resolves ``docker/rules-pom.xml`` once with Maven (as the
embedded broker resolves its Kafka jars) and unpacks the files the bus validates with into
``CACHE_DIR/official-<phive rules version>-eforms-<SDK version>/`` (a cache resolved before a
version changed is resolved again), laid out like the corpus (and ``BUS_SCHEMA_DIR``):

====================================================  =========================================
``invoices/xsd/ubl-2.1/{maindoc,common}/``            OASIS UBL 2.1 XSDs (``ph-ubl21``)
``invoices/xsd/cii-d16b-uncoupled/CII/uncefact/``     UN/CEFACT CII D16B XSDs (``ph-cii-d16b``)
``invoices/en16931/{ubl,cii}/EN16931-*.xslt``         CEN EN 16931 schematron, compiled by CEN
                                                      (``phive-rules-en16931``)
``tools/schxslt/xslt/2.0/``                           SchXslt, to compile the BR-FR and eForms ``.sch``
``procurement/eforms/schemas/{maindoc,common}/``      UBL 2.3 / eForms XSDs (``eforms-sdk``)
``procurement/eforms/sdk-1.15/schematrons/static/``   eForms SDK static schematron (``eforms-sdk``;
                                                      its compiled stylesheets are cached beside it)
``procurement/eforms/sdk-1.15/translations/``         the French messages of its rules (``rule_fr.xml``)
====================================================  =========================================

ph-ubl21 strips the ``schemaLocation`` of the imports JAXB resolves by catalog (the core
component types, XML DSig, XAdES); :func:`_restore_ubl_imports` puts back the file names the
OASIS package uses (``CCTS_CCT_SchemaModule-2.1.xsd``...) and copies those modules beside the
others from their ``ph-xsds-*`` jars, so libxml2 compiles the package as OASIS publishes it.
Only entries under the listed prefixes are copied, each name checked to stay inside its
destination. Packages no registry carries (PES, ACTES, SEDA) stay under ``BUS_SCHEMA_DIR``.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from bus._errors import ConfigurationError
from bus._settings import BusSettings

__all__ = ["EFORMS_SDK_VERSION", "EN16931_RULES_VERSION", "PHIVE_RULES_VERSION", "RULES_POM", "ensure_official_packages"]

RULES_POM = Path(__file__).resolve().parent.parent / "docker" / "rules-pom.xml"
#: The phive-rules-en16931 release pinned in docker/rules-pom.xml.
PHIVE_RULES_VERSION = "4.3.7"
#: The CEN EN 16931 validation artefacts release inside it (phive ships every release since 1.0.0).
EN16931_RULES_VERSION = "1.3.15"
#: The eForms SDK release pinned in docker/rules-pom.xml (the corpus notices are eforms-sdk-1.15).
EFORMS_SDK_VERSION = "1.15.1"
_PACKAGES_DIR = f"official-{PHIVE_RULES_VERSION}-eforms-{EFORMS_SDK_VERSION}"
_UBL_COMMON = "invoices/xsd/ubl-2.1/common/"
# namespace imported without a location -> (its ph-xsds jar, the file name in the OASIS package)
_UBL_IMPORTS = {
    "urn:un:unece:uncefact:data:specification:CoreComponentTypeSchemaModule:2":
        ("ph-xsds-ccts-cct-schemamodule-", "CCTS_CCT_SchemaModule-2.1.xsd"),
    "http://www.w3.org/2000/09/xmldsig#": ("ph-xsds-xmldsig-", "UBL-xmldsig-core-schema-2.1.xsd"),
    "http://uri.etsi.org/01903/v1.3.2#": ("ph-xsds-xades132-", "UBL-XAdESv132-2.1.xsd"),
    "http://uri.etsi.org/01903/v1.4.1#": ("ph-xsds-xades141-", "UBL-XAdESv141-2.1.xsd"),
}
_IMPORT = re.compile(r'<xsd:import\s+namespace="([^"]+)"\s*/>')
_ARTIFACTS = ("phive-rules-en16931", "ph-ubl21", "ph-cii-d16b", "schxslt", "eforms-sdk", *(
    jar.rstrip("-") for jar, _ in _UBL_IMPORTS.values()))
# (jar name prefix, entry prefix in the jar, destination under the package root)
_UNPACK = (
    ("ph-ubl21-", "external/schemas/ubl21/", "invoices/xsd/ubl-2.1/"),
    ("ph-cii-d16b-", "external/schemas/d16b/", "invoices/xsd/cii-d16b-uncoupled/CII/uncefact/"),
    ("phive-rules-en16931-", f"external/schematron/{EN16931_RULES_VERSION}/", "invoices/en16931/"),
    ("schxslt-", "xslt/2.0/", "tools/schxslt/xslt/2.0/"),
    ("eforms-sdk-", "eforms-sdk/schemas/", "procurement/eforms/schemas/"),
    ("eforms-sdk-", "eforms-sdk/schematrons/static/", "procurement/eforms/sdk-1.15/schematrons/static/"),
    ("eforms-sdk-", "eforms-sdk/translations/rule_fr.xml", "procurement/eforms/sdk-1.15/translations/"),
)


def ensure_official_packages(settings: BusSettings) -> Path:
    """Resolve and unpack the official packages once; return their root (the corpus layout)."""
    root = Path(settings.cache_dir).expanduser().resolve() / _PACKAGES_DIR
    marker = root / ".resolved"
    if marker.is_file():
        return root
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConfigurationError(
            "Maven (mvn) is not on PATH; it resolves the official EN 16931 and eForms rules and their schemas",
            hint="install Maven 3.8+ (apt-get install maven), or run `make venv` on a machine that has it",
        )
    if not RULES_POM.is_file():
        raise ConfigurationError(f"the rules pom is missing at {RULES_POM}",
                                 hint="run the bus from a checkout (docker/rules-pom.xml)")
    root.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(root.parent / f"{_PACKAGES_DIR}.lock"):
        if marker.is_file():  # another process resolved while we waited
            return root
        staging = root.parent / f"{_PACKAGES_DIR}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        jars = staging / "jars"
        command = [mvn, "-q", "-B", "-f", str(RULES_POM), f"-Dphive.rules.version={PHIVE_RULES_VERSION}",
                   f"-Deforms.sdk.version={EFORMS_SDK_VERSION}",
                   "dependency:copy-dependencies", f"-DincludeArtifactIds={','.join(_ARTIFACTS)}",
                   f"-DoutputDirectory={jars}"]
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:]) or "(no output)"
            raise ConfigurationError(
                f"Maven could not resolve the official validation packages (exit {result.returncode}):\n{tail}",
                hint="check that Maven Central is reachable, or set BUS_SCHEMA_DIR to unpacked official packages",
            )
        for jar_prefix, entry_prefix, destination in _UNPACK:
            found = sorted(jars.glob(f"{jar_prefix}[0-9]*.jar"))
            if not found:
                raise ConfigurationError(f"Maven resolved no {jar_prefix}*.jar",
                                         hint=f"check {RULES_POM} and the Maven output in {jars}")
            _unpack(found[-1], entry_prefix, staging / destination)
        _restore_ubl_imports(jars, staging / _UBL_COMMON)
        shutil.rmtree(jars)
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
        marker.write_text(f"phive-rules-en16931 {PHIVE_RULES_VERSION}, EN 16931 rules {EN16931_RULES_VERSION}, "
                          f"eforms-sdk {EFORMS_SDK_VERSION}\n")
    return root


def _unpack(jar: Path, prefix: str, destination: Path) -> None:
    """Copy the jar's entries under ``prefix`` (a folder, ending in ``/``, or one file) to ``destination``,
    refusing names that leave it."""
    base = destination.resolve()
    with zipfile.ZipFile(jar) as archive:
        for info in archive.infolist():
            wanted = info.filename.startswith(prefix) if prefix.endswith("/") else info.filename == prefix
            if info.is_dir() or not wanted:
                continue
            relative = PurePosixPath(info.filename[len(prefix):] if prefix.endswith("/") else PurePosixPath(prefix).name)
            target = (base / relative).resolve()
            if ".." in relative.parts or not target.is_relative_to(base):
                raise ConfigurationError(f"{jar.name} holds an entry outside its folder: {info.filename}",
                                         hint="delete the jar from the Maven repository and resolve again")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)


def _restore_ubl_imports(jars: Path, common: Path) -> None:
    """Copy the imported modules in under their OASIS names and give every import its location."""
    for jar_prefix, file_name in _UBL_IMPORTS.values():
        found = sorted(jars.glob(f"{jar_prefix}[0-9]*.jar"))
        if not found:
            raise ConfigurationError(f"Maven resolved no {jar_prefix}*.jar",
                                     hint=f"check {RULES_POM} and the Maven output in {jars}")
        with zipfile.ZipFile(found[-1]) as archive:
            (entry,) = [n for n in archive.namelist() if n.startswith("schemas/") and n.endswith(".xsd")]
            (common / file_name).write_bytes(archive.read(entry))

    def locate(match: re.Match[str]) -> str:
        known = _UBL_IMPORTS.get(match.group(1))
        return match.group(0) if known is None else f'<xsd:import namespace="{match.group(1)}" schemaLocation="{known[1]}"/>'

    for xsd in common.glob("*.xsd"):
        text = xsd.read_text(encoding="utf-8")
        restored = _IMPORT.sub(locate, text)
        if restored != text:
            xsd.write_text(restored, encoding="utf-8")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
