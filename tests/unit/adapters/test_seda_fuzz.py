"""Hypothesis: the SEDA adapter raises only AdapterError on anything, and write -> read is lossless."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import seda
from bus._errors import AdapterError

from seda_factories import NS23, minimal_transfer_xml, texts, transfer, transfers

SEED_DOC = seda.from_pivot(transfer())
VOCABULARY = [
    "ArchiveTransfer", "ArchiveTransferReply", "Acknowledgement", "Date", "MessageIdentifier", "DataObjectPackage",
    "DataObjectGroup", "BinaryDataObject", "PhysicalDataObject", "Size", "MessageDigest", "DescriptiveMetadata",
    "ArchiveUnit", "Content", "Title", "Management", "AppraisalRule", "Rule", "StartDate", "FinalAction",
    "ManagementMetadata", "ArchivalAgency", "TransferringAgency", "Identifier", "DataObjectReference",
    "ArchiveUnitRefId", "GrantDate", "NeedAuthorization", "PreventInheritance", "MessageRequestIdentifier",
]


def _only_adapter_errors(data: bytes) -> None:
    try:
        seda.to_pivot(data, name="fuzz")
    except AdapterError:
        pass


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    _only_adapter_errors(data)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEED_DOC) - 1), st.integers(0, 64), st.binary(max_size=16))
def test_spliced_valid_document(at: int, cut: int, insert: bytes) -> None:
    _only_adapter_errors(SEED_DOC[:at] + insert + SEED_DOC[at + cut :])


@st.composite
def _elements(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(st.sampled_from(VOCABULARY))
    attrs = ' id="X"' if draw(st.booleans()) else ""
    if depth >= 4 or draw(st.booleans()):
        text = draw(st.one_of(texts, st.sampled_from(["2024-01-01", "2024-01-01T00:00:00", "-1", "true", "x y"])))
        escaped = text.replace("&", "&amp;").replace("<", "&lt;")
        return f"<{name}{attrs}>{escaped}</{name}>"
    children = "".join(draw(st.lists(_elements(depth + 1), max_size=4)))
    return f"<{name}{attrs}>{children}</{name}>"


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["ArchiveTransfer", "ArchiveTransferReply", "Acknowledgement"]),
       st.lists(_elements(), max_size=6))
def test_random_seda_shaped_trees(root: str, children: list[str]) -> None:
    _only_adapter_errors(f'<{root} xmlns="{NS23}">{"".join(children)}</{root}>'.encode())


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["manifest.xml", "Content/a", "MANIFEST.XML", "x/../y"]),
                       st.one_of(st.binary(max_size=64), st.just(minimal_transfer_xml())), max_size=3))
def test_random_sips(entries: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    _only_adapter_errors(buffer.getvalue())


_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["ArchiveTransfer", "ArchiveTransferReply", "Acknowledgement"]),
       st.sampled_from(list(transfer())), _junk)
def test_writer_on_corrupted_pivots(kind: str, field: str, value: Any) -> None:
    record = transfer(**{field: value})
    try:
        seda.from_pivot(record, kind=kind)
    except AdapterError:
        pass


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(transfers())
def test_write_then_read_keeps_every_pivot_field(record: dict[str, Any]) -> None:
    back = dict(seda.to_pivot(seda.from_pivot(record)).data)
    # PEP 495: aware datetimes in a DST fold never compare equal across zones; compare instants
    assert back.pop("date").astimezone(dt.timezone.utc) == record["date"].astimezone(dt.timezone.utc)
    assert back == {k: v for k, v in record.items() if k != "date"}
