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

__all__ = ["CORES"]


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
    from .archiving import Archiving, packaged_profiles

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
