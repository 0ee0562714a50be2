"""Official Schematron rules, run as published, with Saxon (``saxonche``, XSLT 3).

The EN 16931 rules come compiled to XSLT by CEN (``phive-rules-en16931``, resolved by
:mod:`bus._packages`); rules published as ``.sch`` (the French CTC rules, BR-FR; the eForms SDK,
see :mod:`adapters._eforms_sdk`) are compiled here with SchXslt (include, expand,
compile-for-svrl), once per process. Every failed assert and successful report of the SVRL
becomes a :class:`Finding` with the rule id, its flag or role (``fatal`` and ``ERROR`` are fatal;
``warning``, ``information`` and ``WARN`` are warnings) and the XPath location the rule gives. A rule that
cannot be evaluated on the document (``xs:decimal("abc")``: a value the XSD refuses too) stops the
run with one fatal ``SCHEMATRON`` finding; a package that does not compile is a ConfigurationError.

Bad input never reaches Saxon: callers pass a tree the hardened parser
(:func:`adapters._xml.parse_xml`) accepted, and Saxon gets it re-serialised (no DOCTYPE, no
entity). The processor that runs rules has ``allowedProtocols`` empty, so neither a document
nor a stylesheet can make it read a file or a URL (``document()``, ``unparsed-text()``,
``xsl:include``): stylesheets are handed over as text. Only the SchXslt compiler, which reads
its own modules from the resolved package, may read ``file:`` URIs, and it sees only ``.sch``
files from the package directory, never a document.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from lxml import etree

from bus._errors import ConfigurationError

from ._base import Finding

__all__ = ["EN16931_XSLT", "compile_expanded", "compile_schematron", "expand_schematron", "official_findings",
           "schematron_findings"]

_SVRL = "http://purl.oclc.org/dsdl/svrl"
_ALLOWED_PROTOCOLS = "http://saxon.sf.net/feature/allowedProtocols"
_SCHXSLT_STEPS = ("include.xsl", "expand.xsl", "compile-for-svrl.xsl")
#: The CEN EN 16931 rules of each syntax under the resolved packages' root (see bus._packages).
EN16931_XSLT = {"ubl": "invoices/en16931/ubl/EN16931-UBL-validation.xslt",
                "cii": "invoices/en16931/cii/EN16931-CII-validation.xslt"}
SCHXSLT = "tools/schxslt/xslt/2.0"
_LOCK = threading.Lock()  # saxonche objects are not documented as thread-safe


@functools.cache
def _processors() -> tuple[object, object]:
    """(rules processor with every protocol refused, compiler processor reading local files)."""
    try:
        from saxonche import PySaxonProcessor
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigurationError("the XSLT 3 processor saxonche is not installed",
                                 hint="run `make venv` (pip install saxonche)") from exc
    rules = PySaxonProcessor(license=False)
    rules.set_configuration_property(_ALLOWED_PROTOCOLS, "")
    compiler = PySaxonProcessor(license=False)
    compiler.set_configuration_property(_ALLOWED_PROTOCOLS, "file")
    return rules, compiler


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Saxon prints a stack trace on stderr for every dynamic error it also raises; a command prints one line.

    Held under ``_LOCK``; another thread's stderr output in that window is lost, a price worth the one-line rule.
    """
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _saxon_error(what: str, exc: Exception) -> ConfigurationError:
    return ConfigurationError(f"{what}: {str(exc).strip()[:300]}",
                              hint="re-resolve the official packages (delete the official-* folder of BUS_CACHE_DIR)")


@functools.cache
def compile_schematron(sch: Path, schxslt: Path) -> str:
    """The XSLT (SVRL output) SchXslt compiles from the schema ``sch``; ``schxslt`` is its xslt/2.0."""
    return _schxslt(sch, schxslt, _SCHXSLT_STEPS)


def expand_schematron(sch: Path, schxslt: Path) -> str:
    """The schema ``sch`` with its includes and abstract patterns resolved (SchXslt include, expand)."""
    return _schxslt(sch, schxslt, _SCHXSLT_STEPS[:2])


def compile_expanded(schema: str, schxslt: Path, phase: str) -> str:
    """The XSLT (SVRL output) of the ``phase`` of an expanded schema (text of :func:`expand_schematron`)."""
    return _schxslt(schema, schxslt, _SCHXSLT_STEPS[2:], phase=phase)


def _schxslt(source: Path | str, schxslt: Path, steps: tuple[str, ...], *, phase: str | None = None) -> str:
    """Run the SchXslt ``steps`` on the schema file (a Path) or text (a str) ``source``."""
    _, compiler = _processors()
    for path in ((source,) if isinstance(source, Path) else ()) + tuple(schxslt / step for step in steps):
        if not path.is_file():
            raise ConfigurationError(f"not found: {path}",
                                     hint="resolve the official packages (`make venv`) and check BUS_SCHEMA_DIR")
    what = source if isinstance(source, Path) else f"phase {phase} of an expanded schema"
    with _LOCK, _quiet_stderr():
        try:
            xslt = compiler.new_xslt30_processor()
            node = (compiler.parse_xml(xml_file_name=str(source)) if isinstance(source, Path)
                    else compiler.parse_xml(xml_text=source))
            for step in steps:
                executable = xslt.compile_stylesheet(stylesheet_file=str(schxslt / step))
                if phase is not None:
                    executable.set_parameter("phase", compiler.make_string_value(phase))
                node = executable.transform_to_value(xdm_node=node).head
            return str(node.to_string())
        except Exception as exc:  # saxonche raises its own PySaxonApiError
            raise _saxon_error(f"SchXslt cannot compile {what}", exc) from exc


