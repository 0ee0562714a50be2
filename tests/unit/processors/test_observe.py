"""The worker's consumer lag (``processors._observe``): from the commit point until a record is handled."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from aiokafka import TopicPartition

from processors._observe import _lags

ACTS, INVOICES = TopicPartition("p.dcant.acts", 0), TopicPartition("p.dcant.invoices", 0)


def test_a_restarted_worker_counts_its_lag_from_the_commit_point_not_from_zero():
    committed = defaultdict(lambda: None, {ACTS: 18})
    consumer = SimpleNamespace(assignment=lambda: {ACTS, INVOICES}, highwater=lambda tp: {ACTS: 19, INVOICES: 40}[tp],
                               _committed_offset=committed)
    consumer.__dict__["_bus_starts"] = {INVOICES: 0}
    shell = SimpleNamespace(partitions={"p.dcant.acts": 6, "p.dcant.invoices": 6}, rekey=SimpleNamespace(name="r"),
                            last_offsets={})
    app = SimpleNamespace(bus_shells=[shell], consumer=consumer)
    assert _lags(app) == {("p.dcant.acts", 0): 1, ("p.dcant.invoices", 0): 40}
    shell.last_offsets[INVOICES] = 30  # handled up to 30 since the start
    assert _lags(app)[("p.dcant.invoices", 0)] == 9
