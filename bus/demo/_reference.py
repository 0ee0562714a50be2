"""Demo phase 1, the spine: SIRENE companies published, consumed, verified; a forgery dead-lettered."""

from __future__ import annotations

import uuid
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters import sirene
from bus._keys import SigningKey
from bus._runtime import BusContext
from bus._wire import Event, Record, Wire
from bus.client import DLQ_PREFIX, Publisher, Subscriber, read_topic

from ._data import sirene_documents
from ._keys import keyring_of

__all__ = ["reference_phase"]


async def reference_phase(ctx: BusContext, keys: dict[str, SigningKey], console: Console) -> dict[str, Any]:
    """Publish the companies signed by the bus operator, read them back verified, forge one."""
    console.rule("[bold]1. Reference data: companies from SIRENE")
    wire = Wire(ctx.catalog, ctx.directory, keyring_of(ctx, keys["bus"]), source=f"urn:siren:{keys['bus'].public.siren}:sirene-sync",
                clock=ctx.clock, max_event_bytes=ctx.settings.max_event_bytes)
    events = []
    for name, data in sirene_documents():
        for pivot in sirene.to_pivots(data, name=name):
            events.append(Event(type=pivot.type, subject=pivot.subject, schema=pivot.schema, data=pivot.data))
    async with Publisher(ctx.settings, wire) as publisher:
        stored = await publisher.publish_many(events, topic="reference.companies")
        # A forgery: the first record with one byte of its payload changed after signing.
        original = stored[0]
        value = bytearray(original.value or b"")
        value[-3] ^= 0x20
        forged = await publisher.send_raw(ctx.topic("reference.companies"),
                                          Record(original.key, bytes(value), original.headers))
    ids = {dict(r.headers)["ce_id"].decode() for r in stored}
    verified: list[Any] = []

    async def collect(received):  # type: ignore[no-untyped-def]
        if received.id in ids:
            verified.append(received)

    group = f"demo-{uuid.uuid4().hex[:8]}"
    async with Subscriber(ctx.settings, wire, ["reference.companies"], collect, processor="demo-reader",
                          group=group) as sub:
        await sub.run(until=lambda: len(verified) >= len(stored) and sub.stats["dead_lettered"] >= 1)
    table = Table("SIRET / SIREN", "name", "legal form", "NAF", "state", "diffusion", "withheld fields",
                  title="companies read back, each signature verified")
    for received in sorted(verified, key=lambda r: r.subject):
        d = received.data
        table.add_row(d["siret"] or d["siren"], d["name"] or "[dim](not diffusible)[/]", d["legal_form"] or "",
                      d["naf"] or "", d["administrative_state"], d["diffusion_status"],
                      _withheld(d["redacted_fields"]))
    console.print(table)
    dead = [r for r in await read_topic(ctx.settings, ctx.topic("deadletter"))
            if dict(r.headers).get(f"{DLQ_PREFIX}source_offset") == str(forged.offset).encode()
            and dict(r.headers).get(f"{DLQ_PREFIX}source_topic") == (forged.topic or "").encode()]
    info = {k[len(DLQ_PREFIX):]: v.decode() for k, v in dead[-1].headers if k.startswith(DLQ_PREFIX)} if dead else {}
    console.print(f"forged record at {forged.topic}[{forged.partition}]@{forged.offset} → dead-letter topic: "
                  f"[red]{info.get('error_class', 'NOT FOUND')}[/] — {info.get('error_hint', '')}")
    console.print(f"original bytes kept: {bool(dead) and dead[-1].value == forged.value}")
    return {"companies published": len(stored), "companies verified": len(verified),
            "forgeries dead-lettered": len(dead), "forged record": f"{forged.topic}[{forged.partition}]@{forged.offset}"}


def _withheld(fields: list[str]) -> str:
    """``name, street address`` rather than every address sub-field."""
    names = sorted({"street address" if f.startswith("address.") else f for f in fields})
    return ", ".join(names) or "-"
