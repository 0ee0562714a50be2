"""The bus's web services (console, gateway) over HTTPS, verifying the bus's client certificates.

:class:`ServerTls` holds a service's TLS files (its ``bus pki issue-server`` certificate and key,
the site CA that client certificates must chain to); each service reads them from its own
environment prefix (``BUS_CONSOLE_TLS_*``, ``BUS_GATEWAY_TLS_*``). uvicorn verifies the client's
certificate against the site CA during the handshake (required, or optional when the service has
another way in) but does not pass it to the application: :class:`ClientCertificateProtocol`
(uvicorn's h11 protocol, one instance per connection) adds the verified certificate to every request
of the connection as the ASGI TLS extension (``scope["extensions"]["tls"]["client_cert_chain"]``,
PEM), and :func:`certificate_principal` reads the principal back from a request's scope.

Importing this module loads neither uvicorn nor ``cryptography``: the console's package promises so.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from ._errors import ConfigurationError

__all__ = ["ServerTls", "certificate_principal", "loaded"]


class ServerTls(BaseSettings):
    """A web service's TLS files; subclasses name the environment prefix (``BUS_<SERVICE>_``)."""

    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    tls_key_password: SecretStr | None = None
    tls_cafile: Path | None = None

    @property
    def certificates(self) -> bool:
        """Whether the service serves HTTPS and verifies client certificates of the site CA."""
        return self.tls_cafile is not None and self.tls_certfile is not None

    def check(self, prefix: str) -> None:
        """Refuse half a configuration: a certificate without the CA (or the reverse) would serve plain HTTP."""
        if not self.certificates and (self.tls_certfile or self.tls_keyfile or self.tls_cafile):
            raise ConfigurationError(f"{prefix}TLS_CERTFILE and {prefix}TLS_CAFILE go together",
                                     hint="set both (and _KEYFILE) to the files of `bus pki issue-server` and the "
                                          "site CA (STATE_DIR/pki/ca.crt), or neither")

    def server_config(self, app: Any, host: str, port: int, *, require_certificate: bool, **options: Any) -> Any:
        """uvicorn's configuration of ``app``: HTTPS verifying client certificates when the files are set.

        ``require_certificate``: refuse the handshake without one (else a connection without a
        certificate gets through, and the service asks for its other credentials).
        """
        import uvicorn

        if not self.certificates:
            return uvicorn.Config(app, host=host, port=port, log_level="warning", **options)
        password = self.tls_key_password.get_secret_value() if self.tls_key_password else None
        return uvicorn.Config(
            app, host=host, port=port, log_level="warning", http=_client_certificate_protocol(),
            ssl_certfile=str(self.tls_certfile), ssl_keyfile=str(self.tls_keyfile or self.tls_certfile),
            ssl_keyfile_password=password, ssl_ca_certs=str(self.tls_cafile),
            ssl_cert_reqs=ssl.CERT_REQUIRED if require_certificate else ssl.CERT_OPTIONAL, **options)


def loaded(config: Any, prefix: str) -> Any:
    """``config`` (uvicorn's) with its TLS files read now: a bad one is one line, not uvicorn's trace."""
    try:
        config.load()
    except (OSError, ValueError) as error:  # unreadable certificate or key, wrong key password (ssl.SSLError)
        raise ConfigurationError(f"the TLS files cannot be loaded: {error}",
                                 hint=f"check {prefix}TLS_CERTFILE, _KEYFILE, _KEY_PASSWORD and _CAFILE "
                                      "(bus pki issue-server)") from error
    return config


def _with_certificate(app: Any, pem: str, name: str) -> Any:
    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            tls = {"client_cert_chain": [pem], "client_cert_name": name}
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), "tls": tls}}
        await app(scope, receive, send)

    return asgi


@functools.cache  # one class, made on first use: uvicorn is imported only by a service that serves
def _client_certificate_protocol() -> type:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class ClientCertificateProtocol(H11Protocol):  # type: ignore[misc]
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
                self.app = _with_certificate(self.app, ssl.DER_cert_to_PEM_cert(der),
                                             certificate.subject.rfc4514_string())

    return ClientCertificateProtocol


def certificate_principal(scope: dict[str, Any]) -> tuple[str, str | None] | None:
    """The verified client certificate's name (its CN) and kind; ``None`` without a certificate.

    The kind is ``administration`` (a SIREN) or ``service`` for a subject ``bus pki issue`` writes
    (``CN=<name>,OU=<kind>,O=dcant-bus``), ``None`` for any other (a server's, the broker's).
    """
    chain = ((scope.get("extensions") or {}).get("tls") or {}).get("client_cert_chain")
    if not chain:
        return None
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from ._pki import ORGANISATION

    subject = x509.load_pem_x509_certificate(chain[0].encode()).subject

    def value(oid: x509.ObjectIdentifier) -> str:
        found = subject.get_attributes_for_oid(oid)
        return str(found[0].value) if len(found) == 1 else ""

    kind = value(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if value(NameOID.ORGANIZATION_NAME) != ORGANISATION or kind not in ("service", "administration"):
        return value(NameOID.COMMON_NAME), None
    return value(NameOID.COMMON_NAME), kind
