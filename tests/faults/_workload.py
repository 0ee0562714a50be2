"""The fixed workload of a fault trial: its inputs in two waves, and the accounting of what came out.

Four flows, 104 dossiers: 20 procedures (one SIRET-only candidature each, completed by
tell-us-once), 4 contracts (DECP) with 40 invoices, each with its service fait (→ one mandat)
and, for half of them, a late payment (→ one late-interest computation), and 40 deliberations
(transmitted, acknowledged, published → one register entry; executory → the dossier closes →
one archive transfer). Payloads come from the builders the tests and the demo already use
(``tests/unit/processors/*_factories.py``, :mod:`bus.demo._procurement`).

Wave 1 is everything but the payments; wave 2, the payments, goes out once the mandats of the
paid invoices are seen (a payment before its invoice is accepted is not an effect to expect).

:func:`account` reads what the trial observed (every event on the family topics, every
dead letter) and answers two questions: which input ``ce_id`` has no visible effect and was
not dead-lettered (lost), and which business key has more than one distinct effect
(duplicate effects; copies of one ``ce_id`` are one effect, consumers drop them by id).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from bus import Event, Received, Record
from bus._content import LocalContentStore
from bus.demo._procurement import candidature_event
from tests.unit.processors.accounting_factories import BUYER, HOLDER, decp, invoice, payment, service_fait
from tests.unit.processors.acts_factories import acknowledged, publication, transmitted

__all__ = ["Accounting", "Workload", "account", "build"]

WORKER_SIREN, COMMUNE_SIREN, SUPPLIER_SIREN = "130000000", BUYER[:9], HOLDER[:9]
YEAR = dt.date.today().year - 1  # a closed year: acts executory at once, transfers due at once
ACC, ACTS, ARCH, PROC = "fr.dcant.accounting.", "fr.dcant.acts.", "fr.dcant.archives.", "fr.dcant.procurement."
PROCEDURES, CONTRACTS, INVOICES, PAID, DELIBERATIONS = 20, 4, 40, 20, 40

MANDAT, ENTRY, TRANSFER, INTEREST, ENRICHED = ("mandat", "register entry", "archive transfer", "late interest",
                                               "enriched candidature")


@dataclasses.dataclass
class Input:
    """One event the trial publishes, who signs it, and how to tell that it was processed."""

    role: str  # "commune" or "supplier"
    event: Event
    kind: str  # what it is, for the report
    key: str  # the business key its effect is found under
    ce_id: str = ""  # filled once published


@dataclasses.dataclass
class Workload:
    wave1: list[Input]
    wave2: list[Input]
    #: effect kind -> the business keys that must each have exactly one effect
    expected: dict[str, set[str]]
    #: invoice numbers whose mandat must be seen before wave 2
    paid: set[str]

    @property
    def dossiers(self) -> int:
        return PROCEDURES + CONTRACTS + INVOICES + DELIBERATIONS

    @property
    def effects(self) -> int:
        return sum(len(keys) for keys in self.expected.values())


def _act(store: LocalContentStore, tag: str, n: int) -> tuple[str, list[Event]]:
    number = f"F{tag}{n:03d}"  # NumeroInterne: letters and digits
    pdf = f"%PDF-1.4 deliberation {tag} {n}\n".encode() * 20
    ref = store.put(pdf, media_type="application/pdf", file_name=f"delib-{number}.pdf")
    documents = [{"role": "MAIN", "file_name": ref.file_name, "media_type": ref.media_type, "signed": False,
                  "content": {"sha256": ref.sha256, "size": ref.size, "uri": ref.uri}, "personal_data": None}]
    events = [transmitted(number, decision=dt.date(YEAR, 10, 2), title=f"Deliberation {n}", documents=documents),
              acknowledged(dt.date(YEAR, 10, 3), number), publication(dt.date(YEAR, 10, 6), number=number)]
    return f"act:{COMMUNE_SIREN}:{number}", events


def build(tag: str, store: LocalContentStore) -> Workload:
    """The workload of one trial; ``tag`` (a few letters or digits) makes its identifiers its own."""
    wave1: list[Input] = []
    roles = ("travaux", "arpent", "imprimerie")
    for p in range(PROCEDURES):
        stage = types.SimpleNamespace(run=f"{tag}{p:02d}")  # the demo's builder reads only the run id
        event = candidature_event(stage, 1 + p % 3, roles[p % 3])  # type: ignore[arg-type]
        wave1.append(Input("supplier", event, "CandidatureSubmitted", event.data["espd_id"]))
    contracts = [f"C{tag}{c}" for c in range(CONTRACTS)]
    # Dated like the rest of the year's stream: a contract published "now" (2026) would restart the
    # payment period of an invoice held for it in 2026, and a 2025 payment would be on time.
    published = dt.datetime(YEAR, 1, 3, 9, tzinfo=dt.UTC)
    wave1 += [Input("commune", dataclasses.replace(decp(c, amount="5000000.00"), time=published),
                    "ContractDataPublished", c) for c in contracts]
    numbers = [f"F-{tag}-{i:03d}" for i in range(INVOICES)]
    contract_of = {n: contracts[i % CONTRACTS] for i, n in enumerate(numbers)}
    received = dt.datetime(YEAR, 1, 10, 9, tzinfo=dt.UTC)
    wave1 += [Input("supplier", invoice(n, contract=contract_of[n], excl="1000.00", vat="200.00", received=received),
                    "InvoiceReceived", n) for n in numbers]
    certified = dt.datetime(YEAR, 1, 20, 9, tzinfo=dt.UTC)
    wave1 += [Input("commune", dataclasses.replace(
        service_fait(n, contract=contract_of[n], certified="1000.00", bordereau=str(100 + i), mandat=str(5000 + i),
                     exercise=YEAR), time=certified), "ServiceFaitRecorded", n) for i, n in enumerate(numbers)]
    dossiers = []
    for n in range(DELIBERATIONS):
        dossier, (sent, ar, published) = _act(store, tag, n)
        dossiers.append(dossier)
        wave1 += [Input("commune", sent, "ActTransmitted", dossier), Input("commune", ar, "ActAcknowledged", dossier),
                  Input("commune", published, "ActPublicationRecorded", dossier)]
    paid = numbers[:PAID]
    paid_at = dt.datetime(YEAR, 5, 15, 9, tzinfo=dt.UTC)
    wave2 = [Input("commune", dataclasses.replace(payment(n, amount="1200.00", paid_on=paid_at.date(),
                                                          contract=contract_of[n], mandat=str(5000 + i)), time=paid_at),
                   "PaymentRecorded", n) for i, n in enumerate(paid)]
    expected = {ENRICHED: {i.key for i in wave1 if i.kind == "CandidatureSubmitted"}, MANDAT: set(numbers),
                INTEREST: set(paid), ENTRY: set(dossiers), TRANSFER: set(dossiers)}
    return Workload(wave1, wave2, expected, set(paid))


# -- what came out ------------------------------------------------------------------------------

def _mandat_invoice(e: Received) -> str | None:
    mandats = e.data.get("mandats") or []
    if len(mandats) != 1 or not mandats[0].get("invoices"):
        return None
    return str(mandats[0]["invoices"][0]["number"])


def _act_dossier(e: Received) -> str:
    return f"act:{e.data['siren']}:{e.data['number']}"


def _transfer_dossier(e: Received) -> str:
    return e.subject.removeprefix("transfer:").rsplit("/transfer-", 1)[0]


#: effect kind -> (event type, business key of one event)
EFFECTS: dict[str, tuple[str, Callable[[Received], str | None]]] = {
    MANDAT: (ACC + "BordereauIssued", _mandat_invoice),
    ENTRY: (ACTS + "RegisterEntryAdded", _act_dossier),
    TRANSFER: (ARCH + "ArchiveTransferRequested", _transfer_dossier),
    INTEREST: (ACC + "LatePaymentInterestDue", lambda e: e.data.get("invoice_number")),
    ENRICHED: (PROC + "CandidatureEnriched", lambda e: e.data.get("espd_id")),
}


def effects(events: Iterable[Received]) -> dict[str, dict[str, set[str]]]:
    """Effect kind -> business key -> the distinct ``ce_id`` of the events making that effect."""
    found: dict[str, dict[str, set[str]]] = {kind: defaultdict(set) for kind in EFFECTS}
    by_type = {event_type: (kind, key) for kind, (event_type, key) in EFFECTS.items()}
    for e in events:
        if e.type in by_type:
            kind, key_of = by_type[e.type]
            key = key_of(e)
            if key is not None:
                found[kind][key].add(e.id)
    return found


def progress(events: Iterable[Received], workload: Workload) -> int:
    """How many expected effects are visible (the fault's trigger and the trial's end condition)."""
    found = effects(events)
    return sum(len(keys & found[kind].keys()) for kind, keys in workload.expected.items())


@dataclasses.dataclass
class Accounting:
    lost: list[Input]  # no visible effect, not dead-lettered
    dead_lettered: list[Input]
    missing: dict[str, list[str]]  # effect kind -> expected business keys without an effect
    duplicates: dict[str, dict[str, set[str]]]  # effect kind -> key -> distinct effect ids (> 1)

    @property
    def duplicate_count(self) -> int:
        return sum(len(keys) for keys in self.duplicates.values())


def account(workload: Workload, events: list[Received], dead: list[Record]) -> Accounting:
    """Every input accounted for (effect visible, or dead-lettered), and effects counted by key."""
    found = effects(events)
    caused = {e.envelope.causationid for e in events}
    checked = {e.data.get("invoice_number") for e in events if e.type == ACC + "InvoiceChecked"}
    accepted = {e.data.get("contract_id") for e in events
                if e.type == ACC + "InvoiceChecked" and e.data.get("outcome") == "accepted"}
    verified = {e.envelope.causationid for e in events if e.type == "fr.dcant.invoices.SupplierVerified"}
    act_states = {e.subject for e in events if e.type == ACTS + "ActStateChanged"}
    executory = {e.subject for e in events if e.type == ACTS + "ActBecameExecutory"}

    def processed(i: Input) -> bool:
        # The effect an input must have, seen from outside: an output it caused or the
        # business effect that could not exist without it.
        if i.kind == "CandidatureSubmitted":
            return i.key in found[ENRICHED]
        if i.kind == "ContractDataPublished":
            return i.key in accepted  # an invoice was accepted against its terms
        if i.kind == "InvoiceReceived":
            return i.key in checked and i.ce_id in verified  # the chain and tell-us-once both saw it
        if i.kind == "ServiceFaitRecorded":
            return i.key in found[MANDAT]
        if i.kind == "PaymentRecorded":
            return i.key in found[INTEREST]
        if i.kind == "ActTransmitted":
            return i.key in act_states and i.key in found[TRANSFER]  # acts lifecycle + archiving's dossier
        if i.kind == "ActAcknowledged":
            return i.key in executory
        if i.kind == "ActPublicationRecorded":
            return i.key in found[ENTRY]
        return i.ce_id in caused

    dead_ids = {dict(r.headers).get("ce_id", b"").decode() for r in dead}
    lost, dead_lettered = [], []
    for i in [*workload.wave1, *workload.wave2]:
        if processed(i):
            continue
        (dead_lettered if i.ce_id in dead_ids else lost).append(i)
    missing = {kind: sorted(keys - found[kind].keys()) for kind, keys in workload.expected.items()
               if keys - found[kind].keys()}
    duplicates = {kind: {k: ids for k, ids in by_key.items() if len(ids) > 1} for kind, by_key in found.items()}
    return Accounting(lost, dead_lettered, missing, {k: v for k, v in duplicates.items() if v})


def describe(workload: Workload) -> dict[str, Any]:
    return {"dossiers": workload.dossiers, "inputs": len(workload.wave1) + len(workload.wave2),
            "effects": workload.effects}
