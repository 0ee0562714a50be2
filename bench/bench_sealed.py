"""Encryption per recipient (issue 12): sealing an addressed event against sealing it broadcast, opening likewise.

``seal_encrypt_vs_seal``: ``Wire.seal`` of an event addressed to 3 recipients (X25519: the payload
encrypted with AES-256-GCM under a data key wrapped with HPKE once per recipient, the data key reused
for at most 1,000 events or 5 minutes per recipient set — ``bus._sealed.DataKeyCache``) against
``Wire.seal`` of the same event broadcast. ``open_decrypt_vs_open``: ``Wire.open`` of the addressed
record by one recipient (verify, HPKE unwrap once per data key, AES-GCM decrypt, decode) against
``Wire.open`` of the broadcast record. CPU time per event (``time.process_time``), best of
alternating rounds. Each entry also gives ``fresh_key``: the cost per event when every event has a
data key of its own (the worst case: a producer whose every event goes to another recipient set).

    python -m bench.bench_sealed [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import time
from collections.abc import Callable
from typing import Any

from bus import DecryptionKeyring, Event, KeyDirectory, Wire, default_catalog, generate_encryption_key, generate_key
from bus._sealed import DataKeyCache, UnwrapCache

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
RECIPIENTS = ("130006000", "130004005", "210100012")


def _company() -> Event:
    siret = "42082007800017"
    return Event(type="fr.dcant.reference.CompanyRegistered", subject=f"company:{siret}",
                 schema="fr.dcant.reference.Company",
                 data={"kind": "ESTABLISHMENT", "siren": siret[:9], "nic": siret[9:], "siret": siret,
                       "name": "Entreprise de travaux publics", "legal_form": "5710", "naf": "42.11Z",
                       "administrative_state": "ACTIVE", "diffusion_status": "DIFFUSIBLE",
                       "source_format": "sirene-json"})


def _best(fn: Callable[[], None], n: int) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) / n * 1e6


def run(quick: bool) -> dict[str, dict[str, Any]]:
    key = generate_key("213105554", "bench", valid_from=T0 - dt.timedelta(days=1))
    enc = {s: generate_encryption_key(s) for s in RECIPIENTS}
    directory = KeyDirectory([key.public])
    wire = Wire(default_catalog(), directory, key, clock=lambda: T0,
                encryption_keys={s: k.public for s, k in enc.items()},
                decryption=DecryptionKeyring([enc[RECIPIENTS[0]]]))
    plain = _company()
    addressed = dataclasses.replace(plain, recipients=RECIPIENTS)
    n = 300 if quick else 2000
    plain_records = [wire.seal(plain) for _ in range(n)]
    sealed_records = [wire.seal(addressed) for _ in range(n)]

    def seal_plain() -> None:
        for _ in range(n):
            wire.seal(plain)

    def seal_sealed() -> None:
        for _ in range(n):
            wire.seal(addressed)

    fresh = Wire(default_catalog(), directory, key, clock=lambda: T0, encryption_keys=wire.encryption_keys,
                 decryption=wire.decryption)
    fresh.data_keys = DataKeyCache(max_uses=1)
    fresh_records = [fresh.seal(addressed) for _ in range(n)]

    def seal_fresh() -> None:
        for _ in range(n):
            fresh.seal(addressed)

    def open_fresh() -> None:
        fresh.unwrapped = UnwrapCache()  # nothing unwrapped in an earlier round
        for record in fresh_records:
            fresh.open(record)

    def open_plain() -> None:
        for record in plain_records:
            wire.open(record)

    def open_sealed() -> None:
        for record in sealed_records:
            wire.open(record)

    rounds = 3 if quick else 7
    times: dict[str, list[float]] = {k: [] for k in ("sp", "ss", "op", "os", "sf", "of")}
    for _ in range(rounds):  # alternating, so other load hits both sides alike
        times["sp"].append(_best(seal_plain, n))
        times["ss"].append(_best(seal_sealed, n))
        times["op"].append(_best(open_plain, n))
        times["os"].append(_best(open_sealed, n))
        times["sf"].append(_best(seal_fresh, n))
        times["of"].append(_best(open_fresh, n))
    sp, ss, op, os_, sf, of = (min(times[k]) for k in ("sp", "ss", "op", "os", "sf", "of"))
    where = (f"{n} SIRENE company events, CPU time (process_time), best of {rounds} alternating rounds, one core; "
             f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return {
        "seal_encrypt_vs_seal": {
            "value": round(ss, 1), "baseline": round(sp, 1), "ratio": round(ss / sp, 3), "unit": "us/event (CPU)",
            "fresh_key": round(sf, 1), "fresh_key_ratio": round(sf / sp, 3),
            "method": ("Wire.seal of an event addressed to 3 recipients (payload AES-256-GCM under a data key wrapped "
                       "with X25519 HPKE for each, reused for <= 1000 events / 5 min per recipient set; fresh_key: a "
                       "data key per event) vs Wire.seal of the same event broadcast; " + where)},
        "open_decrypt_vs_open": {
            "value": round(os_, 1), "baseline": round(op, 1), "ratio": round(os_ / op, 3), "unit": "us/event (CPU)",
            "fresh_key": round(of, 1), "fresh_key_ratio": round(of / op, 3),
            "method": ("Wire.open of the addressed record by one recipient (Ed25519 verify over the ciphertext, HPKE "
                       "unwrap once per data key, AES-GCM decrypt, Avro decode; fresh_key: an unwrap per event) vs "
                       "Wire.open of the broadcast record; " + where)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.quick), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