@functools.cache
def _executable(path: Path, schxslt: Path | None, documents: tuple[tuple[str, Path], ...] = ()) -> object:
    if path.suffix == ".sch":
        if schxslt is None:
            raise ConfigurationError(f"{path} is Schematron source and no SchXslt compiler was given",
                                     hint="pass the resolved packages' tools/schxslt/xslt/2.0")
        text = compile_schematron(path, schxslt)
    elif path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        raise ConfigurationError(f"official rules not found: {path}",
                                 hint="resolve the official packages with `make venv` (Maven Central)")
    text, params = _documents_as_parameters(text, documents)
    rules, _ = _processors()
    with _LOCK, _quiet_stderr():
        try:
            executable = rules.new_xslt30_processor().compile_stylesheet(stylesheet_text=text)
            for param, source in params.items():
                executable.set_parameter(param, rules.parse_xml(xml_text=source.read_text(encoding="utf-8")))
            return executable
        except Exception as exc:
            raise _saxon_error(f"Saxon cannot compile the rules {path}", exc) from exc


def _documents_as_parameters(text: str, documents: tuple[tuple[str, Path], ...]) -> tuple[str, dict[str, Path]]:
    """Rewrite each ``document('NAME')`` of ``documents`` into a stylesheet parameter holding that file.

    The rules processor reads no file (every protocol refused); a package whose rules look up a
    code list of its own (Factur-X's ``FACTUR-X_EN16931_codedb.xml``) gets it parsed here instead.
    """
    params: dict[str, Path] = {}
    for index, (name, source) in enumerate(documents):
        call = f"document('{name}')"
        if call in text:
            param = f"bus-document-{index}"
            text = text.replace(call, f"${param}")
            params[param] = source
    if params:
        declarations = "".join(f'<xsl:param name="{p}"/>' for p in params)
        text = re.sub(r"(<xsl:stylesheet\b[^>]*>)", lambda m: m.group(1) + declarations, text, count=1)
    return text, params


def schematron_findings(rules: Path, root: etree._Element, *, schxslt: Path | None = None,
                        documents: tuple[tuple[str, Path], ...] = ()) -> list[Finding]:
    """Findings of the Schematron ``rules`` (compiled ``.xslt`` or ``.sch``) on a parsed tree.

    ``root`` must come from :func:`adapters._xml.parse_xml`; ``schxslt`` is needed for ``.sch``;
    ``documents`` names the files the rules read with ``document('NAME')`` (NAME, path).
    """
    executable = _executable(rules, schxslt, documents)
    processor, _ = _processors()
    text = etree.tostring(root, encoding="unicode")
    with _LOCK, _quiet_stderr():
        try:
            document = processor.parse_xml(xml_text=text)
            svrl = executable.transform_to_string(xdm_node=document)
        except Exception as exc:
            # A dynamic error of a rule (a value the XSD also refuses: xs:decimal("abc")...) is the
            # document's fault, not the package's: one fatal finding beside the XSD ones.
            message = " ".join(str(exc).split())[:300]
            return [Finding("SCHEMATRON", "/", f"{rules.name} cannot evaluate the document: {message}")]
    return list(_findings(etree.fromstring(svrl.encode("utf-8"), etree.XMLParser(resolve_entities=False, no_network=True))))


def official_findings(root: etree._Element, *, syntax: str, rules_dir: Path,
                      extra_rules: Iterable[Path] = ()) -> list[Finding]:
    """The EN 16931 rules of ``syntax`` (``ubl``/``cii``) under ``rules_dir``, then each of ``extra_rules``."""
    findings = schematron_findings(Path(rules_dir) / EN16931_XSLT[syntax], root)
    for rules in extra_rules:
        findings += schematron_findings(Path(rules), root, schxslt=Path(rules_dir) / SCHXSLT)
    return findings


def _findings(svrl: etree._Element) -> Iterable[Finding]:
    for outcome in svrl.iter(f"{{{_SVRL}}}failed-assert", f"{{{_SVRL}}}successful-report"):
        # CEN flags its asserts fatal/warning; the eForms SDK gives role ERROR/WARN (and flags some LAWFULNESS).
        marks = [m.lower() for m in (outcome.get("flag"), outcome.get("role")) if m]
        message = " ".join("".join(outcome.findtext(f"{{{_SVRL}}}text") or "").split())
        yield Finding(outcome.get("id") or "SCHEMATRON", outcome.get("location") or "/", message,
                      "fatal" if not marks or any(m in ("fatal", "error") for m in marks) else "warning")
