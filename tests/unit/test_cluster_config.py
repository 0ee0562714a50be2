"""``bus cluster`` and ``docker/compose.yaml`` describe the same cluster; the layout of a local cluster.

Nothing here starts Java: the nodes' ``server.properties`` are compared with the compose file's
``KAFKA_*`` environment (the apache/kafka image turns ``KAFKA_A_B`` into ``a.b``, ``__`` into
``_`` and ``___`` into ``-``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bus._cluster import LocalCluster, cluster_properties, replication_for
from bus._errors import ConfigurationError
from bus._settings import BusSettings
from bus._tls import SUPER_USERS, broker_security_properties
from bus.cli import app

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "compose.yaml"
SIZE = 3  # `bus cluster start --brokers 3`, the default


def kafka_property(env_name: str) -> str:
    name = env_name.removeprefix("KAFKA_").lower()
    return name.replace("___", "\0").replace("__", "\1").replace("_", ".").replace("\0", "-").replace("\1", "_")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def kafka_nodes(compose: dict) -> dict[str, dict[str, str]]:
    """Each kafka service's server properties, from its environment (compose reads `$$` as `$`)."""
    return {name: {kafka_property(k): str(v).replace("$$", "$") for k, v in service["environment"].items()
                   if k.startswith("KAFKA_")}
            for name, service in compose["services"].items() if name.startswith("kafka-")}


@pytest.fixture
def local(tmp_path: Path) -> list[dict[str, str]]:
    cluster = LocalCluster(BusSettings(bootstrap_servers=None, state_dir=tmp_path))
    cluster.plan(SIZE)
    return [dict(line.split("=", 1) for line in node._server_properties(None).splitlines() if not line.startswith("#"))
            for node in cluster.nodes()]


def test_compose_and_bus_cluster_have_the_same_nodes_and_quorum(kafka_nodes, local):
    assert len(kafka_nodes) == len(local) == SIZE
    assert sorted(p["node.id"] for p in kafka_nodes.values()) == sorted(p["node.id"] for p in local) == ["1", "2", "3"]
    for props in [*kafka_nodes.values(), *local]:
        assert props["process.roles"] == "broker,controller"
        assert [v.split("@")[0] for v in props["controller.quorum.voters"].split(",")] == ["1", "2", "3"]
        assert props["controller.listener.names"] == "CONTROLLER"


def test_compose_and_bus_cluster_replicate_alike(kafka_nodes, local):
    """Every replication, ISR and failure-detection setting of a local node is the compose file's."""
    shared = ["default.replication.factor", "min.insync.replicas", "offsets.topic.replication.factor",
              "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
              "share.coordinator.state.topic.replication.factor", "share.coordinator.state.topic.min.isr",
              "auto.create.topics.enable", "unclean.leader.election.enable", "num.partitions",
              "broker.session.timeout.ms", "broker.heartbeat.interval.ms", "replica.lag.time.max.ms"]
    for props in kafka_nodes.values():
        for node in local:
            assert {k: props[k] for k in shared} == {k: node[k] for k in shared}
    assert (local[0]["default.replication.factor"], local[0]["min.insync.replicas"]) == ("3", "2")


def test_the_compose_workers_create_topics_as_the_cluster_replicates(compose):
    factor, min_isr = replication_for(SIZE)
    workers = [s for name, s in compose["services"].items() if name.startswith("worker-")]
    assert len(workers) == 2
    for worker in workers:
        env = worker["environment"]
        assert (int(env["BUS_REPLICATION_FACTOR"]), int(env["BUS_MIN_INSYNC_REPLICAS"])) == (factor, min_isr)
        assert env["BUS_BOOTSTRAP_SERVERS"].split(",") == [f"kafka-{i}:9092" for i in range(1, SIZE + 1)]
        assert env["BUS_SECURITY_PROTOCOL"] == "SSL"


