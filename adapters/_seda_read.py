"""Read SEDA 2.1/2.2/2.3 messages (ArchiveTransfer, ArchiveTransferReply, Acknowledgement) into pivot records.

The reader is tolerant, as the bus's readers are: real SIPs carry elements the XSD of their
version refuses (Vitam extensions, 2.2 elements in 2.1 manifests), and those are simply not
read. What the pivot needs and the XSD makes mandatory (identifiers, dates, agencies, ``id``
attributes) must be there, or :class:`NonConformantError` names the missing element.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from lxml import etree

from bus._errors import NonConformantError

from ._seda_common import parse_date, parse_datetime, token

__all__ = ["SedaReader"]

_RULE_CATEGORIES = {
    "StorageRule": "storage_rule",
    "AppraisalRule": "appraisal_rule",
    "AccessRule": "access_rule",
    "DisseminationRule": "dissemination_rule",
    "ReuseRule": "reuse_rule",
}
_MAX_SIZE = 2**63 - 1  # Avro long


def xpath_of(element: etree._Element) -> str:
    """A readable XPath of ``element`` (local names, positions only among same-named siblings)."""
    parts: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        local = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                local += f"[{same.index(node) + 1}]"
        parts.append(local)
        node = parent
    return "/" + "/".join(reversed(parts))


class SedaReader:
    """Reads one SEDA message of namespace ``ns``; ``document`` names it in errors."""

    def __init__(self, ns: str, *, document: str) -> None:
        self.ns = ns
        self.document = document

    # -- element access ---------------------------------------------------------------------

    def _q(self, local: str) -> str:
        return f"{{{self.ns}}}{local}"

    def children(self, parent: etree._Element, local: str) -> list[etree._Element]:
        return parent.findall(self._q(local))

    def child(self, parent: etree._Element, local: str) -> etree._Element | None:
        return parent.find(self._q(local))

    def text(self, parent: etree._Element, local: str) -> str | None:
        """The collapsed text of the first child ``local`` (SEDA identifiers are xsd:token)."""
        found = self.child(parent, local)
        return None if found is None else token("".join(found.itertext()))

    def raw_text(self, parent: etree._Element, local: str) -> str | None:
        """The text of the first child ``local`` as written (xsd:string: Title, Description)."""
        found = self.child(parent, local)
        if found is None:
            return None
        value = "".join(found.itertext())
        return value if value.strip(" \t\n\r") else None

    def required(self, parent: etree._Element, path: str) -> str:
        """The token at ``path`` (``A/B``) under ``parent``, or NonConformantError naming it."""
        node: etree._Element | None = parent
        for local in path.split("/"):
            node = None if node is None else self.child(node, local)
        value = None if node is None else token("".join(node.itertext()))
        if value is None:
            raise NonConformantError(
                f"mandatory element {path} is missing or empty", document=self.document,
                xpath=f"{xpath_of(parent)}/{path}", rule="XSD",
            )
        return value

    def attribute_id(self, element: etree._Element) -> str:
        value = token(element.get("id"))
        if value is None:
            raise NonConformantError(
                f"{etree.QName(element).localname} has no id attribute", document=self.document,
                xpath=xpath_of(element), rule="XSD",
            )
        return value

    def datetime(self, parent: etree._Element, local: str, *, required: bool) -> dt.datetime | None:
        found = self.child(parent, local)
        if found is None or not "".join(found.itertext()).strip():
            if required:
                raise NonConformantError(
                    f"mandatory element {local} is missing or empty", document=self.document,
                    xpath=f"{xpath_of(parent)}/{local}", rule="XSD",
                )
            return None
        return parse_datetime("".join(found.itertext()), document=self.document, xpath=xpath_of(found))

    # -- messages ---------------------------------------------------------------------------

    def head(self, root: etree._Element, version: str) -> dict[str, Any]:
        """The MessageType part every SEDA message shares."""
        return {
            "seda_version": version,
            "message_identifier": self.required(root, "MessageIdentifier"),
            "date": self.datetime(root, "Date", required=True),
            "comment": self.raw_text(root, "Comment"),
        }

    def archive_transfer(self, root: etree._Element, version: str) -> dict[str, Any]:
        data = self.head(root, version)
        data["archival_agreement"] = self.text(root, "ArchivalAgreement")
        data["archival_agency_identifier"] = self.required(root, "ArchivalAgency/Identifier")
        data["transferring_agency_identifier"] = self.required(root, "TransferringAgency/Identifier")
        package = self.child(root, "DataObjectPackage")
        management = None if package is None else self.child(package, "ManagementMetadata")
        for field, local in (
            ("archival_profile", "ArchivalProfile"),
            ("service_level", "ServiceLevel"),
            ("acquisition_information", "AcquisitionInformation"),
            ("legal_status", "LegalStatus"),
            ("originating_agency_identifier", "OriginatingAgencyIdentifier"),
            ("submission_agency_identifier", "SubmissionAgencyIdentifier"),
        ):
            data[field] = None if management is None else self.text(management, local)
        data["management"] = None if management is None else self.management(management)
        data["archive_units"] = []
        data["binary_data_objects"] = []
        data["physical_data_objects"] = []
        if package is not None:
            self._data_objects(package, data)
            descriptive = self.child(package, "DescriptiveMetadata")
            if descriptive is not None:
                for unit in self.children(descriptive, "ArchiveUnit"):
                    self._archive_unit(unit, None, data["archive_units"])
        return data

    def archive_transfer_reply(self, root: etree._Element, version: str) -> dict[str, Any]:
        data = self.head(root, version)
        data["archival_agreement"] = self.text(root, "ArchivalAgreement")
        data["reply_code"] = self.text(root, "ReplyCode")
        data["message_request_identifier"] = self.required(root, "MessageRequestIdentifier")
        data["grant_date"] = self.datetime(root, "GrantDate", required=False)
        data["archival_agency_identifier"] = self.required(root, "ArchivalAgency/Identifier")
        data["transferring_agency_identifier"] = self.required(root, "TransferringAgency/Identifier")
        return data

    def acknowledgement(self, root: etree._Element, version: str) -> dict[str, Any]:
        data = self.head(root, version)
        data["message_received_identifier"] = self.required(root, "MessageReceivedIdentifier")
        data["sender_identifier"] = self.required(root, "Sender/Identifier")
        data["receiver_identifier"] = self.required(root, "Receiver/Identifier")
        return data

    # -- parts of the transfer --------------------------------------------------------------

    def management(self, parent: etree._Element) -> dict[str, Any] | None:
        """A ManagementGroup (ManagementMetadata or ArchiveUnit/Management); None when it holds no rule."""
        found: dict[str, Any] = {field: None for field in _RULE_CATEGORIES.values()}
        any_rule = False
        for local, field in _RULE_CATEGORIES.items():
            category = self.child(parent, local)
            if category is not None:
                found[field] = self._rule_group(category)
                any_rule = True
        need = self.text(parent, "NeedAuthorization")
        found["need_authorization"] = self._boolean(need, parent, "NeedAuthorization")
        if not any_rule and found["need_authorization"] is None:
            return None
        return found

    def _rule_group(self, category: etree._Element) -> dict[str, Any]:
        rules: list[dict[str, Any]] = []
        for child in category:
            if not isinstance(child.tag, str) or etree.QName(child).namespace != self.ns:
                continue
            local = etree.QName(child).localname
            if local == "Rule":
                rule_id = token("".join(child.itertext()))
                if rule_id is None:
                    raise NonConformantError(
                        "empty Rule", document=self.document, xpath=xpath_of(child), rule="XSD"
                    )
                rules.append({"rule_id": rule_id, "start_date": None})
            elif local == "StartDate" and rules:
                value = "".join(child.itertext()).strip()
                if value:
                    rules[-1]["start_date"] = parse_date(value, document=self.document, xpath=xpath_of(child))
        prevent = self.text(category, "PreventInheritance")
        return {
            "rules": rules,
            "prevent_inheritance": self._boolean(prevent, category, "PreventInheritance"),
            "ref_non_rule_ids": [
                value for c in self.children(category, "RefNonRuleId") if (value := token("".join(c.itertext())))
            ],
            "final_action": self.text(category, "FinalAction"),
        }

    def _boolean(self, value: str | None, parent: etree._Element, local: str) -> bool | None:
        if value is None:
            return None
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        raise NonConformantError(
            f"{local} is {value!r}, not an xsd:boolean", document=self.document,
            xpath=f"{xpath_of(parent)}/{local}", rule="XSD",
        )

    def _data_objects(self, package: etree._Element, data: dict[str, Any]) -> None:
        for child in package:
            if not isinstance(child.tag, str) or etree.QName(child).namespace != self.ns:
                continue
            local = etree.QName(child).localname
            if local == "DataObjectGroup":
                group_id = self.attribute_id(child)
                for obj in child:
                    if isinstance(obj.tag, str):
                        self._data_object(obj, group_id, data)
            else:
                self._data_object(child, None, data)

    def _data_object(self, obj: etree._Element, group_id: str | None, data: dict[str, Any]) -> None:
        local = etree.QName(obj).localname
        if local not in ("BinaryDataObject", "PhysicalDataObject"):
            return
        group = group_id or self.text(obj, "DataObjectGroupId") or self.text(obj, "DataObjectGroupReferenceId")
        common = {
            "id": self.attribute_id(obj),
            "data_object_group_id": group,
            "data_object_version": self.text(obj, "DataObjectVersion"),
        }
        if local == "PhysicalDataObject":
            data["physical_data_objects"].append({**common, "physical_id": self.text(obj, "PhysicalId")})
            return
        digest = self.child(obj, "MessageDigest")
        fmt = self.child(obj, "FormatIdentification")
        info = self.child(obj, "FileInfo")
        data["binary_data_objects"].append({
            **common,
            "uri": self.text(obj, "Uri"),
            "message_digest": None if digest is None else token("".join(digest.itertext())),
            "digest_algorithm": None if digest is None else token(digest.get("algorithm")),
            "size": self._size(obj),
            "format_litteral": None if fmt is None else self.raw_text(fmt, "FormatLitteral"),
            "mime_type": None if fmt is None else self.text(fmt, "MimeType"),
            "format_id": None if fmt is None else self.text(fmt, "FormatId"),
            "filename": None if info is None else self.raw_text(info, "Filename"),
        })

    def _size(self, obj: etree._Element) -> int | None:
        value = self.text(obj, "Size")
        if value is None:
            return None
        if not value.isascii() or not value.isdigit() or not 0 < int(value) <= _MAX_SIZE:
            raise NonConformantError(
                f"Size {value!r} is not a positive integer of at most 2^63-1 bytes", document=self.document,
                xpath=f"{xpath_of(obj)}/Size", rule="XSD",
            )
        return int(value)

    def _archive_unit(self, unit: etree._Element, parent_id: str | None, out: list[dict[str, Any]]) -> None:
        unit_id = self.attribute_id(unit)
        content = self.child(unit, "Content")
        management = self.child(unit, "Management")
        refs: list[str] = []
        group_refs: list[str] = []
        for reference in self.children(unit, "DataObjectReference"):
            if (value := self.text(reference, "DataObjectReferenceId")) is not None:
                refs.append(value)
            if (value := self.text(reference, "DataObjectGroupReferenceId")) is not None:
                group_refs.append(value)

        def content_text(local: str, *, raw: bool = False) -> str | None:
            if content is None:
                return None
            return self.raw_text(content, local) if raw else self.text(content, local)

        out.append({
            "id": unit_id,
            "parent_id": parent_id,
            "archive_unit_ref_id": self.text(unit, "ArchiveUnitRefId"),
            "archive_unit_profile": self.text(unit, "ArchiveUnitProfile"),
            "management": None if management is None else self.management(management),
            "description_level": content_text("DescriptionLevel"),
            "title": content_text("Title", raw=True),
            "description": content_text("Description", raw=True),
            "created_date": content_text("CreatedDate"),
            "transacted_date": content_text("TransactedDate"),
            "start_date": content_text("StartDate"),
            "end_date": content_text("EndDate"),
            "data_object_refs": refs,
            "data_object_group_refs": group_refs,
        })
        for child in self.children(unit, "ArchiveUnit"):
            self._archive_unit(child, unit_id, out)
