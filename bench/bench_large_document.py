"""Peak memory of a worker while a 150 MB act with annexes goes through ingest (claim check).

The document is written to disk in 1 MiB chunks: an ACTES transmission bundle (tar) holding the
envelope and act message of an official corpus sample, the act message rewritten by the bus to
list nine annexes, and the signed deliberation and its annexes as incompressible bytes.

:func:`processors.ingress.submit` streams it into the content store and publishes the
``DocumentSubmitted`` claim check; a ``bus worker --processor ingress`` process reads it back
through :class:`processors.ingress.DocumentReader`, adapts it and emits its pivot (or dead-letters
it). The figure is the peak RSS growth of that worker: ``VmHWM`` read from ``/proc`` after the
document was handled, minus ``VmRSS`` just before it was submitted (the peak is reset with
``/proc/<pid>/clear_refs`` where the kernel allows, else sampled every 10 ms). The worker runs with
the default ``BUS_MAX_DOCUMENT_BYTES``: a bundle's files are claim-checked, never parsed, so only its
XML messages are bounded by it. The document counts as handled once the worker's group has
committed its ``DocumentSubmitted``; if it was dead-lettered instead of adapted (or gave no pivot),
the entry has no figure: ``value`` and ``ratio`` null, the reason in ``method``.

The same document then goes through again addressed to the worker's SIREN (issue 12): stored sealed,
decrypted as a stream by the worker, its files stored sealed. ``large_document_sealed_rss_mb`` is
that run's growth against the run in clear of the same session (target: < 64 MiB).

    python -m bench.bench_large_document [--quick]
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.bench_processors import (SUBMITTER_SOURCE, WORKER_SIREN, BenchEnv, end_offsets, outputs_since, reset_peak, rss_kb, stop,
                                    wait_done, wait_group)

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
MANIFEST = "archives/manifests/vitam-sip2_2.xml"
MB = 1024 * 1024
CHUNK = MB
SEALED_TARGET_MB = 64  # issue 12: the 150 MB act through ingress encrypted grows the worker by less than this


ACT = "045-214502494-20170717-D201717-DE-1-1_0.xml"
ENVELOPE = "EACT--214502494--20170717-6.xml"


def write_act_bundle(path: Path, corpus: Path, size_mb: int, annexes: int = 9) -> int:
    """An ACTES bundle of ``size_mb`` MiB: envelope + act listing ``annexes`` annexes + their PDFs."""
    import dataclasses as _dc
    import io
    import tarfile

    from adapters import actes

    source = corpus / "acts" / "messages-s2low"
    pivot = actes.to_pivot((source / ACT).read_bytes(), name=ACT)
    main = pivot.data["documents"][0]
    extra = [{**main, "role": "ANNEX", "file_name": main["file_name"].replace("_1.pdf", f"_{i + 2}.pdf")}
             for i in range(annexes)]
    act_xml = actes.from_pivot(_dc.replace(pivot, data={**pivot.data, "documents": [main, *extra]}))
    per_file = size_mb * MB // (annexes + 1)
    with tarfile.open(path, "w") as tar:
        for name, data in ((ENVELOPE, (source / ENVELOPE).read_bytes()), (ACT, act_xml)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for document in (main, *extra):
            blob = path.with_suffix(".part")
            with blob.open("wb") as out:
                out.write(b"%PDF-1.7\n")
                left = per_file - 9
                while left > 0:
                    n = min(CHUNK, left)
                    out.write(os.urandom(n))
                    left -= n
            tar.add(blob, arcname=document["file_name"])
            blob.unlink()
    return path.stat().st_size


class PeakSampler:
    """Samples a process's VmRSS every 10 ms in a thread (when the kernel peak cannot be reset)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except (OSError, RuntimeError):
                return
            self._stop.wait(0.01)  # the sampling period

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclasses.dataclass
class Measure:
    """One pass of the document through ingress: the worker's peak RSS growth and what came out."""

    growth_mb: float
    own_mb: float
    elapsed: float
    kernel_peak: bool
    pivots: list[Any]
    dead: list[Any]