def test_compose_listeners_are_the_secure_brokers(kafka_nodes, local):
    """TLS everywhere as `bus broker start --secure`: one listener of each protocol, the same SSL settings."""
    secure = broker_security_properties(port=1, sasl_port=2, controller_port=3, cafile=Path("ca.crt"),
                                        keystore=Path("b.p12"), keystore_password_env="P", super_users=SUPER_USERS)
    protocols = {n.split(":")[0]: n.split(":")[1] for n in secure["listener.security.protocol.map"].split(",")}
    for name, props in kafka_nodes.items():
        mapping = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
        listeners = {item.split("://")[0] for item in props["listeners"].split(",")}
        assert listeners == set(mapping), name
        assert set(mapping.values()) == set(protocols.values()) == {"SSL", "SASL_SSL"}
        assert mapping[props["inter.broker.listener.name"]] == mapping["CONTROLLER"] == "SSL"
        for key in ("ssl.client.auth", "ssl.enabled.protocols", "ssl.principal.mapping.rules", "ssl.truststore.type",
                    "sasl.enabled.mechanisms", "authorizer.class.name", "allow.everyone.if.no.acl.found"):
            assert props[key] == secure[key], (name, key)
        advertised = props["advertised.listeners"].split(",")
        assert len(advertised) == len(listeners) - 1  # every listener but the controller's
        # Every other setting of the embedded secure broker, the SCRAM listener's under its compose name;
        # the listeners (compared above) and where the files are (and the keystore's password) are the deployment's.
        scram = next(n for n, p in mapping.items() if p == "SASL_SSL").lower()
        own = ("listeners", "advertised.listeners", "listener.security.protocol.map", "inter.broker.listener.name",
               "ssl.keystore.location", "ssl.truststore.location",
               "ssl.keystore.password", "ssl.key.password", "config.providers", "config.providers.env.class")
        for key, value in secure.items():
            if key not in own:
                assert props[key.replace("listener.name.sasl_ssl.", f"listener.name.{scram}.")] == value, (name, key)
    for node in local:  # the local cluster is plain text: one broker listener, one controller listener
        assert [item.split("://")[0] for item in node["listeners"].split(",")] == ["PLAINTEXT", "CONTROLLER"]


def test_compose_applies_the_acls_as_the_operator_before_the_workers_start(compose):
    """The one-shot acl-bootstrap: `bus acl apply` as User:operator once the nodes are healthy, then the workers."""
    services = compose["services"]
    bootstrap = services["acl-bootstrap"]
    assert "bus acl apply" in " ".join([*bootstrap.get("entrypoint", []), *bootstrap["command"]])
    assert bootstrap["restart"] == "no"
    assert set(bootstrap["depends_on"]) == {n for n in services if n.startswith("kafka-")}
    assert all(c == {"condition": "service_healthy"} for c in bootstrap["depends_on"].values())
    env = bootstrap["environment"]
    assert Path(env["BUS_SSL_CERTFILE"]).name == "operator.crt"  # principal User:operator, the super user
    assert "User:operator" in SUPER_USERS
    for name, worker in ((n, s) for n, s in services.items() if n.startswith("worker-")):
        assert worker["depends_on"]["acl-bootstrap"] == {"condition": "service_completed_successfully"}, name
        shared = {k: v for k, v in worker["environment"].items() if k not in ("BUS_SSL_CERTFILE", "BUS_SSL_KEYFILE")}
        assert {k: env[k] for k in shared} == shared, name  # the same cluster, CA and trust anchor
        assert worker["environment"]["BUS_TRUST_ANCHOR"].startswith("${BUS_TRUST_ANCHOR?"), name  # required


def test_compose_workers_share_keys_and_content_store(compose):
    mounts = [set(service["volumes"]) for name, service in compose["services"].items() if name.startswith("worker-")]
    shared = set.intersection(*mounts)
    assert "keys:/var/lib/dcant-bus/keys" in shared
    assert "content:/var/lib/dcant-bus/content" in shared
    assert {"keys", "content"} <= set(compose["volumes"])


