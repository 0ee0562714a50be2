"""Adapters and processor cores found through entry points, as a vendor's package declares them.

Installing with pip in a test is slow, so the tests lay the package out as an installed
distribution does: the module and a ``*.dist-info`` folder (METADATA, entry_points.txt written
from the example's pyproject.toml) in a directory put on the path. importlib.metadata reads it
exactly as it reads a pip-installed package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from adapters import ENTRY_POINT_GROUP, Adapter, adapter_for, all_adapters, detect
from bus import ConfigurationError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "plugin-adapter"


def install(site: Path, name: str, version: str, entry_points: dict[str, dict[str, str]],
            modules: dict[str, str]) -> Path:
    """A distribution as pip leaves it in site-packages: modules plus NAME-VERSION.dist-info."""
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
        for group, entries in entry_points.items()))
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    return site


def install_example(site: Path) -> Path:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    source = (EXAMPLE / "dcant_bus_classification_csv.py").read_text()
    return install(site, project["name"], project["version"], project["entry-points"],
                   {"dcant_bus_classification_csv": source})


@pytest.fixture
def fresh_registry():
    all_adapters.cache_clear()
    yield
    all_adapters.cache_clear()


def test_the_example_package_declares_the_adapter_group():
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][ENTRY_POINT_GROUP] == {"classification-csv": "dcant_bus_classification_csv"}


def test_an_installed_adapter_is_found_by_name_and_by_detection(tmp_path, monkeypatch, fresh_registry):
    monkeypatch.syspath_prepend(str(install_example(tmp_path / "site")))
    data = (EXAMPLE / "classification.csv").read_bytes()
    module = adapter_for("classification-csv")
    assert isinstance(module, Adapter) and detect(data) is module
    pivot = module.to_pivot(data, name="classification.csv")
    assert pivot.subject == "classification:2026-01-15"
    assert [m["parent_code"] for m in pivot.data["matieres"]] == [None, "1"]


def test_bus_adapt_finds_the_installed_adapter(tmp_path):
    site = install_example(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", "from bus.cli import main; main()", "adapt",
                           str(EXAMPLE / "classification.csv")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pivot = json.loads(done.stdout)
    assert (pivot["type"], pivot["format"]) == ("fr.dcant.acts.ClassificationPublished", "classification-csv")
    assert pivot["data"]["natures"][0]["label"] == "Délibérations"


def test_a_plugin_that_does_not_load_is_named(tmp_path, monkeypatch, fresh_registry):
    site = install(tmp_path / "site", "broken-adapter", "1.0", {ENTRY_POINT_GROUP: {"broken": "no_such_module"}}, {})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ConfigurationError, match="broken = no_such_module"):
        all_adapters()


def test_a_plugin_cannot_replace_a_built_in_format(tmp_path, monkeypatch, fresh_registry):
    source = (EXAMPLE / "dcant_bus_classification_csv.py").read_text().replace(
        'FORMAT = "classification-csv"', 'FORMAT = "ubl"')
    site = install(tmp_path / "site", "fake-ubl", "1.0", {ENTRY_POINT_GROUP: {"ubl": "fake_ubl"}},
                   {"fake_ubl": source})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ConfigurationError, match="already taken"):
        all_adapters()


def test_an_installed_processor_core_is_offered_to_the_worker(tmp_path, monkeypatch):
    from processors import CORES, all_cores

    core = "class EchoCore:\n    name = 'echo'\n"
    site = install(tmp_path / "site", "echo-core", "1.0", {"dcant_bus.processors": {"echo": "echo_core:EchoCore"}},
                   {"echo_core": core})
    monkeypatch.syspath_prepend(str(site))
    cores = all_cores()
    assert set(cores) == set(CORES) | {"echo"}
    assert type(cores["echo"](None)).__name__ == "EchoCore"
