"""Security administration of the cluster: ACLs and SCRAM credentials, through confluent-kafka's admin.

aiokafka's admin client has no ACL, SCRAM or quota call. confluent-kafka (librdkafka, Confluent's
maintained client, a self-contained wheel) has ``create_acls``/``describe_acls``/``delete_acls``
and ``alter_user_scram_credentials``, and speaks the same TLS and SASL settings (PEM files,
encrypted keys); it has no client-quota call (AlterClientQuotas), which per-tenant quotas will
need from elsewhere. Only this module imports confluent-kafka; the rest of the bus stays on aiokafka.

Run these as the operator (``User:operator``, the super user of the secure broker).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import BusError, ConfigurationError, DeliveryError
from ._settings import BusSettings
from ._tls import explain_failure

__all__ = ["Acl", "create_acls", "delete_acls", "describe_acls", "librdkafka_config", "security_admin",
           "set_scram_password"]

Operation = Literal["READ", "WRITE", "DESCRIBE", "CREATE", "DELETE", "ALTER", "DESCRIBE_CONFIGS", "IDEMPOTENT_WRITE",
                    "ALL"]


@dataclass(frozen=True)
class Acl:
    """One ALLOW rule: ``principal`` may do ``operation`` on a topic, group or the cluster.

    ``resource`` is ``topic``, ``group`` or ``cluster``; ``name`` a literal name, or a prefix when
    ``prefixed``.
    """

    principal: str
    operation: Operation
    resource: Literal["topic", "group", "cluster"]
    name: str
    prefixed: bool = False


def security_admin(settings: BusSettings) -> Any:
    """A confluent-kafka ``AdminClient`` on the configured cluster with the same TLS/SASL settings."""
    from confluent_kafka.admin import AdminClient

    # librdkafka's own log lines go through Python logging (silenced by the command line), not stderr
    return AdminClient({**librdkafka_config(settings), "logger": logging.getLogger("confluent_kafka")})


def librdkafka_config(settings: BusSettings) -> dict[str, str]:
    """The librdkafka settings equivalent to the bus's (bootstrap, TLS files, SASL)."""
    config = {"bootstrap.servers": settings.bootstrap, "security.protocol": settings.security_protocol.lower()}
    files = {"ssl.ca.location": settings.ssl_cafile, "ssl.certificate.location": settings.ssl_certfile,
             "ssl.key.location": settings.ssl_keyfile}
    config |= {key: str(value) for key, value in files.items() if value is not None}
    password = settings.ssl_key_password or settings.key_passphrase
    if settings.ssl_keyfile is not None and password is not None:
        config["ssl.key.password"] = password.get_secret_value()
    if settings.sasl_mechanism:
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username or ""
        config["sasl.password"] = settings.sasl_password.get_secret_value() if settings.sasl_password else ""
    return config


def create_acls(settings: BusSettings, acls: Iterable[Acl], timeout: float = 30) -> None:
    """Create ``acls`` and return once the broker enforces them (creating an existing ACL changes nothing).

    The controller commits an ACL before the broker's authorizer has applied it from the metadata
    log; the broker answers DescribeAcls from that authorizer, so seeing them there means enforced.
    """
    wanted = list(dict.fromkeys(_normalised(acl) for acl in acls))
    bindings = [_binding(acl) for acl in wanted]
    if not bindings:
        return
    admin = security_admin(settings)  # held until the futures resolve: a collected client cancels them
    _wait(settings, admin.create_acls(bindings, request_timeout=timeout), "create ACLs")
    deadline = time.monotonic() + timeout
    while not set(wanted) <= set(describe_acls(settings, timeout)):
        if time.monotonic() > deadline:
            raise DeliveryError(f"the broker did not apply {len(wanted)} new ACLs within {timeout:g}s",
                                hint="check the broker with `bus broker logs`")
        time.sleep(0.1)  # the broker replays the metadata log on its own; there is nothing to wait on


def delete_acls(settings: BusSettings, acls: Iterable[Acl], timeout: float = 30) -> None:
    """Delete exactly ``acls`` (each matched literally: principal, operation, resource, pattern type).

    Returns once the broker no longer describes them, i.e. no longer enforces them.
    """
    from confluent_kafka.admin import AclBindingFilter

    gone = list(dict.fromkeys(_normalised(acl) for acl in acls))
    if not gone:
        return
    filters = []
    for acl in gone:
        b = _binding(acl)
        filters.append(AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host,
                                        b.operation, b.permission_type))
    admin = security_admin(settings)
    _wait(settings, admin.delete_acls(filters, request_timeout=timeout), "delete ACLs")
    deadline = time.monotonic() + timeout
    while set(gone) & set(describe_acls(settings, timeout)):
        if time.monotonic() > deadline:
            raise DeliveryError(f"the broker still enforces deleted ACLs after {timeout:g}s",
                                hint="check the broker with `bus broker logs`")
        time.sleep(0.1)  # the broker replays the metadata log on its own; there is nothing to wait on


