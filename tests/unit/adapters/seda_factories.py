"""Factories for SEDA tests: a small valid pivot, hand-written messages, and hypothesis strategies.

The messages here are written for the tests from the SEDA 2.x XSD structure, not copied from the
official corpus (conformance tests read the corpus through the ``corpus`` fixture).
"""

from __future__ import annotations

import base64
import datetime as dt
import string
import zoneinfo
from typing import Any

from hypothesis import strategies as st

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NS23 = "fr:gouv:culture:archivesdefrance:seda:v2.3"


def rules(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "storage_rule": None,
        "appraisal_rule": None,
        "access_rule": None,
        "dissemination_rule": None,
        "reuse_rule": None,
        "need_authorization": None,
    }
    return {**base, **overrides}


def rule_group(*pairs: tuple[str, dt.date | None], final_action: str | None = None,
               prevent_inheritance: bool | None = None, ref_non_rule_ids: list[str] | None = None) -> dict[str, Any]:
    return {
        "rules": [{"rule_id": r, "start_date": d} for r, d in pairs],
        "prevent_inheritance": prevent_inheritance,
        "ref_non_rule_ids": ref_non_rule_ids or [],
        "final_action": final_action,
    }


def unit(unit_id: str, parent_id: str | None = None, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": unit_id,
        "parent_id": parent_id,
        "archive_unit_ref_id": None,
        "archive_unit_profile": None,
        "management": None,
        "description_level": None,
        "title": None,
        "description": None,
        "created_date": None,
        "transacted_date": None,
        "start_date": None,
        "end_date": None,
        "data_object_refs": [],
        "data_object_group_refs": [],
    }
    return {**base, **fields}


def binary(obj_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": obj_id,
        "data_object_group_id": None,
        "data_object_version": "BinaryMaster_1",
        "uri": f"Content/{obj_id}.pdf",
        "message_digest": "ab" * 64,
        "digest_algorithm": "SHA-512",
        "size": 1024,
        "format_litteral": "Acrobat PDF 1.4 - Portable Document Format",
        "mime_type": "application/pdf",
        "format_id": "fmt/18",
        "filename": f"{obj_id}.pdf",
    }
    return {**base, **fields}


def physical(obj_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": obj_id, "data_object_group_id": None, "data_object_version": "PhysicalMaster", "physical_id": "B-12",
            **fields}


def transfer(**overrides: Any) -> dict[str, Any]:
    """A complete ArchiveTransfer pivot record: a file with one document and its PDF."""
    base: dict[str, Any] = {
        "seda_version": "2.3",
        "message_identifier": "TR-2024-0042",
        "date": dt.datetime(2024, 3, 1, 10, 30, tzinfo=PARIS),
        "comment": "Délibérations 2023",
        "archival_agreement": "CONV-AD31-2024",
        "archival_agency_identifier": "FRAD031",
        "transferring_agency_identifier": "213105554",
        "archival_profile": "PROFIL-DELIB",
        "service_level": None,
        "acquisition_information": "Versement",
        "legal_status": "Public Archive",
        "originating_agency_identifier": "213105554",
        "submission_agency_identifier": "213105554",
        "management": rules(
            appraisal_rule=rule_group(("APP-00001", dt.date(2024, 1, 1)), final_action="Keep"),
            access_rule=rule_group(("ACC-00001", dt.date(2024, 1, 1))),
        ),
        "archive_units": [
            unit("AU1", description_level="File", title="Délibérations du conseil municipal 2023",
                 start_date="2023-01-01", end_date="2023-12-31"),
            unit("AU2", "AU1", description_level="Item", title="Délibération 2023-12", description="Budget primitif",
                 created_date="2023-03-14", data_object_group_refs=["GRP1"],
                 management=rules(appraisal_rule=rule_group(("APP-00002", dt.date(2023, 3, 14)),
                                                            final_action="Destroy"))),
            unit("AU3", "AU1", description_level="Item", title="Registre papier", data_object_refs=["PHY1"]),
        ],
        "binary_data_objects": [binary("BIN1", data_object_group_id="GRP1")],
        "physical_data_objects": [physical("PHY1")],
    }
    return {**base, **overrides}


