"""``bus verify``, ``bus replay``, ``bus trace``, ``bus evidence`` and ``bus ledger``: the auditor's commands.

``verify`` exits 0 only when everything verifies, 1 with a table of findings otherwise (2 for
a usage or bus error, as every command); ``replay --verify`` likewise exits 1 when a record is
refused, printing only those. Topics are logical names (``invoices``) or real ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bus._errors import BusError, ConfigurationError
from bus._keys import generate_key
from bus._runtime import BusContext, key_store, siren_of_source
from bus._settings import BusSettings
from bus._topics import FAMILIES, topic_map

from ._common import console, err_console, print_json, run, settings

__all__ = ["register"]


def _topics(s: BusSettings, names: list[str] | None, default: list[str]) -> list[str]:
    specs = topic_map(s)
    return [specs[n].name if n in specs else n for n in (names or default)]


def _when(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err_console, transient=True)


def _agent(actor: dict[str, Any] | None) -> str:
    """Who acted, in a table cell: the agent's e-mail (else uid, else sub), its role and SIRET."""
    if actor is None:
        return ""
    who = actor.get("email") or actor.get("uid") or actor["sub"]
    return " ".join(str(p) for p in (who, f"({actor['role']})" if actor.get("role") else None,
                                     f"SIRET {actor['siret']}" if actor.get("siret") else None) if p)


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify_cmd(
        topics: list[str] = typer.Argument(None, help="topics to verify (default: family and reference topics)"),
        as_topic: list[str] = typer.Option([], "--as-topic", help="COPY=ORIGINAL: verify COPY against ORIGINAL's checkpoints"),
        checkpoints: str = typer.Option(None, help="checkpoint topic (default: the bus's ledger.checkpoints)"),
        require_witness: list[str] = typer.Option([], help="key id of a witness whose cosignature is required"),
        workers: int = typer.Option(1, help="processes verifying signatures"),
        as_json: bool = typer.Option(False, "--json", help="findings as JSON lines"),
    ) -> None:
        """Recompute Merkle roots, check every checkpoint and every event signature; exit 0 only if all verify."""
        from bus.ledger._verify import verify_topics

        s = settings()
        defaults = [topic_map(s)[k].name for k in (*FAMILIES, "reference.companies", "reference.attestations",
                                                    "reference.administrations")]
        names = _topics(s, topics, defaults)
        mapping = {}
        for pair in as_topic:
            copy, sep, original = pair.partition("=")
            if not sep:
                raise typer.BadParameter("--as-topic takes COPY=ORIGINAL")
            mapping[_topics(s, [copy], [])[0]] = _topics(s, [original], [])[0]

        async def go():  # type: ignore[no-untyped-def]
            ctx = await BusContext.connect(s, create_topics=False)
            with _progress() as bar:
                task = bar.add_task("verifying", total=None)
                return await verify_topics(s, ctx.catalog, ctx.directory, names, as_topic=mapping,
                                           checkpoint_topic=checkpoints, workers=workers,
                                           require_witnesses=require_witness,
                                           progress=lambda done, total: bar.update(task, completed=done, total=total))

        report = run(go())
        if as_json:
            for finding in report.findings:
                print_json(finding.to_json())
        elif report.findings:
            table = Table("severity", "kind", "topic", "partition", "offset", "detail", title="verification findings")
            for f in report.findings:
                table.add_row(f.severity, f.kind, f.topic, str(f.partition), str(f.offset), f.detail,
                              style="red" if f.severity == "error" else "dim")
            console.print(table)
        summary = f"{report.records} record(s), {report.partitions} partition(s), {report.checkpoints} checkpoint(s)"
        if report.ok:
            err_console.print(f"[green]verified[/]: {summary}")
            return
        err_console.print(f"[red]{len(report.errors())} finding(s)[/]: {summary}")
        raise typer.Exit(1)

    @app.command("replay")
    def replay_cmd(
        topics: list[str] = typer.Argument(..., help="topics to replay"),
        from_offset: int = typer.Option(None, help="first offset (each partition)"),
        to_offset: int = typer.Option(None, help="last offset, inclusive (each partition)"),
        since: str = typer.Option(None, help="records the broker received at or after this time (ISO 8601)"),
        until: str = typer.Option(None, help="records the broker received up to this time (ISO 8601)"),
        event_type: list[str] = typer.Option([], "--type", help="ce_type, or a prefix ending in '.'"),
        source: list[str] = typer.Option([], help="producer (ce_source)"),
        subject: list[str] = typer.Option([], help="dossier (ce_subject)"),
        workers: int = typer.Option(1, help="processes reading and verifying (this one included)"),
        verify: bool = typer.Option(False, "--verify", help="print only the refused records and a count, exit 1 "
                                                              "if any (every record is still verified and decoded)"),
        table: bool = typer.Option(False, "--table", help="a table instead of JSON lines"),
    ) -> None:
        """Verify and decode every record of a range, each with the schema its producer used."""
        from bus.ledger._replay import ReplayPool, ReplayQuery, ReplayStats, replay

        s = settings()
        query = ReplayQuery(tuple(_topics(s, topics, [])), from_offset, to_offset, _when(since), _when(until),
                            frozenset(event_type), frozenset(source), frozenset(subject))
        stats = ReplayStats()

        async def go() -> list:  # type: ignore[type-arg]
            # The helpers start first: they import the bus while this process connects.
            pool = ReplayPool(s, workers - 1) if workers > 1 else None
            try:
                ctx = await BusContext.connect(s, create_topics=False)
                rows = []
                with _progress() as bar:
                    task = bar.add_task("replaying", total=None)
                    async for item in replay(s, ctx.wire(), query, pool=pool, refused_only=verify, stats=stats,
                                             progress=lambda d, t: bar.update(task, completed=d, total=t)):
                        if table:
                            rows.append(item)
                        else:
                            print_json(item.to_json())
                return rows
            finally:
                if pool is not None:
                    pool.close()

        rows = run(go())
        if table:
            out = Table("record", "time", "type", "subject", "source", "schema", "verified")
            for r in rows:
                out.add_row(f"{r.topic}[{r.partition}]@{r.offset}", r.time or "", r.type or "", r.subject or "",
                            r.source or "", f"v{r.writer_version}→v{r.reader_version}" if r.ok else "",
                            "yes" if r.ok else f"[red]{r.error_class}[/]")
            console.print(out)
        if verify:
            summary = f"{stats.opened} record(s) opened, {stats.refused} refused ({stats.read} read)"
            if stats.refused:
                err_console.print(f"[red]refused[/]: {summary}")
                raise typer.Exit(1)
            err_console.print(f"[green]verified[/]: {summary}")

    @app.command("trace")
    def trace_cmd(
        dossier: str = typer.Argument(..., help="dossier id (ce_subject), e.g. invoice:<seller>:<number>"),
        at: str = typer.Option(None, "--at", help="the dossier as it was at this date (ISO 8601)"),
        as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
        topic: list[str] = typer.Option([], "--topic", help="topics to search (default: the family topics)"),
    ) -> None:
        """Every event of a dossier across families (correlation and causation), as a timeline."""
        from bus.ledger._trace import state_at, trace_dossier

        s = settings()
        moment = _when(at)

        async def go():  # type: ignore[no-untyped-def]
            ctx = await BusContext.connect(s, create_topics=False)
            return await trace_dossier(s, ctx.wire(), dossier, at=moment, topics=_topics(s, topic, []) or None)

        timeline = run(go())
        state = state_at(dossier, timeline, moment)
        if as_json:
            for item in timeline:
                print_json(item.to_json())
            print_json({"dossier": dossier, "at": at, "state": state.state,
                        "event": state.event.id if state.event else None})
            return
        out = Table("time", "type", "dossier", "producer", "agent", "record", "correlation", title=f"dossier {dossier}")
        for e in timeline:
            out.add_row(e.time or "", e.type or "", e.subject or "", e.source or "", _agent(e.actor),
                        f"{e.topic}[{e.partition}]@{e.offset}", e.correlationid or "")
        console.print(out)
        for e in timeline:
            if e.hidden:
                what = e.personal_data()
                why = (f"erased on {what['erased_at']} ({what['basis']})" if what["state"] == "erased"
                       else "encrypted, its dossier key not held here")
                console.print(f"{e.type} {e.id}: personal data {why}: {', '.join(e.hidden)}", markup=False,
                              soft_wrap=True)
        console.print(f"state{' at ' + at if at else ''}: [bold]{state.state or 'unknown'}[/]")

    evidence = typer.Typer(help="Offline evidence bundles of a dossier.", no_args_is_help=True)
    app.add_typer(evidence, name="evidence")

    @evidence.command("build")
    def evidence_build(
        dossier: str = typer.Argument(..., help="dossier id (ce_subject)"),
        out: Path = typer.Option(..., "--out", help="the zip file to write"),
        topic: list[str] = typer.Option([], "--topic", help="topics to search (default: the family topics)"),
    ) -> None:
        """Write a self-contained bundle: events, keys, schemas, signed checkpoints, proofs, timeline."""
        from bus.ledger._evidence import collect_evidence

        s = settings()

        async def go() -> bytes:
            ctx = await BusContext.connect(s, create_topics=False)
            return await collect_evidence(s, ctx.catalog, ctx.directory, dossier, topics=_topics(s, topic, []) or None)

        data = run(go())
        out.write_bytes(data)
        console.print(f"evidence for {dossier} written to {out} ({len(data)} bytes)")

    @evidence.command("verify")
    def evidence_verify(
        file: Path = typer.Argument(..., exists=True, dir_okay=False),
        trust_anchor: str = typer.Option(None, "--trust-anchor", help="the registration authority's fingerprint or "
                                         "PEM file: every key of the bundle must chain to it (default: "
                                         "BUS_TRUST_ANCHOR; without one, a bundle only proves it is self-consistent)"),
    ) -> None:
        """Verify a bundle offline (no broker): exit 0 when every byte of it checks out."""
        from bus._authority import TrustAnchor
        from bus.ledger._evidence import MAX_BUNDLE_BYTES, verify_bundle

        if file.stat().st_size > MAX_BUNDLE_BYTES:
            raise BusError(f"{file} is larger than {MAX_BUNDLE_BYTES} bytes")
        anchor_text = trust_anchor or settings().trust_anchor
        anchor = TrustAnchor.parse(anchor_text) if anchor_text else None
        if anchor is None:
            err_console.print("[yellow]no trust anchor[/]: the bundle is checked for consistency only; "
                              "keys of its own would pass (pass --trust-anchor)")
        report = verify_bundle(file.read_bytes(), anchor=anchor)
        console.print(f"[green]verified[/]: dossier {report.dossier}, {len(report.events)} event(s), "
                      f"{report.checkpoints} checkpoint(s), {report.keys} key(s), built {report.created}")

    _register_ledger(app)


