"""A contract modification on the real broker: ``bus worker``'s accounting chain checks the invoices
that follow a ContractModified against the modified ceiling.

The commune publishes the contract's DECP data, then the ContractModified the DECP adapter reads
from its ``modifications`` entry (amount 10 000 → 15 000 € HT); the supplier's invoices are then
checked by the worker: 12 000 (over the old ceiling, under the new) is accepted, 3 000.01 more is
rejected. The bus, worker and tail are those of :mod:`tests.integration.test_processors_e2e`.
"""

from __future__ import annotations

import datetime as dt

import pytest

from adapters import decp as decp_adapter
from bus import Event
from bus.client import Publisher
from tests.integration.test_processors_e2e import (  # noqa: F401 (bus and worker are fixtures)
    ACC,
    COMMUNE_SIREN,
    SUPPLIER_SIREN,
    Bus,
    Tail,
    bus,
    contracts_known,
    eventually,
    worker,
)
from tests.unit.processors.accounting_factories import decp, invoice

pytestmark = pytest.mark.asyncio(loop_scope="session")


def modification(contract_data: Event, amount: str) -> Event:
    """The ContractModified of a DECP modification entry of ``contract_data`` setting its amount."""
    entry = {"id": 1, "duration_months": 18, "amount": amount, "holders": None,
             "notification_date": dt.date(2026, 2, 2), "publication_date": dt.date(2026, 2, 4),
             "signature_date": None, "global_value": None}
    (pivot,) = decp_adapter.modification_pivots({**contract_data.data, "modifications": [entry]})
    return Event(type=pivot.type, subject=pivot.subject, schema=pivot.schema, data=pivot.data)


async def modification_known(bus: Bus, contract: str, alive) -> None:  # type: ignore[no-untyped-def]
    """Wait until the accounting chain holds the modification (it comes on another topic than invoices)."""
    async def check() -> bool:
        states = await bus.states("accounting-chain")
        return bool(((states.get(f"contract:{contract}") or {}).get("contract") or {}).get("modifications"))

    await eventually(check, f"the modification of {contract} in the accounting chain's state", alive=alive)


def outcomes(events: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {e.data["invoice_number"]: e.data["outcome"] for e in events if e.type == ACC + "InvoiceChecked"}


async def test_invoices_after_a_modification_meet_the_modified_ceiling(bus, worker):  # noqa: F811
    contract = "2026M-E2E-MOD"
    worker.start()
    commune, supplier = bus.context(COMMUNE_SIREN, "finances"), bus.context(SUPPLIER_SIREN, "facturation")
    data = decp(contract, amount="10000.00", subcontractors=())
    async with Publisher(bus.settings, commune.wire()) as as_commune, \
            Publisher(bus.settings, supplier.wire()) as as_supplier, \
            Tail(bus, ["accounting"], alive=worker.assert_alive) as tail:
        await as_commune.publish(data)
        await contracts_known(bus, [contract], worker.assert_alive)
        await as_commune.publish(modification(data, "15000.00"))
        await modification_known(bus, contract, worker.assert_alive)
        await as_supplier.publish(invoice("F-MOD-1", contract=contract, excl="12000.00", vat="2400.00"))
        await tail.until(lambda events: "F-MOD-1" in outcomes(events), "the first invoice's check")
        await as_supplier.publish(invoice("F-MOD-2", contract=contract, excl="3000.01", vat="600.00"))
        await tail.until(lambda events: "F-MOD-2" in outcomes(events), "the second invoice's check")
        checks = {e.data["invoice_number"]: e.data for e in tail.of(ACC + "InvoiceChecked")}
    assert outcomes(tail.events) == {"F-MOD-1": "accepted", "F-MOD-2": "rejected"}
    assert checks["F-MOD-1"]["contract_ceiling"] == "15000.00"
    assert [f["rule"] for f in checks["F-MOD-2"]["findings"]] == ["CONTRACT-CEILING"]
    worker.assert_alive()
    assert worker.stop() == 0, worker.log()[-4000:]
