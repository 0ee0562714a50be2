"""ACLs as code: the rights of every principal, computed from the key directory and the topic table.

The directory says who takes part (a SIREN with a registered key; with a trust anchor, only
keys the registration authority approved and has not revoked); it does not record rights. The rights are this
module's one table, :data:`POLICY`, keyed by the kind of principal:

    principal          kind          writes                                   reads
    User:<SIREN>       public body   the five family topics, ingress.raw,     reference.*, catalog,
                                     notifications, reference.attestations,   barometer, notifications
                                     reference.administrations,
                                     reference.profiles (archiving profiles
                                     and archive services' approvals)
    User:<SIREN>       supplier      procurement, invoices, ingress.raw,      reference.*, catalog,
                                     reference.administrations                barometer
    User:worker        service       the family topics, notifications,        the family topics, ingress.raw,
                                     barometer, deadletter, catalog, its      reference.*, catalog, barometer,
                                     state topics                             notifications
    User:ledger        service       ledger.checkpoints                       the family topics, reference.*,
                                                                              catalog, ledger.checkpoints
    User:operator      super user    (everything: ``super.users`` of the broker, no ACL needed)

The barometer is open data (figures per administration, flow and month): every tenant reads it.

A SIREN is a public body when an approval records a SIRENE legal category 7xxx, or, without
one (no approval, or one made without the SIRENE check), when it starts with 1 or 2 (INSEE
numbers the State and local authorities so). Tenants
write their own key registrations (the RA approves them; a forged approval fails verification
whatever its writer). Family topics are shared by every administration, so a tenant that could
read one would read everyone's dossiers: tenants read only reference data and notifications.
Every principal may describe the bus's topics (names and configurations, no data) so that
:func:`bus.ensure_topics` works for it. Each principal's consumer groups are those whose name
starts with ``<prefix>dcant.<name>.`` (a prefixed ACL); the worker's are faust's
(``<prefix><consumer_group>``), whose state topics it also creates.

:func:`plan` compares this with the live broker, within the bus's namespace (topics and groups
named ``<prefix>dcant…``): ACLs elsewhere are not the bus's and are left alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Literal

from ._admin import Acl, Operation
from ._authority import RA_SIREN
from ._keys import KeyDirectory
from ._settings import BusSettings
from ._topics import FAMILIES, topic_map

__all__ = ["AclPlan", "POLICY", "Rights", "bus_directory", "kind_of", "plan", "tenants", "wanted_acls"]

Kind = Literal["public body", "supplier", "worker", "ledger"]
_REFERENCE = ("reference.companies", "reference.attestations", "reference.administrations", "reference.profiles",
              "catalog")


@dataclasses.dataclass(frozen=True)
class Rights:
    """The logical topics (keys of :func:`bus.topic_map`) a kind of principal may write and read."""

    writes: tuple[str, ...]
    reads: tuple[str, ...]


#: The one table of rights (see the module docstring).
POLICY: dict[Kind, Rights] = {
    "public body": Rights(
        writes=(*FAMILIES, "ingress.raw", "notifications", "reference.attestations", "reference.administrations",
                "reference.profiles"),
        reads=(*_REFERENCE, "barometer", "notifications")),
    "supplier": Rights(writes=("procurement", "invoices", "ingress.raw", "reference.administrations"),
                       reads=(*_REFERENCE, "barometer")),
    "worker": Rights(writes=(*FAMILIES, "notifications", "barometer", "deadletter", "catalog",
                             "reference.administrations"),
                     reads=(*FAMILIES, "ingress.raw", *_REFERENCE, "barometer", "notifications")),
    # The ledger checkpoints the family topics and the directory, and snapshots the compacted reference tables.
    "ledger": Rights(writes=("ledger.checkpoints",), reads=(*FAMILIES, *_REFERENCE, "ledger.checkpoints")),
}
SERVICES: dict[str, Kind] = {"worker": "worker", "ledger": "ledger"}


@dataclasses.dataclass(frozen=True)
class AclPlan:
    """What the broker lacks (``add``) and holds beyond the policy (``remove``), within the bus's namespace."""

    add: tuple[Acl, ...]
    remove: tuple[Acl, ...]

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)

    def lines(self) -> list[str]:
        """``+``/``-`` lines, one per ACL, sorted by principal then resource."""
        return ([f"+ {_show(a)}" for a in self.add] + [f"- {_show(a)}" for a in self.remove])


