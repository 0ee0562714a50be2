"""``bus acl plan|apply``: the ACLs of every principal, from the key directory and the topic table.

The policy is :data:`bus._acl.POLICY` (one table, described in the README). Run both as the
operator (``BUS_SSL_CERTFILE`` of ``bus pki issue operator``): reading and changing ACLs is a
super user's right. ``plan`` prints ``+`` for what the broker lacks and ``-`` for what it holds
beyond the policy (within the bus's topics and groups only); ``apply`` makes it so. With
``--quotas`` both also compare and set each tenant's produce and fetch quotas
(:mod:`bus._quotas`, through Kafka's ``kafka-configs``: a JVM per call, hence opt-in).
"""

from __future__ import annotations

import typer

from bus._acl import AclPlan, bus_directory, kind_of, plan, tenants
from bus._admin import create_acls, delete_acls, describe_acls
from bus._quotas import alter_quotas, describe_quotas, quota_plan, wanted_quotas
from bus._settings import BusSettings

from ._common import console, run, settings

__all__ = ["register"]


def _plan(s: BusSettings, quotas: bool) -> tuple[AclPlan, dict[str, dict[str, int]]]:
    live = describe_acls(s)  # first: refused at once unless run as the operator
    directory = run(bus_directory(s))
    for siren in tenants(directory):
        console.print(f"User:{siren}: {kind_of(siren, directory)}", style="dim")
    changes = quota_plan(wanted_quotas(directory), describe_quotas(s)) if quotas else {}
    return plan(s, directory, live), changes


def _quota_line(user: str, quotas: dict[str, int]) -> str:
    return f"~ User:{user:<11} quota {' '.join(f'{k}={v}' for k, v in sorted(quotas.items()))}"


_QUOTAS = typer.Option(False, "--quotas", help="also each tenant's produce/fetch quotas (runs kafka-configs: Java)")


def register(app: typer.Typer) -> None:
    acl = typer.Typer(help="ACLs as code: each principal's rights from the key directory and the topic table.",
                      no_args_is_help=True)
    app.add_typer(acl, name="acl")

    @acl.command("plan")
    def plan_cmd(quotas: bool = _QUOTAS) -> None:
        """Print the difference between the policy and the broker's ACLs (nothing when they agree)."""
        s = settings()
        difference, changes = _plan(s, quotas)
        for line in [*difference.lines(), *(_quota_line(u, q) for u, q in sorted(changes.items()))]:
            typer.echo(line)
        if not difference and not changes:
            console.print("no difference: the broker enforces the policy", style="dim")

    @acl.command("apply")
    def apply_cmd(quotas: bool = _QUOTAS) -> None:
        """Create the missing ACLs and delete those beyond the policy (idempotent)."""
        s = settings()
        difference, changes = _plan(s, quotas)
        create_acls(s, difference.add)
        delete_acls(s, difference.remove)
        for user, wanted in sorted(changes.items()):
            alter_quotas(s, user, wanted)
        console.print(f"{len(difference.add)} ACLs created, {len(difference.remove)} deleted"
                      + (f", quotas of {len(changes)} tenants set" if quotas else ""))
