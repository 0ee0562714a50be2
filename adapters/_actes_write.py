"""Writers of the ACTES messages the bus emits: the act message (actes:Acte, 1-1) and its
transmission envelope (actes:EnveloppeCLMISILL), plus the prefecture-side envelope
(actes:EnveloppeMISILLCL) when an ActEnvelope pivot is written back.

Writers are strict: every value is checked against the v1.1 XSD constraint it must meet
before a byte is written, and a breach raises :class:`NonConformantError` naming the pivot
field. The output is ISO-8859-1, as the ACTES platforms exchange it; characters outside it
are written as character references, so nothing is lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from ._actes_common import (
    ACTES_NS,
    DEPARTMENT_RE,
    INSEE_NS,
    MESSAGE_CODES,
    NUMBER_RE,
    SIREN_RE,
    act_id,
    as_date,
    message_file_name,
    parse_act_id,
)

__all__ = ["act_message_name", "write_act", "write_envelope", "write_envelope_pivot"]

_NSMAP = {"actes": ACTES_NS, "insee": INSEE_NS}
# The XSD's Email type, anchored.
_EMAIL_RE = re.compile(r"^[_a-zA-Z0-9\-]+(\.[_a-zA-Z0-9\-]+)*@[a-zA-Z0-9\-]+(\.[a-zA-Z0-9\-]+)*\.[a-zA-Z]{2,6}$")
_ARRONDISSEMENT_RE = re.compile(r"^[0-9]$")
_COLLECTIVITY_NATURE_RE = re.compile(r"^[0-9]{2}$")


def _a(local: str) -> str:
    return f"{{{ACTES_NS}}}{local}"


def _bad(field: str, message: str, rule: str = "XSD") -> NonConformantError:
    return NonConformantError(
        f"pivot field {field}: {message}",
        rule=rule,
        xpath=field,
        hint="fix the pivot value so the ACTES message it becomes validates against actesv1_1.xsd",
    )


def _get(data: Mapping[str, Any], field: str, *, required: bool = True) -> Any:
    value = data.get(field)
    if required and (value is None or value == ""):
        raise _bad(field, "is required to write the ACTES message", rule="ACTES-REQUIRED")
    return value


def _records(data: Mapping[str, Any], field: str) -> list[Mapping[str, Any]]:
    """A list-of-records pivot field (documents, forms); absent means empty."""
    value = data.get(field)
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
        raise _bad(field, "must be a list of records")
    return list(value)


def _strings(data: Mapping[str, Any], field: str) -> list[str]:
    value = data.get(field)
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _bad(field, "must be a list of strings")
    return list(value)


def _record(data: Mapping[str, Any], field: str) -> Mapping[str, Any] | None:
    value = data.get(field)
    if value is not None and not isinstance(value, Mapping):
        raise _bad(field, "must be a record")
    return value


def _check(field: str, value: Any, pattern: re.Pattern[str], what: str) -> str:
    text = str(value).strip()
    if not pattern.match(text):
        raise _bad(field, f"{text!r} is not {what}")
    return text


def _sub(parent: etree._Element, local: str, text: str | None = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, _a(local))
    for key, value in attrs.items():
        node.set(_a(key) if key != "SIREN" else f"{{{INSEE_NS}}}SIREN", value)
    if text is not None:
        try:
            node.text = text
        except ValueError as exc:  # control characters cannot appear in XML 1.0
            raise _bad(local, f"cannot be written as XML text: {exc}") from exc
    return node


def _file(parent: etree._Element, local: str, name: Any, field: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise _bad(field, "a file name is required")
    holder = _sub(parent, local)
    _sub(holder, "NomFichier", name)


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1", pretty_print=True)


def resolved_act_id(data: Mapping[str, Any]) -> str:
    """The pivot's ``act_id`` when it is an ACTES @IDActe, else the one its parts build."""
    given = data.get("act_id")
    if isinstance(given, str) and parse_act_id(given):
        return given.strip()
    return act_id(
        _get(data, "siren"),
        _get(data, "department"),
        _get(data, "decision_date"),
        _get(data, "number"),
        _get(data, "nature_code"),
    )


