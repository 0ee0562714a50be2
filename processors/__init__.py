"""Stream processors: pure cores (state, event) -> (state, events) and the faust shell that runs them.

``CORES`` names every core ``bus worker`` runs by default, by the core's ``name``; each value is
a factory ``factory(settings) -> Processor | Binding`` (a :class:`bus.Binding`
pairs a core with the I/O step the shell performs for it). Factories import their module on
call, so importing :mod:`processors` loads neither faust nor any core.

The acts lifecycle derives each collectivity's pseudonymisation key from
``BUS_PSEUDONYMISATION_SECRET``; without it the worker refuses to start that core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["CORES", "ENTRY_POINT_GROUP", "all_cores"]

ENTRY_POINT_GROUP = "dcant_bus.processors"


def _ingress(settings: Any) -> Any:
    from .ingress import binding

    return binding(settings)


def _tell_us_once(settings: Any) -> Any:
    from .tell_us_once import TellUsOnce

    return TellUsOnce()


def _accounting(settings: Any) -> Any:
    from .accounting import AccountingChain

    return AccountingChain()


def _acts(settings: Any) -> Any:
    from bus import ConfigurationError

    from .acts import ActsLifecycle, derived_pseudonym_keys

    secret = settings.pseudonymisation_secret
    if secret is None:
        raise ConfigurationError("the acts lifecycle needs BUS_PSEUDONYMISATION_SECRET",
                                 hint="set it to 32 random bytes (e.g. `python -c 'import secrets; "
                                      "print(secrets.token_hex(32))'`), or run without --processor acts-lifecycle")
    return ActsLifecycle(derived_pseudonym_keys(secret.get_secret_value().encode()))


def _barometer(settings: Any) -> Any:
    from .barometer import Barometer

    return Barometer()


def _digests(settings: Any) -> Any:
    from .digests import binding

    return binding(settings)


def _register(settings: Any) -> Any:
    from .register import DeliberationsRegister

    return DeliberationsRegister()


def _archiving(settings: Any) -> Any:
    from .archiving import Archiving, bank_binding, packaged_profiles

    if settings.archive_profile_bank:
        return bank_binding(settings)
    return Archiving(packaged_profiles())


CORES: dict[str, Callable[[Any], Any]] = {
    "accounting-chain": _accounting,
    "acts-lifecycle": _acts,
    "archiving": _archiving,
    "barometer": _barometer,
    "deliberations-register": _register,
    "document-digests": _digests,
    "ingress": _ingress,
    "tell-us-once": _tell_us_once,
}


def all_cores() -> dict[str, Callable[[Any], Any]]:
    """:data:`CORES` and the cores installed packages declare under entry point group
    ``dcant_bus.processors`` (name → ``factory(settings)``, loaded only when the core runs).
    A plugin cannot replace a core of this package."""
    import importlib.metadata

    out = dict(CORES)
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if entry.name in CORES:
            from bus import ConfigurationError

            raise ConfigurationError(f"processor plugin {entry.name} = {entry.value} reuses a core's name",
                                     hint="a plugin adds a core under a name of its own")
        out[entry.name] = _plugin(entry)
    return out


def _plugin(entry: Any) -> Callable[[Any], Any]:
    def factory(settings: Any) -> Any:
        import inspect

        loaded = entry.load()
        return loaded() if inspect.isclass(loaded) else loaded(settings)

    return factory
