"""Demo phase 5c, confidentiality: what travelled encrypted for whom, and what a non-recipient sees.

Per flow, this run's events (the parties' and the processors') are counted by their recipients
(``ce_recipients``): an addressed event's payload travels encrypted to those administrations'
keys, the others are broadcast. Then the invoices topic is read as ``bus tail invoices`` reads it
by a reader holding no decryption key: every record still verifies (the signature covers the
ciphertext and the wrapped keys), the envelope of an addressed one is visible, and its data is
"not a recipient".
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape

from bus._errors import NotARecipientError
from bus._topics import topic_for_schema
from bus._wire import Wire
from bus.client import read_topic

from ._data import ADMINISTRATIONS
from ._stage import Stage

__all__ = ["confidentiality_phase"]


async def confidentiality_phase(stage: Stage, console: Console) -> dict[str, Any]:
    """Print, per flow, who this run's events were encrypted for; read the invoices as a non-recipient."""
    console.rule("[bold]5c. Confidentialité / confidentiality: ce qui est chiffré pour qui / what is encrypted for whom")
    names = {a["siren"]: a["name"] for a in ADMINISTRATIONS.values()}
    flows: dict[str, Counter[tuple[str, ...]]] = {}
    for event in stage.watcher.events:
        flows.setdefault(topic_for_schema(event.writer.name), Counter())[event.envelope.recipient_sirens] += 1
    for flow, by_recipients in sorted(flows.items()):
        parts = [f"{count} chiffré(s) pour / encrypted for {', '.join(names.get(s, s) for s in sirens)}"
                 for sirens, count in sorted(by_recipients.items()) if sirens]
        if by_recipients[()]:
            parts.append(f"{by_recipients[()]} en clair, diffusé(s) / broadcast")
        console.print(f"[bold]{escape(flow)}[/]: " + "; ".join(parts))
    unread, readable, example = await _as_outsider(stage, "invoices")
    console.print(f"`bus tail invoices` sans clé de déchiffrement / without a decryption key: {unread} enveloppe(s) "
                  f"vérifiée(s) et visible(s) / envelope(s) verified and visible, données / data \"not a recipient\"; "
                  f"{readable} lisible(s) / readable (broadcast)")
    if example:
        console.print(f"  e.g. {escape(example)}")
    addressed = sum(n for by in flows.values() for sirens, n in by.items() if sirens)
    return {"events encrypted": addressed, "events broadcast": sum(by[()] for by in flows.values()),
            "invoices events unread by a non-recipient": unread}


async def _as_outsider(stage: Stage, logical: str) -> tuple[int, int, str]:
    """This run's records of ``logical`` opened with no decryption key: (not a recipient, readable, an example)."""
    ctx = stage.ctx
    topic = ctx.topic(logical)
    outsider = Wire(ctx.catalog, ctx.directory, None, max_event_bytes=ctx.settings.max_event_bytes)
    start = {tp.partition: offset for tp, offset in stage.watcher.start.items() if tp.topic == topic}
    unread = readable = 0
    example = ""
    for record in await read_topic(ctx.settings, topic, from_offsets=start or None):
        try:
            outsider.open(record)
        except NotARecipientError as err:  # verified first: only the data is withheld
            unread += 1
            env = err.envelope
            example = example or (f"{env.type.rsplit('.', 1)[1]} {env.subject} from {env.source} to "
                                  f"{','.join(env.recipient_sirens)}: data \"not a recipient\"")
            continue
        readable += 1
    return unread, readable, example
