"""The full per-event envelope path of a processor against the sum of its bare primitives.

A processor, for each record, opens it (envelope headers, key validity, Ed25519 verify,
fingerprint lookup, Avro decode) and seals what it emits (Avro encode, envelope, Ed25519 sign).
This benchmark times exactly that pair, ``Wire.open(record)`` + ``Wire.seal(follow-up)``, on
real pivots (the corpus UBL invoice through its adapter, a SIRENE company, an ACTES act), and
the sum of the primitives the path cannot avoid, timed bare on the same bytes and records:
``Ed25519PublicKey.verify`` + ``fastavro.schemaless_reader`` + ``fastavro.schemaless_writer`` +
``Ed25519PrivateKey.sign``.

Validation: the event path has no pydantic model. What validates an event is the Avro writer
(``fastavro.schemaless_writer`` with ``strict_allow_default``: a record that does not fit its
schema raises) and, on the way in, the signature, the fingerprint and the reader schema. So
no pydantic step is timed on either side; the entry's ``method`` says so.

Figures are CPU time per event (``time.process_time``), best of alternating rounds.

    python -m bench.bench_envelope [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
from cryptography.hazmat.primitives.asymmetric import ed25519

from bus import Event, KeyDirectory, Wire, default_catalog, generate_key
from bus._envelope import Envelope
from bus._processor import follow_up

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def sample_events(corpus: Path) -> list[Event]:
    """One realistic pivot of three families (an EN 16931 invoice, a company, an act)."""
    from adapters import ubl

    pivot = ubl.to_pivot((corpus / "invoices/en16931-ubl/ubl-tc434-example1.xml").read_bytes(), name="example1.xml")
    invoice = Event(type=pivot.type, subject=pivot.subject, schema=pivot.schema, data=pivot.data)
    siret = "42082007800017"
    company = Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}",
                    schema="fr.dcant.reference.Company",
                    data={"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret,
                          "name": "Entreprise de travaux publics", "legal_form": "5710", "naf": "42.11Z",
                          "naf_nomenclature": "NAFRev2", "administrative_state": "ACTIVE", "head_office": True,
                          "address": {"street_number": "12", "street_type": "RUE", "street_name": "DES LILAS",
                                      "postal_code": "31000", "city_code": "31555", "city_name": "TOULOUSE"},
                          "diffusion_status": "DIFFUSIBLE", "source_format": "sirene-json"})
    from bench.bench_processors import acts_inputs

    (_, act), = acts_inputs(1)
    return [invoice, company, act]


def _cpu_per_event(fn: Callable[[], None], n: int, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        start = time.process_time()
        fn()
        out.append((time.process_time() - start) / n * 1e6)
    return out


def run(quick: bool, corpus: Path = DEFAULT_CORPUS) -> dict[str, dict[str, Any]]:
    catalog = default_catalog()
    key = generate_key("213105554", "bench", valid_from=T0 - dt.timedelta(days=1))
    wire = Wire(catalog, KeyDirectory([key.public]), key, clock=lambda: T0)
    events = sample_events(Path(corpus))
    copies = 300 if quick else 2000
    records = [wire.seal(e) for e in events] * copies
    received = [wire.open(r) for r in records[:len(events)]]
    # The processor's outputs: a follow-up of each input, same payload (so the same encode work).
    outputs = [follow_up(r, type=r.type, schema=r.writer.name, data=r.data) for r in received] * copies
    n = len(records)

    # The primitives, on the same bytes: what is signed is the envelope's signing bytes.

    signing = [Envelope.from_headers(r.headers).signing_bytes(r.value or b"") for r in records[:len(events)]] * copies
    schemas = [catalog.latest(e.schema) for e in events] * copies
    bodies = [(r.value or b"")[10:] for r in records]
    datas = [r.data for r in received] * copies
    bare_private = ed25519.Ed25519PrivateKey.generate()  # the same algorithm as the bus key, used bare
    bare_public = bare_private.public_key()
    bare_sigs = [bare_private.sign(m) for m in signing]

    def path() -> None:
        for record, event in zip(records, outputs, strict=True):
            wire.open(record)
            wire.seal(event)

    def primitives() -> None:
        for message, sig, body, schema, data in zip(signing, bare_sigs, bodies, schemas, datas, strict=True):
            bare_public.verify(sig, message)
            fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, schema.parsed, data)
            bare_private.sign(message)

    rounds = 3 if quick else 7
    path_us, base_us = [], []
    for _ in range(rounds):  # alternating, so other load hits both sides alike
        path_us += _cpu_per_event(path, n, 1)
        base_us += _cpu_per_event(primitives, n, 1)
    value, baseline = min(path_us), min(base_us)
    names = ", ".join(e.schema.rsplit(".", 1)[-1] for e in events)
    return {
        "envelope_vs_primitives": {
            "value": round(value, 1), "baseline": round(baseline, 1), "ratio": round(value / baseline, 3),
            "unit": "us/event (CPU)",
            "method": (
                f"per event: Wire.open (headers → Envelope, key validity, Ed25519 verify, fingerprint, fastavro "
                f"read) + Wire.seal of its follow-up (fastavro write, envelope, UUIDv7, Ed25519 sign) vs the sum of "
                f"bare Ed25519 verify + fastavro.schemaless_reader + fastavro.schemaless_writer + Ed25519 sign on "
                f"the same bytes and records; {n} events ({names} pivots), CPU time (process_time), best of "
                f"{rounds} alternating rounds, one core. No pydantic validation exists on the event path (the "
                f"Avro writer is the validation: a record not fitting its schema raises), so none is timed on "
                f"either side; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    print(json.dumps(run(args.quick, args.corpus), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