def reply(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "seda_version": "2.2",
        "message_identifier": "REP-0001",
        "date": dt.datetime(2024, 3, 2, 9, 0, tzinfo=dt.timezone.utc),
        "comment": None,
        "archival_agreement": "CONV-AD31-2024",
        "reply_code": "OK",
        "message_request_identifier": "TR-2024-0042",
        "grant_date": dt.datetime(2024, 3, 2, 8, 0, tzinfo=dt.timezone.utc),
        "archival_agency_identifier": "FRAD031",
        "transferring_agency_identifier": "213105554",
    }
    return {**base, **overrides}


def acknowledgement(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "seda_version": "2.3",
        "message_identifier": "ACK-0001",
        "date": dt.datetime(2024, 3, 1, 11, 0, tzinfo=PARIS),
        "comment": "Bien reçu",
        "message_received_identifier": "TR-2024-0042",
        "sender_identifier": "FRAD031",
        "receiver_identifier": "213105554",
    }
    return {**base, **overrides}


def minimal_transfer_xml(body: str = "", *, ns: str = NS23, date: str = "2024-03-01T10:30:00",
                         message_id: str = "TR-1") -> bytes:
    """A hand-written ArchiveTransfer; ``body`` goes inside DataObjectPackage."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ArchiveTransfer xmlns="{ns}">
  <Date>{date}</Date>
  <MessageIdentifier>{message_id}</MessageIdentifier>
  <CodeListVersions/>
  <DataObjectPackage>{body}</DataObjectPackage>
  <ArchivalAgency><Identifier>FRAD031</Identifier></ArchivalAgency>
  <TransferringAgency><Identifier>213105554</Identifier></TransferringAgency>
</ArchiveTransfer>""".encode()


# -- hypothesis strategies ------------------------------------------------------------------

_XML_TEXT = st.characters(exclude_categories=("Cs", "Cc", "Cn", "Co"))
#: Text as xsd:string carries it (no control characters; at least one visible character).
texts = st.text(_XML_TEXT, min_size=1, max_size=30).filter(lambda s: s.strip(" ") != "")
#: xsd:token values as the reader returns them (no leading, trailing or doubled XML whitespace).
tokens = st.text(_XML_TEXT.filter(lambda c: c != " "), min_size=1, max_size=20)
_suffix = st.text(string.ascii_letters + string.digits + "_.-", max_size=6)
aware = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1), allow_imaginary=False,
    timezones=st.sampled_from([dt.timezone.utc, PARIS, dt.timezone(dt.timedelta(hours=-5))]),
)
dates = st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31))
date_types = st.one_of(
    dates.map(dt.date.isoformat),
    st.integers(1000, 9999).map(str),
    st.builds(lambda y, m: f"{y}-{m:02d}", st.integers(1000, 9999), st.integers(1, 12)),
    st.datetimes(min_value=dt.datetime(1000, 1, 1)).map(lambda d: d.replace(microsecond=0).isoformat()),
)
_uri_names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
levels = st.sampled_from(["Fonds", "Series", "RecordGrp", "File", "Item", "OtherLevel"])


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def rule_groups(draw: st.DrawFn, final_actions: list[str] | None) -> dict[str, Any]:
    pairs = draw(st.lists(st.tuples(tokens, _opt(dates)), max_size=3))
    prevent = draw(_opt(st.booleans()))
    non_rules = [] if prevent is not None else draw(st.lists(tokens, max_size=2))
    action = draw(st.sampled_from(final_actions)) if final_actions else None
    return rule_group(*pairs, final_action=action, prevent_inheritance=prevent, ref_non_rule_ids=non_rules)


@st.composite
def managements(draw: st.DrawFn) -> dict[str, Any] | None:
    found = rules(
        storage_rule=draw(_opt(rule_groups(["RestrictAccess", "Transfer", "Copy"]))),
        appraisal_rule=draw(_opt(rule_groups(["Keep", "Destroy"]))),
        access_rule=draw(_opt(rule_groups(None))),
        dissemination_rule=draw(_opt(rule_groups(None))),
        reuse_rule=draw(_opt(rule_groups(None))),
        need_authorization=draw(_opt(st.booleans())),
    )
    return None if all(v is None for v in found.values()) else found


def _package_order(binaries: list[dict[str, Any]], physicals: list[dict[str, Any]]) -> tuple[list, list]:
    """Objects in the order a writer that nests them in DataObjectGroups gives back: by group."""
    first_seen: dict[str | None, int] = {}
    for obj in binaries + physicals:
        first_seen.setdefault(obj["data_object_group_id"], len(first_seen))
    return (sorted(binaries, key=lambda o: first_seen[o["data_object_group_id"]]),
            sorted(physicals, key=lambda o: first_seen[o["data_object_group_id"]]))


