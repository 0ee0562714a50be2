"""Transport security of every Kafka client of the bus: one TLS context, one way to explain a refusal.

:func:`client_ssl_context` builds the :class:`ssl.SSLContext` of ``BUS_SSL_CAFILE``,
``BUS_SSL_CERTFILE`` and ``BUS_SSL_KEYFILE`` (aiokafka's ``create_ssl_context``); the SDK, the
ledger and replay readers, the worker and the broker probe all take it from here.

A refused handshake reaches aiokafka's callers only as "Unable to bootstrap": the cause is logged
and dropped. :func:`explain_failure` therefore asks the broker again, on one connection of its own
(a TLS handshake and an ApiVersions request, then the SASL login), and turns what the broker said
into an :class:`AuthenticationError` naming the setting to check; the client's own certificate
is read only to word the message (expired, from another CA), never to decide in the broker's
place. :func:`refusal` finds the security error (authentication or authorisation) behind an
aiokafka error, so callers keep their own message for every other failure.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import socket
import ssl
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import errors as kafka_errors
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ._errors import AuthenticationError, AuthorizationError, BusError, ConfigurationError
from ._settings import BusSettings

T = TypeVar("T")

__all__ = ["SUPER_USERS", "broker_probe_context", "broker_security", "broker_security_properties", "client_principal",
           "client_ssl_context", "explain_failure", "refusal", "uses_tls"]

#: The secure broker's super users: the operator, and the nodes themselves (inter-broker, controller).
SUPER_USERS = ("User:operator", "User:broker")
_CERT_SETTINGS = "BUS_SSL_CERTFILE and BUS_SSL_KEYFILE"
_AUTHORIZATION = (kafka_errors.TopicAuthorizationFailedError, kafka_errors.GroupAuthorizationFailedError,
                  kafka_errors.ClusterAuthorizationFailedError, kafka_errors.TransactionalIdAuthorizationFailed)
_SASL = (kafka_errors.SaslAuthenticationFailed, kafka_errors.AuthenticationFailedError,
         kafka_errors.UnsupportedSaslMechanismError, kafka_errors.IllegalSaslStateError)


def uses_tls(settings: BusSettings) -> bool:
    return settings.security_protocol in ("SSL", "SASL_SSL")


def client_ssl_context(settings: BusSettings) -> ssl.SSLContext | None:
    """The TLS context of ``settings`` (None without TLS); a missing file or wrong key password is named."""
    if not uses_tls(settings):
        return None
    password = settings.ssl_key_password or settings.key_passphrase
    return _context(settings.ssl_cafile, settings.ssl_certfile, settings.ssl_keyfile,
                    password.get_secret_value() if password else None)


def _context(cafile: Path | None, certfile: Path | None, keyfile: Path | None,
             password: str | None) -> ssl.SSLContext:
    # one context per set of files as they are now: a re-issued certificate gets a new context
    stamps = tuple(_stamp(path) for path in (cafile, certfile, keyfile))
    return _cached_context(cafile, certfile, keyfile, password, stamps)


def _stamp(path: Path | None) -> int | None:
    try:
        return Path(path).stat().st_mtime_ns if path is not None else None
    except OSError:
        return None


@functools.lru_cache(maxsize=16)
def _cached_context(cafile: Path | None, certfile: Path | None, keyfile: Path | None, password: str | None,
                    stamps: tuple[int | None, ...]) -> ssl.SSLContext:
    from aiokafka.helpers import create_ssl_context

    for setting, path in (("BUS_SSL_CAFILE", cafile), ("BUS_SSL_CERTFILE", certfile), ("BUS_SSL_KEYFILE", keyfile)):
        if path is not None and not Path(path).is_file():
            raise ConfigurationError(f"{setting} names {path}, which is not a file",
                                     hint=f"point {setting} at the PEM file `bus pki issue` wrote")
    if keyfile is not None and certfile is None:
        raise ConfigurationError("BUS_SSL_KEYFILE is set without BUS_SSL_CERTFILE",
                                 hint="set both to the files `bus pki issue` wrote")
    try:
        # a callable password: OpenSSL never prompts on the terminal for an encrypted key
        return create_ssl_context(cafile=str(cafile) if cafile else None,
                                  certfile=str(certfile) if certfile else None,
                                  keyfile=str(keyfile) if keyfile else None,
                                  password=lambda: (password or "").encode())
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"cannot load the client certificate {certfile} with its key {keyfile} ({exc.reason or exc})",
            hint="check BUS_SSL_KEYFILE matches BUS_SSL_CERTFILE and BUS_SSL_KEY_PASSWORD (or BUS_KEY_PASSPHRASE)",
        ) from exc
    except OSError as exc:
        raise ConfigurationError(f"cannot read the TLS files: {exc.strerror or exc}",
                                 hint="check BUS_SSL_CAFILE, BUS_SSL_CERTFILE and BUS_SSL_KEYFILE") from exc


def client_principal(settings: BusSettings) -> str | None:
    """The principal the broker will see: ``User:<CN of the certificate>`` or ``User:<SASL user>``."""
    if settings.security_protocol.startswith("SASL"):
        return f"User:{settings.sasl_username}" if settings.sasl_username else None
    if settings.security_protocol == "SSL" and settings.ssl_certfile and Path(settings.ssl_certfile).is_file():
        cert = x509.load_pem_x509_certificate(Path(settings.ssl_certfile).read_bytes())
        names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return f"User:{names[0].value}" if names else None
    return None


def refusal(exc: BaseException, settings: BusSettings, *, action: str, topic: str | None = None,
            group: str | None = None) -> BusError | None:
    """The security error behind an aiokafka failure while doing ``action``; None when it is not one.

    ``action`` completes "the broker did not allow <principal> to …" (e.g. "produce to dcant.invoices").
    """
    if isinstance(exc, _AUTHORIZATION):
        principal = client_principal(settings) or "this client"
        return AuthorizationError(f"the broker did not allow {principal} to {action} ({type(exc).__name__})",
                                  principal=principal, topic=topic, group=group)
    if isinstance(exc, _SASL):
        return _sasl_refused(settings, exc)
    if settings.security_protocol != "PLAINTEXT" and isinstance(exc, kafka_errors.KafkaConnectionError):
        return explain_failure(settings)
    return None


def explain_failure(settings: BusSettings, timeout: float = 10.0) -> AuthenticationError | None:
    """Ask the first bootstrap server why it refuses this client; None when it does not refuse it."""
    host, _, port = settings.bootstrap.split(",")[0].strip().rpartition(":")
    host = host.strip("[]")
    context = client_ssl_context(settings)
    if context is not None:
        refused = _tls_refusal(host, int(port), context, timeout)
        if refused is not None:
            return _tls_refused(settings, refused)
    if settings.security_protocol.startswith("SASL"):
        return _sasl_probe(settings, host, int(port), timeout)
    return None


def _tls_refusal(host: str, port: int, context: ssl.SSLContext, timeout: float) -> ssl.SSLError | None:
    """The TLS error of one handshake plus ApiVersions with ``context``; None when the broker answers."""
    from ._probe import _api_versions  # the plain-socket Kafka request of the broker probe

    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as sock:
            _api_versions(sock)  # TLS 1.3 reports a refused client certificate only on the first read
    except ssl.SSLError as exc:
        return exc
    except (OSError, ValueError):
        return None  # not a TLS refusal (down, closed): the caller's own message stands
    return None


def _tls_refused(settings: BusSettings, refusal: ssl.SSLError) -> AuthenticationError:
    reason = refusal.reason or type(refusal).__name__
    bootstrap = settings.bootstrap
    if isinstance(refusal, ssl.SSLCertVerificationError):
        return AuthenticationError(
            f"the broker's certificate does not verify against BUS_SSL_CAFILE ({refusal.verify_message})",
            hint="check BUS_SSL_CAFILE: it must be the ca.crt of the site's authority (bus pki init)",
            bootstrap=bootstrap)
    if settings.ssl_certfile is None:
        return AuthenticationError(
            f"the broker requires a client certificate and none is configured ({reason})",
            hint=f"set {_CERT_SETTINGS} to the files `bus pki issue NAME` wrote", bootstrap=bootstrap)
    why = _certificate_problem(Path(settings.ssl_certfile), settings.ssl_cafile)
    return AuthenticationError(
        f"the broker refused the client certificate {settings.ssl_certfile}: {why or reason}",
        hint=f"check {_CERT_SETTINGS}: a certificate of the site's authority still valid (bus pki issue NAME)",
        bootstrap=bootstrap)


def _certificate_problem(certfile: Path, cafile: Path | None) -> str | None:
    """What is visibly wrong with the client certificate (expired, not yet valid, another CA), if anything."""
    cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc < now:
        return f"it expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if cert.not_valid_before_utc > now:
        return f"it is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    if cafile is not None and Path(cafile).is_file():
        ca = x509.load_pem_x509_certificate(Path(cafile).read_bytes())
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            return f"it was issued by {cert.issuer.rfc4514_string()}, not by the site's authority of BUS_SSL_CAFILE"
    return None


def _sasl_probe(settings: BusSettings, host: str, port: int, timeout: float) -> AuthenticationError | None:
    from aiokafka.conn import create_conn

    async def login() -> AuthenticationError | None:
        try:
            conn = await asyncio.wait_for(create_conn(
                host, port, request_timeout_ms=int(timeout * 1000), ssl_context=client_ssl_context(settings),
                **settings.kafka_security()), timeout)
        except _SASL as exc:
            return _sasl_refused(settings, exc)
        except (OSError, asyncio.TimeoutError, kafka_errors.KafkaError):
            return None
        conn.close()
        return None

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_own_loop(login())
    # called from inside a running loop: run the probe on a loop of its own in a worker thread
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run_own_loop, login()).result()


def run_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a new event loop, as :func:`asyncio.run` does, then close every socket it left open.

    aiokafka's ``close()`` of a TLS connection only *starts* the TLS shutdown (a close_notify, then up
    to 30 s for the peer's) and returns. ``asyncio.run`` then closes the loop, which does not close
    transports: a connection still shutting down (a refused SASL login, say) keeps its socket open
    until the garbage collector finds it, and its ResourceWarning fires in whatever code runs then
    (seen in CI, during a later test). Here every transport still open once ``coro`` is done is
    aborted, and the loop runs until their sockets are closed, before it closes.
    """
    with asyncio.Runner() as runner:  # cancels what is left, then closes the loop, as asyncio.run
        try:
            return runner.run(coro)
        finally:
            loop = runner.get_loop()
            # selector loops keep their transports by file descriptor (a weak dictionary)
            open_ = [t for t in list(getattr(loop, "_transports", {}).values()) if not t.is_closing()]
            for transport in open_:
                transport.abort()  # closes the socket in its connection_lost callback, soon
            for _ in range(100):  # one loop iteration runs them; a bound, not a wait
                if not any(_socket_open(t) for t in open_):
                    break
                runner.run(asyncio.sleep(0))