def test_a_cluster_keeps_its_ports_and_id_and_refuses_another_size(tmp_path):
    cluster = LocalCluster(BusSettings(bootstrap_servers=None, state_dir=tmp_path))
    first = cluster.plan(3, base_port=20192)
    assert [n["port"] for n in first["nodes"]] == [20192, 20194, 20196]
    assert LocalCluster(BusSettings(bootstrap_servers=None, state_dir=tmp_path)).plan(3) == first
    assert json.loads(cluster.layout_file.read_text()) == first
    ids = {(node.home / "cluster.id").read_text() for node in cluster.nodes()}
    assert ids == {first["cluster_id"] + "\n"}
    assert cluster.bootstrap == "127.0.0.1:20192,127.0.0.1:20194,127.0.0.1:20196"
    with pytest.raises(ConfigurationError, match="has 3 nodes, not 5"):
        cluster.plan(5)


@pytest.mark.parametrize(("size", "expected"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))])
def test_replication_follows_the_cluster_size(size, expected):
    assert replication_for(size) == expected
    props = cluster_properties(node_id=1, port=1, controller_port=2, voters="1@x:2", size=size, data_dir=Path("d"))
    assert (int(props["default.replication.factor"]), int(props["min.insync.replicas"])) == expected


def test_cluster_env_prints_the_settings_of_the_bus(tmp_path, monkeypatch):
    monkeypatch.setenv("BUS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("BUS_BOOTSTRAP_SERVERS", raising=False)
    LocalCluster(BusSettings(bootstrap_servers=None, state_dir=tmp_path)).plan(3, base_port=20192)
    result = CliRunner().invoke(app, ["cluster", "env"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["export BUS_BOOTSTRAP_SERVERS=127.0.0.1:20192,127.0.0.1:20194,127.0.0.1:20196",
                                          "export BUS_REPLICATION_FACTOR=3", "export BUS_MIN_INSYNC_REPLICAS=2"]


def test_a_secure_cluster_gives_each_node_its_certificate_from_the_site_authority(tmp_path):
    from bus._pki import CertificateAuthority
    from bus._tls import broker_security

    settings = BusSettings(bootstrap_servers=None, state_dir=tmp_path, broker_secure=True)
    cluster = LocalCluster(settings)
    cluster.plan(3, base_port=20192)
    with pytest.raises(ConfigurationError, match="no certificate authority"):
        cluster.nodes()
    CertificateAuthority.init(settings.resolved_pki_dir)
    nodes = cluster.nodes()
    assert [(n.port, n.controller_port, n.settings.broker_sasl_port) for n in nodes] == [
        (20192, 20193, 20194), (20195, 20196, 20197), (20198, 20199, 20200)]
    certificates = set()
    for node in nodes:
        security, _ = broker_security(node.settings)
        props = dict(line.split("=", 1) for line in node._server_properties(security).splitlines()
                     if not line.startswith("#"))
        assert props["listeners"] == (f"SSL://127.0.0.1:{node.port},SASL_SSL://127.0.0.1:{node.settings.broker_sasl_port},"
                                      f"CONTROLLER://127.0.0.1:{node.controller_port}")
        assert props["controller.quorum.voters"] == "1@127.0.0.1:20193,2@127.0.0.1:20196,3@127.0.0.1:20199"
        assert props["ssl.client.auth"] == "required" and props["default.replication.factor"] == "3"
        assert (node.settings.resolved_pki_dir / "ca.crt").read_bytes() == (tmp_path / "pki" / "ca.crt").read_bytes()
        certificates.add((node.settings.resolved_pki_dir / "broker" / "broker.crt").read_bytes())
    assert len(certificates) == 3  # one certificate per node, all from the site's CA
    assert cluster.sasl_bootstrap == "127.0.0.1:20194,127.0.0.1:20197,127.0.0.1:20200"
