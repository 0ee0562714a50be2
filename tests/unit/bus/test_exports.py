"""Each package has one deliberate public API: a sorted ``__all__`` whose names exist."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["adapters", "bus", "bus.client", "bus.gateway", "bus.ledger", "bus.testing", "processors"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name):
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported), f"{name}.__all__ is not sorted"
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol} is exported but missing"


def test_public_classes_are_exported_from_bus():
    import bus

    for symbol in ("BusSettings", "Wire", "Event", "Catalog", "KeyDirectory", "BusError"):
        assert symbol in bus.__all__


def test_importing_has_no_side_effect(monkeypatch, tmp_path):
    import subprocess
    import sys

    code = "import bus, bus.client, bus.testing, adapters, processors; import os; print(sorted(os.listdir('.')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
