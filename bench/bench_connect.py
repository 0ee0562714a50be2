"""Time of ``BusContext.connect`` on a topic prefix that many processes connected to before.

Not part of ``bus bench`` (no baseline to compare with): a check that connecting stays cheap on a
long-lived prefix. Connects ``--connects`` times in a row to a fresh prefix of the cluster of
``BUS_BOOTSTRAP_SERVERS`` and prints one JSON object: the time of the first and of the last
connects, and the number of records on the catalog topic after the first and after the last.

    BUS_BOOTSTRAP_SERVERS=127.0.0.1:9092 python -m bench.bench_connect [--connects 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from typing import Any

from bus import BusContext, BusSettings
from bus.client import read_topic


async def measure(connects: int, prefix: str) -> dict[str, Any]:
    settings = BusSettings(topic_prefix=prefix)
    times, records = [], []
    for _ in range(connects):
        began = time.perf_counter()
        ctx = await BusContext.connect(settings)
        times.append(time.perf_counter() - began)
        records.append(len(await read_topic(settings, ctx.topic("catalog"))))
    last = times[-5:]
    return {"prefix": prefix, "connects": connects, "first_connect_s": round(times[0], 3),
            "second_connect_s": round(times[1], 3) if connects > 1 else None,
            "last_5_median_s": round(statistics.median(last), 3), "last_connect_s": round(times[-1], 3),
            "catalog_records_after_first": records[0], "catalog_records_after_last": records[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=50)
    parser.add_argument("--prefix", default=None, help="default: a fresh bench-connect-<random>. prefix")
    args = parser.parse_args()
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    prefix = args.prefix or f"bench-connect-{uuid.uuid4().hex[:6]}."
    print(json.dumps(asyncio.run(measure(args.connects, prefix))))


if __name__ == "__main__":
    main()
