"""Serving the console with uvicorn: plain HTTP, or HTTPS verifying the bus's client certificates.

uvicorn verifies the client's certificate against the site CA during the handshake (optional
when an OpenID Connect provider is configured as well, required otherwise) but does not pass it
to the application. :class:`ClientCertificateProtocol` (uvicorn's h11 protocol, one instance per
connection) adds the verified certificate to every request of the connection as the ASGI TLS
extension (``scope["extensions"]["tls"]["client_cert_chain"]``, PEM); the app reads the
principal from it (:class:`bus.console._auth.CertificateRoles`).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import ConsoleSettings

__all__ = ["ClientCertificateProtocol", "server_config"]


def _with_certificate(app: Any, pem: str, name: str) -> Any:
    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            tls = {"client_cert_chain": [pem], "client_cert_name": name}
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": tls}}
        await app(scope, receive, send)

    return asgi


class ClientCertificateProtocol(H11Protocol):
    """uvicorn's h11 protocol, giving the app the client certificate the TLS handshake verified."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        tls = transport.get_extra_info("ssl_object")
        if tls is None or tls.context.verify_mode == ssl.CERT_NONE:
            return  # no TLS, or a certificate nobody verified: nothing to trust
        der = tls.getpeercert(binary_form=True)
        if der:
            from cryptography import x509

            certificate = x509.load_der_x509_certificate(der)
            self.app = _with_certificate(self.app, ssl.DER_cert_to_PEM_cert(der), certificate.subject.rfc4514_string())


def server_config(app: Any, console: ConsoleSettings, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration of ``app``: HTTPS verifying client certificates when ``console`` says so."""
    if not console.certificates:
        return uvicorn.Config(app, host=host, port=port, log_level="warning", **options)
    password = console.tls_key_password.get_secret_value() if console.tls_key_password else None
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", http=ClientCertificateProtocol,
        ssl_certfile=str(console.tls_certfile), ssl_keyfile=str(console.tls_keyfile or console.tls_certfile),
        ssl_keyfile_password=password, ssl_ca_certs=str(console.tls_cafile),
        ssl_cert_reqs=ssl.CERT_OPTIONAL if console.oidc_issuer else ssl.CERT_REQUIRED, **options)
