"""Wire contract cost: seal (encode + envelope + sign) and open (verify + decode) per event.

Each figure is compared with its bare primitives measured in the same run on the same data:
``fastavro.schemaless_writer`` + ``Ed25519PrivateKey.sign`` for sealing, and
``Ed25519PublicKey.verify`` + ``fastavro.schemaless_reader`` for opening. A ratio near 1.0
means the envelope adds little beyond the unavoidable cryptography and serialisation.

    python bench/bench_wire.py [--events N] [--repeat R]

Prints one JSON object; no broker needed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import statistics
import time
from collections.abc import Callable

import fastavro
from cryptography.hazmat.primitives.asymmetric import ed25519

from bus import Event, KeyDirectory, Wire, default_catalog, generate_key

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def company(i: int) -> Event:
    siret = f"{420820078 + i:09d}{i % 100000:05d}"
    return Event(
        type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}", schema="fr.dcant.reference.Company",
        data={"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret,
              "name": f"Entreprise de travaux publics numéro {i}", "legal_form": "5710", "naf": "42.11Z",
              "naf_nomenclature": "NAFRev2", "administrative_state": "ACTIVE", "head_office": True,
              "address": {"street_number": "12", "street_type": "RUE", "street_name": "DES LILAS",
                          "postal_code": "31000", "city_code": "31555", "city_name": "TOULOUSE"},
              "diffusion_status": "DIFFUSIBLE", "source_format": "sirene-json"})


def best_rate(fn: Callable[[], None], n: int, repeat: int) -> float:
    """Events per second of the fastest of ``repeat`` runs of ``fn`` (which handles ``n`` events)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / min(times)


def run(n: int, repeat: int) -> dict[str, dict[str, object]]:
    catalog = default_catalog()
    key = generate_key("213105554", "bench", valid_from=T0 - dt.timedelta(days=1))
    wire = Wire(catalog, KeyDirectory([key.public]), key, clock=lambda: T0)
    schema = catalog.latest("fr.dcant.reference.Company")
    events = [company(i) for i in range(n)]
    records = [wire.seal(e) for e in events]
    raw_private = ed25519.Ed25519PrivateKey.generate()
    raw_public = raw_private.public_key()
    bodies = [r.value[10:] for r in records]
    raw_sigs = [raw_private.sign(r.value) for r in records]

    def seal_all() -> None:
        for e in events:
            wire.seal(e)

    def bare_seal() -> None:
        for e in events:
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, schema.parsed, e.data)
            raw_private.sign(buf.getvalue())

    def open_all() -> None:
        for r in records:
            wire.open(r)

    def bare_open() -> None:
        for body, record, sig in zip(bodies, records, raw_sigs, strict=True):
            raw_public.verify(sig, record.value)
            fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)

    seal = best_rate(seal_all, n, repeat)
    seal_base = best_rate(bare_seal, n, repeat)
    open_ = best_rate(open_all, n, repeat)
    open_base = best_rate(bare_open, n, repeat)
    size = statistics.mean(len(r.value) + sum(len(k) + len(v) for k, v in r.headers) for r in records)
    return {
        "encode_sign_vs_primitives": {
            "value": round(seal, 1), "baseline": round(seal_base, 1), "ratio": round(seal / seal_base, 3),
            "unit": "events/s",
            "method": f"Wire.seal of {n} Company events (best of {repeat}) vs fastavro.schemaless_writer + "
                      "Ed25519 sign of the same records, one core",
        },
        "verify_decode_vs_primitives": {
            "value": round(open_, 1), "baseline": round(open_base, 1), "ratio": round(open_ / open_base, 3),
            "unit": "events/s",
            "method": f"Wire.open (envelope parse, key validity, Ed25519 verify, fingerprint lookup, fastavro read) "
                      f"of {n} records vs Ed25519 verify + fastavro.schemaless_reader, one core",
        },
        "event_wire_bytes": {
            "value": round(size, 1), "baseline": round(statistics.mean(len(b) for b in bodies), 1),
            "ratio": round(size / statistics.mean(len(b) for b in bodies), 3), "unit": "bytes",
            "method": "mean value + header bytes of a sealed event vs the bare Avro body",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.repeat), indent=2))


if __name__ == "__main__":
    main()
