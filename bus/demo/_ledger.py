"""The demo's last step: a ledger checkpoint of every family partition and reference table.

After it, ``bus verify`` holds every record the demo left on the bus against signed Merkle
checkpoints: the family topics verify clean, and the one thing it reports is what the demo
did on purpose, the forged company record of phase 1 (a payload byte changed after signing).
The checkpoints are signed with the bus operator's ``LEDGER`` key, created on the first run; on
the secure broker the ledger connects as its own principal, ``User:ledger``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from bus._errors import ConfigurationError
from bus._keys import SigningKey, generate_key
from bus._runtime import BusContext
from bus._settings import BusSettings
from bus._tls import client_principal
from bus._wire import utc_now
from bus.ledger._processor import LedgerProcessor, ledger_key

from ._data import ADMINISTRATIONS
from ._keys import KEYS_VALID_FROM

__all__ = ["checkpoint_phase"]


async def demo_ledger_key(ctx: BusContext) -> SigningKey:
    """The bus operator's LEDGER key valid now (created and stored when missing), published."""
    admin = ADMINISTRATIONS["bus"]
    try:
        key = ledger_key(ctx.keystore, admin["siren"], utc_now())
    except ConfigurationError:
        key = generate_key(admin["siren"], f"{admin['name']} (ledger)", valid_from=KEYS_VALID_FROM,
                           purpose="LEDGER")
        ctx.keystore.save(key)
    await ctx.publish_keys([key])
    return key


async def checkpoint_phase(ctx: BusContext, forged: str, console: Console,
                           settings: BusSettings | None = None) -> dict[str, Any]:
    """Checkpoint every log now; ``forged`` names the record phase 1 forged (``topic[p]@offset``).

    ``settings``: the ledger's own connection (on the secure broker ``User:ledger``, which may
    read the logs it checkpoints and write only the checkpoint topic); default the demo's.
    """
    console.rule("[bold]6. Audit: a ledger checkpoint of everything on the bus")
    key = await demo_ledger_key(ctx)
    settings = settings or ctx.settings
    principal = client_principal(settings)
    if principal:
        console.print(f"the ledger connects as {principal}")
    ledger = LedgerProcessor(settings, key, ctx.directory)
    await ledger.resume()
    checkpoints = await ledger.catch_up()
    logs = sum(1 for cp in checkpoints if not cp.log_id.endswith("/table"))
    tables = len(checkpoints) - logs
    console.print(f"{logs} partition checkpoint(s) and {tables} table snapshot(s) signed by {key.key_id}")
    console.print("`bus verify` now finds the family topics clean; its one finding of this run is the "
                  f"company record forged on purpose in phase 1, {forged} (SignatureError)")
    return {"ledger checkpoints": len(checkpoints)}