def _socket_open(transport: asyncio.BaseTransport) -> bool:
    sock = transport.get_extra_info("socket")
    return sock is not None and sock.fileno() != -1


def _sasl_refused(settings: BusSettings, exc: Exception) -> AuthenticationError:
    return AuthenticationError(
        f"the broker refused the SASL login of {settings.sasl_username!r} ({type(exc).__name__})",
        hint="check BUS_SASL_USERNAME, BUS_SASL_PASSWORD and BUS_SASL_MECHANISM (SCRAM-SHA-512)",
        bootstrap=settings.bootstrap)


def broker_security_properties(*, port: int, sasl_port: int, controller_port: int, cafile: Path, keystore: Path,
                               keystore_password_env: str | None, super_users: tuple[str, ...]) -> dict[str, str]:
    """The ``server.properties`` entries of the secure embedded broker (they replace the plain listeners).

    Mutual TLS on ``port`` and on the controller listener (the node authenticates to itself as
    ``User:broker``), SCRAM-SHA-512 over TLS on ``sasl_port``, the KRaft StandardAuthorizer denying
    whatever no ACL allows. The keystore is PEM, or PKCS#12 when ``keystore_password_env`` names the
    environment variable from which Kafka reads its password (never written to disk).
    """
    from ._pki import PRINCIPAL_MAPPING_RULES

    props = {
        "listeners": f"SSL://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SSL://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_port}",
        "inter.broker.listener.name": "SSL",
        "listener.security.protocol.map": "SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "ssl.keystore.type": "PKCS12" if keystore_password_env else "PEM",
        "ssl.keystore.location": str(keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(cafile),
        "ssl.client.auth": "required",
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        "ssl.principal.mapping.rules": PRINCIPAL_MAPPING_RULES,
        "listener.name.sasl_ssl.ssl.client.auth": "none",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(super_users),
    }
    if keystore_password_env:
        password = "${env:" + keystore_password_env + "}"
        props |= {
            "config.providers": "env",
            "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
            "ssl.keystore.password": password,
            "ssl.key.password": password,
        }
    return props


def broker_security(settings: BusSettings) -> tuple[dict[str, str], dict[str, str]]:
    """The secure embedded broker's listener settings and its process environment (the key password)."""
    keystore, cafile = _broker_keystore(settings)
    env = dict(os.environ)
    password_env = None
    if settings.key_passphrase:
        password_env = "BUS_BROKER_KEY_PASSWORD"
        env[password_env] = settings.key_passphrase.get_secret_value()
    security = broker_security_properties(
        port=settings.broker_port, sasl_port=settings.broker_sasl_port, controller_port=settings.broker_controller_port,
        cafile=cafile, keystore=keystore, keystore_password_env=password_env,
        super_users=SUPER_USERS)
    return security, env


def _broker_keystore(settings: BusSettings) -> tuple[Path, Path]:
    """The broker's keystore and the CA file; the broker certificate is issued on first use.

    Without a passphrase the keystore is PEM (key then certificate). With ``BUS_KEY_PASSPHRASE``
    it is PKCS#12 encrypted with AES-256: Java 17 cannot read a PBES2-encrypted PEM key.
    """
    from ._pki import CertificateAuthority, write_keystore

    folder = settings.resolved_pki_dir / "broker"
    passphrase = settings.key_passphrase.get_secret_value().encode() if settings.key_passphrase else None
    if not (folder / "broker.crt").is_file():
        CertificateAuthority(settings.resolved_pki_dir, passphrase=passphrase).issue_broker(folder, passphrase=passphrase)
    return write_keystore(folder / "broker.crt", folder / "broker.key", passphrase), folder / "ca.crt"


def broker_probe_context(settings: BusSettings) -> ssl.SSLContext | None:
    """A TLS context with the broker's own certificate (``User:broker``), to probe the secure broker."""
    folder = settings.resolved_pki_dir / "broker"
    if not (folder / "broker.crt").is_file():
        return None
    password = settings.key_passphrase.get_secret_value() if settings.key_passphrase else None
    return _context(folder / "ca.crt", folder / "broker.crt", folder / "broker.key", password)