def _register_ledger(app: typer.Typer) -> None:
    ledger = typer.Typer(help="The Merkle ledger over the family topics.", no_args_is_help=True)
    app.add_typer(ledger, name="ledger")

    @ledger.command("keygen")
    def keygen(
        siren: str = typer.Argument(None, help="SIREN of the operator (default: BUS_SOURCE's)"),
        purpose: str = typer.Option("LEDGER", help="LEDGER (signs checkpoints) or WITNESS (cosigns them)"),
    ) -> None:
        """Create and publish the ledger's (or a witness's) signing key."""
        s = settings()
        if purpose not in ("LEDGER", "WITNESS"):
            raise typer.BadParameter("purpose is LEDGER or WITNESS")
        siren = siren or siren_of_source(s.source)
        key = generate_key(siren, f"SIREN {siren} {purpose.lower()}", valid_from=dt.datetime.now(dt.UTC),
                           purpose=purpose)  # type: ignore[arg-type]
        key_store(s).save(key)

        async def go() -> None:
            ctx = await BusContext.connect(s)
            await ctx.publish_keys([key])

        run(go())
        console.print(f"{purpose} key {key.key_id} stored and published")

    def processor(s: BusSettings, every_records: int, every_seconds: float, witness_key: str | None,  # type: ignore[no-untyped-def]
                  metrics=None):
        from bus.ledger._processor import LedgerProcessor, ledger_key
        from bus.ledger._witness import Witness, WitnessState

        async def make():  # type: ignore[no-untyped-def]
            ctx = await BusContext.connect(s)
            now = dt.datetime.now(dt.UTC)
            key = ledger_key(ctx.keystore, siren_of_source(s.source), now)
            witness = None
            if witness_key:
                wkey = next((k for k in ctx.keystore.load_all() if k.key_id == witness_key), None)
                if wkey is None or wkey.public.purpose != "WITNESS":
                    raise ConfigurationError(f"no local WITNESS key {witness_key}")
                state_file = s.state_dir / "ledger" / f"witness-{wkey.key_id.replace(':', '_')}.state"
                state = WitnessState.from_bytes(state_file.read_bytes()) if state_file.exists() else None

                def log_verifier(key_id: str, message: bytes, sig: bytes) -> None:
                    if ctx.directory.get(key_id).purpose != "LEDGER":
                        raise ConfigurationError(f"{key_id} is not a LEDGER key")
                    ctx.directory.verify(key_id, message, sig, at=dt.datetime.now(dt.UTC))

                witness = (Witness(wkey.key_id, log_verifier, state), wkey)
            proc = LedgerProcessor(s, key, ctx.directory, every_records=every_records, every_seconds=every_seconds,
                                   witness=witness, metrics=metrics)
            await proc.resume()
            return proc, witness

        return make()

    def save_witness(s: BusSettings, witness) -> None:  # type: ignore[no-untyped-def]
        if witness is not None:
            w, key = witness
            folder = s.state_dir / "ledger"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"witness-{key.key_id.replace(':', '_')}.state").write_bytes(w.state.to_bytes())

    @ledger.command("run")
    def run_cmd(
        every_records: int = typer.Option(1000, help="checkpoint a partition every N records"),
        every_seconds: float = typer.Option(60.0, help="checkpoint changed partitions every T seconds"),
        witness_key: str = typer.Option(None, help="a local WITNESS key id to cosign each checkpoint"),
        metrics_port: int = typer.Option(None, "--metrics-port",
                                         help="serve /metrics and /health/live|ready on this port"),
        metrics_host: str = typer.Option("127.0.0.1", "--metrics-host", help="address of the metrics server"),
    ) -> None:
        """Follow the family topics and publish signed checkpoints until interrupted."""
        s = settings()

        async def go() -> int:
            from bus._metrics import BusMetrics, LedgerMetrics, serve

            metrics = LedgerMetrics(BusMetrics()) if metrics_port is not None else None
            proc, witness = await processor(s, every_records, every_seconds, witness_key, metrics)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            server = None
            if metrics is not None:
                async def refresh() -> None:
                    metrics.set_ages(proc.newest_ms, proc.pending(), proc.clock())

                async def ready() -> tuple[bool, str]:
                    return (True, "following the topics") if proc.following else (False, "opening the topics")

                metrics.metrics.on_scrape(refresh)
                server = await serve(metrics.metrics, host=metrics_host, port=metrics_port, ready=ready)
            try:
                await proc.run(stop)
            finally:
                save_witness(s, witness)
                if server is not None:
                    await server.cleanup()
            return len(proc.published)

        console.print(f"{run(go())} checkpoint(s) published")

    @ledger.command("checkpoint")
    def checkpoint_cmd(witness_key: str = typer.Option(None, help="a local WITNESS key id to cosign")) -> None:
        """Catch up with every topic now and publish a checkpoint of every changed log."""
        s = settings()

        async def go():  # type: ignore[no-untyped-def]
            proc, witness = await processor(s, 1000, 3600.0, witness_key)
            published = await proc.catch_up()
            save_witness(s, witness)
            return published

        for cp in run(go()):
            console.print(json.dumps({"log": cp.log_id, "size": cp.size, "root": cp.root.hex(),
                                      "signers": list(cp.signers)}))
