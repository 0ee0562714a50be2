"""``bus console``: the web console of auditors and operators (see :mod:`bus.console._app`).

Needs the ``console`` extra (Starlette, Jinja2, uvicorn, pygal, joserfc, httpx). Importing this
package loads none of them; :func:`create_app` and :class:`BusData` do.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConsoleSettings", "build_app"]


class ConsoleSettings(BaseSettings):
    """The console's OpenID Connect client and session secret (``BUS_CONSOLE_`` variables)."""

    model_config = SettingsConfigDict(env_prefix="BUS_CONSOLE_", frozen=True)

    oidc_issuer: str
    oidc_client_id: str = "bus-console"
    oidc_client_secret: SecretStr = SecretStr("")
    session_secret: SecretStr
    public_url: str = "http://127.0.0.1:8080"
    secure_cookies: bool = False


def build_app(bus_settings: Any, console: ConsoleSettings, data: Any = None) -> Any:
    """The console app on the broker of ``bus_settings`` (or on ``data``, a ``ConsoleData``)."""
    from ._app import create_app
    from ._auth import OidcClient
    from ._data import BusData

    oidc = OidcClient(console.oidc_issuer, console.oidc_client_id, console.oidc_client_secret.get_secret_value(),
                      f"{console.public_url.rstrip('/')}/connexion/retour")
    return create_app(data if data is not None else BusData(bus_settings), oidc,
                      session_secret=console.session_secret.get_secret_value(), secure_cookies=console.secure_cookies)
