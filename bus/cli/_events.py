"""``bus publish`` and ``bus tail``: native documents onto the bus, verified events off it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.progress import Progress

from adapters import to_json_value
from bus._actor import Actor
from bus._envelope import Envelope
from bus._errors import BusError, NotARecipientError
from bus._runtime import BusContext
from bus._wire import Event
from bus.client import Publisher, read_topic

from ._common import console, err_console, print_json, run, settings
from ._documents import pivots_of

__all__ = ["register"]


def _actor(envelope: Envelope) -> dict[str, object]:
    """The ``actor`` key of a tail line: the agent who acted, as signed (absent when the event names none)."""
    return {} if envelope.actor is None else {"actor": Actor.from_header(envelope.actor).to_json()}


def register(app: typer.Typer) -> None:
    @app.command("publish")
    def publish(
        files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="native documents"),
        fmt: str = typer.Option(None, "--format", "-f", help="native format (detected when omitted)"),
        topic: str = typer.Option(None, help="logical topic (default: the family of the pivot)"),
    ) -> None:
        """Adapt native documents to pivot events, sign them with BUS_SOURCE's key and send them."""
        s = settings()

        async def go() -> int:
            ctx = await BusContext.connect(s)
            if ctx.signer is None:
                raise BusError(f"no signing key for {s.source}",
                               hint="create one with `bus keys generate <SIREN>` and set BUS_SOURCE")
            sent = 0
            async with Publisher(s, ctx.wire()) as publisher:
                with Progress(console=err_console, transient=True) as progress:
                    task = progress.add_task("publishing", total=len(files))
                    for path in files:
                        events = [Event(type=p.type, subject=p.subject, schema=p.schema, data=p.data)
                                  for p in pivots_of(path, fmt, s)]
                        for record in await publisher.publish_many(events, topic=topic):
                            console.print(f"{path.name} → {record.topic}[{record.partition}]@{record.offset} "
                                          f"{record.key.decode() if record.key else ''}")
                        sent += len(events)
                        progress.advance(task)
            return sent

        count = run(go())
        console.print(f"[green]{count} event(s) published[/]")

    @app.command("tail")
    def tail(
        topic: str = typer.Argument(..., help="logical topic (invoices, reference.companies, ...) or real name"),
        follow: bool = typer.Option(False, "--follow", help="keep waiting for new events"),
        limit: int = typer.Option(None, help="stop after this many events"),
    ) -> None:
        """Print a topic's events as JSON lines, each verified and decoded; bad records go to stderr."""
        s = settings()

        async def go() -> None:
            ctx = await BusContext.connect(s, create_topics=False)
            wire = ctx.wire()
            try:
                name = ctx.topic(topic)
            except KeyError:
                name = topic
            seen = 0
            offsets: dict[int, int] = {}
            while True:
                records = await read_topic(s, name, from_offsets=offsets or None)
                for record in records:
                    offsets[record.partition or 0] = (record.offset or 0) + 1
                    try:
                        received = wire.open(record)
                    except NotARecipientError as err:  # verified; the data is for its recipients only
                        env = err.envelope
                        print_json({"topic": record.topic, "partition": record.partition, "offset": record.offset,
                                    "id": env.id, "type": env.type, "source": env.source, "subject": env.subject,
                                    "time": env.time, "signed_by": env.sigkeyid,
                                    "recipients": list(env.recipient_sirens), **_actor(env),
                                    "data": "not a recipient"})
                        seen += 1
                        if limit is not None and seen >= limit:
                            return
                        continue
                    except BusError as err:
                        err_console.print(f"[red]{record.topic}[{record.partition}]@{record.offset}: "
                                          f"{type(err).__name__}: {err}[/]")
                        continue
                    env = received.envelope
                    print_json({"topic": record.topic, "partition": record.partition, "offset": record.offset,
                                "id": env.id, "type": env.type, "source": env.source, "subject": env.subject,
                                "time": env.time, "schema": f"{received.writer.name} v{received.writer.version}",
                                "signed_by": env.sigkeyid, **_actor(env), "data": to_json_value(received.data)})
                    seen += 1
                    if limit is not None and seen >= limit:
                        return
                if not follow:
                    return
                await asyncio.sleep(1.0)  # poll interval of --follow
                await ctx.refresh()

        run(go())
