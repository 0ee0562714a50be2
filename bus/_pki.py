"""A single-site certificate authority for the secure broker (mutual TLS), built with ``cryptography``.

The authority lives in ``STATE_DIR/pki``: ``ca.crt`` (the trust anchor every client and the broker
load as their CA file) and ``ca.key`` (0600, encrypted at rest with ``BUS_KEY_PASSPHRASE`` when it
is set). It issues two kinds of certificate, each with a fresh ECDSA P-256 key:

- a *client* certificate per principal: an administration by its SIREN, or one of the operator's
  services (``operator``, ``worker``, ``ledger``…). The subject is ``CN=<name>,OU=<kind>,O=…``;
  the broker's ``ssl.principal.mapping.rules`` turn it into ``User:<name>``, the principal the ACLs
  name (:data:`PRINCIPAL_MAPPING_RULES`);
- the *broker* certificate (server and client use, SAN ``localhost`` and ``127.0.0.1``), whose
  principal ``User:broker`` is a super user so the node can talk to its own controller listener;
- a *server* certificate for a web service of the bus (``bus console`` over HTTPS): server use
  only, ``OU=server``, which the mapping rules turn into no Kafka principal.

Keys are written 0600 as PKCS#8 PEM, encrypted when a passphrase is given. Nothing here talks to
Kafka; :mod:`bus._broker` renders the listener settings from the files written here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._errors import ConfigurationError

__all__ = ["BROKER_PRINCIPAL", "PRINCIPAL_MAPPING_RULES", "CertificateAuthority", "IssuedCertificate",
           "principal_kind", "write_keystore"]

BROKER_PRINCIPAL = "broker"
ORGANISATION = "dcant-bus"
# Kafka renders the subject in RFC 2253 order (most specific first): CN=<name>,OU=<kind>,O=dcant-bus...
# Only subjects of that shape map to a principal; any other subject fails authentication.
PRINCIPAL_MAPPING_RULES = "RULE:^CN=([0-9a-z][0-9a-z-]*),OU=(administration|service|broker),O=.*$/$1/"
_SIREN = re.compile(r"^[0-9]{9}$")
_SERVICE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")


def principal_kind(name: str) -> str:
    """``administration`` for a SIREN, ``service`` for an operator service name; else ConfigurationError."""
    if _SIREN.match(name):
        return "administration"
    if _SERVICE.match(name) and name != BROKER_PRINCIPAL:
        return "service"
    raise ConfigurationError(
        f"{name!r} is neither a SIREN (9 digits) nor a service name (lower case letters, digits, '-')",
        hint="issue certificates for a SIREN (bus pki issue 219990017) or a service (bus pki issue worker)",
    )


@dataclass(frozen=True)
class IssuedCertificate:
    """Where an issued certificate, its key and the CA certificate were written, and its principal."""

    principal: str
    certfile: Path
    keyfile: Path
    cafile: Path
    not_after: dt.datetime


class CertificateAuthority:
    """The site's CA: loads ``ca.crt``/``ca.key`` from ``directory`` and issues certificates."""

    def __init__(self, directory: Path, *, passphrase: bytes | None = None) -> None:
        self.directory = Path(directory)
        self.cafile = self.directory / "ca.crt"
        self.keyfile = self.directory / "ca.key"
        self._passphrase = passphrase
        if not (self.cafile.is_file() and self.keyfile.is_file()):
            raise ConfigurationError(f"no certificate authority in {self.directory}",
                                     hint="create it with `bus pki init`")
        self.certificate = x509.load_pem_x509_certificate(self.cafile.read_bytes())
        try:
            key = serialization.load_pem_private_key(self.keyfile.read_bytes(), passphrase)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"cannot open the CA key {self.keyfile}: wrong or missing passphrase",
                                     hint="set BUS_KEY_PASSPHRASE to the passphrase given at `bus pki init`") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigurationError(f"the CA key {self.keyfile} is not an EC key", hint="recreate it with `bus pki init`")
        self._key = key

    @classmethod
    def init(cls, directory: Path, *, passphrase: bytes | None = None, site: str = "site",
             days: int = 3650, now: dt.datetime | None = None) -> CertificateAuthority:
        """Create the CA in ``directory`` (refused when one is there: re-creating would orphan every certificate)."""
        directory = Path(directory)
        if (directory / "ca.key").exists() or (directory / "ca.crt").exists():
            raise ConfigurationError(f"a certificate authority already exists in {directory}",
                                     hint="keep it (every issued certificate chains to it), or move the folder away first")
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                          x509.NameAttribute(NameOID.COMMON_NAME, f"dcant-bus CA {site}")])
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(directory / "ca.key", _key_pem(key, passphrase))
        (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(directory, passphrase=passphrase)

    def issue(self, name: str, out: Path, *, days: int = 397, not_before: dt.datetime | None = None,
              passphrase: bytes | None = None) -> IssuedCertificate:
        """A client certificate for ``name`` (a SIREN or a service), written to ``out`` with its key and the CA."""
        return self._issue(name, principal_kind(name), Path(out), days=days, not_before=not_before,
                           passphrase=passphrase)

    def issue_broker(self, out: Path, *, days: int = 397, passphrase: bytes | None = None,
                     hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> IssuedCertificate:
        """The brokers' certificate (server and client use; SAN ``hosts``), written to ``out``.

        One certificate serves every node of a single-site cluster: list each node's host name.
        """
        return self._issue(BROKER_PRINCIPAL, "broker", Path(out), days=days, not_before=None, passphrase=passphrase,
                           hosts=hosts)

    def issue_server(self, name: str, out: Path, *, hosts: tuple[str, ...], days: int = 397,
                     passphrase: bytes | None = None) -> IssuedCertificate:
        """A web server's certificate (``bus console`` over HTTPS): server use only, SAN ``hosts``.

        Its subject ``CN=<name>,OU=server`` maps to no Kafka principal: it cannot reach the broker.
        """
        if principal_kind(name) != "service":
            raise ConfigurationError(f"{name!r} is not a service name", hint="name the server: bus pki issue-server console")
        return self._issue(name, "server", Path(out), days=days, not_before=None, passphrase=passphrase, hosts=hosts)

    def _issue(self, name: str, kind: str, out: Path, *, days: int, not_before: dt.datetime | None,
               passphrase: bytes | None, hosts: tuple[str, ...] = ()) -> IssuedCertificate:
        start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        end = start + dt.timedelta(days=days)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kind),
                             x509.NameAttribute(NameOID.COMMON_NAME, name)])
        usages = [] if kind == "server" else [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        if kind in ("broker", "server"):
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in hosts]), critical=False)
        cert = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False).sign(self._key, hashes.SHA256())
        out.mkdir(parents=True, exist_ok=True)
        keyfile, certfile, cafile = out / f"{name}.key", out / f"{name}.crt", out / "ca.crt"
        _write_private(keyfile, _key_pem(key, passphrase))
        certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        cafile.write_bytes(self.cafile.read_bytes())
        return IssuedCertificate(f"User:{name}", certfile, keyfile, cafile, end)


def write_keystore(certfile: Path, keyfile: Path, passphrase: bytes | None) -> Path:
    """The broker's keystore beside ``certfile``: PEM (key, certificate) or, with a passphrase, PKCS#12.

    PKCS#12 with AES-256 and PBKDF2-SHA256 when encrypted, because Java 17 (Kafka's PEM loader)
    cannot decrypt a PBES2-encrypted PKCS#8 key; written 0600 either way.
    """
    cert = x509.load_pem_x509_certificate(certfile.read_bytes())
    key = serialization.load_pem_private_key(keyfile.read_bytes(), passphrase)
    if not passphrase:
        path = certfile.with_suffix(".pem")
        _write_private(path, _key_pem(key, None) + cert.public_bytes(serialization.Encoding.PEM))  # type: ignore[arg-type]
        return path
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(100_000)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
                  .build(passphrase))
    path = certfile.with_suffix(".p12")
    _write_private(path, pkcs12.serialize_key_and_certificates(
        certfile.stem.encode(), key, cert, None, encryption))  # type: ignore[arg-type]
    return path


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only, never world-readable even for an instant."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    partial.replace(path)
