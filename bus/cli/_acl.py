"""``bus acl plan|apply``: the ACLs of every principal, from the key directory and the topic table.

The policy is :data:`bus._acl.POLICY` (one table, described in the README). Run both as the
operator (``BUS_SSL_CERTFILE`` of ``bus pki issue operator``): reading and changing ACLs is a
super user's right. ``plan`` prints ``+`` for what the broker lacks and ``-`` for what it holds
beyond the policy (within the bus's topics and groups only); ``apply`` makes it so.
"""

from __future__ import annotations

import typer

from bus._acl import AclPlan, bus_directory, kind_of, plan, tenants
from bus._admin import create_acls, delete_acls, describe_acls
from bus._settings import BusSettings

from ._common import console, run, settings

__all__ = ["register"]


def _plan(s: BusSettings) -> AclPlan:
    directory = run(bus_directory(s))
    for siren in tenants(directory):
        console.print(f"User:{siren}: {kind_of(siren, directory)}", style="dim")
    return plan(s, directory, describe_acls(s))


def register(app: typer.Typer) -> None:
    acl = typer.Typer(help="ACLs as code: each principal's rights from the key directory and the topic table.",
                      no_args_is_help=True)
    app.add_typer(acl, name="acl")

    @acl.command("plan")
    def plan_cmd() -> None:
        """Print the difference between the policy and the broker's ACLs (nothing when they agree)."""
        s = settings()
        difference = _plan(s)
        for line in difference.lines():
            typer.echo(line)
        if not difference:
            console.print("no difference: the broker enforces the policy", style="dim")

    @acl.command("apply")
    def apply_cmd() -> None:
        """Create the missing ACLs and delete those beyond the policy (idempotent)."""
        s = settings()
        difference = _plan(s)
        create_acls(s, difference.add)
        delete_acls(s, difference.remove)
        console.print(f"{len(difference.add)} ACLs created, {len(difference.remove)} deleted")
