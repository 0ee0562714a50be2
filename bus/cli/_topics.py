"""``bus topics``: the topic map, created idempotently, with each topic's live configuration."""

from __future__ import annotations

import typer
from rich.table import Table

from bus._topics import describe_topics, ensure_topics, topic_map
from bus.client import admin_client

from ._common import console, run, settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("topics")
    def topics(
        create: bool = typer.Option(True, help="create the missing topics first (idempotent)"),
    ) -> None:
        """List the bus topics with their live partitions, retention, compaction and min ISR."""
        s = settings()
        specs = topic_map(s)

        async def go():  # type: ignore[no-untyped-def]
            admin = admin_client(s)
            await admin.start()
            try:
                outcome = await ensure_topics(admin, specs.values()) if create else {}
                live = await describe_topics(admin, specs.values())
            finally:
                await admin.close()
            return outcome, live

        outcome, live = run(go())
        table = Table("topic", "partitions", "cleanup", "retention.ms", "min ISR", "timestamps", "also encrypted to",
                      "state", title=f"topics on {s.bootstrap}")
        for spec in specs.values():
            cfg = live.get(spec.name, {})
            table.add_row(spec.name, cfg.get("partitions", "-"), cfg.get("cleanup.policy", "-"),
                          cfg.get("retention.ms", "-"), cfg.get("min.insync.replicas", "-"),
                          cfg.get("message.timestamp.type", "-"), ", ".join(spec.extra_recipients) or "-",
                          outcome.get(spec.name, "missing" if not cfg else "exists"))
        console.print(table)