def describe_acls(settings: BusSettings, timeout: float = 30) -> list[Acl]:
    """Every ALLOW ACL on topics, groups and the cluster, as :class:`Acl`."""
    from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType,
                                       ResourceType)

    query = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ALLOW)
    admin = security_admin(settings)
    _require_cluster_describe(settings, admin, timeout)
    future = admin.describe_acls(query, request_timeout=timeout)
    found = _wait(settings, {"acls": future}, "describe ACLs")["acls"]
    kinds = {ResourceType.TOPIC: "topic", ResourceType.GROUP: "group", ResourceType.BROKER: "cluster"}
    return sorted((Acl(b.principal, b.operation.name, kinds.get(b.restype, b.restype.name.lower()), b.name,
                       b.resource_pattern_type == ResourcePatternType.PREFIXED) for b in found),
                  key=lambda a: (a.principal, a.resource, a.name, a.operation))


def set_scram_password(settings: BusSettings, user: str, password: str, *, iterations: int = 8192,
                       timeout: float = 30) -> None:
    """Create or change the SCRAM-SHA-512 credential of ``user`` (its principal is ``User:<user>``)."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    if not password:
        raise ConfigurationError(f"empty SCRAM password for {user!r}", hint="give a password of 16 characters or more")
    upsert = UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, iterations),
                                          password.encode())
    admin = security_admin(settings)
    _wait(settings, admin.alter_user_scram_credentials([upsert], request_timeout=timeout),
          f"set the SCRAM credential of {user}")


def _require_cluster_describe(settings: BusSettings, admin: Any, timeout: float) -> None:
    """Refuse a client that may not describe the cluster: the broker answers its DescribeAcls with no ACL
    at all rather than an error, which a plan would read as "nothing is allowed"."""
    from ._errors import AuthorizationError

    future = admin.describe_cluster(include_authorized_operations=True, request_timeout=timeout)
    cluster = _wait(settings, {"cluster": future}, "describe the cluster")["cluster"]
    if not any(op.name == "DESCRIBE" for op in cluster.authorized_operations or ()):
        raise AuthorizationError("this client may not read the broker's ACLs (the broker would answer with none)",
                                 hint="run it as the operator (BUS_SSL_CERTFILE of `bus pki issue operator`)")


def _normalised(acl: Acl) -> Acl:
    """The ACL as the broker describes it: the cluster resource is always named ``kafka-cluster``."""
    return dataclasses.replace(acl, name="kafka-cluster", prefixed=False) if acl.resource == "cluster" else acl


def _binding(acl: Acl) -> Any:
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    kind = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "cluster": ResourceType.BROKER}[acl.resource]
    name = "kafka-cluster" if acl.resource == "cluster" else acl.name
    pattern = ResourcePatternType.PREFIXED if acl.prefixed else ResourcePatternType.LITERAL
    return AclBinding(kind, name, pattern, acl.principal, "*", AclOperation[acl.operation], AclPermissionType.ALLOW)


def _wait(settings: BusSettings, futures: Any, action: str) -> dict[Any, Any]:
    """Wait for every future of a confluent-kafka admin call; a failure becomes one bus error."""
    from confluent_kafka import KafkaError, KafkaException

    out = {}
    for key, future in futures.items():
        try:
            out[key] = future.result()
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            raise _admin_error(settings, action, error, exc) from exc
    return out


def _admin_error(settings: BusSettings, action: str, error: Any, exc: Exception) -> BusError:
    from confluent_kafka import KafkaError

    from ._errors import AuthorizationError

    code = error.code() if error is not None else None
    if code in (KafkaError.CLUSTER_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED,
                KafkaError.GROUP_AUTHORIZATION_FAILED):
        return AuthorizationError(f"the broker did not allow this client to {action}",
                                  hint="run it as the operator (BUS_SSL_CERTFILE of `bus pki issue operator`)")
    if code in (KafkaError._TRANSPORT, KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError._ALL_BROKERS_DOWN,
                KafkaError._TIMED_OUT):
        refused = explain_failure(settings)
        if refused is not None:
            return refused
    reason = error.str() if error is not None else str(exc)
    return DeliveryError(f"cannot {action} at {settings.bootstrap}: {reason}")