async def _measure(env: BenchEnv, path: Path, tag: str, progress: Any, *, sealed: bool) -> Measure:
    """``path`` submitted through processors.ingress.submit (addressed to the worker when ``sealed``)."""
    import shutil

    from bus import generate_encryption_key
    from bus._directory import encryption_key_event
    from bus._runtime import encryption_key_store
    from bus.client import Publisher, read_topic
    from processors.app import app_id
    from processors.ingress import submit

    overrides: dict[str, Any] = {}
    if sealed:  # the worker serves WORKER_SIREN: its own keys directory holds that SIREN's decryption key
        keys_dir = env.root / f"keys-{tag}"
        shutil.copytree(env.root / "keys", keys_dir, dirs_exist_ok=True)
        overrides["keys_dir"] = keys_dir
    settings = env.settings(tag, **overrides)
    ctx = await env.connect(settings)
    recipients, enc = None, None
    if sealed:
        enc = generate_encryption_key(WORKER_SIREN, valid_from=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        encryption_key_store(settings).save(enc)
        async with Publisher(settings, ctx.wire()) as publisher:
            await publisher.publish(encryption_key_event(enc.public), topic="reference.administrations")
        recipients = (WORKER_SIREN,)
    worker = env.start_worker(settings, f"{tag}-0", "ingress")
    try:
        await wait_group(settings, app_id(settings), 1, [worker])
        await asyncio.sleep(1.0)  # let the worker's start-up allocations settle before the baseline
        outputs = [ctx.topic(t) for t in ("acts", "deadletter")]
        start = await end_offsets(settings, outputs)
        before = rss_kb(worker.pid)
        kernel_peak = reset_peak(worker.pid)
        submitter = settings.model_copy(update={"source": SUBMITTER_SOURCE})
        sub_ctx = dataclasses.replace(ctx, settings=submitter, signer=env.submitter_key)
        wire = env.submitter_wire(ctx)
        if enc is not None:
            wire.encryption_keys = {WORKER_SIREN: enc.public}
        me_before = rss_kb(os.getpid())
        progress(f"submitting ({'sealed to ' + WORKER_SIREN if sealed else 'in clear'}) through "
                 f"processors.ingress.submit; the worker reads it back")
        began = time.monotonic()
        with PeakSampler(worker.pid) as sampler, PeakSampler(os.getpid()) as own:
            async with Publisher(submitter, wire) as publisher:
                submitted = await submit(sub_ctx, publisher, path, media_type="application/x-tar",
                                         recipients=recipients)
            # Handled = its offset committed by the worker's group: after its pivots or its dead letter.
            await wait_done(settings, app_id(settings), [ctx.topic("ingress.raw")], [worker], timeout=300)
        elapsed = time.monotonic() - began
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited while handling the document: {env.log_tail(f'{tag}-0')}")
        peak = rss_kb(worker.pid, "VmHWM") if kernel_peak else sampler.peak
        peak = max(peak, sampler.peak)
        ce_id = dict(submitted.headers)["ce_id"]
        pivots = [r for r in await outputs_since(settings, outputs[:1], start)
                  if dict(r.headers).get("ce_causationid") == ce_id]
        dead = [r for r in await read_topic(settings, outputs[1], from_offsets={
            tp.partition: o for tp, o in start.items() if tp.topic == outputs[1]}) if dict(r.headers).get("ce_id") == ce_id]
    finally:
        stop(worker)
    return Measure((peak - before) / 1024, (own.peak - me_before) / 1024, elapsed, kernel_peak, pivots, dead)


def _no_figure(m: Measure) -> str | None:
    """Why a pass gives no figure (dead-lettered, or no pivot), else None."""
    if m.dead:
        headers = dict(m.dead[-1].headers)
        return (f"the document was dead-lettered ({headers.get('dlq_error_class', b'?').decode()}: "
                f"{headers.get('dlq_error_message', b'').decode()[:300]})")
    if not m.pivots:
        return "the worker handled the document without emitting a pivot or a dead letter"
    return None


def _processed(m: Measure) -> str:
    kinds = ", ".join(sorted({dict(r.headers).get("ce_type", b"?").decode().rsplit(".", 1)[-1] for r in m.pivots}))
    return (f"processed: {len(m.pivots)} pivot(s) emitted ({kinds}), files claim-checked, in {m.elapsed:.1f}s "
            f"(submit to the worker's commit); the submitting process grew {m.own_mb:.1f} MiB (sampled)")


async def run(env: BenchEnv, corpus: Path, quick: bool, progress: Any = lambda m: None) -> dict[str, dict[str, Any]]:
    size_mb = 150
    path = env.root / "act-with-annexes.tar"
    progress(f"writing a {size_mb} MiB ACTES transmission with annexes (tar, streamed)")
    size = await asyncio.to_thread(write_act_bundle, path, Path(corpus), size_mb)
    try:
        plain = await _measure(env, path, "large", progress, sealed=False)
        sealed = await _measure(env, path, "large-sealed", progress, sealed=True)
    finally:
        path.unlink(missing_ok=True)
    how = (f"peak RSS growth of the `bus worker --processor ingress` process (VmHWM after − VmRSS before; "
           f"{'kernel peak reset via clear_refs' if plain.kernel_peak else 'sampled every 10 ms'}) while a "
           f"{size / MB:.1f} MiB ACTES transmission (tar: envelope, act, 10 PDF files) went through "
           f"processors.ingress.submit (streamed into the content store) and the worker's DocumentReader")
    out: dict[str, dict[str, Any]] = {}
    why = _no_figure(plain)
    if why:
        out["large_document_rss_mb"] = {
            "value": None, "baseline": round(size / MB, 1), "ratio": None, "unit": "MiB",
            "method": f"no figure: {why}, so the memory of processing it was not measured; would have been the "
                      f"{how}; baseline = the document's size, ratio = growth / size"}
    else:
        out["large_document_rss_mb"] = {
            "value": round(plain.growth_mb, 1), "baseline": round(size / MB, 1),
            "ratio": round(plain.growth_mb / (size / MB), 3), "unit": "MiB",
            "method": (f"{how}; baseline = the document's size, ratio = growth / size; {_processed(plain)}"
                       f"{'; quick mode: same size' if quick else ''}")}
    why = _no_figure(sealed) or (None if not _no_figure(plain) else "the run in clear gave no baseline")
    sealed_how = (f"{how}, the document addressed to the worker's SIREN: stored sealed (AES-256-GCM in 64 KiB "
                  f"chunks under a fresh key wrapped with HPKE), its digest checked then decrypted as a stream by "
                  f"the worker, each file of the bundle stored sealed too; baseline = the same document in clear "
                  f"in the same session; target: growth < {SEALED_TARGET_MB} MiB")
    if why:
        out["large_document_sealed_rss_mb"] = {"value": None, "baseline": None, "ratio": None, "unit": "MiB",
                                               "method": f"no figure: {why}; would have been the {sealed_how}"}
    else:
        met = "met" if sealed.growth_mb < SEALED_TARGET_MB else "MISSED"
        out["large_document_sealed_rss_mb"] = {
            "value": round(sealed.growth_mb, 1), "baseline": round(plain.growth_mb, 1),
            "ratio": round(sealed.growth_mb / plain.growth_mb, 3) if plain.growth_mb > 0 else None, "unit": "MiB",
            "method": f"{sealed_how} ({met}); {_processed(sealed)}"}
    return out


async def _standalone(quick: bool, corpus: Path) -> dict[str, dict[str, Any]]:
    import tempfile

    from bench.suite import broker

    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp, broker(Path(tmp)) as bootstrap:
        return await run(BenchEnv(bootstrap, Path(tmp)), corpus, quick, lambda m: print(m, file=sys.stderr))


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_standalone(args.quick, args.corpus)), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
