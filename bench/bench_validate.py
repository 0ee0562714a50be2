"""Official rules cost: ``validate_official_vs_xsd``, documents/s of XSD + CEN EN 16931 schematron
against XSD alone, same run.

For every UBL and CII sample of the corpus, ``module.validate(..., rules_dir=<resolved packages>)``
(hardened parse, XSD, then the EN 16931 XSLT run by saxonche and its SVRL read back) is timed
alternately with the XSD part alone (the same hardened parse and the same compiled XSD), in short
timings, each side keeping its best (as :mod:`bench.bench_adapters` does). Rules and schemas are
compiled before timing starts: the figure is the per-document cost, not the one-off compile
(about 2 s per syntax). The packages are resolved from Maven Central if the cache lacks them.

    python bench/bench_validate.py [--quick] [--corpus PATH] [--json]
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from adapters import cii, ubl
from adapters._invoice_xsd import schema_at, xsd_findings
from adapters._xml import parse_xml
from bench.bench_adapters import _best_pair, corpus_main
from bus._packages import ensure_official_packages
from bus._settings import BusSettings

_UBL_XSD = {"Invoice": "invoices/xsd/ubl-2.1/maindoc/UBL-Invoice-2.1.xsd",
            "CreditNote": "invoices/xsd/ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"}


def _xsd_only(packages: Path, data: bytes) -> object:
    root = parse_xml(data)
    local = root.tag.rsplit("}", 1)[-1]
    relative = cii.XSD if local == "CrossIndustryInvoice" else _UBL_XSD[local]
    return xsd_findings(schema_at(packages, relative, package="bench"), root)


def run(quick: bool, corpus: Path) -> dict[str, dict[str, Any]]:
    """The one entry ``validate_official_vs_xsd``."""
    packages = ensure_official_packages(BusSettings())
    samples = [(ubl, p) for p in sorted((Path(corpus) / "invoices/en16931-ubl").glob("*"))] + [
        (cii, p) for p in sorted((Path(corpus) / "invoices/en16931-cii").glob("*.xml"))]
    if not samples:
        raise SystemExit(f"no UBL/CII samples under {corpus} (pass --corpus)")
    rounds, timing_s = (2, 0.01) if quick else (15, 0.05)
    official_s = xsd_s = 0.0
    for module, path in samples:
        data = path.read_bytes()
        official = functools.partial(module.validate, data, schema_dir=packages, name=path.name, rules_dir=packages)
        official()  # compiles the rules and the XSD outside the timings
        first, second = _best_pair(official, functools.partial(_xsd_only, packages, data), rounds, timing_s)
        official_s += first
        xsd_s += second
    value, base = len(samples) / official_s, len(samples) / xsd_s
    return {"validate_official_vs_xsd": {
        "value": round(value, 1), "baseline": round(base, 1), "ratio": round(value / base, 3), "unit": "documents/s",
        "method": (f"{len(samples)} UBL/CII corpus samples: validate with the EN 16931 schematron (saxonche) + XSD vs the "
                   f"XSD alone, per document the best of {rounds} timings of ~{timing_s * 1000:g} ms each side, "
                   f"alternating; summed; one core; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"),
    }}


def main() -> None:
    corpus_main(__doc__, run)


if __name__ == "__main__":
    main()
