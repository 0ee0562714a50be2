"""Readers of the ACTES transmission messages: the act (1-1), its acknowledgement (1-2), the
anomalies on an act (1-3) or an envelope, the cancellation (6-x) and the envelopes.

Each reader takes the parsed root and an :class:`ElementReader` and returns the pivot
(schema, event type, subject, data). Readers are tolerant: what the pivot does not need is
not checked, and deviations from the v1.1 XSD become pivot warnings.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from ._actes_common import (
    ACTES_NS,
    INSEE_NS,
    MESSAGE_CODES,
    NATURES,
    ActId,
    ElementReader,
    media_type,
    parse_act_id,
    parse_file_name,
)

__all__ = [
    "PivotParts",
    "read_act",
    "read_act_acknowledged",
    "read_act_anomaly",
    "read_cancellation",
    "read_envelope",
    "read_envelope_anomaly",
    "require_act_id",
]

#: (schema full name, CloudEvents type, subject, data)
PivotParts = tuple[str, str, str, dict[str, Any]]

_NS = "fr.dcant.acts"
_ACT_CHILDREN = (
    "CodeMatiere1",
    "CodeMatiere2",
    "CodeMatiere3",
    "CodeMatiere4",
    "CodeMatiere5",
    "Objet",
    "PrecedentIdentifiantActe",
    "ClassificationDateVersion",
    "Document",
    "Annexes",
)


def _file(r: ElementReader, element: etree._Element) -> tuple[str, bool]:
    """(NomFichier, signed) of an actes:FichierSigne."""
    name = r.text(element, "NomFichier")
    assert name is not None  # required=True raised otherwise
    return name, r.child(element, "Signature", required=False) is not None


def _act_data(r: ElementReader, element: etree._Element) -> dict[str, Any]:
    """The fields of an actes:DonneesActe (actes:Acte, actes:ActeRecu)."""
    r.expect_only(element, _ACT_CHILDREN)
    number = r.attr(element, "NumeroInterne")
    decision_date = r.date(element, "Date", attribute=True)
    nature_raw = r.attr(element, "CodeNatureActe")
    assert number is not None and nature_raw is not None
    codes: list[int] = []
    for level in range(1, 6):
        node = r.child(element, f"CodeMatiere{level}", required=False)
        if node is None:
            break
        raw = r.attr(node, "CodeMatiere")
        assert raw is not None
        codes.append(r.integer(raw, node, "CodeMatiere"))
    if len(codes) < 2:
        r.warn(f"{r.xpath(element)} has {len(codes)} CodeMatiere levels; ACTES v1.1 requires CodeMatiere1 and CodeMatiere2")
    objet_node = r.child(element, "Objet")
    assert objet_node is not None
    previous = r.child(element, "PrecedentIdentifiantActe", required=False)
    documents: list[dict[str, Any]] = []
    main = r.child(element, "Document", required=False)
    if main is None:
        r.warn(f"{r.xpath(element)} has no actes:Document (the act itself)")
    else:
        name, signed = _file(r, main)
        documents.append({"role": "MAIN", "file_name": name, "signed": signed})
    annexes = r.child(element, "Annexes", required=False)
    if annexes is not None:
        listed = r.children(annexes, "Annexe")
        for annex in listed:
            name, signed = _file(r, annex)
            documents.append({"role": "ANNEX", "file_name": name, "signed": signed})
        declared = r.attr(annexes, "Nombre", required=False)
        if declared is not None and declared != str(len(listed)):
            r.warn(f"{r.xpath(annexes)}/@Nombre says {declared} annexes, {len(listed)} are listed")
    return {
        "number": number,
        "decision_date": decision_date,
        "nature_code": r.integer(nature_raw, element, "CodeNatureActe"),
        "matiere_codes": codes,
        "object": (objet_node.text or "").strip(),
        "classification_date": r.date(element, "ClassificationDateVersion", required=False),
        "previous_act_id": r.attr(previous, "IDActe") if previous is not None else None,
        "documents": documents,
    }


def _received_act(r: ElementReader, element: etree._Element) -> dict[str, Any]:
    data = _act_data(r, element)
    return {
        "number": data["number"],
        "decision_date": data["decision_date"],
        "nature_code": data["nature_code"],
        "matiere_codes": data["matiere_codes"],
        "object": data["object"],
        "classification_date": data["classification_date"],
        "file_names": [d["file_name"] for d in data["documents"]],
    }


def _act_from_name(r: ElementReader, expected_code: str) -> ActId:
    """The act identifier encoded in the file name; the message alone carries no SIREN."""
    parsed = parse_file_name(r.document)
    if parsed is None:
        raise NonConformantError(
            "an ACTES act message does not carry the SIREN: it must be read under its ACTES file name",
            document=r.document,
            rule="ACTES-FILE-NAME",
            hint="pass the file's ACTES name (<dept>-<SIREN>-<YYYYMMDD>-<NumeroInterne>-<nature>-1-1_0.xml) as name",
        )
    if parsed.message_code != expected_code:
        r.warn(f"file name says message {parsed.message_code}, the root element is message {expected_code}")
    return parsed.act


def require_act_id(r: ElementReader, element: etree._Element) -> ActId:
    """The parsed ``@IDActe`` of ``element``; NonConformantError when absent or malformed."""
    raw = r.attr(element, "IDActe")
    assert raw is not None
    parsed = parse_act_id(raw)
    if parsed is None:
        raise r.error(f"IDActe {raw!r} breaks the ACTES pattern <dept>-<SIREN>-<YYYYMMDD>-<number>-<XX>", element, suffix="/@IDActe")
    return parsed


def read_act(r: ElementReader, root: etree._Element) -> PivotParts:
    """actes:Acte (message 1-1) -> fr.dcant.acts.Act."""
    from_name = _act_from_name(r, MESSAGE_CODES["Acte"])
    data = _act_data(r, root)
    if data["decision_date"] is None:  # pragma: no cover - attr(required) raised before
        raise r.error("missing decision date", root, suffix="/@Date")
    if data["classification_date"] is None:
        raise r.error("missing ClassificationDateVersion", root, suffix="/actes:ClassificationDateVersion")
    nature = NATURES.get(data["nature_code"])
    if data["number"] != from_name.number or data["decision_date"] != from_name.decision_date:
        r.warn("the file name's act identifier disagrees with @NumeroInterne/@Date; the message's values are kept")
    if nature is not None and nature[0] != from_name.nature_abbreviation:
        r.warn(f"the file name says nature {from_name.nature_abbreviation}, @CodeNatureActe says {nature[0]}")
    # The identifier the transmission platform assigned is the one in the file name; the
    # prefecture quotes it back in every later message, so it is kept even when it disagrees.
    act_id = str(from_name)
    pivot = {
        "act_id": act_id,
        "siren": from_name.siren,
        "department": from_name.department,
        "arrondissement": None,
        "collectivity_nature": None,
        "number": data["number"],
        "decision_date": data["decision_date"],
        "nature_code": data["nature_code"],
        "nature_label": nature[1] if nature else None,
        "nature_abbreviation": nature[0] if nature else None,
        "matiere_codes": data["matiere_codes"],
        "classification_code": ".".join(str(c) for c in data["matiere_codes"]),
        "object": data["object"],
        "classification_date": data["classification_date"],
        "previous_act_id": data["previous_act_id"],
        "documents": [
            {**d, "media_type": media_type(d["file_name"]), "content": None, "personal_data": None}
            for d in data["documents"]
        ],
        "personal_data": None,
        "referent": None,
        "return_addresses": [],
    }
    return f"{_NS}.Act", f"{_NS}.ActTransmitted", f"act:{from_name.siren}:{data['number']}", pivot


def read_act_acknowledged(r: ElementReader, root: etree._Element) -> PivotParts:
    """actes:ARActe (message 1-2) -> fr.dcant.acts.ActAcknowledged."""
    r.expect_only(root, ("ActeRecu", "ClassificationDateVersionEnCours"))
    identifier = require_act_id(r, root)
    reception = r.date(root, "DateReception", attribute=True)
    received = r.child(root, "ActeRecu", required=False)
    if received is None:
        # Some platforms write the act as actes:Acte inside the AR (not in the XSD).
        received = r.child(root, "Acte", required=False)
    data = {
        "act_id": str(identifier),
        "siren": identifier.siren,
        "department": identifier.department,
        "number": identifier.number,
        "reception_date": reception,
        "classification_version_in_force": r.date(root, "ClassificationDateVersionEnCours", required=False),
        "received_act": _received_act(r, received) if received is not None else None,
    }
    return f"{_NS}.ActAcknowledged", f"{_NS}.ActAcknowledged", identifier.subject, data


def read_act_anomaly(r: ElementReader, root: etree._Element) -> PivotParts:
    """actes:AnomalieActe (message 1-3) -> fr.dcant.acts.ActAnomaly (scope ACT)."""
    r.expect_only(root, ("Date", "Nature", "Detail", "ActeRecu", "ClassificationDateVersionEnCours"))
    from_name = _act_from_name(r, MESSAGE_CODES["AnomalieActe"])
    received_el = r.child(root, "ActeRecu", required=False)
    received = _received_act(r, received_el) if received_el is not None else None
    number = received["number"] if received else from_name.number
    data = {
        "scope": "ACT",
        "act_id": str(from_name),
        "siren": from_name.siren,
        "department": from_name.department,
        "number": number,
        "anomaly_date": r.date(root, "Date"),
        "nature_code": r.text(root, "Nature"),
        "detail": r.text(root, "Detail", required=False),
        "classification_version_in_force": r.date(root, "ClassificationDateVersionEnCours", required=False),
        "received_act": received,
        "received_forms": [],
    }
    return f"{_NS}.ActAnomaly", f"{_NS}.ActAnomalyReported", f"act:{from_name.siren}:{number}", data


def _referent(r: ElementReader, parent: etree._Element) -> dict[str, Any] | None:
    node = r.child(parent, "Referent", required=False)
    if node is None:
        return None
    return {
        "name": r.text(node, "Nom", required=False),
        "phone": r.text(node, "Telephone", required=False),
        "email": r.text(node, "Email", required=False),
    }


def _forms(r: ElementReader, parent: etree._Element) -> list[dict[str, Any]]:
    holder = r.child(parent, "FormulairesEnvoyes")
    assert holder is not None
    forms = []
    for form in r.children(holder, "Formulaire"):
        name, _signed = _file(r, form)
        parsed = parse_file_name(name)
        forms.append(
            {
                "file_name": name,
                "act_id": str(parsed.act) if parsed else None,
                "message_code": parsed.message_code if parsed else None,
            }
        )
    if not forms:
        r.warn(f"{r.xpath(holder)} lists no actes:Formulaire")
    return forms


def _collectivity(r: ElementReader, envelope: etree._Element) -> tuple[etree._Element, etree._Element]:
    emitter = r.child(envelope, "Emetteur")
    assert emitter is not None
    idcl = r.child(emitter, "IDCL")
    assert idcl is not None
    return emitter, idcl


def _subject(r: ElementReader, forms: list[dict[str, Any]], siren: str) -> str:
    for form in forms:
        if form["act_id"]:
            parsed = parse_act_id(form["act_id"])
            if parsed is not None:
                return parsed.subject
    r.warn("no form is named per the ACTES convention; the subject falls back to envelope:<SIREN>")
    return f"envelope:{siren}"


def read_envelope(r: ElementReader, root: etree._Element) -> PivotParts:
    """actes:EnveloppeCLMISILL / actes:EnveloppeMISILLCL -> fr.dcant.acts.ActEnvelope."""
    local = etree.QName(root).localname
    if local == "EnveloppeCLMISILL":
        r.expect_only(root, ("Emetteur", "AdressesRetour", "FormulairesEnvoyes"))
        emitter, idcl = _collectivity(r, root)
        siren = r.attr(idcl, "SIREN", ns=INSEE_NS)
        assert siren is not None
        returns = r.child(root, "AdressesRetour", required=False)
        addresses = [(e.text or "").strip() for e in r.children(returns, "Email")] if returns is not None else []
        forms = _forms(r, root)
        data = {
            "direction": "COLLECTIVITY_TO_PREFECTURE",
            "emitter_kind": "COLLECTIVITY",
            "emitter_siren": siren,
            "department": r.attr(idcl, "Departement"),
            "arrondissement": r.attr(idcl, "Arrondissement", required=False),
            "collectivity_nature": r.attr(idcl, "Nature", required=False),
            "recipient_siren": None,
            "referent": _referent(r, emitter),
            "return_addresses": [a for a in addresses if a],
            "forms": forms,
        }
        return f"{_NS}.ActEnvelope", f"{_NS}.ActEnvelopeReceived", _subject(r, forms, siren), data
    r.expect_only(root, ("Emetteur", "FormulairesEnvoyes", "Destinataire"))
    emitter = r.child(root, "Emetteur")
    assert emitter is not None
    kinds = {"IDSGAR": "SGAR", "IDPref": "PREFECTURE", "IDSousPref": "SUB_PREFECTURE"}
    found = [(kinds[etree.QName(c).localname], c) for c in emitter if isinstance(c.tag, str) and c.tag in {f"{{{ACTES_NS}}}{k}" for k in kinds}]
    if not found:
        raise r.error("the prefecture emitter (actes:IDSGAR, actes:IDPref or actes:IDSousPref) is missing", emitter)
    kind, ident = found[0]
    recipient_el = r.child(root, "Destinataire")
    assert recipient_el is not None
    recipient = r.attr(recipient_el, "SIREN", ns=INSEE_NS)
    assert recipient is not None
    forms = _forms(r, root)
    data = {
        "direction": "PREFECTURE_TO_COLLECTIVITY",
        "emitter_kind": kind,
        "emitter_siren": None,
        "department": r.attr(ident, "Departement"),
        "arrondissement": r.attr(ident, "Arrondissement", required=kind == "SUB_PREFECTURE"),
        "collectivity_nature": None,
        "recipient_siren": recipient,
        "referent": _referent(r, emitter),
        "return_addresses": [],
        "forms": forms,
    }
    return f"{_NS}.ActEnvelope", f"{_NS}.ActEnvelopeReceived", _subject(r, forms, recipient), data


def read_envelope_anomaly(r: ElementReader, root: etree._Element) -> PivotParts:
    """actes:AnomalieEnveloppe -> fr.dcant.acts.ActAnomaly (scope ENVELOPE)."""
    r.expect_only(root, ("Date", "Nature", "Detail", "EnveloppeRecue"))
    envelope = r.child(root, "EnveloppeRecue")
    assert envelope is not None
    _emitter, idcl = _collectivity(r, envelope)
    siren = r.attr(idcl, "SIREN", ns=INSEE_NS)
    assert siren is not None
    forms = _forms(r, envelope)
    subject = _subject(r, forms, siren)
    first = next((parse_act_id(f["act_id"]) for f in forms if f["act_id"]), None)
    data = {
        "scope": "ENVELOPE",
        "act_id": str(first) if first else None,
        "siren": siren,
        "department": r.attr(idcl, "Departement", required=False),
        "number": first.number if first else None,
        "anomaly_date": r.date(root, "Date"),
        "nature_code": r.text(root, "Nature"),
        "detail": r.text(root, "Detail", required=False),
        "classification_version_in_force": None,
        "received_act": None,
        "received_forms": [f["file_name"] for f in forms],
    }
    return f"{_NS}.ActAnomaly", f"{_NS}.ActAnomalyReported", subject, data


def read_cancellation(r: ElementReader, root: etree._Element) -> PivotParts:
    """actes:Annulation (6-1) / actes:ARAnnulation (6-2) -> fr.dcant.acts.ActCancelled."""
    r.expect_only(root, ())
    identifier = require_act_id(r, root)
    acknowledged = etree.QName(root).localname == "ARAnnulation"
    data = {
        "stage": "ACKNOWLEDGED" if acknowledged else "REQUESTED",
        "act_id": str(identifier),
        "siren": identifier.siren,
        "department": identifier.department,
        "number": identifier.number,
        "reception_date": r.date(root, "DateReception", attribute=True) if acknowledged else None,
    }
    return f"{_NS}.ActCancelled", f"{_NS}.ActCancelled", identifier.subject, data
