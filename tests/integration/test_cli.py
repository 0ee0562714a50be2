"""The ``bus`` command against the real broker: keys, publish, tail, topics, dead letters.

In the wire set (conftest.py): every command runs on the plaintext broker, then over mutual TLS
with the ``BUS_SECURITY_PROTOCOL`` and ``BUS_SSL_*`` of a principal of its own.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

BUS = [sys.executable, "-c", "from bus.cli import main; main()"]


@pytest.fixture(scope="module")
def settings(wire_settings):  # type: ignore[no-untyped-def]
    """On the plaintext then the secure broker (the wire set: conftest.py)."""
    return wire_settings


@pytest.fixture
def env(settings, tmp_path_factory, env_of) -> dict[str, str]:
    """Each test its own topics and state directory: no test reads what another one wrote."""
    state = tmp_path_factory.mktemp("cli-state")
    return {
        **os.environ,
        **env_of(settings),
        "BUS_TOPIC_PREFIX": f"{settings.topic_prefix}cli-{uuid.uuid4().hex[:6]}.",
        "BUS_STATE_DIR": str(state),
        "BUS_SOURCE": "urn:siren:213105554:sirene-sync",
        "COLUMNS": "200",  # rich tables wrap at 80 columns when not on a terminal
    }


def bus(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*BUS, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert out.returncode == 0, f"bus {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out


def test_publish_then_tail_verifies_every_event(env, corpus):
    bus(env, "keys", "generate", "213105554", "--owner", "Commune de test")
    shown = bus(env, "keys", "show", "--directory")
    assert "213105554:" in shown.stdout
    files = sorted((corpus / "reference/sirene").glob("*"))
    bus(env, "publish", *map(str, files))
    tail = bus(env, "tail", "reference.companies")
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    assert len(events) == 9  # 1 + 3 + 3 + 1 + 1 records in the five SIRENE samples
    assert all(e["signed_by"].startswith("213105554:") for e in events)
    subjects = {e["subject"] for e in events}
    assert "company:42082007800012" in subjects
    hidden = next(e for e in events if e["subject"] == "company:509137147")
    assert hidden["data"]["diffusion_status"] == "NON_DIFFUSIBLE" and hidden["data"]["name"] is None


def test_publishing_without_a_key_says_what_to_do(env, corpus):
    other = {**env, "BUS_SOURCE": "urn:siren:200000008:nokey"}
    out = bus(other, "publish", str(corpus / "reference/sirene/unite_legale.json"), check=False)
    assert out.returncode == 2
    assert "bus keys generate" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_topics_lists_the_live_configuration(env):
    out = bus({**env, "BUS_RECIPIENT_POLICY": "archives=130000001"}, "topics")
    assert "reference.companies" in out.stdout and "compact" in out.stdout
    archives = next(line for line in out.stdout.splitlines() if "dcant.archives " in line)
    assert "130000001" in archives  # the recipients the policy adds to the flow's addressed events


def test_dead_letters_can_be_listed_shown_and_redriven(env, settings):
    from bus._runtime import BusContext
    from bus._tls import run_own_loop
    from bus._wire import Record
    from bus.client import Publisher, Subscriber, read_topic

    s = settings.model_copy(update={"topic_prefix": env["BUS_TOPIC_PREFIX"], "state_dir": Path(env["BUS_STATE_DIR"]),
                                    "source": env["BUS_SOURCE"]})
    bus(env, "keys", "generate", "213105554", "--owner", "Commune de test")  # publishes the key, a signed event

    async def forge_and_consume() -> Record:
        ctx = await BusContext.connect(s)
        (original,) = await read_topic(s, ctx.topic("reference.administrations"))
        headers = tuple((k, v + b"-forged" if k == "ce_source" else v) for k, v in original.headers)
        async with Publisher(s, ctx.wire()) as publisher:
            forged = await publisher.send_raw(ctx.topic("reference.administrations"),
                                              Record(original.key, original.value, headers))

        async def ignore(received):  # type: ignore[no-untyped-def]
            return None

        async with Subscriber(s, ctx.wire(), ["reference.administrations"], ignore, processor="cli-test",
                              group=f"g-{uuid.uuid4().hex[:6]}") as sub:
            await sub.run(until=lambda: sub.stats["dead_lettered"] >= 1)
        return forged

    forged = run_own_loop(forge_and_consume())  # over TLS too (the wire set): no socket left to the GC
    listing = bus(env, "dlq", "list")
    assert "SignatureError" in listing.stdout
    offset = next(int(line.split("@")[1].split()[0]) for line in listing.stdout.splitlines() if "SignatureError" in line)
    shown = json.loads(bus(env, "dlq", "show", str(offset)).stdout)
    assert shown["dead_letter"]["error_class"] == "SignatureError"
    assert shown["dead_letter"]["source_offset"] == str(forged.offset)
    assert base64.b64decode(shown["value_base64"]) == forged.value
    assert shown["original_headers"]["ce_source"].endswith("-forged")
    dry = bus(env, "dlq", "redrive", str(offset), "--dry-run")
    assert "would re-drive" in dry.stdout
    done = bus(env, "dlq", "redrive", str(offset))
    assert "re-drove" in done.stdout
