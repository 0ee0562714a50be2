"""Reading SEDA messages into pivots: hand-written messages, SIP zips, and what is refused."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from adapters import seda, sniff
from adapters._registry import detect as registry_detect
from bus._errors import (
    DocumentTooLargeError,
    MalformedDocumentError,
    NonConformantError,
    UnknownFormatError,
    UnsafeDocumentError,
)

from seda_factories import NS23, PARIS, minimal_transfer_xml

PACKAGE = """
  <DataObjectGroup id="GRP1">
    <BinaryDataObject id="BIN1">
      <DataObjectVersion>BinaryMaster_1</DataObjectVersion>
      <Uri>Content/BIN1.pdf</Uri>
      <MessageDigest algorithm="SHA-512">  abcdef01  </MessageDigest>
      <Size>2048</Size>
      <FormatIdentification><MimeType>application/pdf</MimeType><FormatId>fmt/18</FormatId></FormatIdentification>
      <FileInfo><Filename>délibération.pdf</Filename></FileInfo>
    </BinaryDataObject>
  </DataObjectGroup>
  <PhysicalDataObject id="PHY1">
    <DataObjectGroupId>GRP2</DataObjectGroupId>
    <PhysicalId>Boîte 12</PhysicalId>
  </PhysicalDataObject>
  <DescriptiveMetadata>
    <ArchiveUnit id="AU1">
      <Management>
        <AppraisalRule><Rule>APP-1</Rule><StartDate>2020-01-01</StartDate><Rule>APP-2</Rule><FinalAction>Destroy</FinalAction></AppraisalRule>
      </Management>
      <Content><DescriptionLevel>File</DescriptionLevel><Title>Dossier</Title><Title>Second title</Title><StartDate>1852</StartDate></Content>
      <ArchiveUnit id="AU2">
        <Content><Title>Pièce</Title></Content>
        <DataObjectReference><DataObjectGroupReferenceId>GRP1</DataObjectGroupReferenceId></DataObjectReference>
        <DataObjectReference><DataObjectReferenceId>PHY1</DataObjectReferenceId></DataObjectReference>
      </ArchiveUnit>
      <ArchiveUnit id="AU3"><ArchiveUnitRefId>AU2</ArchiveUnitRefId></ArchiveUnit>
    </ArchiveUnit>
  </DescriptiveMetadata>
  <ManagementMetadata>
    <ArchivalProfile>PROFIL-1</ArchivalProfile>
    <OriginatingAgencyIdentifier>213105554</OriginatingAgencyIdentifier>
    <AccessRule><Rule>ACC-1</Rule><StartDate>2021-06-30</StartDate><PreventInheritance>true</PreventInheritance></AccessRule>
    <NeedAuthorization>false</NeedAuthorization>
  </ManagementMetadata>"""


def test_transfer_fields_are_read() -> None:
    pivot = seda.to_pivot(minimal_transfer_xml(PACKAGE), name="t.xml")
    assert pivot.type == "fr.dcant.archives.ArchiveTransferRequested"
    assert pivot.schema == "fr.dcant.archives.ArchiveTransfer"
    assert pivot.subject == "transfer:TR-1"
    data = pivot.data
    assert data["seda_version"] == "2.3"
    assert data["archival_agency_identifier"] == "FRAD031"
    assert data["archival_profile"] == "PROFIL-1"
    assert data["originating_agency_identifier"] == "213105554"
    [obj] = data["binary_data_objects"]
    assert obj["data_object_group_id"] == "GRP1"
    assert obj["message_digest"] == "abcdef01"  # xsd:token: surrounding blanks collapse
    assert (obj["digest_algorithm"], obj["size"], obj["format_id"]) == ("SHA-512", 2048, "fmt/18")
    assert obj["filename"] == "délibération.pdf"
    [phy] = data["physical_data_objects"]
    assert (phy["data_object_group_id"], phy["physical_id"]) == ("GRP2", "Boîte 12")


def test_archive_unit_tree_is_flattened_parents_first() -> None:
    units = seda.to_pivot(minimal_transfer_xml(PACKAGE)).data["archive_units"]
    assert [(u["id"], u["parent_id"]) for u in units] == [("AU1", None), ("AU2", "AU1"), ("AU3", "AU1")]
    assert units[0]["title"] == "Dossier"  # the first Title
    assert units[0]["start_date"] == "1852"  # DateType kept as written
    assert units[1]["data_object_group_refs"] == ["GRP1"]
    assert units[1]["data_object_refs"] == ["PHY1"]
    assert units[2]["archive_unit_ref_id"] == "AU2"
    appraisal = units[0]["management"]["appraisal_rule"]
    assert appraisal["rules"] == [
        {"rule_id": "APP-1", "start_date": dt.date(2020, 1, 1)},
        {"rule_id": "APP-2", "start_date": None},
    ]
    assert appraisal["final_action"] == "Destroy"


def test_package_management_rules() -> None:
    management = seda.to_pivot(minimal_transfer_xml(PACKAGE)).data["management"]
    assert management["access_rule"]["rules"] == [{"rule_id": "ACC-1", "start_date": dt.date(2021, 6, 30)}]
    assert management["access_rule"]["prevent_inheritance"] is True
    assert management["need_authorization"] is False
    assert management["appraisal_rule"] is None


def test_date_without_offset_is_paris_local_time() -> None:
    winter = seda.to_pivot(minimal_transfer_xml(date="2024-01-15T12:00:00")).data["date"]
    summer = seda.to_pivot(minimal_transfer_xml(date="2024-07-15T12:00:00.123")).data["date"]
    assert winter == dt.datetime(2024, 1, 15, 11, 0, tzinfo=dt.timezone.utc)
    assert summer == dt.datetime(2024, 7, 15, 10, 0, 0, 123000, tzinfo=dt.timezone.utc)
    assert summer.tzinfo == PARIS


def test_date_with_offset_and_long_fraction() -> None:
    date = seda.to_pivot(minimal_transfer_xml(date="2016-06-03T15:28:00.1234567Z")).data["date"]
    assert date == dt.datetime(2016, 6, 3, 15, 28, 0, 123456, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("date", ["2024-13-01T00:00:00", "yesterday", "2024-01-01"])
def test_bad_message_date_is_non_conformant(date: str) -> None:
    with pytest.raises(NonConformantError) as err:
        seda.to_pivot(minimal_transfer_xml(date=date), name="bad.xml")
    assert err.value.context["rule"] == "XSD"
    assert err.value.context["xpath"] == "/ArchiveTransfer/Date"


def test_missing_message_identifier_names_the_element() -> None:
    with pytest.raises(NonConformantError) as err:
        seda.to_pivot(minimal_transfer_xml(message_id="   "), name="bad.xml")
    assert err.value.context["xpath"] == "/ArchiveTransfer/MessageIdentifier"
    assert err.value.context["document"] == "bad.xml"


def test_archive_unit_without_id_is_refused() -> None:
    body = "<DescriptiveMetadata><ArchiveUnit><Content/></ArchiveUnit></DescriptiveMetadata><ManagementMetadata/>"
    with pytest.raises(NonConformantError, match="no id attribute"):
        seda.to_pivot(minimal_transfer_xml(body))


def test_size_must_be_a_positive_integer() -> None:
    body = '<BinaryDataObject id="B"><Size>-3</Size></BinaryDataObject><DescriptiveMetadata/><ManagementMetadata/>'
    with pytest.raises(NonConformantError, match="Size"):
        seda.to_pivot(minimal_transfer_xml(body))


def test_reply_is_keyed_by_the_transfer_it_answers() -> None:
    xml = f"""<ArchiveTransferReply xmlns="{NS23.replace('2.3', '2.2')}">
      <Date>2024-03-02T09:00:00Z</Date><MessageIdentifier>REP-1</MessageIdentifier>
      <CodeListVersions/><ReplyCode>OK</ReplyCode><MessageRequestIdentifier>TR-1</MessageRequestIdentifier>
      <GrantDate>2024-03-02T08:00:00+01:00</GrantDate>
      <ArchivalAgency><Identifier>FRAD031</Identifier></ArchivalAgency>
      <TransferringAgency><Identifier>213105554</Identifier></TransferringAgency>
    </ArchiveTransferReply>""".encode()
    pivot = seda.to_pivot(xml)
    assert (pivot.type, pivot.subject) == ("fr.dcant.archives.ArchiveTransferReplied", "transfer:TR-1")
    assert pivot.data["reply_code"] == "OK"
    assert pivot.data["grant_date"] == dt.datetime(2024, 3, 2, 7, 0, tzinfo=dt.timezone.utc)
    assert pivot.data["seda_version"] == "2.2"


def test_acknowledgement_is_keyed_by_the_message_received() -> None:
    xml = f"""<Acknowledgement xmlns="{NS23}">
      <Date>2024-03-01T11:00:00</Date><MessageIdentifier>ACK-1</MessageIdentifier>
      <MessageReceivedIdentifier>TR-1</MessageReceivedIdentifier>
      <Sender><Identifier>FRAD031</Identifier></Sender><Receiver><Identifier>213105554</Identifier></Receiver>
    </Acknowledgement>""".encode()
    pivot = seda.to_pivot(xml)
    assert (pivot.type, pivot.subject) == ("fr.dcant.archives.ArchiveTransferAcknowledged", "transfer:TR-1")
    assert (pivot.data["sender_identifier"], pivot.data["receiver_identifier"]) == ("FRAD031", "213105554")


def test_seda_21_reader_warns_it_is_written_back_as_22() -> None:
    pivot = seda.to_pivot(minimal_transfer_xml(ns="fr:gouv:culture:archivesdefrance:seda:v2.1"))
    assert pivot.data["seda_version"] == "2.1"
    assert any("2.2" in w for w in pivot.warnings)


def test_detect_by_namespace_and_root() -> None:
    assert seda.detect(sniff(minimal_transfer_xml()))
    assert registry_detect(minimal_transfer_xml()) is seda
    assert not seda.detect(sniff(b'<ArchiveTransfer xmlns="fr:gouv:culture:archivesdefrance:seda:v1.0"/>'))
    assert not seda.detect(sniff(f'<ArchiveDeliveryRequest xmlns="{NS23}"/>'.encode()))


def test_wrong_namespace_is_unknown_format() -> None:
    with pytest.raises(UnknownFormatError):
        seda.to_pivot(b'<ArchiveTransfer xmlns="urn:other"><Date/></ArchiveTransfer>')


def test_doctype_is_refused() -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><ArchiveTransfer xmlns="' + NS23.encode() + b'"/>'
    with pytest.raises((UnsafeDocumentError, MalformedDocumentError)):
        seda.to_pivot(hostile)


# -- SIP zips -----------------------------------------------------------------------------


def _zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_sip_zip_reads_its_manifest() -> None:
    sip = _zip({"manifest.xml": minimal_transfer_xml(PACKAGE), "Content/BIN1.pdf": b"%PDF-1.4"})
    assert seda.detect(sniff(sip))
    pivot = seda.to_pivot(sip, name="sip.zip")
    assert pivot.subject == "transfer:TR-1"
    assert len(pivot.data["archive_units"]) == 3


def test_sip_detection_does_not_claim_any_zip() -> None:
    assert not seda.detect(sniff(_zip({"word/document.xml": b"<w/>"})))


@pytest.mark.parametrize("evil", ["../manifest.xml", "/etc/passwd", "Content/../../x", "C:/x", "Content\\..\\x"])
def test_sip_with_path_traversal_is_refused(evil: str) -> None:
    sip = _zip({"manifest.xml": minimal_transfer_xml(), evil: b"x"})
    with pytest.raises(UnsafeDocumentError):
        seda.to_pivot(sip)


def test_sip_without_manifest_is_non_conformant() -> None:
    with pytest.raises(NonConformantError, match="manifest.xml"):
        seda.to_pivot(_zip({"Content/a.pdf": b"x"}))


def test_sip_manifest_bomb_is_refused_by_declared_size() -> None:
    from adapters import _seda_sip

    sip = _zip({"manifest.xml": b"<a>" + b" " * 200_000 + b"</a>"})
    with pytest.raises(DocumentTooLargeError, match="declares"):
        _seda_sip.read_manifest(sip, name="bomb.zip", max_bytes=100_000)


def test_sip_manifest_lying_about_its_size_is_stopped_while_inflating() -> None:
    from adapters import _seda_sip

    sip = bytearray(_zip({"manifest.xml": b"<a>" + b" " * 200_000 + b"</a>"}))
    # rewrite the declared uncompressed size (local header and central directory) to 10 bytes
    for marker, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = sip.find(marker)
        sip[at + offset : at + offset + 4] = (10).to_bytes(4, "little")
    with pytest.raises((DocumentTooLargeError, MalformedDocumentError)):
        _seda_sip.read_manifest(bytes(sip), name="liar.zip", max_bytes=100_000)


def test_truncated_zip_is_malformed() -> None:
    sip = _zip({"manifest.xml": minimal_transfer_xml()})
    with pytest.raises(MalformedDocumentError):
        seda.to_pivot(sip[: len(sip) // 2])
