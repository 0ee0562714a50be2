"""Cost of PES_Aller signatures: ``pes_verify_vs_unsigned`` and ``pes_sign_vs_write``, same run.

For the PES_Aller samples of the corpus that the bus can sign (their bordereau has an ``Id``),
each is written back from its pivot twice, unsigned and signed (XAdES, a P-256 certificate of
a site CA made for the run in a temporary folder). ``pes_verify_vs_unsigned``: documents/s of
``pes_aller.to_pivots`` on the signed file with the chain checked against that CA (every
signature verified) against the same call on the unsigned file. ``pes_sign_vs_write``:
documents/s of ``from_pivot(..., signer=...)`` against ``from_pivot`` alone. Both sides are
timed alternately in short timings and keep their best, as :mod:`bench.bench_adapters` does.

    python bench/bench_pes_signature.py [--quick] [--corpus PATH] [--json]
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from adapters import pes_aller
from adapters._registry import sniff
from bench.bench_adapters import _best_pair, corpus_main
from bus._pki import CertificateAuthority


def _entry(value: float, base: float, method: str) -> dict[str, Any]:
    return {"value": round(value, 1), "baseline": round(base, 1), "ratio": round(value / base, 3),
            "unit": "documents/s", "method": method}


def run(quick: bool, corpus: Path) -> dict[str, dict[str, Any]]:
    """The entries ``pes_verify_vs_unsigned`` and ``pes_sign_vs_write``."""
    pivots = []
    for path in sorted((Path(corpus) / "accounting/pes-samples").glob("*.xml")):
        data = path.read_bytes()
        if pes_aller.detect(sniff(data)):
            pivot = pes_aller.to_pivot(data, name=path.name)
            if pivot.data.get("xml_id"):
                pivots.append(pivot)
    if not pivots:
        raise SystemExit(f"no signable PES_Aller sample under {corpus} (pass --corpus)")
    rounds, timing_s = (2, 0.01) if quick else (15, 0.05)
    with tempfile.TemporaryDirectory() as tmp:
        issued = CertificateAuthority.init(Path(tmp) / "ca").issue("219990017", Path(tmp) / "issued")
        signer = pes_aller.PesSigner.from_files(issued.certfile, issued.keyfile)
        verify_s = read_s = sign_s = write_s = 0.0
        for pivot in pivots:
            plain, signed = pes_aller.from_pivot(pivot), pes_aller.from_pivot(pivot, signer=signer)
            first, second = _best_pair(
                functools.partial(pes_aller.to_pivots, signed, name="signed", trust=issued.cafile),
                functools.partial(pes_aller.to_pivots, plain, name="plain"), rounds, timing_s)
            verify_s, read_s = verify_s + first, read_s + second
            first, second = _best_pair(functools.partial(pes_aller.from_pivot, pivot, signer=signer),
                                       functools.partial(pes_aller.from_pivot, pivot), rounds, timing_s)
            sign_s, write_s = sign_s + first, write_s + second
    n = len(pivots)
    return {
        "pes_verify_vs_unsigned": _entry(n / verify_s, n / read_s, (
            f"{n} corpus PES_Aller written back, signed (XAdES, P-256): to_pivots verifying every signature and the "
            "chain to the CA vs to_pivots of the same file unsigned; alternating short timings, best of each")),
        "pes_sign_vs_write": _entry(n / sign_s, n / write_s, (
            f"{n} corpus PES_Aller pivots: from_pivot with a signer (XAdES, P-256) vs from_pivot unsigned; "
            "alternating short timings, best of each")),
    }


def main() -> None:
    corpus_main(__doc__, run)


if __name__ == "__main__":
    main()
