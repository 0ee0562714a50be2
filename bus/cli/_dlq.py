"""``bus dlq``: list, show and re-drive dead-lettered records."""

from __future__ import annotations

import base64

import typer
from rich.table import Table

from bus._runtime import BusContext
from bus._wire import Record
from bus.client import DLQ_PREFIX, Publisher, read_topic

from ._common import console, print_json, run, settings

__all__ = ["dlq_info", "register"]


def dlq_info(record: Record) -> dict[str, str]:
    """The ``dlq_*`` headers of a dead-letter record, without the prefix."""
    return {k[len(DLQ_PREFIX):]: v.decode("utf-8", "replace") for k, v in record.headers if k.startswith(DLQ_PREFIX)}


def original(record: Record) -> Record:
    """The record as it was before it was dead-lettered (``dlq_*`` headers removed)."""
    return Record(record.key, record.value, tuple((k, v) for k, v in record.headers if not k.startswith(DLQ_PREFIX)))


def register(app: typer.Typer) -> None:
    dlq = typer.Typer(help="The dead-letter topic: rejected records with their original bytes.", no_args_is_help=True)
    app.add_typer(dlq, name="dlq")

    def _records(error_class: str | None = None) -> list[Record]:
        s = settings()
        from bus._topics import topic_map

        records = run(read_topic(s, topic_map(s)["deadletter"].name))
        return [r for r in records if error_class in (None, dlq_info(r).get("error_class"))]

    @dlq.command("list")
    def list_cmd(error_class: str = typer.Option(None, "--error-class", help="only this error class")) -> None:
        """One line per dead-lettered record: where it came from and why it was rejected."""
        table = Table("partition@offset", "source", "error", "message", "processor", "failed at")
        for r in _records(error_class):
            info = dlq_info(r)
            table.add_row(f"{r.partition}@{r.offset}",
                          f"{info.get('source_topic')}[{info.get('source_partition')}]@{info.get('source_offset')}",
                          info.get("error_class", "?"), info.get("error_message", "")[:80], info.get("processor", ""),
                          info.get("failed_at", "")[:19])
        console.print(table)

    @dlq.command("show")
    def show(offset: int = typer.Argument(..., help="offset in the dead-letter topic"),
             partition: int = typer.Option(None, help="partition (needed when several have that offset)")) -> None:
        """Everything about one record: the error, its original headers, key and value (base64)."""
        for r in _records():
            if r.offset == offset and partition in (None, r.partition):
                print_json({
                    "partition": r.partition, "offset": r.offset, "dead_letter": dlq_info(r),
                    "original_headers": {k: v.decode("utf-8", "replace") for k, v in original(r).headers},
                    "key": r.key.decode("utf-8", "replace") if r.key is not None else None,
                    "value_base64": base64.b64encode(r.value).decode() if r.value is not None else None,
                    "value_size": len(r.value or b""),
                })
                return
        raise typer.BadParameter(f"no dead-letter record at offset {offset}; see `bus dlq list`")

    @dlq.command("redrive")
    def redrive(
        offsets: list[int] = typer.Argument(None, help="dead-letter offsets to re-drive (default: all selected)"),
        error_class: str = typer.Option(None, "--error-class", help="only records rejected with this class"),
        to: str = typer.Option(None, help="target topic (default: each record's source topic)"),
        dry_run: bool = typer.Option(False, help="show what would be re-driven"),
    ) -> None:
        """Send dead-lettered records back, byte for byte, to their source topic once the cause is fixed."""
        s = settings()
        chosen = [r for r in _records(error_class) if not offsets or r.offset in offsets]

        async def go() -> int:
            ctx = await BusContext.connect(s, create_topics=False)
            async with Publisher(s, ctx.wire()) as publisher:
                for r in chosen:
                    target = to or dlq_info(r).get("source_topic")
                    if not target:
                        raise typer.BadParameter(f"record {r.offset} has no source topic; pass --to")
                    if dry_run:
                        console.print(f"would re-drive {r.partition}@{r.offset} → {target}")
                    else:
                        sent = await publisher.send_raw(target, original(r))
                        console.print(f"re-drove {r.partition}@{r.offset} → {sent.topic}[{sent.partition}]@{sent.offset}")
            return len(chosen)

        count = run(go())
        console.print(f"{count} record(s) {'selected' if dry_run else 're-driven'}")
