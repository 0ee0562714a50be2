"""Per-tenant produce and fetch quotas, from the key directory, set with Kafka's own ``kafka-configs``.

Neither aiokafka's nor confluent-kafka's admin client (2.x) has the client-quota calls
(DescribeClientQuotas, AlterClientQuotas), so the quotas go through the tool Kafka ships for it,
``kafka.admin.ConfigCommand`` (``kafka-configs.sh``), run with the embedded broker's jars and
Java: one JVM to describe every user's quotas, one per tenant whose quotas change. It connects
with the operator's TLS settings; the key's password reaches Kafka through the environment
(``EnvVarConfigProvider``), never a file.

The quotas come from the kind of principal (:func:`bus._acl.kind_of`), in one table,
:data:`QUOTAS`: bytes per second a tenant may produce and fetch, per broker. The bus's services
(worker, ledger) and the operator have none.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from ._acl import Kind, kind_of, tenants
from ._errors import ConfigurationError, DeliveryError
from ._keys import KeyDirectory
from ._settings import BusSettings

__all__ = ["QUOTAS", "alter_quotas", "describe_quotas", "quota_plan", "wanted_quotas"]

MIB = 1024 * 1024
#: Bytes per second, per broker: (produce, fetch).
QUOTAS: dict[Kind, tuple[int, int]] = {"public body": (4 * MIB, 8 * MIB), "supplier": (1 * MIB, 2 * MIB)}
_LINE = re.compile(r"Quota configs for user-principal '(?P<user>[^']+)' are (?P<configs>.*)$")
_PASSWORD_ENV = "BUS_QUOTA_KEY_PASSWORD"


def wanted_quotas(directory: KeyDirectory) -> dict[str, dict[str, int]]:
    """``{SIREN: {"producer_byte_rate": n, "consumer_byte_rate": n}}`` for every tenant of the directory."""
    out = {}
    for siren in tenants(directory):
        produce, fetch = QUOTAS[kind_of(siren, directory)]
        out[siren] = {"producer_byte_rate": produce, "consumer_byte_rate": fetch}
    return out


def quota_plan(wanted: dict[str, dict[str, int]], live: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The tenants whose live quotas differ from ``wanted``, with the quotas to set."""
    return {user: quotas for user, quotas in wanted.items() if live.get(user) != quotas}


def describe_quotas(settings: BusSettings) -> dict[str, dict[str, int]]:
    """Every user's client quotas on the broker (``{user: {config: bytes per second}}``)."""
    out = _config_command(settings, "--describe", "--entity-type", "users")
    found: dict[str, dict[str, int]] = {}
    for line in out.splitlines():
        if m := _LINE.match(line.strip()):
            pairs = (item.split("=", 1) for item in m["configs"].split(", ") if "=" in item)
            found[m["user"]] = {k.strip(): int(float(v)) for k, v in pairs}
    return found


def alter_quotas(settings: BusSettings, user: str, quotas: dict[str, int]) -> None:
    """Set ``user``'s quotas (the others of that user are left as they are)."""
    configs = ",".join(f"{k}={v}" for k, v in sorted(quotas.items()))
    _config_command(settings, "--alter", "--entity-type", "users", "--entity-name", user, "--add-config", configs)


def _config_command(settings: BusSettings, *args: str) -> str:
    from ._broker import EmbeddedBroker, _java

    libs = EmbeddedBroker(settings).ensure_jars()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bus-quotas-") as scratch:
        properties = Path(scratch) / "client.properties"
        properties.write_text("".join(f"{k}={v}\n" for k, v in _client_properties(settings, env).items()))
        command = [_java(), "-cp", f"{libs}/*", "kafka.admin.ConfigCommand", "--bootstrap-server", settings.bootstrap,
                   "--command-config", str(properties), *args]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    if done.returncode != 0:
        last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no message")
        raise DeliveryError(f"kafka-configs failed ({' '.join(args[:3])}): {last[:300]}",
                            hint="run it as the operator (BUS_SSL_CERTFILE of `bus pki issue operator`)")
    return done.stdout


def _client_properties(settings: BusSettings, env: dict[str, str]) -> dict[str, str]:
    """Java client settings equivalent to the bus's TLS settings (the key password into ``env``)."""
    if settings.security_protocol == "PLAINTEXT":
        return {"security.protocol": "PLAINTEXT"}
    if settings.security_protocol != "SSL" or not (settings.ssl_certfile and settings.ssl_keyfile):
        raise ConfigurationError("quotas are set over mutual TLS as the operator",
                                 hint="set BUS_SECURITY_PROTOCOL=SSL and the operator's BUS_SSL_* files")
    from ._pki import write_keystore

    secret = settings.ssl_key_password or settings.key_passphrase
    password = secret.get_secret_value() if secret else None
    # Java 17 cannot read a PBES2-encrypted PEM key: the same PKCS#12 (or plain PEM) keystore as the broker's.
    keystore = write_keystore(Path(settings.ssl_certfile), Path(settings.ssl_keyfile),
                              password.encode() if password else None)
    props = {"security.protocol": "SSL", "ssl.keystore.location": str(keystore),
             "ssl.keystore.type": "PKCS12" if password else "PEM"}
    if settings.ssl_cafile:
        props |= {"ssl.truststore.type": "PEM", "ssl.truststore.location": str(settings.ssl_cafile)}
    if password:
        env[_PASSWORD_ENV] = password
        reference = "${env:" + _PASSWORD_ENV + "}"
        props |= {"config.providers": "env",
                  "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
                  "ssl.keystore.password": reference, "ssl.key.password": reference}
    return props
