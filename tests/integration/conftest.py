"""The real Kafka of the integration tests: one per session, or the cluster of BUS_BOOTSTRAP_SERVERS.

Without ``BUS_BOOTSTRAP_SERVERS`` the session (fixture ``bootstrap``, in tests/conftest.py so that
the browser tests share it) starts an :class:`EmbeddedBroker` on free ports with its state in a
temporary directory (the jars come from the normal user cache, so a machine resolves them once)
and stops it at the end, checking that no Kafka process is left.

The wire set: the modules whose tests touch the wire (publish, subscribe, dead letters, the key
directory, replay, verify, the ledger, trust, the commands) take their ``settings`` from :func:`wire_settings`,
so each runs twice: once on the plaintext broker, once on the secure broker over mutual TLS as
a principal of its own (a certificate of the site's CA) that the StandardAuthorizer lets touch
only its namespace (:data:`WIRE_SET` names them; collection fails when one of them does not use
``wire_settings``). The rest of the suite runs once, on the plaintext broker.
"""

from __future__ import annotations

import gc
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bus._admin import Acl, create_acls
from bus._broker import EmbeddedBroker, wait_until_ready
from bus._pki import CertificateAuthority
from bus._settings import BusSettings, default_cache_dir


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (held open together while chosen)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def live_processes(matches: Callable[[Path], bool]) -> list[int]:
    """Pids of live processes (zombies left out) whose /proc entry ``matches``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            if state not in {"Z", "X"} and matches(entry):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def kafka_processes_of(state_dir: Path) -> list[int]:
    """Pids of live processes whose command line names ``state_dir`` (scanned in /proc)."""
    marker = str(state_dir.resolve()).encode()
    return live_processes(lambda entry: marker in (entry / "cmdline").read_bytes())


def embedded_settings(state_dir: Path, **overrides: object) -> BusSettings:
    """Settings of an embedded broker in ``state_dir`` on fresh free ports, jars in the user cache."""
    port, controller_port = free_ports(2)
    values: dict[str, object] = {
        "bootstrap_servers": None,
        "state_dir": state_dir,
        "cache_dir": default_cache_dir(),
        "broker_port": port,
        "broker_controller_port": controller_port,
    }
    values.update(overrides)
    return BusSettings(**values)


@pytest.fixture(autouse=True)
def collect_garbage_after_each_test() -> Iterator[None]:
    """Collect garbage as each test ends: a socket or transport it left unclosed is then reported (the
    ResourceWarning is an error) by that test's teardown, not by whichever later test the collector ran in
    (once in CI a SCRAM test failed on a transport that no loop of its own path leaks)."""
    yield
    gc.collect()


@pytest.fixture
def make_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., EmbeddedBroker]]:
    """A factory of extra embedded brokers (own state dir, own ports), all stopped after the test."""
    made: list[EmbeddedBroker] = []

    def make(**overrides: object) -> EmbeddedBroker:
        broker = EmbeddedBroker(embedded_settings(tmp_path_factory.mktemp("broker"), **overrides))
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()


@pytest.fixture(scope="session")
def processes_of() -> Callable[[Path], list[int]]:
    """``processes_of(state_dir)``: pids of live processes naming that directory."""
    return kafka_processes_of


@pytest.fixture(scope="session")
def settings(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> BusSettings:
    """BusSettings aimed at the session's Kafka, with a topic prefix unique to this session."""
    return BusSettings(
        bootstrap_servers=bootstrap,
        state_dir=tmp_path_factory.mktemp("bus-state"),
        topic_prefix=f"it-{uuid.uuid4().hex[:8]}.",
    )


