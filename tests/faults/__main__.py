"""``python -m tests.faults [--trials N] [--seed S]``: the fault harness (``make faults TRIALS=N``).

Starts an embedded broker on free ports with its own temporary state directory, runs N trials
(:mod:`tests.faults._trial`), each on its own topic prefix and consumer group, and stops the
broker at the end, on failure and on Ctrl-C or SIGTERM alike. Prints one line per trial, the
details of each failed trial (seed, fault, lost ce_ids, duplicate effects, worker logs), and
last, exactly: ``fault trials: N, faults injected: F, records lost: L, duplicate effects: D``.
Exit 0 only when L = 0 and D = 0 and every trial ran to its end; 1 otherwise; 2 on a usage or
set-up error (one line on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from bus._broker import EmbeddedBroker
from bus._errors import BusError
from tests.integration.conftest import embedded_settings, kafka_processes_of

from ._trial import TrialResult, run_trial


def _details(result: TrialResult) -> list[str]:
    lines = [f"  trial {result.index}: seed {result.seed}, fault {result.fault} at {result.trigger} effects"
             f"{'' if result.injected else ' (not injected)'}"]
    lines += [f"    {note}" for note in result.notes]
    if result.error:
        lines.append(f"    error: {result.error}")
    a = result.accounting
    if a is not None:
        for i in a.lost:
            lines.append(f"    lost: {i.kind} {i.key} ce_id {i.ce_id}")
        for kind, keys in a.missing.items():
            lines.append(f"    no {kind} for: {', '.join(keys[:20])}{' …' if len(keys) > 20 else ''}")
        for kind, by_key in a.duplicates.items():
            for key, ids in sorted(by_key.items()):
                lines.append(f"    {len(ids)} different {kind}s for {key}: {', '.join(sorted(ids))}")
        for i in a.dead_lettered:
            lines.append(f"    dead-lettered: {i.kind} {i.key} ce_id {i.ce_id}")
    lines += [f"    worker log: {path}" for path in result.logs]
    return lines


async def _run(trials: int, seed: int, root: Path, broker: EmbeddedBroker, bootstrap: str) -> list[TrialResult]:
    seeds = random.Random(seed)
    results = []
    for index in range(1, trials + 1):
        trial_seed = seeds.randrange(2 ** 32)
        result = await run_trial(index, trial_seed, broker, root, bootstrap)
        results.append(result)
        verdict = "ok" if result.ok else "FAILED"
        print(f"trial {index}/{trials}: seed {trial_seed}, fault {result.fault} at {result.trigger} effects, "
              f"lost {result.lost}, duplicate effects {result.duplicates}, {result.seconds:.1f} s, {verdict}",
              flush=True)
    return results


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends like Ctrl-C: the finally blocks stop workers and broker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="number of trials (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the run (default: random, printed)")
    parser.add_argument("--keep", action="store_true", help="keep the state directory (worker logs) at the end")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    seed = args.seed if args.seed is not None else random.randrange(2 ** 32)
    signal.signal(signal.SIGTERM, _terminate)
    root = Path(tempfile.mkdtemp(prefix="dcant-faults-"))
    # The clients' retries while the broker restarts are expected: logged to a file, not the terminal.
    logging.basicConfig(filename=root / "harness.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    broker = EmbeddedBroker(embedded_settings(root / "broker"))
    results: list[TrialResult] = []
    interrupted = False
    try:
        bootstrap = broker.start(timeout=180)
        print(f"fault harness: seed {seed}, broker {bootstrap}, state {root}", flush=True)
        results = asyncio.run(_run(args.trials, seed, root, broker, bootstrap))
    except KeyboardInterrupt:
        interrupted = True
    except BusError as exc:
        print(f"python -m tests.faults: {exc.message}", file=sys.stderr)
        return 2
    finally:
        broker.stop()
        left = kafka_processes_of(root)
        failed = [r for r in results if not r.ok]
        if left:
            print(f"processes {left} of {root} survived the harness", file=sys.stderr)
        if not args.keep and not failed and not left:
            shutil.rmtree(root, ignore_errors=True)
    for result in failed:
        print("\n".join(_details(result)))
    if interrupted:
        print(f"interrupted after {len(results)} trial(s)")
    lost = sum(r.lost for r in results)
    duplicates = sum(r.duplicates for r in results)
    injected = sum(r.injected for r in results)
    print(f"fault trials: {len(results)}, faults injected: {injected}, records lost: {lost}, "
          f"duplicate effects: {duplicates}")
    return 0 if not failed and not interrupted and not left and results else 1


if __name__ == "__main__":
    sys.exit(main())
