"""``bus console``: the web console of auditors and operators (see :mod:`bus.console._app`).

Needs the ``console`` extra (Starlette, Jinja2, uvicorn, pygal, joserfc, httpx). Importing this
package loads none of them; :func:`create_app` and :class:`BusData` do.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from bus._https import ServerTls

__all__ = ["ConsoleSettings", "build_app"]


class ConsoleSettings(ServerTls):
    """The console's logins and session secret (``BUS_CONSOLE_`` variables).

    Two ways in, either or both: an OpenID Connect provider (``oidc_issuer``), and the bus's
    certificates: with ``tls_certfile``/``tls_keyfile`` the console serves HTTPS and verifies client
    certificates against ``tls_cafile`` (the site CA, ``STATE_DIR/pki/ca.crt``); a certificate whose
    name (its CN: a service or a SIREN) is in ``operators`` makes an operator, in ``auditors`` an
    auditor, any other is refused. Names are comma-separated in the environment.
    """

    model_config = SettingsConfigDict(env_prefix="BUS_CONSOLE_", frozen=True)

    oidc_issuer: str | None = None
    oidc_client_id: str = "bus-console"
    oidc_client_secret: SecretStr = SecretStr("")
    session_secret: SecretStr
    public_url: str = "http://127.0.0.1:8080"
    secure_cookies: bool = False
    operators: Annotated[frozenset[str], NoDecode] = frozenset({"operator"})
    auditors: Annotated[frozenset[str], NoDecode] = frozenset()

    @field_validator("operators", "auditors", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return frozenset(n.strip() for n in value.split(",") if n.strip()) if isinstance(value, str) else value


def build_app(bus_settings: Any, console: ConsoleSettings, data: Any = None) -> Any:
    """The console app on the broker of ``bus_settings`` (or on ``data``, a ``ConsoleData``)."""
    from ._app import create_app
    from ._auth import CertificateRoles, OidcClient
    from ._data import BusData

    oidc = None if console.oidc_issuer is None else OidcClient(
        console.oidc_issuer, console.oidc_client_id, console.oidc_client_secret.get_secret_value(),
        f"{console.public_url.rstrip('/')}/connexion/retour")
    roles = CertificateRoles(console.operators, console.auditors) if console.certificates else None
    return create_app(data if data is not None else BusData(bus_settings), oidc, certificates=roles,
                      session_secret=console.session_secret.get_secret_value(), secure_cookies=console.secure_cookies)

