"""Demo phase 2, the acts: two deliberations transmitted, acknowledged, published and registered.

The commune's deliberation software transmits each act (its PDF stored in the content store sealed
to the prefecture and the commune, the event, addressed to them, carrying the claim check) and the
bus writes the ACTES act message and its envelope; the prefecture acknowledges it (ARActe); the
commune records its electronic publication (broadcast: public by nature), naming the
natural person the published title mentions so the acts lifecycle pseudonymises it. The worker
answers with the state changes, the executory status, the pseudonymised publication and the
hash-chained register entry, which the phase reads back and verifies with
:func:`processors.register.verify_chain` over the commune's whole register.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from typing import Any

from pypdf import PdfWriter
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from adapters import actes, actes_envelope
from adapters._actes_common import act_id
from adapters._base import Pivot
from bus._content import open_content_store, put_document
from bus._errors import SecurityError
from bus._wire import Event, Received
from bus.client import read_topic
from processors.register import verify_chain

from ._data import COMMUNE, DEPARTMENT
from ._stage import Stage

__all__ = ["acts_phase"]

ACTS = "fr.dcant.acts."
CONTACT = "assemblees@mairie.saint-exemple.test"


@dataclasses.dataclass(frozen=True)
class Deliberation:
    """One deliberation of the council, with the natural person its published title names."""

    key: str
    decided: dt.date
    title: str
    classification: str
    person: str | None = None


DELIBERATIONS = (
    Deliberation("BP", dt.date(2025, 3, 20), "Vote du budget primitif 2025", "7.1"),
    Deliberation("SUB", dt.date(2025, 3, 20),
                 "Aide au ravalement de façade accordée à Mme Camille Fictive, 3 place du Marché", "7.5",
                 person="Camille Fictive"),
)


def _pdf(text: str) -> bytes:
    """A one-page PDF standing for the signed deliberation (its content does not matter here)."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": text, "/Author": "Commune de Saint-Exemple-sur-Loire"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _at(day: dt.date, hour: int = 9) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), dt.UTC)


def _transmitted_at(deliberation: Deliberation) -> dt.datetime:
    return _at(deliberation.decided + dt.timedelta(days=1))


def _act(stage: Stage, deliberation: Deliberation) -> dict[str, Any]:
    """The fr.dcant.acts.Act pivot of a deliberation, its PDF stored as a claim check."""
    number = f"{deliberation.key}{stage.run}"  # NumeroInterne: 15 letters or digits at most
    identifier = act_id(COMMUNE, DEPARTMENT, deliberation.decided, number, 1)
    pdf = _pdf(deliberation.title)
    name = f"99_DE-{identifier}-1-1_1.pdf"
    # Stored sealed to the recipients of the ActTransmitted that claim-checks it (the prefecture, the commune).
    key = stage.document_key("commune", ACTS + "ActTransmitted", _transmitted_at(deliberation))
    ref = put_document(open_content_store(stage.ctx.settings), pdf, key=key, media_type="application/pdf",
                       file_name=name)
    return {
        "act_id": identifier, "siren": COMMUNE, "department": DEPARTMENT, "arrondissement": "1",
        "collectivity_nature": "31", "number": number, "decision_date": deliberation.decided, "nature_code": 1,
        "nature_label": "Délibérations", "nature_abbreviation": "DE", "matiere_codes": [int(p) for p in
                                                                                        deliberation.classification.split(".")],
        "classification_code": deliberation.classification, "object": deliberation.title,
        "classification_date": dt.date(2024, 1, 15), "previous_act_id": None,
        "documents": [{"role": "MAIN", "file_name": name, "media_type": "application/pdf", "signed": False,
                       "content": {"sha256": ref.sha256, "size": ref.size, "uri": ref.uri}, "personal_data": None}],
        "personal_data": deliberation.person is not None,
        "referent": {"name": "Service des assemblées", "phone": None, "email": CONTACT},
        "return_addresses": [CONTACT],
    }


