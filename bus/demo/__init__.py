"""``bus demo``: a year of one commune's exchanges played on a real broker, with fictional data.

Phase 1 (the spine): companies from SIRENE signed, published, read back verified, and a forged
record dead-lettered with its original bytes. Then the attestations of the URSSAF and the DGFiP
are published, the archives service's SEDA profiles approved on the profile bank and the
commune's archive service declared (:mod:`bus.demo._profiles`), and ``bus worker`` starts (:mod:`bus.demo._worker`), and every party publishes
what it would send, dated in 2025, signed with its own key, while the demo reads the
processors' answers: the acts (phase 2), the procurement (3), the invoices and the accounting
chain (4), the archives (5), then says what travelled encrypted for whom and shows that a reader
holding no key sees the envelopes only (5c). Every party has an encryption key (created once like
its signing key, published, approved by the registration authority with the others), and what is
not public by nature is addressed to the parties it concerns (:data:`bus.demo._stage.ADDRESSED`).
Last, the ledger checkpoints every log (6), so ``bus verify``
right after the demo is clean on the family topics and names the forged record. Every native
document the bus produced is written to ``out`` when given. Each run has its own id in dossier
ids and numbers, so the demo can be played again on the same broker.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bus._runtime import BusContext, encryption_key_store
from bus._settings import BusSettings
from bus.client import DLQ_PREFIX

from ._acts import acts_phase
from ._archives import archives_phase
from ._barometer import barometer_phase
from ._confidentiality import confidentiality_phase
from ._invoices import invoices_phase
from ._keys import demo_encryption_keys, demo_keys
from ._ledger import checkpoint_phase, demo_ledger_key
from ._procurement import procurement_phase, publish_attestations
from ._profiles import profile_bank_phase
from ._reference import reference_phase
from ._secure import apply_acls, approve_demo_keys, identities
from ._stage import Stage, Watcher
from ._worker import DEMO_IDLE_SECONDS, DemoWorker, WorkerError

__all__ = ["run_demo"]

async def run_demo(settings: BusSettings, *, out: Path | None = None, console: Console | None = None,
                   secure: bool = False, metrics_port: int | None = None) -> dict[str, Any]:
    """Play the demo on the cluster of ``settings``; returns the summary figures.

    ``out``: where to write the native documents the bus produced (created if needed).
    ``secure``: on the secure broker, each party with its own certificate (:mod:`bus.demo._secure`).
    ``metrics_port``: the demo's worker serves ``/metrics`` and ``/health/*`` on it while the demo plays.
    """
    console = console or Console()
    principals = identities(settings) if secure else {}
    settings = principals.get("operator", settings)
    ctx = await BusContext.connect(settings)
    console.print(f"bus on [bold]{settings.bootstrap}[/], {len(ctx.catalog)} pivot schemas in the catalog"
                  + (" (mutual TLS, a certificate per party)" if secure else ""))
    keys = await demo_keys(ctx)
    trusted = secure or ctx.directory.trust.enforced
    if trusted:
        await demo_ledger_key(ctx)  # made now so that the authority approves it with the others
        await approve_demo_keys(ctx, console)
    # Every party's encryption key; the demo reads as each of them (its watcher holds every stored key, as
    # the worker does). Under a trust anchor their publications count once signed by approved keys, and are
    # approved in turn.
    await demo_encryption_keys(ctx, keys)
    ctx.decryption = encryption_key_store(ctx.settings).keyring()
    if trusted:
        await approve_demo_keys(ctx, console)
    if secure:
        await apply_acls(settings, console)
    worker_source = f"urn:siren:{keys['bus'].public.siren}:worker"
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    async with await Watcher.from_now(ctx) as watcher:
        stage = Stage(ctx, keys, watcher, worker_source, out, identities=principals)
        console.print(f"run [bold]{stage.run}[/]")
        worker = DemoWorker(principals.get("worker", settings), source=worker_source,
                            log_path=settings.state_dir / "demo" / f"worker-{stage.run}.log", metrics_port=metrics_port,
                            profile_bank=True, idle=DEMO_IDLE_SECONDS)
        try:
            summary.update(await reference_phase(ctx, keys, console))
            attestations = await publish_attestations(stage)
            console.print(f"{attestations} attestations published by the URSSAF and the DGFiP")
            summary.update(await profile_bank_phase(stage, console))
            console.print(f"starting [bold]bus worker[/] (every processor, timers on the stream's time; log in {worker.log_path})")
            async with worker:
                summary.update(await acts_phase(stage, console))
                summary.update(await procurement_phase(stage, worker, console))
                summary.update(await invoices_phase(stage, worker, summary["contract"], console))
                dossiers = [*summary["acts subjects"], f"contract:{summary['contract']}"]
                summary.update(await archives_phase(stage, dossiers, console))
                summary.update(await barometer_phase(stage, console))
                summary.update(await confidentiality_phase(stage, console))
        except WorkerError:
            raise
        except BaseException:
            tail = worker.log_tail(3000)
            if tail:
                console.print(f"[red]the demo stopped; the worker's log ends with:[/]\n{tail}")
            raise
        finally:
            await stage.close()
        how = "killed after the stop deadline" if worker.killed else f"stopped, exit status {worker.exit_status}"
        console.print(f"bus worker {how}")
        summary.update(await checkpoint_phase(ctx, summary["forged record"], console, principals.get("ledger")))
        published = summary.get("companies published", 0) + summary.get("forgeries dead-lettered", 0)
        summary["events published"] = published + sum(stage.published.values())
        summary["events produced by processors"] = len(watcher.produced_by(worker_source))
        summary["dead letters"] = len(watcher.dead)
        summary["documents written"] = len(stage.written)
        _totals(console, stage, watcher, summary)
    return summary


def _totals(console: Console, stage: Stage, watcher: Watcher, summary: dict[str, Any]) -> None:
    console.rule("[bold]Summary")
    by_role = Table("publisher", "events", title="events published, by the party that signed them")
    for role, count in sorted(stage.published.items()):
        by_role.add_row(role, str(count))
    console.print(by_role)
    produced = Counter(e.type.rsplit(".", 1)[1] for e in watcher.produced_by(stage.worker_source))
    outputs = Table("event type", "count", title="events produced by the processors (bus worker)")
    for name, count in sorted(produced.items()):
        outputs.add_row(name, str(count))
    console.print(outputs)
    if watcher.dead:
        dead = Counter((dict(r.headers).get(f"{DLQ_PREFIX}processor", b"?").decode(),
                        dict(r.headers).get(f"{DLQ_PREFIX}error_class", b"?").decode()) for r in watcher.dead)
        letters = Table("processor", "error", "count", title="dead letters of this run")
        for (processor, error), count in sorted(dead.items()):
            letters.add_row(processor, error, str(count))
        console.print(letters)
    table = Table("figure", "value", title="demo summary")
    for name, value in summary.items():
        if isinstance(value, (int, str)) and name not in ("contract",):
            table.add_row(name, str(value))
    console.print(table)
    if stage.written:
        console.print(f"{len(stage.written)} native documents written to {stage.out}")
