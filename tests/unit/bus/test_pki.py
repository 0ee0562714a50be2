"""The site's certificate authority and the secure broker's configuration (no broker needed)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from typer.testing import CliRunner

from bus import AuthenticationError, ConfigurationError
from bus._broker import render_server_properties
from bus._pki import PRINCIPAL_MAPPING_RULES, CertificateAuthority, principal_kind, write_keystore
from bus._settings import BusSettings
from bus._tls import broker_security_properties, client_principal, client_ssl_context


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _kafka_principal(cert_path: Path) -> str | None:
    """What Kafka's mapping rule makes of the certificate's subject (RFC 2253 order, as Java prints it)."""
    subject = x509.load_pem_x509_certificate(cert_path.read_bytes()).subject.rfc4514_string()
    pattern, replacement = PRINCIPAL_MAPPING_RULES.removeprefix("RULE:").rstrip("/").split("/")
    match = re.match(pattern, subject)  # the rule's Java regex is also a Python one
    return None if match is None else match.expand(replacement.replace("$1", r"\1"))


def test_the_ca_key_is_private_and_encrypted_with_the_passphrase(tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "pki", passphrase=b"site passphrase")

    assert _mode(ca.keyfile) == 0o600
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(ca.keyfile.read_bytes(), None)
    with pytest.raises(ConfigurationError, match="passphrase"):
        CertificateAuthority(tmp_path / "pki", passphrase=b"wrong")
    assert CertificateAuthority(tmp_path / "pki", passphrase=b"site passphrase").certificate == ca.certificate


def test_init_refuses_to_overwrite_an_authority(tmp_path: Path) -> None:
    CertificateAuthority.init(tmp_path)
    with pytest.raises(ConfigurationError, match="already exists"):
        CertificateAuthority.init(tmp_path)


@pytest.mark.parametrize(("name", "kind"), [("219990017", "administration"), ("operator", "service"),
                                            ("worker", "service"), ("ledger", "service")])
def test_an_issued_certificate_maps_to_the_principal_of_its_name(tmp_path: Path, name: str, kind: str) -> None:
    ca = CertificateAuthority.init(tmp_path / "pki")
    issued = ca.issue(name, tmp_path / name, passphrase=b"tenant")

    assert principal_kind(name) == kind
    assert issued.principal == f"User:{name}"
    assert _kafka_principal(issued.certfile) == name
    assert _mode(issued.keyfile) == 0o600
    assert issued.cafile.read_bytes() == ca.cafile.read_bytes()
    cert = x509.load_pem_x509_certificate(issued.certfile.read_bytes())
    cert.verify_directly_issued_by(ca.certificate)
    settings = BusSettings(security_protocol="SSL", ssl_cafile=issued.cafile, ssl_certfile=issued.certfile,
                           ssl_keyfile=issued.keyfile, ssl_key_password="tenant")
    assert client_ssl_context(settings) is not None
    assert client_principal(settings) == f"User:{name}"


@pytest.mark.parametrize("name", ["21999001", "Operator", "broker", "x", "219990017,OU=service", ""])
def test_names_that_are_neither_siren_nor_service_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigurationError):
        principal_kind(name)


def test_a_subject_not_of_the_bus_shape_maps_to_no_principal(tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "pki", site="x")
    assert _kafka_principal(ca.cafile) is None  # the CA's own subject has no OU: no principal


def test_the_broker_certificate_serves_localhost_and_its_keystore_is_encrypted(tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "pki", passphrase=b"p")
    issued = ca.issue_broker(tmp_path / "broker", passphrase=b"p")
    cert = x509.load_pem_x509_certificate(issued.certfile.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    keystore = write_keystore(issued.certfile, issued.keyfile, b"p")
    assert keystore.suffix == ".p12" and _mode(keystore) == 0o600
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(keystore.read_bytes(), b"other")
    assert pkcs12.load_key_and_certificates(keystore.read_bytes(), b"p")[1] == cert


def test_a_server_certificate_is_for_servers_only_and_maps_to_no_kafka_principal(tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "pki")
    issued = ca.issue_server("console", tmp_path / "console", hosts=("console.example.gouv.fr",))
    cert = x509.load_pem_x509_certificate(issued.certfile.read_bytes())

    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["console.example.gouv.fr"]
    assert _kafka_principal(issued.certfile) is None  # OU=server: no principal on the broker
    with pytest.raises(ConfigurationError, match="service name"):
        ca.issue_server("219990017", tmp_path / "x", hosts=("localhost",))


def test_an_encrypted_client_key_without_its_password_is_a_configuration_error(tmp_path: Path) -> None:
    issued = CertificateAuthority.init(tmp_path / "pki").issue("219990017", tmp_path / "t", passphrase=b"secret")
    settings = BusSettings(security_protocol="SSL", ssl_cafile=issued.cafile, ssl_certfile=issued.certfile,
                           ssl_keyfile=issued.keyfile, ssl_key_password="wrong")
    with pytest.raises(ConfigurationError, match="BUS_SSL_KEY_PASSWORD"):
        client_ssl_context(settings)


def test_a_missing_tls_file_names_its_setting(tmp_path: Path) -> None:
    settings = BusSettings(security_protocol="SSL", ssl_cafile=tmp_path / "nope.crt")
    with pytest.raises(ConfigurationError, match="BUS_SSL_CAFILE"):
        client_ssl_context(settings)


def test_the_secure_broker_requires_client_certificates_and_denies_without_acl(tmp_path: Path) -> None:
    security = broker_security_properties(port=1, sasl_port=2, controller_port=3, cafile=tmp_path / "ca.crt",
                                          keystore=tmp_path / "b.p12", keystore_password_env="PW",
                                          super_users=("User:operator", "User:broker"))
    text = render_server_properties(port=1, controller_port=3, data_dir=tmp_path, security=security)
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))

    assert props["listeners"] == "SSL://127.0.0.1:1,SASL_SSL://127.0.0.1:2,CONTROLLER://127.0.0.1:3"
    assert props["listener.security.protocol.map"] == "SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert props["ssl.client.auth"] == "required"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:operator;User:broker"
    assert props["ssl.keystore.password"] == "${env:PW}"  # the passphrase itself is never written
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"


def test_bus_config_masks_the_tls_and_sasl_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from bus.cli import app

    monkeypatch.setenv("BUS_SSL_KEY_PASSWORD", "tls-secret-value")
    monkeypatch.setenv("BUS_SASL_PASSWORD", "sasl-secret-value")
    out = CliRunner().invoke(app, ["config"], env={"COLUMNS": "400"})

    assert out.exit_code == 0
    assert "BUS_SSL_KEY_PASSWORD" in out.output and "BUS_SASL_PASSWORD" in out.output
    assert "secret-value" not in out.output


def test_authentication_and_authorisation_errors_are_security_errors() -> None:
    from bus import AuthorizationError, SecurityError

    assert issubclass(AuthenticationError, SecurityError) and issubclass(AuthorizationError, SecurityError)
