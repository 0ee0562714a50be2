"""Demo-like data for the console's browser tests: a ``ConsoleData`` held in memory.

The pages are what these tests check; reading the broker is :class:`bus.console._data.BusData`'s
job, exercised by the demo's integration test. The dossier follows the demo's invoice paid late.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from typing import Any

from bus.console._data import DeadLetter, PartitionStatus, TimelineEvent

DOSSIER = "invoice:80000001400011:F-2025-0002"
HOSTILE = "<script>document.title='pwned'</script><b>gras</b>"


class MemoryData:
    def __init__(self) -> None:
        base = {"invoice_number": "F-2025-0002", "seller_id": "80000001400011", "contract_id": "2025-CT-01"}
        self.events = [
            TimelineEvent("0193-a", "2025-05-02T09:00:00+00:00", "fr.dcant.invoices.InvoiceReceived",
                          "urn:siren:800000014:facturation", DOSSIER, "demo.dcant.invoices", 2, 14,
                          {**base, "note": HOSTILE}),
            TimelineEvent("0193-b", "2025-05-02T09:00:01+00:00", "fr.dcant.accounting.InvoiceChecked",
                          "urn:siren:130009970:worker", DOSSIER, "demo.dcant.accounting", 2, 30,
                          {**base, "outcome": "accepted", "status": "MISE_EN_PAIEMENT"}),
            TimelineEvent("0193-c", "2025-07-15T17:00:00+00:00", "fr.dcant.accounting.LatePaymentInterestDue",
                          "urn:siren:130009970:worker", DOSSIER, "demo.dcant.accounting", 2, 41,
                          {**base, "days_late": 44, "interest_amount": "180.82", "indemnity": "40.00"}),
        ]
        self.letters = [DeadLetter(0, 7, "demo.dcant.invoices[1]@3", "SignatureError", "bad signature",
                                   "accounting-chain", "2025-05-03T10:00:00", "invoice:forged:1"),
                        DeadLetter(1, 8, "demo.dcant.acts[0]@5", "SchemaError", "unknown fingerprint",
                                   "acts-lifecycle", "2025-05-04T11:00:00", "act:219990017:2025-009")]
        self.redriven: list[tuple[int, int]] = []

    async def timeline(self, dossier: str) -> list[TimelineEvent]:
        return [e for e in self.events if e.subject == dossier]

    async def verification(self) -> list[PartitionStatus]:
        at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        return [PartitionStatus("demo.dcant.invoices", "2", 15, at),
                PartitionStatus("demo.dcant.accounting", "2", 42, at, ("altered: record 12 does not match its leaf",))]

    async def dead_letters(self) -> list[DeadLetter]:
        return [d for d in self.letters if (d.partition, d.offset) not in self.redriven]

    async def redrive(self, partition: int, offset: int) -> str:
        self.redriven.append((partition, offset))
        return "demo.dcant.invoices[1]@9"

    async def barometer(self) -> list[dict[str, Any]]:
        cell = {"administration": "219990017", "events": 3, "transmission_to_executory_days_average": None,
                "payment_delay_days_average": None, "paid_within_deadline_share": None,
                "closure_to_archive_days_average": None, "late_interest": "0.00", "late_indemnities": "0.00",
                "rejection_reasons": []}
        counters = ("acts_transmitted", "acts_executory", "candidatures", "candidatures_siret_only", "documents_reused",
                    "documents_requested", "grade_optimal", "grade_partial", "grade_weak", "invoices_received",
                    "invoices_rejected", "invoices_suspended", "payments", "paid_within_deadline", "late_payments",
                    "days_late_total", "transfers_accepted", "transfers_refused")
        zero = dict.fromkeys(counters, 0)
        return [
            {**cell, **zero, "flow": "acts", "month": "2025-03", "acts_transmitted": 2, "acts_executory": 2,
             "transmission_to_executory_days_average": "2.0"},
            {**cell, **zero, "flow": "procurement", "month": "2025-04", "candidatures": 3, "documents_reused": 4,
             "documents_requested": 2, "grade_optimal": 3},
            {**cell, **zero, "flow": "invoices", "month": "2025-06", "payments": 1, "paid_within_deadline": 1,
             "payment_delay_days_average": "21.0", "paid_within_deadline_share": "1.000"},
            {**cell, **zero, "flow": "invoices", "month": "2025-07", "payments": 1, "late_payments": 1,
             "days_late_total": 44, "late_interest": "180.82", "late_indemnities": "40.00",
             "payment_delay_days_average": "74.0", "paid_within_deadline_share": "0.000"},
        ]

    async def evidence(self, dossier: str) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as bundle:
            bundle.writestr("timeline.html", f"<h1>{dossier}</h1>")
        return buffer.getvalue()
