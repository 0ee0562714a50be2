"""Writing SEDA 2.2/2.3 from pivots: structure, round trips, and pivots the writer refuses."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from lxml import etree

from adapters import Pivot, seda
from bus._errors import NonConformantError

from seda_factories import acknowledgement, binary, reply, rule_group, rules, transfer, unit

NS = {"s": "fr:gouv:culture:archivesdefrance:seda:v2.3"}


def _round_trip(record: dict[str, Any], kind: str = "ArchiveTransfer") -> dict[str, Any]:
    return dict(seda.to_pivot(seda.from_pivot(record, kind=kind)).data)


def test_transfer_round_trip_keeps_every_field() -> None:
    record = transfer()
    assert _round_trip(record) == record


@pytest.mark.parametrize("version", ["2.2", "2.3"])
def test_writes_the_version_the_pivot_names(version: str) -> None:
    root = etree.fromstring(seda.from_pivot(transfer(seda_version=version)))
    assert root.tag == f"{{fr:gouv:culture:archivesdefrance:seda:v{version}}}ArchiveTransfer"


def test_seda_21_pivot_is_written_as_22() -> None:
    root = etree.fromstring(seda.from_pivot(transfer(seda_version="2.1")))
    assert etree.QName(root).namespace == "fr:gouv:culture:archivesdefrance:seda:v2.2"


def test_objects_are_grouped_and_units_nested() -> None:
    root = etree.fromstring(seda.from_pivot(transfer()))
    assert root.xpath("s:DataObjectPackage/s:DataObjectGroup/@id", namespaces=NS) == ["GRP1"]
    assert root.xpath("s:DataObjectPackage/s:DataObjectGroup/s:BinaryDataObject/@id", namespaces=NS) == ["BIN1"]
    assert root.xpath("s:DataObjectPackage/s:PhysicalDataObject/@id", namespaces=NS) == ["PHY1"]
    nested = root.xpath("//s:ArchiveUnit[@id='AU1']/s:ArchiveUnit/@id", namespaces=NS)
    assert nested == ["AU2", "AU3"]
    assert root.xpath("string(//s:ArchiveUnit[@id='AU2']//s:AppraisalRule/s:FinalAction)", namespaces=NS) == "Destroy"
    # ArchivalAgency and TransferringAgency close the message, as ArchiveTransferType orders them
    assert [etree.QName(e).localname for e in root][-2:] == ["ArchivalAgency", "TransferringAgency"]


def test_date_is_written_with_its_offset() -> None:
    xml = seda.from_pivot(transfer())
    assert b"<Date>2024-03-01T10:30:00+01:00</Date>" in xml


def test_reply_and_acknowledgement_round_trip() -> None:
    assert _round_trip(reply(), "ArchiveTransferReply") == reply()
    assert _round_trip(acknowledgement(), "Acknowledgement") == acknowledgement()


def test_from_pivot_takes_a_pivot() -> None:
    pivot = seda.to_pivot(seda.from_pivot(acknowledgement(), kind="Acknowledgement"))
    assert isinstance(pivot, Pivot)
    assert seda.to_pivot(seda.from_pivot(pivot)).data == pivot.data


def test_unknown_pivot_schema_is_refused() -> None:
    pivot = Pivot(type="x", schema="fr.dcant.invoices.Invoice", subject="s", data={}, format="ubl")
    with pytest.raises(NonConformantError, match="not written by the seda adapter"):
        seda.from_pivot(pivot)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seda_version": "1.0"}, "seda_version"),
        ({"message_identifier": "  "}, "message_identifier"),
        ({"date": dt.datetime(2024, 1, 1)}, "naive"),
        ({"date": "2024-01-01"}, "datetime"),
        ({"legal_status": "Archive publique"}, "legal_status"),
        ({"archive_units": [unit("1AU")]}, "xsd:ID"),
        ({"archive_units": [unit("AU1"), unit("AU1")]}, "used twice"),
        ({"archive_units": [unit("AU2", "AU1"), unit("AU1")]}, "not listed before"),
        ({"archive_units": [unit("AU1", data_object_refs=["NOPE"])]}, "NOPE"),
        ({"archive_units": [unit("AU1", data_object_group_refs=["BIN1"])]}, "no DataObjectGroup"),
        ({"archive_units": [unit("AU1", archive_unit_ref_id="GRP1")]}, "no ArchiveUnit"),
        ({"archive_units": [unit("AU1"), unit("AU2", archive_unit_ref_id="AU1"), unit("AU3", "AU2")]}, "only points"),
        ({"archive_units": [unit("AU1", description_level="Dossier")]}, "description_level"),
        ({"archive_units": [unit("AU1", start_date="2024-02-30")]}, "DateType"),
        ({"archive_units": [unit("AU1", title="bell\x07")]}, "characters XML cannot carry"),
        ({"binary_data_objects": [binary("B1", message_digest="not hex!")]}, "neither hexadecimal nor base64"),
        ({"binary_data_objects": [binary("B1", message_digest=None)]}, "message_digest"),
        ({"binary_data_objects": [binary("B1", size=0)]}, "positive"),
        ({"management": rules(appraisal_rule=rule_group(("A", None), final_action="Archive"))}, "final_action"),
        ({"management": rules(appraisal_rule=rule_group(("A", None)))}, "final_action"),
        ({"management": rules(access_rule=rule_group(("A", None), final_action="Keep"))}, "no FinalAction"),
        ({"management": rules(access_rule=rule_group(prevent_inheritance=True, ref_non_rule_ids=["A"]))},
         "exclude each other"),
        ({"archive_units": "AU1"}, "list of records"),
    ],
)
def test_writer_refuses_what_the_xsd_would(changes: dict[str, Any], message: str) -> None:
    record = transfer(**changes)
    if "archive_units" in changes and changes["archive_units"] != "AU1":
        record["binary_data_objects"], record["physical_data_objects"] = (
            changes.get("binary_data_objects", [binary("BIN1", data_object_group_id="GRP1")]), [],
        )
    with pytest.raises(NonConformantError, match=message):
        seda.from_pivot(record)


def test_malformed_record_shape_is_non_conformant() -> None:
    record = transfer(binary_data_objects=[{"uri": "Content/x"}])
    with pytest.raises(NonConformantError):
        seda.from_pivot(record)
