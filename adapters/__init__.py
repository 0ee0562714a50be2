"""Adapters between native formats and pivot events: one module per native format.

Each adapter module is pure (bytes in, pivot out; pivot in, bytes out where the bus writes
the format) and raises only :class:`bus.AdapterError` subclasses. See :mod:`adapters._base`
for the contract every module follows.
"""

from ._base import Adapter, Finding, Pivot, Sniff, to_json_value
from ._registry import ENTRY_POINT_GROUP, SIGNED_FORMATS, adapter_for, all_adapters, detect, signature_options, sniff
from ._xml import parse_xml, read_bounded

__all__ = [
    "Adapter",
    "ENTRY_POINT_GROUP",
    "Finding",
    "Pivot",
    "SIGNED_FORMATS",
    "Sniff",
    "adapter_for",
    "all_adapters",
    "detect",
    "parse_xml",
    "read_bounded",
    "signature_options",
    "sniff",
    "to_json_value",
]