def act_message_name(data: Mapping[str, Any]) -> str:
    """The ACTES file name of the act message of an Act pivot (``<IDActe>-1-1_0.xml``)."""
    return message_file_name(resolved_act_id(data), MESSAGE_CODES["Acte"])


def write_act(data: Mapping[str, Any]) -> bytes:
    """The actes:Acte message (1-1) of an ``fr.dcant.acts.Act`` pivot."""
    number = _check("number", _get(data, "number"), NUMBER_RE, "an ACTES NumeroInterne (15 letters, digits, '-', '_')")
    if len(number) > 15:
        raise _bad("number", f"{number!r} is longer than 15 characters")
    decision = as_date(_get(data, "decision_date"), what="decision_date", xpath="decision_date")
    nature = _get(data, "nature_code")
    if isinstance(nature, bool) or not isinstance(nature, int):
        raise _bad("nature_code", f"{nature!r} is not an integer")
    codes = data.get("matiere_codes")
    if not isinstance(codes, list | tuple) or not 2 <= len(codes) <= 5 or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
        raise _bad("matiere_codes", f"{codes!r}: ACTES needs 2 to 5 integer matière codes (CodeMatiere1..5)")
    title = _get(data, "object")
    if not isinstance(title, str) or len(title) > 500:
        raise _bad("object", "must be text of 500 characters at most (actes:Objet)")
    classification = as_date(_get(data, "classification_date"), what="classification_date", xpath="classification_date")
    documents = _records(data, "documents")
    mains = [d for d in documents if d.get("role") == "MAIN"]
    annexes = [d for d in documents if d.get("role") == "ANNEX"]
    if len(mains) != 1 or len(mains) + len(annexes) != len(documents):
        raise _bad("documents", "exactly one MAIN document is required, every other document must be an ANNEX")

    root = etree.Element(_a("Acte"), nsmap=_NSMAP)
    root.set(_a("Date"), decision.isoformat())
    root.set(_a("NumeroInterne"), number)
    root.set(_a("CodeNatureActe"), str(nature))
    for level, code in enumerate(codes, start=1):
        _sub(root, f"CodeMatiere{level}", CodeMatiere=str(code))
    _sub(root, "Objet", title)
    previous = data.get("previous_act_id")
    if previous:
        if not parse_act_id(str(previous)):
            raise _bad("previous_act_id", f"{previous!r} is not an ACTES @IDActe")
        _sub(root, "PrecedentIdentifiantActe", IDActe=str(previous).strip())
    _sub(root, "ClassificationDateVersion", classification.isoformat())
    _file(root, "Document", mains[0].get("file_name"), "documents[MAIN].file_name")
    holder = _sub(root, "Annexes", Nombre=str(len(annexes)))
    for annex in annexes:
        _file(holder, "Annexe", annex.get("file_name"), "documents[ANNEX].file_name")
    return _serialise(root)


def _referent(parent: etree._Element, referent: Mapping[str, Any] | None, field: str) -> None:
    if not referent or not any(referent.get(k) for k in ("name", "phone", "email")):
        return
    node = _sub(parent, "Referent")
    if referent.get("name"):
        _sub(node, "Nom", str(referent["name"]))
    if referent.get("phone"):
        _sub(node, "Telephone", str(referent["phone"]))
    if referent.get("email"):
        _sub(node, "Email", _check(f"{field}.email", referent["email"], _EMAIL_RE, "an e-mail address"))


def _forms(parent: etree._Element, names: Sequence[str]) -> None:
    if not names:
        raise _bad("forms", "an envelope lists at least one message file (actes:FormulairesEnvoyes)")
    holder = _sub(parent, "FormulairesEnvoyes")
    for name in names:
        _file(holder, "Formulaire", name, "forms.file_name")


