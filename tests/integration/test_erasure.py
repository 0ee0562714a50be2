"""Erasure by destroying keys on the real broker (issue 12 item 5), through the ``bus`` command.

A commune publishes two acts' publication records naming a natural person; ``bus erase`` of one
dossier publishes a signed, ledgered ``PersonalDataErased`` event and destroys that dossier's key.
Then replay, trace and the evidence bundle show its personal fields erased (basis and date), the
other dossier still reads in clear, the names never travelled in clear, and ``bus verify`` is
clean over every record and checkpoint, the ones checkpointed before the erasure included.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bus import BusContext, BusSettings, Event, topic_map
from bus.client import Publisher, read_topic

pytestmark = pytest.mark.asyncio(loop_scope="session")

BUS = [sys.executable, "-c", "from bus.cli import main; main()"]
ERASED, GONE, KEPT = "act:213105554:DEL-2026-101", "Jeanne Martin", "Paul Durand"
KEPT_DOSSIER = "act:213105554:DEL-2026-102"
BASIS = "RGPD art. 17-1-a, demande du 2026-11-30"


def publication(dossier: str, name: str) -> Event:
    data = {"act_id": None, "siren": "213105554", "number": dossier.rsplit(":", 1)[-1], "mode": "PUBLISHED",
            "date": dt.date(2026, 11, 2), "title": f"Aide sociale à {name}",
            "text": f"Le conseil municipal accorde une aide à {name}.", "url": "https://mairie.example/actes",
            "personal_data": [{"field": "title", "value": name}, {"field": "text", "value": name}]}
    return Event(type="fr.dcant.acts.ActPublicationRecorded", subject=dossier,
                 schema="fr.dcant.acts.ActPublicationRecorded", data=data)


@pytest.fixture
def env(settings, tmp_path_factory, env_of) -> dict[str, str]:
    """Its own topics and state directory (keys, dossier keys)."""
    prefix = f"{settings.topic_prefix}erase-{uuid.uuid4().hex[:6]}."
    return {**os.environ, **env_of(settings), "BUS_TOPIC_PREFIX": prefix,
            "BUS_STATE_DIR": str(tmp_path_factory.mktemp("erase-state")),
            "BUS_SOURCE": "urn:siren:213105554:webdelib", "COLUMNS": "200"}


async def bus(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    out = await asyncio.to_thread(subprocess.run, [*BUS, *args], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == code, f"bus {' '.join(args)}: {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


def lines(out: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


async def publish(settings: BusSettings, events: list[Event]) -> None:
    ctx = await BusContext.connect(settings)
    async with Publisher(settings, ctx.wire()) as publisher:
        await publisher.publish_many(events)


async def test_erase_then_replay_trace_evidence_show_erased_and_verify_stays_clean(env, settings, tmp_path):
    await bus(env, "keys", "generate", "213105554", "--owner", "Commune de test")
    await bus(env, "ledger", "keygen")
    mine = settings.model_copy(update={"topic_prefix": env["BUS_TOPIC_PREFIX"], "state_dir": Path(env["BUS_STATE_DIR"]),
                                       "source": env["BUS_SOURCE"]})
    await publish(mine, [publication(ERASED, GONE), publication(KEPT_DOSSIER, KEPT)])
    await bus(env, "ledger", "checkpoint")  # the personal values are checkpointed before the erasure
    before = {e["subject"]: e for e in lines(await bus(env, "tail", "acts"))}
    assert before[ERASED]["data"]["title"] == f"Aide sociale à {GONE}"  # the key holder reads in clear

    erased = await bus(env, "erase", ERASED, "--basis", BASIS)
    assert "personal data erased" in erased.stdout

    replayed = {(e["subject"], e["type"]): e for e in lines(await bus(env, "replay", "acts"))}
    assert all(e["verified"] for e in replayed.values())
    gone = replayed[ERASED, "fr.dcant.acts.ActPublicationRecorded"]
    assert (gone["data"]["title"], gone["data"]["text"]) == ("[effacé]", "[effacé]") and gone["data"]["personal_data"] == []
    assert gone["data"]["number"] == "DEL-2026-101" and gone["data"]["date"] == "2026-11-02"
    assert gone["personal_data"]["state"] == "erased" and gone["personal_data"]["basis"] == BASIS
    event = replayed[ERASED, "fr.dcant.privacy.PersonalDataErased"]  # on the bus, signed, verified
    assert event["signed_by"].startswith("213105554:") and event["data"]["basis"] == BASIS
    assert event["data"]["family"] == "acts" and event["data"]["key_id"].startswith("dk:")
    kept = replayed[KEPT_DOSSIER, "fr.dcant.acts.ActPublicationRecorded"]
    assert kept["data"]["title"] == f"Aide sociale à {KEPT}" and "personal_data" not in kept

    trace = lines(await bus(env, "trace", ERASED, "--json"))
    assert [t["type"] for t in trace[:-1]] == ["fr.dcant.acts.ActPublicationRecorded",
                                               "fr.dcant.privacy.PersonalDataErased"]
    assert trace[0]["data"]["title"] == "[effacé]" and trace[0]["personal_data"]["erasure_event"] == event["id"]
    assert trace[-1]["state"] == "PersonalDataErased"
    table = (await bus(env, "trace", ERASED)).stdout
    assert "personal data erased on" in table and f"({BASIS}): title, text, personal_data" in table

    records = await read_topic(mine, topic_map(mine)["acts"].name)
    assert len(records) == 3 and not any(GONE.encode() in (r.value or b"") for r in records)  # never in clear

    await bus(env, "ledger", "checkpoint")
    verified = await bus(env, "verify", "acts", "--json")
    assert lines(verified) == []  # no finding at all, not even a warning
    summary = verified.stderr.strip().splitlines()[-1]
    assert summary.startswith("verified: 3 record(s)"), verified.stderr
    assert int(summary.split(", ")[-1].split()[0]) >= 2  # the checkpoints from before and after the erasure

    bundle = tmp_path / "evidence.zip"
    await bus(env, "evidence", "build", ERASED, "--out", str(bundle), "--topic", "acts")
    await bus({**os.environ, "COLUMNS": "200"}, "evidence", "verify", str(bundle))  # offline, no key store
    import zipfile

    with zipfile.ZipFile(bundle) as zf:
        timeline = zf.read("timeline.html").decode()
    assert "[effacé]" in timeline and GONE not in timeline

    again = await bus(env, "erase", ERASED, "--basis", BASIS, code=2)
    assert len(again.stderr.strip().splitlines()) == 1 and "already erased" in again.stderr
