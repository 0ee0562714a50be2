"""Demo phase 5, archives: closed dossiers transferred to the archives service, which replies.

The archiving core closes a dossier on its closing event (an act that became executory, a
contract paid in full), asks the worker for the SHA-512 digests of the dossier's documents
(``DocumentsDigestRequested``, answered by the worker's digests step) and then requests the
SEDA 2.2 ArchiveTransfer built from the dossier type's archiving profile. The bus writes each
transfer with :func:`adapters.seda.from_pivot`; the archives service (SAE) answers with a native
SEDA ArchiveTransferReply handed to the ingress, and the dossier is archived.

The demo's worker runs with the archiving profile bank (:mod:`bus.demo._profiles`): each
transfer goes to the archive service the directory assigns to the commune and is sent only if it
follows the profile version that service approved. The demo checks each transfer it received
against the bank as it reads it (the approved version, its RelaxNG) and says which version and
which service; a dossier the worker refused (PROFILE_REFUSED, NO_ARCHIVE_SERVICE) is reported with
its reason. A dossier whose digests do not come (a worker without the digests step) is reported
as waiting for its digests after a deadline, rather than holding the demo.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from adapters import seda
from adapters.seda import validate_transfer
from bus._errors import ProfileRefusedError, UnapprovedProfileError
from bus._profiles import ProfileBank
from bus._wire import Received

from ._profiles import read_bank
from ._stage import Stage

__all__ = ["archives_phase"]

#: How long a dossier's transfer may take once its digests were asked for, and before they were (on a loaded
#: 2-core CI machine, a demo played a second time on the same broker once needed more than the 120 s it had).
DIGESTS_TIMEOUT = 180.0
TRANSFER_TIMEOUT = 240.0
#: States of a dossier whose transfer the worker refused (profile bank, directory): no transfer will come.
_REFUSED = ("PROFILE_REFUSED", "NO_ARCHIVE_SERVICE")


def _file_name(identifier: str) -> str:
    return "seda-" + identifier.replace(":", "_").replace("/", "_") + ".xml"


async def archives_phase(stage: Stage, dossiers: list[str], console: Console) -> dict[str, Any]:
    """Follow ``dossiers`` (act and contract subjects) to the archive; returns the phase's figures."""
    console.rule("[bold]5. Archives: closed dossiers transferred (SEDA 2.2), the archives service replies")
    watcher = stage.watcher

    def transfer_of(dossier: str) -> Received | None:
        found = watcher.of("ArchiveTransferRequested",
                           where=lambda e: e.data["message_identifier"].startswith(dossier + "/transfer-"))
        return found[-1] if found else None

    def closed(dossier: str) -> list[Received]:
        return watcher.of("ArchiveStateChanged", subject=dossier)

    def refused(dossier: str) -> Received | None:
        states = closed(dossier)
        return states[-1] if states and states[-1].data["state"] in _REFUSED else None

    await watcher.expect(lambda: all(closed(d) for d in dossiers), "the closing of every dossier")
    transfers: dict[str, Received] = {}
    waiting: dict[str, str] = {}
    refusals: set[str] = set()  # the worker refused their transfer (profile bank, directory)
    for dossier in dossiers:
        asked = watcher.of("DocumentsDigestRequested", subject=dossier)
        transfer = await watcher.until(lambda d=dossier: transfer_of(d) or refused(d),
                                       timeout=DIGESTS_TIMEOUT if asked else TRANSFER_TIMEOUT)
        if transfer is not None and transfer.type.endswith("ArchiveStateChanged"):
            waiting[dossier] = f"{transfer.data['state']}: {transfer.data['reason']}"
            refusals.add(dossier)
            continue
        if transfer is None:
            states = closed(dossier)
            due = states[-1].data.get("retention_start") if states else None
            waiting[dossier] = ("waiting for the digests of its documents (DocumentsDigestRequested not answered: "
                                "is the worker's digests step installed?)" if asked else
                                f"closed; its transfer is due from {due} (the worker's timers had not reached it)")
            continue
        transfers[dossier] = transfer
        stage.write(_file_name(transfer.data["message_identifier"]), seda.from_pivot(transfer.data))
    replies = []
    for dossier, transfer in transfers.items():
        t = transfer.data
        now = stage.ctx.clock()
        reply = {"seda_version": t["seda_version"], "message_identifier": f"ATR-{stage.run}-{len(replies) + 1}",
                 "date": now, "comment": "Versement accepté et pris en charge", "archival_agreement": t["archival_agreement"],
                 "reply_code": "OK", "message_request_identifier": t["message_identifier"], "grant_date": now,
                 "archival_agency_identifier": t["archival_agency_identifier"],
                 "transferring_agency_identifier": t["transferring_agency_identifier"]}
        path = stage.scratch() / ("reply-" + _file_name(t["message_identifier"]))
        path.write_bytes(seda.from_pivot(reply, kind="ArchiveTransferReply"))
        replies.append(await stage.submit("archives", path, declared_format="seda"))

    def archived(dossier: str) -> Received | None:
        found = [e for e in closed(dossier) if e.data["state"] in ("ARCHIVED", "REOPENED")]
        return found[-1] if found else None

    await watcher.expect(lambda: all(archived(d) for d in transfers), "the archives service's replies to be applied")
    bank = await read_bank(stage)
    followed = {d: _approved_profile(bank, t) for d, t in transfers.items()}
    table = Table("dossier", "type", "closed on", "retention from", "transfer", "objects", "profile (approved)",
                  "archive service", "state", "reply", title="dossiers closed and transferred to the archives")
    for dossier in dossiers:
        states = closed(dossier)
        last = states[-1].data if states else {}
        transfer = transfers.get(dossier)
        table.add_row(dossier, last.get("dossier_type", "-"), str(last.get("closing_date") or "-"),
                      str(last.get("retention_start") or "-"),
                      transfer.data["message_identifier"] if transfer else "-",
                      str(len(transfer.data["binary_data_objects"])) if transfer else "-",
                      escape(followed[dossier][0]) if dossier in followed else "-",
                      transfer.data["archival_agency_identifier"] if transfer else "-",
                      last.get("state", "-") if dossier in transfers else escape(waiting.get(dossier, "-")),
                      str(last.get("reply_code") or "-"))
    console.print(table)
    for dossier, why in waiting.items():
        console.print(f"[yellow]{escape(dossier)}[/]: {escape(why)}")
    return {"dossiers closed": sum(1 for d in dossiers if closed(d)), "archive transfers": len(transfers),
            "transfers validated against an approved profile": sum(1 for _, valid in followed.values() if valid),
            "archive replies": sum(1 for d in transfers if archived(d)),
            "archived": sum(1 for d in transfers if (a := archived(d)) and a.data["state"] == "ARCHIVED"),
            "transfers refused by the worker": len(refusals),
            "transfers waiting for digests": sum(1 for d in waiting.keys() - refusals
                                                 if watcher.of("DocumentsDigestRequested", subject=d)),
            "transfers not requested": sum(1 for d in waiting.keys() - refusals
                                           if not watcher.of("DocumentsDigestRequested", subject=d))}


def _approved_profile(bank: ProfileBank, transfer: Received) -> tuple[str, bool]:
    """``<profile> v<version>`` the transfer follows, as approved by the service it is addressed to, and True;
    or why not, and False."""
    t = transfer.data
    try:
        banked = bank.approved(t["archival_profile"], t["archival_agency_identifier"])
        validate_transfer(banked.grammar, seda.from_pivot(t), profile=f"{banked.profile_id} v{banked.version}",
                          name=t["message_identifier"])
    except (UnapprovedProfileError, ProfileRefusedError) as err:
        return f"refusé : {err.message}", False
    return f"{banked.profile_id} v{banked.version}", True
