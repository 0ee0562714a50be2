"""``bus erase DOSSIER --basis TEXT``: erase a dossier's personal data by destroying its key (:mod:`bus._erasure`).

The order is what makes it safe to retry: the key store is checked first (an unknown or already
erased dossier changes nothing), then the signed ``PersonalDataErased`` event is published and
acknowledged on the dossier's family topic, and only then is the key destroyed. A broker that
does not answer leaves the key in place and the command fails: nothing was erased, nothing
claims it was. The event goes out signed with BUS_SOURCE's key, like any event of the bus.
"""

from __future__ import annotations

import typer

from bus._erasure import ERASURE_SCHEMA, ERASURE_TYPE
from bus._errors import BusError
from bus._runtime import BusContext, dossier_key_store
from bus._wire import Event, utc_now
from bus.client import Publisher

from ._common import console, run, settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("erase")
    def erase(
        dossier: str = typer.Argument(..., help="dossier id (ce_subject), e.g. act:213105554:DEL-2026-001"),
        basis: str = typer.Option(..., "--basis", help="legal basis or decision of the erasure (RGPD art. 17...)"),
    ) -> None:
        """Erase a dossier's personal data: destroy its key, after a signed erasure event on the bus."""
        s = settings()
        if not basis.strip():
            raise BusError("--basis is empty", hint="give the legal basis or decision of the erasure")
        store = dossier_key_store(s)
        family = store.family(dossier)  # UnknownDossierError / ErasedDossierError before any I/O

        async def go() -> str:
            ctx = await BusContext.connect(s, create_topics=False)
            if ctx.signer is None:
                raise BusError(f"no signing key for {s.source}",
                               hint="create one with `bus keys generate <SIREN>` and set BUS_SOURCE")
            entry = store.entry(dossier) or {}
            now = utc_now()
            event = Event(type=ERASURE_TYPE, subject=dossier, schema=ERASURE_SCHEMA, time=now, data={
                "dossier": dossier, "basis": basis, "erased_at": now, "key_id": entry.get("key_id", ""),
                "family": family})
            async with Publisher(s, ctx.wire()) as publisher:
                record = await publisher.publish(event, topic=family)
            erasure = store.destroy(dossier, basis=basis, at=now, event_id=dict(record.headers)["ce_id"].decode())
            console.print(f"{dossier}: personal data erased ({erasure.key_id} destroyed); "
                          f"erasure event {erasure.event_id} at {record.topic}[{record.partition}]@{record.offset}")
            return erasure.key_id

        run(go())
