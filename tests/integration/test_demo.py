"""``bus demo --out DIR`` on the session's broker: the year of a commune, end to end, twice.

The demo runs as the command does (a subprocess, which starts ``bus worker`` itself). The
figures are read from its summary table; every native document it wrote must be recognised by
an adapter and validate against its official schema in the corpus. A second run on the same
broker (same topics, same keys, the worker's states recovered) must end as well, with the
register of deliberations still one verified chain; so must a demo played after the README's
first session made the commune a key valid only from today. After the demo, ``bus verify``
is clean on the family topics and names the company record the demo forged on purpose.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from adapters import detect
from adapters._xml import parse_xml
from tests.integration.conftest import live_processes

BUS = [sys.executable, "-c", "from bus.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^│ (?P<name>[^│]+?)\s+│ (?P<value>[^│]+?)\s+│$")
#: Native formats the bus writes in the demo, one file or more each.
WRITTEN = {"actes", "actes-envelope", "decp", "pes-aller", "seda", "ubl"}


def summary(stdout: str) -> dict[str, str]:
    """The rows of the final ``demo summary`` table."""
    _, _, table = stdout.rpartition("demo summary")
    assert table, f"no summary table in:\n{stdout[-3000:]}"
    return {m["name"]: m["value"] for line in table.splitlines() if (m := ROW.match(line.strip()))}


@pytest.fixture(scope="module")
def env(settings, tmp_path_factory) -> dict[str, str]:
    return {
        **os.environ,
        "BUS_BOOTSTRAP_SERVERS": settings.bootstrap,
        "BUS_TOPIC_PREFIX": f"demo-{uuid.uuid4().hex[:6]}.",
        "BUS_STATE_DIR": str(tmp_path_factory.mktemp("demo-state")),
        "BUS_SOURCE": "urn:siren:219990017:webdelib",
        "COLUMNS": "200",  # rich tables wrap at 80 columns when not on a terminal
        "BUS_LOG_LEVEL": "INFO",  # the worker log (printed when the demo fails) then says what faust did
        "PYTHONPATH": str(ROOT),
    }


def play(env: dict[str, str], out: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*BUS, "demo", "--out", str(out)], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=900)
    assert done.returncode == 0, f"bus demo failed:\n{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    return done


def explain(done: subprocess.CompletedProcess[str], env: dict[str, str]) -> str:
    """The end of a demo's output and of its worker's log, for a figure that came out wrong."""
    logs = sorted((Path(env["BUS_STATE_DIR"]) / "demo").glob("worker-*.log"), key=lambda p: p.stat().st_mtime)
    text = logs[-1].read_bytes().decode(errors="replace") if logs else "(no worker log found)"
    timers = "\n".join(line for line in text.splitlines() if "timers at" in line)  # what held the event time
    return f"demo output:\n{done.stdout[-6000:]}\nworker log {logs[-1] if logs else '-'}:\n{timers}\n...\n{text[-6000:]}"


def bus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BUS, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def first_run(env, tmp_path_factory) -> dict[str, object]:
    """The first demo, and ``bus verify`` run right after it (before any other test plays again)."""
    out = tmp_path_factory.mktemp("demo-out")
    figures = summary(play(env, out).stdout)
    families = bus(env, "verify", "acts", "procurement", "invoices", "accounting", "archives")
    everything = bus(env, "verify", "--json")
    opendata = tmp_path_factory.mktemp("barometer")
    barometer = bus(env, "barometer", "export", "--out", str(opendata))
    return {"figures": figures, "out": out, "families": families, "everything": everything,
            "barometer": barometer, "opendata": opendata}


@pytest.fixture(scope="module")
def first(first_run) -> tuple[dict[str, str], Path]:
    return first_run["figures"], first_run["out"]


def test_the_demo_plays_every_flow_to_its_end(first):
    figures, _ = first
    assert figures["companies verified"] == figures["companies published"] == "4"
    assert int(figures["forgeries dead-lettered"]) >= 1
    # acts: transmitted, executory, published and registered in a verified hash chain
    assert figures["acts transmitted"] == figures["acts executory"] == "2"
    assert int(figures["register entries"]) >= 2 and figures["register chain"] == "verified"
    # procurement: SIRET-only candidatures, attestations reused, the missing ones requested
    assert figures["candidatures"] == "3"
    assert int(figures["candidature documents reused"]) >= 1
    assert int(figures["candidature documents requested"]) >= 1
    # tenders: two rejection letters sent electronically on 1 April, suspension to 12 April (R2182-1)
    assert (figures["tenders"], figures["rejection letters"], figures["standstill end"]) == ("3", "2", "2025-04-12")
    assert (figures["contract end"], figures["contract modified end"]) == ("2025-10-13", "2026-01-13")
    # invoices: two mandats on PES bordereaux, two payments, one late with its interest
    assert figures["bordereaux issued"] == figures["mandats"] == figures["payments"] == "2"
    assert Decimal(figures["late payment interest"]) > 0
    assert Decimal(figures["late payment indemnity"]) == Decimal("40.00")
    assert figures["contract paid in full"] == "True"
    # the supplier heard each step: the incoherent second invoice disputed (207), its correction taken in charge
    assert figures["supplier statuses"] == "202 204 211 212 / 202 207 202 204 211 212"
    # archives: every closed dossier transferred, and the archives service's replies applied
    assert figures["dossiers closed"] == figures["archive transfers"] == "3"
    assert figures["transfers waiting for digests"] == figures["transfers not requested"] == "0"
    assert int(figures["archive replies"]) >= 1
    assert figures["archived"] == figures["archive replies"]
    # the profile bank: the archives service approved the demo's profiles, each transfer follows one and goes to it
    assert figures["archiving profiles published"] == figures["archiving profiles approved"] == "2"
    assert figures["transfers validated against an approved profile"] == figures["archive transfers"]
    assert figures["transfers refused by the worker"] == "0"
    assert int(figures["events produced by processors"]) > 0


def test_the_barometer_export_matches_the_summary(first_run):
    """``bus barometer export`` after the demo: the commune's figures are the summary's."""
    assert first_run["barometer"].returncode == 0, first_run["barometer"].stderr
    figures, opendata = first_run["figures"], first_run["opendata"]
    rows = json.loads((opendata / "barometre.json").read_text(encoding="utf-8"))
    with (opendata / "barometre.csv").open(encoding="utf-8", newline="") as handle:
        written = list(csv.DictReader(handle))
    reasons = [";".join(f"{x['reason']}:{x['count']}" for x in r["rejection_reasons"]) for r in rows]
    assert written == [{**{k: "" if v is None else str(v) for k, v in r.items()}, "rejection_reasons": reason}
                       for r, reason in zip(rows, reasons, strict=True)]
    package = json.loads((opendata / "datapackage.json").read_text(encoding="utf-8"))
    described = {f["name"]: f["description"] for f in package["resources"][0]["schema"]["fields"]}
    assert set(described) == set(rows[0]) and all(described.values())

    def total(flow: str, name: str) -> Decimal:
        return sum((Decimal(r[name]) for r in rows if r["flow"] == flow), Decimal(0))

    assert total("procurement", "documents_reused") == Decimal(figures["candidature documents reused"])
    assert total("procurement", "documents_requested") == Decimal(figures["candidature documents requested"])
    assert total("procurement", "candidatures") == Decimal(figures["candidatures"])
    assert total("invoices", "days_late_total") == Decimal(figures["days late"])
    assert total("invoices", "late_interest") == Decimal(figures["late payment interest"])
    assert total("invoices", "late_indemnities") == Decimal(figures["late payment indemnity"])
    assert total("invoices", "payments") == Decimal(figures["payments"])
    assert total("acts", "acts_executory") == Decimal(figures["acts executory"])
    assert total("archives", "transfers_accepted") == Decimal(figures["archived"])


def test_every_document_written_validates_against_its_official_schema(first, corpus):
    _, out = first
    files = sorted(out.iterdir())
    formats = set()
    for path in files:
        data = path.read_bytes()
        module = detect(data, name=path.name)
        formats.add(module.FORMAT)
        fatal = [str(f) for f in module.validate(data, schema_dir=corpus, name=path.name) if f.severity == "fatal"]
        assert fatal == [], f"{path.name} ({module.FORMAT}) does not validate: {fatal}"
    assert formats == WRITTEN, f"formats written: {sorted(formats)}"


def test_every_transfer_written_goes_to_the_commune_s_archive_service(first):
    """Routed by the directory (the commune's declared archive service), not to the JSON profile's default agency."""
    from bus.demo._data import ADMINISTRATIONS

    figures, out = first
    transfers = [p for p in out.iterdir() if p.name.startswith("seda-")]
    assert len(transfers) == int(figures["archive transfers"]) == 3
    agencies = {parse_xml(p.read_bytes(), name=p.name).findtext("{*}ArchivalAgency/{*}Identifier") for p in transfers}
    assert agencies == {ADMINISTRATIONS["archives"]["siren"]}


def test_the_demo_plays_again_on_the_same_broker(first, env, tmp_path):
    figures = summary(play(env, tmp_path).stdout)
    assert int(figures["register entries"]) >= 4 and figures["register chain"] == "verified"
    # the bank as the first demo left it: nothing published or approved again, every transfer still validated
    assert figures["archiving profiles published"] == figures["archiving profiles approved"] == "0"
    assert figures["transfers validated against an approved profile"] == figures["archive transfers"] == "3"
    assert Decimal(figures["late payment interest"]) > 0
    assert figures["archived"] == figures["archive replies"] and int(figures["archived"]) >= 1


def test_verify_after_the_demo_is_clean_on_the_family_topics_and_names_the_forgery(first_run):
    figures, families, everything = first_run["figures"], first_run["families"], first_run["everything"]
    forged = re.fullmatch(r"(?P<topic>.+)\[(?P<partition>\d+)\]@(?P<offset>\d+)", figures["forged record"])
    assert forged, figures["forged record"]
    assert int(figures["ledger checkpoints"]) > 0
    assert families.returncode == 0, families.stdout + families.stderr
    assert "verified" in families.stderr and "no-checkpoint" not in families.stdout
    assert everything.returncode == 1, everything.stdout + everything.stderr
    errors = [f for f in map(json.loads, everything.stdout.splitlines()) if f["severity"] == "error"]
    # The one error is the company record the demo forged on purpose: a bad signature.
    assert [(f["kind"], f["topic"], f["partition"], f["offset"]) for f in errors] == [
        ("bad-event", forged["topic"], int(forged["partition"]), int(forged["offset"]))]
    assert errors[0]["detail"].startswith("SignatureError")


def test_an_auditor_without_keys_verifies_the_family_topics_and_reads_only_envelopes(first_run, env, tmp_path):
    """Issue 12: an empty state directory (no key store, no decryption key) verifies what the demo encrypted."""
    from bus._sealed import is_sealed_document
    from bus.demo._data import ADMINISTRATIONS
    from bus.demo._invoices import IBAN

    figures = first_run["figures"]
    assert int(figures["events encrypted"]) > 0 and int(figures["invoices events unread by a non-recipient"]) > 0
    auditor = {**env, "BUS_STATE_DIR": str(tmp_path / "auditor")}
    (tmp_path / "auditor").mkdir()
    families = bus(auditor, "verify", "acts", "procurement", "invoices", "accounting", "archives")
    assert families.returncode == 0, families.stdout + families.stderr
    verified = re.search(r"verified: (\d+) record\(s\), \d+ partition\(s\), (\d+) checkpoint", families.stderr)
    assert verified and int(verified[1]) > 0 and int(verified[2]) > 0, families.stderr
    assert not any((tmp_path / "auditor").rglob("*.pem"))  # it held no key, and made none
    tail = bus(auditor, "tail", "invoices")
    assert tail.returncode == 0, tail.stderr
    events = [json.loads(line) for line in tail.stdout.splitlines()]
    unread = [e for e in events if e["data"] == "not a recipient"]
    assert unread and all(e["recipients"] and e["subject"] and e["signed_by"] for e in unread)
    buyer_and_supplier = {ADMINISTRATIONS["commune"]["siren"], ADMINISTRATIONS["travaux"]["siren"]}
    assert all(buyer_and_supplier <= set(e["recipients"]) for e in unread
               if e["type"] == "fr.dcant.invoices.InvoiceReceived")
    assert IBAN not in tail.stdout + tail.stderr
    # The documents the events claim-check (the acts' PDFs, the Factur-X, the SEDA replies) are stored sealed.
    stored = [p for p in (Path(env["BUS_STATE_DIR"]) / "content" / "objects").rglob("*") if p.is_file()
              and p.suffix != ".json"]
    assert stored and [p.name for p in stored if not is_sealed_document(p.read_bytes()[:3])] == []


def test_the_demo_plays_after_the_readme_first_session(first, env, tmp_path):
    """Demo, then the README's first session (a commune key valid from today, an invoice), then the demo."""
    _, out = first
    invoice = next(p for p in sorted(out.iterdir()) if p.name.endswith("-ubl.xml"))
    session = {**env, "BUS_SOURCE": "urn:siren:219990017:finance"}
    generated = bus(session, "keys", "generate", "219990017", "--owner", "Commune de Saint-Exemple")
    assert generated.returncode == 0, generated.stderr
    published = bus(session, "publish", str(invoice))
    assert published.returncode == 0, published.stderr
    assert "1 event(s) published" in published.stdout
    done = play(env, tmp_path)
    figures = summary(done.stdout)
    assert "KeyNotValidError" not in done.stdout and "NoValidKeyError" not in done.stdout
    assert figures["acts executory"] == "2" and figures["register chain"] == "verified"
    assert figures["contract paid in full"] == "True"
    assert figures["archived"] == figures["archive replies"] == "3", explain(done, env)


def test_the_console_serves_the_demo(first_run, env):
    """``bus console`` on the demo's broker: a dossier, its evidence, verification, dead letters, barometer."""
    pytest.importorskip("starlette")
    from bus._settings import BusSettings
    from bus.console._data import BusData
    from tests._issuer import Issuer
    from tests.browser.conftest import login, serve

    contract = next(p.name[len("decp-"):-len(".json")] for p in first_run["out"].iterdir() if p.name.startswith("decp-"))
    settings = BusSettings(bootstrap_servers=env["BUS_BOOTSTRAP_SERVERS"], topic_prefix=env["BUS_TOPIC_PREFIX"],
                           state_dir=env["BUS_STATE_DIR"])
    issuer = Issuer()
    with issuer.served, serve(issuer, BusData(settings)) as console, \
            login(issuer, console, operator=False) as client:
        dossier = client.get(f"/dossiers/contract:{contract}")
        bundle = client.get(f"/dossiers/contract:{contract}/preuves.zip")
        verification = client.get("/verification")
        letters = client.get("/lettres-mortes")
        barometer = client.get("/barometre")
    assert dossier.status_code == 200 and "ContractDataPublished" in dossier.text
    assert bundle.status_code == 200 and bundle.content[:4] == b"PK\x03\x04"
    assert verification.status_code == 200 and "dcant.invoices" in verification.text
    assert letters.status_code == 200 and "SignatureError" in letters.text  # the forged company record
    assert barometer.status_code == 200 and "Intérêts moratoires" in barometer.text and "<svg" in barometer.text


def test_erasing_a_demo_dossier_keeps_verify_clean_and_trace_shows_it_erased(first_run, env):
    """Issue 12 item 5: ``bus erase`` of the deliberation naming a person, after the demo."""
    from bus.demo._data import ADMINISTRATIONS

    dossier = first_run["figures"]["act naming a person"]
    erased = bus(env, "erase", dossier, "--basis", "RGPD art. 17-1-a, demande du 2026-11-30")
    assert erased.returncode == 0, erased.stdout + erased.stderr
    traced = bus(env, "trace", dossier, "--json")
    assert traced.returncode == 0, traced.stderr
    timeline = [json.loads(line) for line in traced.stdout.splitlines() if line.startswith("{")][:-1]
    own = {t["type"].rsplit(".", 1)[1]: t for t in timeline if t["subject"] == dossier}
    assert own["ActTransmitted"]["data"]["object"] == "[effacé]"
    assert own["ActPublicationRecorded"]["data"]["title"] == "[effacé]"
    assert own["ActPublicationRecorded"]["personal_data"]["state"] == "erased"
    assert own["PersonalDataErased"]["data"]["basis"].startswith("RGPD art. 17-1-a")
    published = own["ActPublished"]["data"]["title"]  # the pseudonymised publication keeps working
    assert "[personne-" in published and "Camille Fictive" not in published
    # The archive transfer (subject transfer:..., the archives family) copies the act's title: it is encrypted
    # under the act dossier's key, so it reads erased too; the name is nowhere left in the timeline.
    named = {t["type"] for t in timeline if "Camille Fictive" in json.dumps(t, ensure_ascii=False)}
    assert named == set(), named
    (transfer,) = [t for t in timeline if t["type"] == "fr.dcant.archives.ArchiveTransferRequested"]
    assert transfer["data"]["archive_units"][0]["title"] == "[effacé]"
    assert transfer["personal_data"]["state"] == "erased"
    ledger = {**env, "BUS_SOURCE": f"urn:siren:{ADMINISTRATIONS['bus']['siren']}:ledger"}
    assert bus(ledger, "ledger", "checkpoint").returncode == 0
    families = bus(env, "verify", "acts", "procurement", "invoices", "accounting", "archives", "--json")
    assert families.returncode == 0 and families.stdout.strip() == "", families.stdout + families.stderr


def _workers_of(state_dir: str) -> list[int]:
    """Pids of the live ``bus worker`` processes whose BUS_STATE_DIR is ``state_dir``."""
    setting = f"BUS_STATE_DIR={state_dir}".encode()
    return live_processes(lambda entry: b"bus.cli._worker" in (entry / "cmdline").read_bytes()
                          and setting in (entry / "environ").read_bytes().split(b"\0"))


def test_a_demo_stopped_by_sigterm_stops_its_worker(env, tmp_path):
    """SIGTERM (a CI timeout, a service manager) interrupts the demo as Ctrl-C does: it stops its worker."""
    own = {**env, "BUS_TOPIC_PREFIX": f"demo-{uuid.uuid4().hex[:6]}.", "BUS_STATE_DIR": str(tmp_path / "state")}
    demo = subprocess.Popen([*BUS, "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=own,
                            cwd=ROOT)
    try:
        # The demo prints this line as it starts its worker.
        for line in demo.stdout:  # type: ignore[union-attr]
            if "starting bus worker" in line:
                break
        else:
            pytest.fail(f"the demo ended before starting its worker: {demo.wait(timeout=60)} {demo.stderr.read()}")  # type: ignore[union-attr]
        deadline = time.monotonic() + 120
        while not _workers_of(own["BUS_STATE_DIR"]):  # the demo starts it right after that line
            assert demo.poll() is None and time.monotonic() < deadline, "the demo's worker never started"
            time.sleep(0.1)  # poll interval of the process table
        demo.send_signal(signal.SIGTERM)
        rest, errors = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=30)
    assert demo.returncode == 130, (rest[-3000:], errors[-3000:])
    assert "bus: interrupted" in errors and "Traceback" not in errors, (rest[-3000:], errors[-3000:])
    assert _workers_of(own["BUS_STATE_DIR"]) == [], "the demo left its worker running"
