"""The example alert rules name only metrics the bus exports, and Prometheus is wired to them.

The exported names come from the registries themselves (:func:`bus._metrics.exported_samples`:
the worker's, the ledger's and the gateway's families), never from a list kept here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bus._metrics import exported_samples

DOCKER = Path(__file__).resolve().parents[2] / "docker"
#: A metric selector's name: an identifier followed by a label matcher, a range, or the end of a term.
BUS_NAME = re.compile(r"\bbus_[a-z0-9_]+\b")
NAME_BEFORE_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]")
PROMQL_WORDS = {"by", "on", "without", "ignoring", "group_left", "group_right", "and", "or", "unless"}


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    groups = yaml.safe_load((DOCKER / "prometheus" / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_metric_an_alert_uses_is_exported_by_the_bus(rules):
    exported = exported_samples()
    for rule in rules:
        expr = rule["expr"]
        names = set(BUS_NAME.findall(expr))
        assert names, f"{rule['alert']} uses no bus metric"
        assert names <= exported, f"{rule['alert']}: {sorted(names - exported)} not exported"
        selectors = {n for n in NAME_BEFORE_SELECTOR.findall(expr) if n not in PROMQL_WORDS}
        assert selectors <= names, f"{rule['alert']}: selects {sorted(selectors - names)}, not a bus metric"


def test_the_alerts_cover_lag_dead_letters_checkpoint_age_and_payments_due(rules):
    used = {name for rule in rules for name in BUS_NAME.findall(rule["expr"])}
    assert {"bus_consumer_lag", "bus_dead_letters_total", "bus_checkpoint_age_seconds", "bus_payments_due"} <= used
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_prometheus_scrapes_worker_ledger_and_gateway_and_compose_runs_it():
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]
    assert {job["job_name"] for job in config["scrape_configs"]} == {"worker", "ledger", "gateway"}
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    prometheus = compose["services"]["prometheus"]
    assert "./prometheus/rules.yml:/etc/prometheus/rules.yml:ro" in prometheus["volumes"]
    workers = [s for name, s in compose["services"].items() if name.startswith("worker-")]
    (target,) = {tuple(job["static_configs"][0]["targets"]) for job in config["scrape_configs"]
                 if job["job_name"] == "worker"}
    assert len(target) == len(workers)
    for worker in workers:
        command = worker["command"]
        port = command[command.index("--metrics-port") + 1]
        assert all(t.endswith(f":{port}") for t in target)