def _depth_first(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The units in document order (what the reader yields): each parent followed by its subtree."""
    children: dict[str | None, list[dict[str, Any]]] = {}
    for u in units:
        children.setdefault(u["parent_id"], []).append(u)
    ordered: list[dict[str, Any]] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        current = stack.pop()
        ordered.append(current)
        stack.extend(reversed(children.get(current["id"], [])))
    return ordered


@st.composite
def transfers(draw: st.DrawFn) -> dict[str, Any]:
    """Random ArchiveTransfer pivots that a SEDA 2.2/2.3 writer must accept."""
    groups = [f"G{i}{draw(_suffix)}" for i in range(draw(st.integers(0, 2)))]
    binaries = []
    for i in range(draw(st.integers(0, 3))):
        with_digest = draw(st.booleans())
        binaries.append(binary(
            f"B{i}{draw(_suffix)}",
            data_object_group_id=draw(_opt(st.sampled_from(groups))) if groups else None,
            data_object_version=draw(_opt(tokens)),
            uri=f"Content/{draw(_uri_names)}.pdf" if with_digest else None,
            message_digest=draw(st.binary(min_size=1, max_size=64).map(
                lambda b: draw(st.sampled_from([b.hex(), base64.b64encode(b).decode()])))) if with_digest else None,
            digest_algorithm=draw(st.sampled_from(["SHA-256", "SHA-512"])) if with_digest else None,
            size=draw(_opt(st.integers(1, 2**63 - 1))),
            format_litteral=draw(_opt(texts)),
            mime_type=draw(_opt(tokens)),
            format_id=draw(_opt(tokens)),
            filename=draw(_opt(texts)),
        ))
    physicals = [
        physical(f"P{i}{draw(_suffix)}", data_object_group_id=draw(_opt(st.sampled_from(groups))) if groups else None,
                 data_object_version=draw(_opt(tokens)), physical_id=draw(_opt(tokens)))
        for i in range(draw(st.integers(0, 2)))
    ]
    binaries, physicals = _package_order(binaries, physicals)
    # a group exists only through its members
    used_groups = sorted({o["data_object_group_id"] for o in binaries + physicals} - {None})
    object_ids = [o["id"] for o in binaries + physicals]
    units: list[dict[str, Any]] = []
    for i in range(draw(st.integers(0, 5))):
        content_parents = [u["id"] for u in units if u["archive_unit_ref_id"] is None]
        parent = draw(_opt(st.sampled_from(content_parents))) if content_parents else None
        unit_id = f"U{i}{draw(_suffix)}"
        if units and draw(st.integers(0, 4)) == 0:
            units.append(unit(unit_id, parent, archive_unit_ref_id=draw(st.sampled_from([u["id"] for u in units]))))
            continue
        units.append(unit(
            unit_id, parent,
            archive_unit_profile=draw(_opt(tokens)),
            management=draw(managements()),
            description_level=draw(_opt(levels)),
            title=draw(_opt(texts)),
            description=draw(_opt(texts)),
            created_date=draw(_opt(date_types)),
            transacted_date=draw(_opt(date_types)),
            start_date=draw(_opt(date_types)),
            end_date=draw(_opt(date_types)),
            data_object_refs=draw(st.lists(st.sampled_from(object_ids), max_size=2)) if object_ids else [],
            data_object_group_refs=draw(st.lists(st.sampled_from(used_groups), max_size=2)) if used_groups else [],
        ))
    return transfer(
        seda_version=draw(st.sampled_from(["2.2", "2.3"])),
        archive_units=_depth_first(units),
        message_identifier=draw(tokens),
        date=draw(aware),
        comment=draw(_opt(texts)),
        archival_agreement=draw(_opt(tokens)),
        archival_agency_identifier=draw(tokens),
        transferring_agency_identifier=draw(tokens),
        archival_profile=draw(_opt(tokens)),
        service_level=draw(_opt(tokens)),
        acquisition_information=draw(_opt(tokens)),
        legal_status=draw(_opt(st.sampled_from(["Public Archive", "Private Archive", "Public and Private Archive"]))),
        originating_agency_identifier=draw(_opt(tokens)),
        submission_agency_identifier=draw(_opt(tokens)),
        management=draw(managements()),
        binary_data_objects=binaries,
        physical_data_objects=physicals,
    )
