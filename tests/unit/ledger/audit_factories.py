"""Small factories for the audit tests: signed records, a ledger key, checkpoints over a record list."""

from __future__ import annotations

import dataclasses
import datetime as dt

from bus import Event, KeyDirectory, Wire, default_catalog, generate_key
from bus._wire import Record
from bus.ledger import Checkpoint, sign
from bus.ledger._processor import PartitionLog
from bus.ledger._verify import CheckpointEntry, load_checkpoints

T0 = dt.datetime(2026, 3, 2, 8, 30, tzinfo=dt.UTC)
PRODUCER = generate_key("213105554", "Commune test", valid_from=T0 - dt.timedelta(days=30))
LEDGER = generate_key("130025265", "Bus ledger", valid_from=T0 - dt.timedelta(days=30), purpose="LEDGER")
WITNESS = generate_key("110044013", "Préfecture witness", valid_from=T0 - dt.timedelta(days=30), purpose="WITNESS")


def directory() -> KeyDirectory:
    return KeyDirectory([PRODUCER.public, LEDGER.public, WITNESS.public])


def wire() -> Wire:
    return Wire(default_catalog(), directory(), PRODUCER, source="urn:siren:213105554:test", clock=lambda: T0)


def company(n: int, siret: str = "42082007800012", **extra: object) -> Event:
    data = {"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret, "name": f"ACME {n}",
            "administrative_state": "ACTIVE", "diffusion_status": "DIFFUSIBLE", "source_format": "sirene-json"}
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}",
                 schema="fr.dcant.reference.Company", data=data, time=T0 + dt.timedelta(minutes=n), **extra)


def stored(records: list[Record], topic: str = "it.dcant.invoices", partition: int = 0) -> list[Record]:
    """Records as a topic holds them: topic, partition, contiguous offsets, broker timestamps."""
    base = int(T0.timestamp() * 1000)
    return [dataclasses.replace(r, topic=topic, partition=partition, offset=i, timestamp_ms=base + r_index(r, i))
            for i, r in enumerate(records)]


def r_index(record: Record, i: int) -> int:
    return 1000 * i


def sealed(count: int) -> list[Record]:
    w = wire()
    return [w.seal(company(i)) for i in range(count)]


def renumber(records: list[Record], topic: str) -> list[Record]:
    """A copy of ``records`` written to ``topic``: new contiguous offsets, same timestamps and bytes."""
    return [dataclasses.replace(r, topic=topic, offset=i) for i, r in enumerate(records)]


def ledger_over(records: list[Record], every: int) -> list[Checkpoint]:
    """Signed checkpoints a ledger processor would publish every ``every`` records."""
    part = PartitionLog(records[0].topic or "", records[0].partition or 0)
    out = []
    for i, record in enumerate(records, 1):
        part.append(record)
        if i % every == 0 or i == len(records):
            cp = sign(part.checkpoint(int(T0.timestamp() * 1000) + i, LEDGER.key_id), LEDGER.key_id, LEDGER.sign)
            part.checkpointed()
            out.append(cp)
    return out


def entries(checkpoints: list[Checkpoint]) -> list[CheckpointEntry]:
    records = [Record(c.log_id.encode(), c.to_bytes(), (), "cp", 0, i) for i, c in enumerate(checkpoints)]
    by_log, bad = load_checkpoints(records, directory())
    assert not bad, bad
    return [e for group in by_log.values() for e in group]
