"""Every benchmark of the bus in one run, on one broker, merged into one JSON object.

:func:`run` starts one :class:`bus._broker.EmbeddedBroker` on free ports in a temporary state
directory (unless ``BUS_BOOTSTRAP_SERVERS`` names a cluster, or no selected benchmark needs
Kafka), runs each benchmark module through its entry point and merges their figures, keyed by
benchmark name, each ``{"value", "baseline", "ratio", "unit", "method"}``; the baseline is
always measured in the same run on the same machine and data. A benchmark that fails is
reported as an entry with ``value`` null and the error in ``method``, and the others still run.

    python -m bench [--quick] [--json] [--only NAME]...     (what `bus bench` runs)

``--only`` takes an entry name (``ingest_vs_bare``) or a group name (``processors``); the
whole group that produces the entry runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
Progress = Callable[[str], None]
FIELDS = ("value", "baseline", "ratio", "unit", "method")


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 now (held open together while chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def broker(tmp: Path, progress: Progress = lambda m: None) -> Iterator[str]:
    """The cluster of BUS_BOOTSTRAP_SERVERS, or an embedded broker on free ports in ``tmp`` (stopped after)."""
    from bus._broker import EmbeddedBroker, wait_until_ready
    from bus._settings import BusSettings, default_cache_dir

    external = os.environ.get("BUS_BOOTSTRAP_SERVERS")
    if external:
        wait_until_ready(external, 60)
        yield external
        return
    ports = free_ports(2)
    progress("starting the embedded broker")
    embedded = EmbeddedBroker(BusSettings(bootstrap_servers=None, state_dir=tmp / "broker", cache_dir=default_cache_dir(),
                                          broker_port=ports[0], broker_controller_port=ports[1]))
    try:
        yield embedded.start(timeout=180)
    finally:
        embedded.stop()


# -- the groups: each runs one benchmark module and returns its entries ------------------------------

def _wire(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_wire

    return bench_wire.run(1000 if ctx["quick"] else 5000, 3 if ctx["quick"] else 5)


def _envelope(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_envelope

    return bench_envelope.run(ctx["quick"], ctx["corpus"])


def _sealed(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_sealed

    return bench_sealed.run(ctx["quick"])


def _adapters(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_adapters

    return bench_adapters.run(ctx["quick"], ctx["corpus"])


def _validate(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_validate

    return bench_validate.run(ctx["quick"], ctx["corpus"])


def _pes_signature(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_pes_signature

    return bench_pes_signature.run(ctx["quick"], ctx["corpus"])


def _audit(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_audit

    # bench_audit.run gives every audit entry, replay_two_procs_vs_one included (2 processes).
    return bench_audit.run(ctx["bootstrap"], ctx["tmp"], quick=ctx["quick"])


def _processors(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_processors

    env = bench_processors.BenchEnv(ctx["bootstrap"], ctx["tmp"] / "processors")
    return asyncio.run(bench_processors.run_processors(env, ctx["corpus"], ctx["quick"], ctx["progress"]))


def _large_document(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_large_document, bench_processors

    env = bench_processors.BenchEnv(ctx["bootstrap"], ctx["tmp"] / "large")
    return asyncio.run(bench_large_document.run(env, ctx["corpus"], ctx["quick"], ctx["progress"]))


def _gateway(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_gateway

    out = asyncio.run(bench_gateway.run(ctx["bootstrap"], ctx["tmp"], quick=ctx["quick"]))
    return {**out, **asyncio.run(bench_gateway.inbox_latency(ctx["bootstrap"], ctx["tmp"], quick=ctx["quick"]))}


def _tls(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_tls

    return bench_tls.run(ctx["bootstrap"], ctx["tmp"], quick=ctx["quick"])


def _cluster(ctx: dict[str, Any]) -> dict[str, Any]:
    from bench import bench_cluster

    return bench_cluster.run(ctx["bootstrap"], ctx["tmp"], quick=ctx["quick"])


#: group name -> (needs a broker, entries it produces, function)
GROUPS: dict[str, tuple[bool, tuple[str, ...], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "envelope": (False, ("envelope_vs_primitives",), _envelope),
    "sealed": (False, ("seal_encrypt_vs_seal", "open_decrypt_vs_open"), _sealed),
    "wire": (False, ("encode_sign_vs_primitives", "verify_decode_vs_primitives", "event_wire_bytes"), _wire),
    "adapters": (False, ("adapter_ubl_vs_lxml", "adapter_cii_vs_lxml", "adapter_pes_vs_lxml"), _adapters),
    "validate": (False, ("validate_official_vs_xsd",), _validate),
    "pes_signature": (False, ("pes_verify_vs_unsigned", "pes_sign_vs_write"), _pes_signature),
    "audit": (True, ("replay_verify_vs_ed25519", "replay_two_procs_vs_one", "replay_verify_pooled_per_core",
                     "ledger_append_us"), _audit),
    "processors": (True, ("ingest_vs_bare", "processors_vs_bare", "two_workers_vs_one", "latency_p99_ms",
                          "latency_p50_ms"), _processors),
    "large_document": (True, ("large_document_rss_mb", "large_document_sealed_rss_mb"), _large_document),
    "gateway": (True, ("gateway_submit_vs_sdk", "gateway_inbox_p99_ms"), _gateway),
    "tls": (True, ("tls_produce_vs_plaintext",), _tls),
    "cluster": (True, ("cluster_produce_vs_single",), _cluster),
}


def select(only: Sequence[str]) -> list[str]:
    """The groups to run for ``--only`` names (entry or group names; adapter_* names the adapters group)."""
    if not only:
        return list(GROUPS)
    chosen = []
    for name in only:
        group = name if name in GROUPS else next(
            (g for g, (_, entries, _) in GROUPS.items() if name in entries), None)
        if group is None and name.startswith("adapter_"):
            group = "adapters"
        if group is None and name.startswith("processor_"):
            group = "processors"
        if group is None:
            known = sorted({*GROUPS, *(e for _, es, _ in GROUPS.values() for e in es)})
            raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(known)}")
        if group not in chosen:
            chosen.append(group)
    return chosen


def run(*, quick: bool = False, only: Sequence[str] = (), corpus: Path = DEFAULT_CORPUS,
        progress: Progress = lambda message: None) -> dict[str, dict[str, Any]]:
    """Run the selected benchmarks; one dict keyed by entry name (see the module docstring)."""
    groups = select(only)
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bus-bench-") as tmp_name:
        tmp = Path(tmp_name)
        needs_broker = any(GROUPS[g][0] for g in groups)
        with broker(tmp, progress) if needs_broker else contextlib.nullcontext("") as bootstrap:
            for group in groups:
                ctx = {"quick": quick, "corpus": Path(corpus), "bootstrap": bootstrap, "tmp": tmp / group,
                       "progress": lambda m, g=group: progress(f"{g}: {m}")}
                (tmp / group).mkdir()
                progress(f"{group}: running")
                started = time.monotonic()
                try:
                    found = GROUPS[group][2](ctx)
                except Exception as exc:  # one broken benchmark must not hide the others' figures
                    detail = traceback.format_exception_only(exc)[-1].strip()
                    found = {name: {"value": None, "baseline": None, "ratio": None, "unit": None,
                                    "method": f"failed: {detail}"} for name in GROUPS[group][1]}
                    progress(f"{group}: FAILED: {detail}")
                    traceback.print_exc(file=sys.stderr)
                progress(f"{group}: done in {time.monotonic() - started:.0f}s")
                # Every entry has the five fields, null where a module gives none (ledger_append_us: no baseline).
                out.update({name: {field: e.get(field) for field in FIELDS} for name, e in found.items()})
    if only:
        wanted = {n for n in only if n not in GROUPS}
        if wanted:
            out = {k: v for k, v in out.items() if k in wanted} or out
    return out


def main(argv: Sequence[str] | None = None) -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (under 3 minutes); says so in method")
    parser.add_argument("--json", action="store_true", help="one JSON object on one line")
    parser.add_argument("--only", action="append", default=[], help="an entry or group name; repeatable")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # retried requests are not failures (as `bus`)
    result = run(quick=args.quick, only=args.only, corpus=args.corpus,
                 progress=lambda m: print(f"bench: {m}", file=sys.stderr, flush=True))
    print(json.dumps(result, indent=None if args.json else 2, ensure_ascii=False))
