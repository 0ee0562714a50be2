"""How the bus's ACLs become confluent-kafka bindings (the broker round trip is in tests/integration)."""

from __future__ import annotations

from confluent_kafka.admin import AclOperation, AclPermissionType, ResourcePatternType, ResourceType

from bus._admin import Acl, _binding, _normalised, librdkafka_config
from bus._settings import BusSettings


def test_a_prefixed_topic_acl_is_an_allow_binding_on_any_host() -> None:
    binding = _binding(Acl("User:219990017", "WRITE", "topic", "dcant.", prefixed=True))

    assert (binding.restype, binding.name, binding.resource_pattern_type) == (
        ResourceType.TOPIC, "dcant.", ResourcePatternType.PREFIXED)
    assert (binding.principal, binding.host, binding.operation, binding.permission_type) == (
        "User:219990017", "*", AclOperation.WRITE, AclPermissionType.ALLOW)


def test_a_cluster_acl_names_the_one_cluster_resource_as_the_broker_describes_it() -> None:
    acl = _normalised(Acl("User:worker", "IDEMPOTENT_WRITE", "cluster", "anything", prefixed=True))
    binding = _binding(acl)

    assert (acl.name, acl.prefixed) == ("kafka-cluster", False)
    assert (binding.restype, binding.name, binding.resource_pattern_type) == (
        ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL)


def test_the_librdkafka_config_carries_the_same_tls_and_sasl_settings(tmp_path) -> None:
    settings = BusSettings(bootstrap_servers="k:9093", security_protocol="SASL_SSL", ssl_cafile=tmp_path / "ca.crt",
                           sasl_mechanism="SCRAM-SHA-512", sasl_username="svc", sasl_password="pw")
    config = librdkafka_config(settings)

    assert config == {"bootstrap.servers": "k:9093", "security.protocol": "sasl_ssl",
                      "ssl.ca.location": str(tmp_path / "ca.crt"), "sasl.mechanism": "SCRAM-SHA-512",
                      "sasl.username": "svc", "sasl.password": "pw"}