async def acts_phase(stage: Stage, console: Console) -> dict[str, Any]:
    """Play the deliberations; returns the phase's figures (acts, register, verification)."""
    console.rule("[bold]2. Acts: deliberations transmitted, acknowledged, published, registered")
    acts = [(d, _act(stage, d)) for d in DELIBERATIONS]
    subjects = {f"act:{COMMUNE}:{a['number']}": (d, a) for d, a in acts}
    transmitted = [Event(type=ACTS + "ActTransmitted", subject=s, schema=ACTS + "Act", data=a,
                         time=_transmitted_at(d)) for s, (d, a) in subjects.items()]
    await stage.publish("commune", transmitted)
    for subject, (_d, act) in subjects.items():
        pivot = Pivot(ACTS + "ActTransmitted", ACTS + "Act", subject, act, actes.FORMAT)
        stage.write(actes.act_message_name(act), actes.from_pivot(pivot))
        stage.write(f"EACT--{COMMUNE}--{act['decision_date']:%Y%m%d}-{act['number']}.xml",
                    actes_envelope.from_pivot(pivot))
    watcher = stage.watcher
    await watcher.expect(lambda: all(watcher.of("ActStateChanged", subject=s) for s in subjects),
                         "state change of the transmitted acts")
    acknowledged = [Event(type=ACTS + "ActAcknowledged", subject=s, schema=ACTS + "ActAcknowledged", data={
        "act_id": a["act_id"], "siren": COMMUNE, "department": DEPARTMENT, "number": a["number"],
        "reception_date": d.decided + dt.timedelta(days=1), "classification_version_in_force": None,
        "received_act": None}, time=_at(d.decided + dt.timedelta(days=1), 14)) for s, (d, a) in subjects.items()]
    await stage.publish("prefecture", acknowledged)
    published_on = dt.date(2025, 3, 24)
    publications = [Event(type=ACTS + "ActPublicationRecorded", subject=s, schema=ACTS + "ActPublicationRecorded", data={
        "act_id": a["act_id"], "siren": COMMUNE, "number": a["number"], "mode": "PUBLISHED", "date": published_on,
        "title": d.title, "text": None, "url": f"https://mairie.saint-exemple.test/actes/{a['number']}",
        "personal_data": [{"field": "title", "value": d.person}] if d.person else []},
        time=_at(published_on)) for s, (d, a) in subjects.items()]
    await stage.publish("commune", publications)

    def registered() -> list[Received] | None:
        found = watcher.of("RegisterEntryAdded", where=lambda e: e.data["act_id"] in
                           {a["act_id"] for _d, a in subjects.values()})
        return found if len(found) == len(subjects) else None

    await watcher.expect(registered, "register entries of the published deliberations")
    await watcher.expect(lambda: len(watcher.of("ActPublished", where=lambda e: e.subject in subjects))
                         == len(subjects), "pseudonymised publications")
    table = Table("act", "time", "event", "state / detail", title="the deliberations' lifecycle on the bus")
    states: dict[str, str] = {}
    for subject in subjects:
        for event in [e for e in watcher.events if e.subject == subject]:
            table.add_row(subject.rsplit(":", 1)[1], f"{event.time:%Y-%m-%d %H:%M}", event.type.rsplit(".", 1)[1],
                          escape(_detail(event)))
            if event.type.endswith("ActStateChanged"):
                states[subject] = event.data["state"]
    console.print(table)
    named = [s for s, (d, _a) in subjects.items() if d.person]
    for subject in named:
        console.print(f"the name in {subject} travels encrypted under its dossier key: "
                      f"`bus erase {subject} --basis \"RGPD art. 17\"` destroys the key, then `bus trace {subject}` "
                      "shows it [effacé] while `bus verify` stays clean")
    chain = await _register(stage, console)
    return {"acts transmitted": len(subjects), "acts executory": len(watcher.of(
        "ActBecameExecutory", where=lambda e: e.subject in subjects)), "act states": states,
        "acts subjects": sorted(subjects), "act naming a person": named[0] if named else "", **chain}


def _detail(event: Received) -> str:
    d = event.data
    name = event.type.rsplit(".", 1)[1]
    if name == "ActStateChanged":
        window = f", déféré window ended {d['legality_window_end']}" if d.get("legality_window_end") else ""
        return f"{d['state']} ({d['date']}){window}"
    if name == "ActAcknowledged":
        return f"AR of the prefecture, received {d['reception_date']}"
    if name == "ActBecameExecutory":
        return f"executory on {d['executory_date']}"
    if name == "ActPublicationRecorded":
        return f"published on {d['date']}, {len(d['personal_data'])} person named"
    if name == "ActPublished":
        return f"{d['title']!r} ({d['pseudonymised_count']} name pseudonymised)"
    if name == "ActTransmitted":
        return d["object"]
    if name == "ArchiveStateChanged":
        return f"archive: {d['state']}" + (f" ({d['reason']})" if d.get("reason") else "")
    if name == "DocumentsDigestRequested":
        return f"digests of {len(d['documents'])} document(s) asked for"
    if name == "DocumentsDigested":
        return f"{len(d['documents'])} digested, {len(d.get('missing') or [])} missing"
    return ""


async def _register(stage: Stage, console: Console) -> dict[str, Any]:
    """The commune's whole register read back from the acts topic, its hash chain verified."""
    wire = stage.watcher.wire
    subject = f"register:{COMMUNE}".encode()
    entries = [wire.open(r).data for r in await read_topic(stage.ctx.settings, stage.ctx.topic("acts"))
               if r.key == subject]
    entries.sort(key=lambda e: e["sequence"])
    try:
        verify_chain(entries)
        verdict = "verified"
    except SecurityError as err:
        verdict = f"BROKEN: {err.message}"
    table = Table("#", "decided", "published", "title (as published)", "previous hash", "entry hash",
                  title=f"register of deliberations of {COMMUNE} — chain {verdict}")
    for entry in entries[-6:]:
        table.add_row(str(entry["sequence"]), str(entry["decision_date"]), str(entry["publication_date"]),
                      escape(entry["title"]), entry["previous_hash"][:12] + "…", entry["entry_hash"][:12] + "…")
    console.print(table)
    return {"register entries": len(entries), "register chain": verdict}
