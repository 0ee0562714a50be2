"""Write SEDA 2.2/2.3 messages from pivot records: strict, so the output validates against the XSD.

Every check the official XSD would make on what the pivot can carry is made here first (ids are
xsd:ID and unique, references point at something, code values are in their lists, digests are
hex or base64, dates are in the XSD lexical space), so a bad pivot fails with a
:class:`NonConformantError` naming the pivot field instead of producing an invalid bordereau.
Element order follows the XSD sequences (MessageType, BusinessMessageType, ArchiveTransferType,
ManagementGroup, ObjectGroup).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from ._seda_common import NS_BY_VERSION, format_datetime, is_ncname, token

__all__ = ["SedaWriter"]

DESCRIPTION_LEVELS = frozenset(
    {"Fonds", "Subfonds", "Class", "Collection", "Series", "Subseries", "RecordGrp", "SubGrp", "File", "Item",
     "OtherLevel"}
)
LEGAL_STATUSES = frozenset({"Public Archive", "Private Archive", "Public and Private Archive"})
FINAL_ACTIONS = {
    "storage_rule": frozenset({"RestrictAccess", "Transfer", "Copy"}),
    "appraisal_rule": frozenset({"Keep", "Destroy"}),
}
# ManagementGroup sequence order.
RULE_ELEMENTS = (
    ("storage_rule", "StorageRule"),
    ("appraisal_rule", "AppraisalRule"),
    ("access_rule", "AccessRule"),
    ("dissemination_rule", "DisseminationRule"),
    ("reuse_rule", "ReuseRule"),
)
_TZ = r"(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))?"
# SEDA DateType = union of xsd:date, dateTime, gYear, gYearMonth, gMonth, gMonthDay, gDay.
_DATE_TYPE = re.compile(
    rf"(?P<date>\d{{4}}-\d{{2}}-\d{{2}})(T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?)?{_TZ}"
    rf"|(?!0000)\d{{4}}(-(0[1-9]|1[0-2]))?{_TZ}"
    rf"|--(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?{_TZ}"
    rf"|---(0[1-9]|[12]\d|3[01]){_TZ}"
)
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


class SedaWriter:
    """Builds one SEDA message of ``version`` (2.2 or 2.3) from a pivot record."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.ns = NS_BY_VERSION[version]

    # -- element building -------------------------------------------------------------------

    def _el(self, parent: etree._Element | None, local: str, text: str | None = None, **attrs: str) -> etree._Element:
        tag = f"{{{self.ns}}}{local}"
        element = etree.Element(tag, nsmap={None: self.ns}) if parent is None else etree.SubElement(parent, tag)
        try:
            for key, value in attrs.items():
                element.set(key, value)
            if text is not None:
                element.text = text
        except ValueError as exc:  # lxml refuses control characters XML 1.0 cannot carry
            raise NonConformantError(
                f"{local} holds characters XML cannot carry: {exc}", rule="SEDA-PIVOT", xpath=local,
                hint="remove control characters from the pivot value",
            ) from exc
        return element

    def _opt(self, parent: etree._Element, local: str, value: str | None, *, field: str, raw: bool = False) -> None:
        """Append ``local`` when the pivot has a value; tokens are collapsed, text kept as written."""
        if value is None:
            return
        if not isinstance(value, str):
            raise NonConformantError(f"{field} must be a string", rule="SEDA-PIVOT", xpath=field)
        written = value if raw else token(value)
        if written is None or not written.strip(" \t\n\r"):
            return
        self._el(parent, local, written)

    @staticmethod
    def _required(data: Mapping[str, Any], field: str) -> str:
        value = data.get(field)
        written = token(value) if isinstance(value, str) else None
        if written is None:
            raise NonConformantError(
                f"pivot field {field} is required and must be a non-empty string", rule="SEDA-PIVOT", xpath=field
            )
        return written

    def _head(self, root_local: str, data: Mapping[str, Any]) -> etree._Element:
        root = self._el(None, root_local)
        self._opt(root, "Comment", data.get("comment"), field="comment", raw=True)
        self._el(root, "Date", format_datetime(data.get("date"), field="date"))  # type: ignore[arg-type]
        self._el(root, "MessageIdentifier", self._required(data, "message_identifier"))
        return root

    def _organization(self, root: etree._Element, local: str, identifier: str) -> None:
        self._el(self._el(root, local), "Identifier", identifier)

    def _serialize(self, root: etree._Element) -> bytes:
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    # -- messages ---------------------------------------------------------------------------

    def archive_transfer_reply(self, data: Mapping[str, Any]) -> bytes:
        root = self._head("ArchiveTransferReply", data)
        self._opt(root, "ArchivalAgreement", data.get("archival_agreement"), field="archival_agreement")
        self._el(root, "CodeListVersions")
        self._opt(root, "ReplyCode", data.get("reply_code"), field="reply_code")
        self._el(root, "MessageRequestIdentifier", self._required(data, "message_request_identifier"))
        if data.get("grant_date") is not None:
            self._el(root, "GrantDate", format_datetime(data["grant_date"], field="grant_date"))
        self._organization(root, "ArchivalAgency", self._required(data, "archival_agency_identifier"))
        self._organization(root, "TransferringAgency", self._required(data, "transferring_agency_identifier"))
        return self._serialize(root)

    def acknowledgement(self, data: Mapping[str, Any]) -> bytes:
        root = self._head("Acknowledgement", data)
        self._el(root, "MessageReceivedIdentifier", self._required(data, "message_received_identifier"))
        self._organization(root, "Sender", self._required(data, "sender_identifier"))
        self._organization(root, "Receiver", self._required(data, "receiver_identifier"))
        return self._serialize(root)

    def archive_transfer(self, data: Mapping[str, Any]) -> bytes:
        units = _records(data, "archive_units")
        binaries = _records(data, "binary_data_objects")
        physicals = _records(data, "physical_data_objects")
        ids = _check_ids(units, binaries, physicals)

        root = self._head("ArchiveTransfer", data)
        self._opt(root, "ArchivalAgreement", data.get("archival_agreement"), field="archival_agreement")
        self._el(root, "CodeListVersions")
        package = self._el(root, "DataObjectPackage")
        self._data_objects(package, binaries, physicals)
        descriptive = self._el(package, "DescriptiveMetadata")
        self._archive_units(descriptive, units, ids)
        management = self._el(package, "ManagementMetadata")
        for field, local in (
            ("archival_profile", "ArchivalProfile"),
            ("service_level", "ServiceLevel"),
            ("acquisition_information", "AcquisitionInformation"),
            ("legal_status", "LegalStatus"),
            ("originating_agency_identifier", "OriginatingAgencyIdentifier"),
            ("submission_agency_identifier", "SubmissionAgencyIdentifier"),
        ):
            if field == "legal_status" and data.get(field) is not None and token(data[field]) not in LEGAL_STATUSES:
                raise NonConformantError(
                    f"legal_status {data[field]!r} is not one of {sorted(LEGAL_STATUSES)}", rule="XSD", xpath=field
                )
            self._opt(management, local, data.get(field), field=field)
        self._management(management, data.get("management"), field="management")
        self._organization(root, "ArchivalAgency", self._required(data, "archival_agency_identifier"))
        self._organization(root, "TransferringAgency", self._required(data, "transferring_agency_identifier"))
        return self._serialize(root)

    # -- parts of the transfer --------------------------------------------------------------

    def _data_objects(self, package: etree._Element, binaries: Sequence[Mapping[str, Any]],
                      physicals: Sequence[Mapping[str, Any]]) -> None:
        groups: dict[str | None, list[tuple[str, Mapping[str, Any]]]] = {}
        for kind, objects in (("BinaryDataObject", binaries), ("PhysicalDataObject", physicals)):
            for obj in objects:
                groups.setdefault(token(obj.get("data_object_group_id")), []).append((kind, obj))
        for group_id, members in groups.items():
            parent = package if group_id is None else self._el(package, "DataObjectGroup", id=group_id)
            for kind, obj in members:
                self._data_object(parent, kind, obj)

    def _data_object(self, parent: etree._Element, kind: str, obj: Mapping[str, Any]) -> None:
        element = self._el(parent, kind, id=token(obj["id"]) or "")
        self._opt(element, "DataObjectVersion", obj.get("data_object_version"), field=f"{kind}.data_object_version")
        if kind == "PhysicalDataObject":
            self._opt(element, "PhysicalId", obj.get("physical_id"), field="physical_id")
            return
        where = f"binary_data_objects[{obj['id']}]"
        digest, algorithm = token(obj.get("message_digest")), token(obj.get("digest_algorithm"))
        uri = token(obj.get("uri"))
        if (digest is None) != (algorithm is None) or (uri is not None and digest is None):
            raise NonConformantError(
                "a binary data object with a uri needs message_digest and digest_algorithm together",
                rule="XSD", xpath=f"{where}.message_digest",
            )
        self._opt(element, "Uri", uri, field=f"{where}.uri")
        if digest is not None:
            _check_digest(digest, where)
            self._el(element, "MessageDigest", digest, algorithm=algorithm or "")
        size = obj.get("size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise NonConformantError(f"size {size!r} must be a positive integer", rule="XSD", xpath=f"{where}.size")
            self._el(element, "Size", str(size))
        if any(obj.get(f) is not None for f in ("format_litteral", "mime_type", "format_id")):
            fmt = self._el(element, "FormatIdentification")
            self._opt(fmt, "FormatLitteral", obj.get("format_litteral"), field=f"{where}.format_litteral", raw=True)
            self._opt(fmt, "MimeType", obj.get("mime_type"), field=f"{where}.mime_type")
            self._opt(fmt, "FormatId", obj.get("format_id"), field=f"{where}.format_id")
        filename = obj.get("filename")
        if isinstance(filename, str) and filename.strip(" \t\n\r"):
            self._el(self._el(element, "FileInfo"), "Filename", filename)

    def _archive_units(self, descriptive: etree._Element, units: Sequence[Mapping[str, Any]], ids: dict[str, str]) -> None:
        written: dict[str, etree._Element] = {}
        pointers: set[str] = set()
        for unit in units:
            unit_id = token(unit["id"]) or ""
            where = f"archive_units[{unit_id}]"
            parent_id = token(unit.get("parent_id"))
            if parent_id is None:
                parent = descriptive
            elif parent_id in pointers:
                raise NonConformantError(
                    f"unit {unit_id} has parent {parent_id}, which only points to another unit (ArchiveUnitRefId)",
                    rule="XSD", xpath=f"{where}.parent_id",
                )
            elif parent_id in written:
                parent = written[parent_id]
            else:
                raise NonConformantError(
                    f"parent {parent_id} of unit {unit_id} is not listed before it",
                    rule="SEDA-TREE", xpath=f"{where}.parent_id", hint="list archive units parents first",
                )
            element = self._el(parent, "ArchiveUnit", id=unit_id)
            written[unit_id] = element
            ref = token(unit.get("archive_unit_ref_id"))
            if ref is not None:
                _check_ref(ids, ref, "ArchiveUnit", f"{where}.archive_unit_ref_id")
                self._el(element, "ArchiveUnitRefId", ref)
                pointers.add(unit_id)
                continue
            self._opt(element, "ArchiveUnitProfile", unit.get("archive_unit_profile"), field=f"{where}.archive_unit_profile")
            if unit.get("management") is not None:
                self._management(self._el(element, "Management"), unit["management"], field=f"{where}.management")
            self._content(self._el(element, "Content"), unit, where)
            for ref_field, local, kind in (
                ("data_object_refs", "DataObjectReferenceId", "DataObject"),
                ("data_object_group_refs", "DataObjectGroupReferenceId", "DataObjectGroup"),
            ):
                for target in unit.get(ref_field) or []:
                    target_id = token(target) or ""
                    _check_ref(ids, target_id, kind, f"{where}.{ref_field}")
                    self._el(self._el(element, "DataObjectReference"), local, target_id)

    def _content(self, content: etree._Element, unit: Mapping[str, Any], where: str) -> None:
        level = unit.get("description_level")
        if level is not None and token(level) not in DESCRIPTION_LEVELS:
            raise NonConformantError(
                f"description_level {level!r} is not one of {sorted(DESCRIPTION_LEVELS)}", rule="XSD",
                xpath=f"{where}.description_level",
            )
        self._opt(content, "DescriptionLevel", level, field=f"{where}.description_level")
        self._opt(content, "Title", unit.get("title"), field=f"{where}.title", raw=True)
        self._opt(content, "Description", unit.get("description"), field=f"{where}.description", raw=True)
        for field, local in (("created_date", "CreatedDate"), ("transacted_date", "TransactedDate"),
                             ("start_date", "StartDate"), ("end_date", "EndDate")):
            value = token(unit.get(field)) if isinstance(unit.get(field), str) else unit.get(field)
            if value is None:
                continue
            if not isinstance(value, str) or not _is_date_type(value):
                raise NonConformantError(
                    f"{field} {value!r} is not a SEDA DateType (date, dateTime, gYear, gYearMonth...)",
                    rule="XSD", xpath=f"{where}.{field}",
                )
            self._el(content, local, value)

    def _management(self, parent: etree._Element, rules: Mapping[str, Any] | None, *, field: str) -> None:
        if rules is None:
            return
        for key, local in RULE_ELEMENTS:
            group = rules.get(key)
            if group is not None:
                self._rule_group(parent, local, key, group, f"{field}.{key}")
        need = rules.get("need_authorization")
        if need is not None:
            self._el(parent, "NeedAuthorization", "true" if need else "false")

    def _rule_group(self, parent: etree._Element, local: str, key: str, group: Mapping[str, Any], where: str) -> None:
        element = self._el(parent, local)
        for rule in group.get("rules") or []:
            rule_id = token(rule.get("rule_id"))
            if rule_id is None:
                raise NonConformantError("rule_id must be a non-empty string", rule="XSD", xpath=f"{where}.rules")
            self._el(element, "Rule", rule_id)
            start = rule.get("start_date")
            if start is not None:
                if not isinstance(start, dt.date) or isinstance(start, dt.datetime):
                    raise NonConformantError("start_date must be a date", rule="SEDA-PIVOT", xpath=f"{where}.rules")
                self._el(element, "StartDate", start.isoformat())
        prevent = group.get("prevent_inheritance")
        non_rules = [t for r in group.get("ref_non_rule_ids") or [] if (t := token(r))]
        if prevent is not None and non_rules:
            raise NonConformantError(
                "prevent_inheritance and ref_non_rule_ids exclude each other (XSD choice)", rule="XSD",
                xpath=f"{where}.ref_non_rule_ids",
            )
        if prevent is not None:
            self._el(element, "PreventInheritance", "true" if prevent else "false")
        for rule_id in non_rules:
            self._el(element, "RefNonRuleId", rule_id)
        action = token(group.get("final_action"))
        allowed = FINAL_ACTIONS.get(key)
        if allowed is None:
            if action is not None:
                raise NonConformantError(f"{local} has no FinalAction", rule="XSD", xpath=f"{where}.final_action")
            return
        if action not in allowed:
            raise NonConformantError(
                f"{local} needs a final_action among {sorted(allowed)}, got {action!r}", rule="XSD",
                xpath=f"{where}.final_action",
            )
        self._el(element, "FinalAction", action)


def _records(data: Mapping[str, Any], field: str) -> list[Mapping[str, Any]]:
    value = data.get(field) or []
    if not isinstance(value, Sequence) or not all(isinstance(v, Mapping) for v in value):
        raise NonConformantError(f"{field} must be a list of records", rule="SEDA-PIVOT", xpath=field)
    return list(value)


def _check_ids(units: Sequence[Mapping[str, Any]], binaries: Sequence[Mapping[str, Any]],
               physicals: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Every xsd:ID of the package -> its kind; refuses invalid and duplicate ids."""
    ids: dict[str, str] = {}

    def declare(value: Any, kind: str, where: str, *, shared: bool = False) -> None:
        ident = token(value) if isinstance(value, str) else None
        if ident is None or not is_ncname(ident):
            raise NonConformantError(
                f"{where} {value!r} is not an xsd:ID (an XML name: letter or _, then letters, digits, . - _)",
                rule="XSD", xpath=where,
            )
        if ident in ids and not (shared and ids[ident] == kind):
            raise NonConformantError(f"id {ident!r} is used twice in the package", rule="XSD", xpath=where)
        ids[ident] = kind

    for field, objects in (("binary_data_objects", binaries), ("physical_data_objects", physicals)):
        for obj in objects:
            declare(obj.get("id"), "DataObject", f"{field}.id")
    for field, objects in (("binary_data_objects", binaries), ("physical_data_objects", physicals)):
        for obj in objects:
            if obj.get("data_object_group_id") is not None:
                declare(obj["data_object_group_id"], "DataObjectGroup", f"{field}.data_object_group_id", shared=True)
    for unit in units:
        declare(unit.get("id"), "ArchiveUnit", "archive_units.id")
    return ids


def _check_ref(ids: Mapping[str, str], target: str, kind: str, where: str) -> None:
    if ids.get(target) != kind:
        raise NonConformantError(f"{where} refers to {target!r}, which is no {kind} of the package", rule="XSD", xpath=where)


def _check_digest(digest: str, where: str) -> None:
    if _HEX.fullmatch(digest):
        return
    try:
        base64.b64decode(digest, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NonConformantError(
            "message_digest is neither hexadecimal nor base64", rule="XSD", xpath=f"{where}.message_digest"
        ) from exc


def _is_date_type(value: str) -> bool:
    match = _DATE_TYPE.fullmatch(value)
    if match is None:
        return False
    if match["date"] is not None:
        try:
            dt.date.fromisoformat(match["date"])
        except ValueError:
            return False
    return True
