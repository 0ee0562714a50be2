"""Adapter throughput: documents per second to pivot, as a ratio to parsing the same bytes bare.

For every adapter with samples in the official corpus, each sample is converted with
``module.to_pivots`` (multi-record formats, consumed fully) or ``module.to_pivot``, and the
same bytes are given to the cheapest primitive that any reader of the format must call:
``lxml.etree.fromstring`` for XML, ``json.loads`` for JSON, ``csv.DictReader`` for CSV, and
for Factur-X PDFs ``pypdf.PdfReader`` + reading the embedded XML stream + ``lxml.etree.fromstring``
of it (the adapter cannot avoid opening the PDF). Per document, both sides are timed
alternately in short timings (~2 ms) in the same run and each side keeps its best; a
format's documents/s is its sample count over the sum of those bests. Short timings and
best-of-N keep the figures usable on a shared, loaded machine. A ratio of 0.5 means turning
a document into a pivot costs twice the bare parse.

Samples are routed to adapters by :func:`adapters._registry.detect`, as the bus does; a sample
that fails to convert (the corpus holds negative cases) is left out and named in ``method``,
and a format none of whose samples converts is reported with ``value`` null.

    python bench/bench_adapters.py [--quick] [--corpus PATH] [--json]

Prints one JSON object keyed ``adapter_<format>_vs_lxml`` (``adapter_pes_vs_lxml`` for
PES_Aller); no broker needed.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from lxml import etree

from adapters._registry import all_adapters, detect
from bus._errors import BusError

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"

#: Where each format's samples are, relative to the corpus root (files are routed by detect()).
SAMPLES = (
    "invoices/en16931-ubl/*",
    "invoices/fr-ctc/*.xml",
    "invoices/en16931-cii/*.xml",
    "invoices/factur-x/*.xml",
    "invoices/factur-x/**/*.pdf",
    "accounting/pes-samples/*.xml",
    "acts/messages*/*.xml",
    "procurement/eforms/notices/*.xml",
    "procurement/espd/*.xml",
    "archives/manifests/**/*.xml",
    "procurement/decp/**/*.json",
    "reference/sirene/*",
)
#: Names the issues use for the key of a format, where it is not ``adapter_<format>_vs_lxml``.
KEYS = {"pes-aller": "adapter_pes_vs_lxml"}


def key_of(fmt: str) -> str:
    return KEYS.get(fmt, f"adapter_{fmt.replace('-', '_')}_vs_lxml")


def collect(corpus: Path) -> dict[str, list[tuple[str, bytes]]]:
    """The corpus samples grouped by the format of the adapter that detects them."""
    by_format: dict[str, list[tuple[str, bytes]]] = {}
    seen: set[Path] = set()
    for pattern in SAMPLES:
        for path in sorted(corpus.glob(pattern)):
            if not path.is_file() or path in seen or path.suffix.lower() in (".xsd", ".sch", ".svrl"):
                continue
            seen.add(path)
            data = path.read_bytes()
            try:
                module = detect(data, name=path.name)
            except BusError:
                continue
            by_format.setdefault(module.FORMAT, []).append((str(path.relative_to(corpus)), data))
    return by_format


def converter(module: ModuleType) -> Callable[[bytes, str], object]:
    """The document → pivots function of an adapter (``to_pivots`` consumed, else ``to_pivot``)."""
    many = getattr(module, "to_pivots", None)
    if many is not None:
        return lambda data, name: list(many(data, name=name))
    return lambda data, name: module.to_pivot(data, name=name)


def _pdf_xml(data: bytes) -> None:
    import pypdf

    from adapters.facturx import INVOICE_FILE_NAMES

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        for name, contents in reader.attachments.items():
            if name.lower() in INVOICE_FILE_NAMES:
                etree.fromstring(contents[0])
                return


def _csv_rows(data: bytes) -> None:
    for _row in csv.DictReader(io.StringIO(data.decode("utf-8"))):
        pass


def baseline(fmt: str, data: bytes) -> tuple[Callable[[bytes], object], str]:
    """The bare primitive for one sample, and its name for ``method``."""
    if data.lstrip()[:5] == b"%PDF-":
        return _pdf_xml, "pypdf open + embedded XML read + lxml.etree.fromstring"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        return json.loads, "json.loads"
    if head != b"<":
        return _csv_rows, "csv.DictReader"
    return etree.fromstring, "lxml.etree.fromstring"


def _round(fn: Callable[[], object], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def _best_pair(first: Callable[[], object], second: Callable[[], object], rounds: int, timing_s: float) -> tuple[float, float]:
    """Best seconds per call of ``first`` and ``second``, timed alternately ``rounds`` times each."""
    loops = max(1, int(timing_s / max(_round(first, 1), 1e-7)))
    firsts, seconds = [], []
    for _ in range(rounds):
        firsts.append(_round(first, loops))
        seconds.append(_round(second, loops))
    return min(firsts), min(seconds)


def measure(fmt: str, module: ModuleType, samples: list[tuple[str, bytes]], *, rounds: int, timing_s: float) -> dict[str, Any]:
    to = converter(module)
    good, failed = [], []
    for name, data in samples:
        try:
            to(data, name)
        except BusError as exc:
            failed.append(f"{name} ({type(exc).__name__})")
        else:
            good.append((name, data))
    skipped = f"; skipped (fail to convert): {', '.join(failed)}" if failed else ""
    if not good:
        return {"value": None, "baseline": None, "ratio": None, "unit": "documents/s",
                "method": f"skipped: no {fmt} sample converts{skipped}"}
    bases = [baseline(fmt, data) for _name, data in good]
    # Per document: alternate short timings of the adapter and of the primitive (a few ms, so
    # some escape the other processes on a loaded machine) and keep each side's best.
    adapt_s = bare_s = 0.0
    for (name, data), (fn, _label) in zip(good, bases, strict=True):
        adapt, bare = _best_pair(functools.partial(to, data, name), functools.partial(fn, data), rounds, timing_s)
        adapt_s += adapt
        bare_s += bare
    value, base = len(good) / adapt_s, len(good) / bare_s
    labels = sorted({label for _fn, label in bases})
    size = sum(len(d) for _n, d in good)
    return {
        "value": round(value, 1),
        "baseline": round(base, 1),
        "ratio": round(value / base, 3),
        "unit": "documents/s",
        "method": (
            f"{module.__name__}.{'to_pivots' if hasattr(module, 'to_pivots') else 'to_pivot'} of {len(good)} "
            f"corpus samples ({size} bytes) vs {' / '.join(labels)} of the same bytes; per document the best of "
            f"{rounds} timings of ~{timing_s * 1000:g} ms each side, alternating; summed; one core; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} cores{skipped}"
        ),
    }


def run(quick: bool, corpus: Path) -> dict[str, dict[str, Any]]:
    """Every adapter's figure, keyed ``adapter_<format>_vs_lxml``, in format order."""
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise SystemExit(f"corpus not found: {corpus} (pass --corpus)")
    rounds, timing_s = (2, 0.001) if quick else (30, 0.002)
    by_format = collect(corpus)
    out: dict[str, dict[str, Any]] = {}
    for fmt, module in sorted(all_adapters().items()):
        if fmt in by_format:
            out[key_of(fmt)] = measure(fmt, module, by_format[fmt], rounds=rounds, timing_s=timing_s)
    return out


def corpus_main(doc: str, bench: Callable[[bool, Path], dict[str, dict[str, Any]]]) -> None:
    """The command line of a corpus benchmark: ``[--quick] [--corpus PATH] [--json]``, JSON printed."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (a smoke test, not a measurement)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the official corpus (default ../shared/corpus)")
    parser.add_argument("--json", action="store_true", help="compact JSON on one line (default: indented)")
    args = parser.parse_args()
    print(json.dumps(bench(args.quick, args.corpus), indent=None if args.json else 2, ensure_ascii=False))


def main() -> None:
    corpus_main(__doc__, run)


if __name__ == "__main__":
    main()