class SecureBroker:
    """The session's secure broker (mutual TLS, SCRAM over TLS, ACLs) and its site's certificate authority."""

    PASSPHRASE = "integration-passphrase"

    def __init__(self, broker: EmbeddedBroker, ca: CertificateAuthority, certs: Path) -> None:
        self.broker, self.ca, self.certs = broker, ca, certs
        self.sasl_bootstrap = f"127.0.0.1:{broker.settings.broker_sasl_port}"

    def client(self, name: str | None, *, certfile: Path | None = None, keyfile: Path | None = None,
               **overrides: object) -> BusSettings:
        """Settings of a client with ``name``'s certificate (issued once), or explicit files, or none."""
        if name is not None and certfile is None:
            folder = self.certs / name
            if not (folder / f"{name}.crt").is_file():
                self.ca.issue(name, folder, passphrase=self.PASSPHRASE.encode())
            certfile, keyfile = folder / f"{name}.crt", folder / f"{name}.key"
        values: dict[str, object] = {
            "bootstrap_servers": self.broker.bootstrap, "security_protocol": "SSL", "ssl_cafile": self.ca.cafile,
            "ssl_certfile": certfile, "ssl_keyfile": keyfile, "ssl_key_password": self.PASSPHRASE,
            "state_dir": self.broker.state_dir / "clients", "topic_prefix": f"sec-{uuid.uuid4().hex[:8]}.",
        }
        values.update(overrides)
        return BusSettings(**values)

    def scram_client(self, user: str, password: str) -> BusSettings:
        return self.client(None, bootstrap_servers=self.sasl_bootstrap, security_protocol="SASL_SSL",
                           sasl_mechanism="SCRAM-SHA-512", sasl_username=user, sasl_password=password)


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """A second, secure embedded broker with its own CA in a temporary directory, stopped at the end."""
    state_dir = tmp_path_factory.mktemp("secure-broker")
    port, controller_port, sasl_port = free_ports(3)
    settings = embedded_settings(state_dir, broker_port=port, broker_controller_port=controller_port,
                                 broker_sasl_port=sasl_port, broker_secure=True,
                                 key_passphrase=SecureBroker.PASSPHRASE)
    ca = CertificateAuthority.init(settings.resolved_pki_dir, passphrase=SecureBroker.PASSPHRASE.encode())
    broker = EmbeddedBroker(settings)
    try:
        broker.start(timeout=180)
        yield SecureBroker(broker, ca, state_dir / "issued")
    finally:
        broker.stop()
        left = kafka_processes_of(state_dir)
        assert not left, f"Kafka processes {left} of {state_dir} survived the session"


#: The modules that run on both brokers (plaintext, then mutual TLS with ACLs): what touches the wire.
WIRE_SET = ("test_audit", "test_cli", "test_client", "test_trust")
#: Group names the wire set's tests choose (``g-<hex>``) besides those under their topic prefix.
WIRE_GROUPS = "g-"


@pytest.fixture(scope="module", params=["plaintext", "mtls"])
def wire_settings(request: pytest.FixtureRequest, settings: BusSettings,
                  tmp_path_factory: pytest.TempPathFactory) -> BusSettings:
    """A wire-set module's settings: its own topic prefix and state, on the plaintext then the secure broker.

    Over mutual TLS the module is ``User:wire-<module>``, with a certificate of the site's CA and
    ACLs on its own topic prefix and consumer groups only: everything else is denied to it.
    """
    module = request.module.__name__.rsplit(".", 1)[-1]
    assert module in WIRE_SET, f"{module} uses wire_settings but is not in WIRE_SET"
    prefix = f"{request.param}-{uuid.uuid4().hex[:8]}."
    state = tmp_path_factory.mktemp(f"{module}-{request.param}")
    if request.param == "plaintext":
        return settings.model_copy(update={"topic_prefix": prefix, "state_dir": state})
    secure: SecureBroker = request.getfixturevalue("secure_broker")
    name = f"wire-{module.removeprefix('test_').replace('_', '-')}"
    who = f"User:{name}"
    create_acls(secure.client("operator"), [
        *(Acl(who, op, "topic", prefix, prefixed=True)
          for op in ("CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "READ", "WRITE")),
        *(Acl(who, "READ", "group", group, prefixed=True) for group in (prefix, WIRE_GROUPS)),
        Acl(who, "READ", "group", settings.consumer_group)])
    return secure.client(name, topic_prefix=prefix, state_dir=state)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A module of the wire set whose tests do not all run on both brokers fails the collection."""
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__.rsplit(".", 1)[-1] in WIRE_SET:
            assert "wire_settings" in item.fixturenames, f"{item.nodeid} is in the wire set but not on both brokers"


def bus_env(settings: BusSettings) -> dict[str, str]:
    """The ``BUS_*`` environment of a command run with ``settings`` (connection, prefix, state, trust)."""
    names = ("bootstrap_servers", "topic_prefix", "state_dir", "security_protocol", "ssl_cafile", "ssl_certfile",
             "ssl_keyfile", "ssl_key_password", "sasl_mechanism", "sasl_username", "sasl_password", "trust_anchor",
             "key_passphrase")
    env = {}
    for name in names:
        value = getattr(settings, name)
        if value is not None:
            env[f"BUS_{name.upper()}"] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return env


@pytest.fixture(scope="session")
def env_of() -> Callable[[BusSettings], dict[str, str]]:
    """``env_of(settings)``: the ``BUS_*`` environment of a command run with ``settings``."""
    return bus_env
