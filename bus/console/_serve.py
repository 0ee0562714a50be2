"""Serving the console with uvicorn: plain HTTP, or HTTPS verifying the bus's client certificates.

The TLS files and the protocol that hands the verified certificate to the app are shared with the
gateway (:mod:`bus._https`); the console requires a client certificate unless an OpenID Connect
provider is configured as well. The app reads the principal from the certificate
(:class:`bus.console._auth.CertificateRoles`).
"""

from __future__ import annotations

from typing import Any

from . import ConsoleSettings

__all__ = ["server_config"]


def server_config(app: Any, console: ConsoleSettings, host: str, port: int, **options: Any) -> Any:
    """uvicorn's configuration of ``app``: HTTPS verifying client certificates when ``console`` says so."""
    return console.server_config(app, host, port, require_certificate=console.oidc_issuer is None, **options)