async def bus_directory(settings: BusSettings) -> KeyDirectory:
    """The key directory as the bus holds it (the directory topic folded, with the configured anchor).

    Not :meth:`BusContext.connect`'s: that one also holds the local key store's keys, which are
    nobody's rights until published.
    """
    from ._catalog import default_catalog
    from ._runtime import BusContext, key_store, trust_of

    ctx = BusContext(settings, default_catalog(), KeyDirectory(trust=trust_of(settings)), key_store(settings), None)
    await ctx.refresh()
    return ctx.directory


def kind_of(siren: str, directory: KeyDirectory) -> Kind:
    """``public body`` or ``supplier`` (see the module docstring)."""
    categories = [a.legal_category for key in directory.for_siren(siren)
                  for a in directory.trust.approvals.get(key.key_id, [])
                  if a.legal_category and a.legal_category.isdigit()]  # not "unchecked" (no SIRENE check)
    if categories:
        return "public body" if any(c.startswith("7") for c in categories) else "supplier"
    return "public body" if siren[:1] in ("1", "2") else "supplier"


def tenants(directory: KeyDirectory, at: dt.datetime | None = None) -> list[str]:
    """The SIRENs that take part at ``at`` (default now): a registered key (with an anchor: an approved
    one not revoked by then). A SIREN whose last approved key is revoked loses its rights on the wire."""
    trust = directory.trust
    now = at or dt.datetime.now(dt.UTC)

    def takes_part(key_id: str) -> bool:
        return not trust.enforced or (bool(trust.approvals.get(key_id))
                                      and not any(r.revoked_from <= now for r in trust.revocations.get(key_id, ())))

    return sorted({k.siren for k in directory if k.siren != RA_SIREN and takes_part(k.key_id)})


def wanted_acls(settings: BusSettings, directory: KeyDirectory) -> list[Acl]:
    """Every ACL the policy gives the directory's tenants and the bus's services, sorted."""
    names = {key: spec.name for key, spec in topic_map(settings).items()}
    namespace = f"{settings.topic_prefix}dcant."
    principals: list[tuple[str, Kind]] = [(s, kind_of(s, directory)) for s in tenants(directory)]
    principals += list(SERVICES.items())
    acls: set[Acl] = set()
    for name, kind in principals:
        who, rights = f"User:{name}", POLICY[kind]
        acls |= _topic_acls(who, "WRITE", (names[t] for t in rights.writes))
        acls |= _topic_acls(who, "READ", (names[t] for t in rights.reads))
        acls |= {Acl(who, "DESCRIBE_CONFIGS", "topic", namespace, prefixed=True),
                 Acl(who, "DESCRIBE", "topic", namespace, prefixed=True),
                 Acl(who, "READ", "group", f"{namespace}{name}.", prefixed=True)}
    faust = f"{settings.topic_prefix}{settings.consumer_group}"  # the worker's group and state topics' prefix
    acls |= {Acl("User:worker", op, "topic", faust, prefixed=True) for op in ("CREATE", "READ", "WRITE")}
    acls.add(Acl("User:worker", "READ", "group", faust, prefixed=True))
    return sorted(acls, key=_order)


def plan(settings: BusSettings, directory: KeyDirectory, live: Iterable[Acl]) -> AclPlan:
    """The difference between the policy and ``live`` (the broker's ACLs), within the bus's namespace."""
    wanted = set(wanted_acls(settings, directory))
    ours = {a for a in live if in_namespace(settings, a)}
    return AclPlan(tuple(sorted(wanted - ours, key=_order)), tuple(sorted(ours - wanted, key=_order)))


def in_namespace(settings: BusSettings, acl: Acl) -> bool:
    """Whether ``acl`` is on a topic or group of the bus (named ``<prefix>dcant…``)."""
    return acl.resource in ("topic", "group") and acl.name.startswith(f"{settings.topic_prefix}dcant")


def _topic_acls(who: str, operation: Operation, names: Iterable[str]) -> set[Acl]:
    return {Acl(who, operation, "topic", name) for name in names}


def _order(acl: Acl) -> tuple[str, str, str, str]:
    return (acl.principal, acl.resource, acl.name, acl.operation)


def _show(acl: Acl) -> str:
    name = f"{acl.name}*" if acl.prefixed else acl.name
    return f"{acl.principal:<16} {acl.operation:<16} {acl.resource} {name}"