def _collectivity_envelope(
    siren: Any, department: Any, arrondissement: Any, nature: Any,
    referent: Mapping[str, Any] | None, addresses: Sequence[Any], forms: Sequence[str],
    fields: tuple[str, str, str, str],
) -> bytes:
    root = etree.Element(_a("EnveloppeCLMISILL"), nsmap=_NSMAP)
    emitter = _sub(root, "Emetteur")
    _sub(
        emitter,
        "IDCL",
        SIREN=_check(fields[0], siren, SIREN_RE, "a 9-digit SIREN"),
        Departement=_check("department", department, DEPARTMENT_RE, "an ACTES department (034, 02A)"),
        Arrondissement=_check("arrondissement", arrondissement, _ARRONDISSEMENT_RE, "a one-digit arrondissement"),
        Nature=_check("collectivity_nature", nature, _COLLECTIVITY_NATURE_RE, "a two-digit nature de collectivité"),
    )
    _referent(emitter, referent, "referent")
    if not addresses:
        raise _bad("return_addresses", "the envelope needs at least one return address (actes:AdressesRetour)", rule="ACTES-REQUIRED")
    returns = _sub(root, "AdressesRetour")
    for address in addresses:
        _sub(returns, "Email", _check("return_addresses", address, _EMAIL_RE, "an e-mail address"))
    _forms(root, forms)
    return _serialise(root)


def write_envelope(data: Mapping[str, Any]) -> bytes:
    """The actes:EnveloppeCLMISILL carrying the act message of an ``fr.dcant.acts.Act`` pivot."""
    return _collectivity_envelope(
        _get(data, "siren"),
        _get(data, "department"),
        _get(data, "arrondissement"),
        _get(data, "collectivity_nature"),
        _record(data, "referent"),
        _strings(data, "return_addresses"),
        [act_message_name(data)],
        ("siren", "department", "arrondissement", "collectivity_nature"),
    )


def write_envelope_pivot(data: Mapping[str, Any]) -> bytes:
    """The envelope of an ``fr.dcant.acts.ActEnvelope`` pivot, in its direction."""
    forms = [str(f.get("file_name") or "") for f in _records(data, "forms")]
    if data.get("direction") == "COLLECTIVITY_TO_PREFECTURE":
        return _collectivity_envelope(
            _get(data, "emitter_siren"),
            _get(data, "department"),
            _get(data, "arrondissement"),
            _get(data, "collectivity_nature"),
            _record(data, "referent"),
            _strings(data, "return_addresses"),
            forms,
            ("emitter_siren", "department", "arrondissement", "collectivity_nature"),
        )
    if data.get("direction") != "PREFECTURE_TO_COLLECTIVITY":
        raise _bad("direction", f"{data.get('direction')!r} is not COLLECTIVITY_TO_PREFECTURE or PREFECTURE_TO_COLLECTIVITY")
    kinds = {"SGAR": "IDSGAR", "PREFECTURE": "IDPref", "SUB_PREFECTURE": "IDSousPref"}
    kind = data.get("emitter_kind")
    if kind not in kinds:
        raise _bad("emitter_kind", f"{kind!r}: a prefecture-side envelope is emitted by SGAR, PREFECTURE or SUB_PREFECTURE")
    root = etree.Element(_a("EnveloppeMISILLCL"), nsmap=_NSMAP)
    emitter = _sub(root, "Emetteur")
    attrs = {"Departement": _check("department", _get(data, "department"), DEPARTMENT_RE, "an ACTES department")}
    if kind == "SUB_PREFECTURE":
        attrs["Arrondissement"] = _check("arrondissement", _get(data, "arrondissement"), _ARRONDISSEMENT_RE, "a one-digit arrondissement")
    _sub(emitter, kinds[kind], **attrs)
    _referent(emitter, _record(data, "referent"), "referent")
    _forms(root, forms)
    _sub(root, "Destinataire", SIREN=_check("recipient_siren", _get(data, "recipient_siren"), SIREN_RE, "a 9-digit SIREN"))
    return _serialise(root)
