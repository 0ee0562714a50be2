"""The embedded Apache Kafka broker: one KRaft node (broker and controller) run from Maven jars.

:class:`EmbeddedBroker` resolves the jars of ``org.apache.kafka:kafka_2.13`` once through the pom in
``docker/pom.xml`` into ``CACHE_DIR/kafka-<version>/libs``, formats a storage directory under
``STATE_DIR/kafka`` and runs ``java kafka.Kafka`` detached, in its own process group, so it outlives
the command that started it, and waits until it answers (:func:`bus._probe.wait_until_ready`, which
serves external clusters too and is re-exported here).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bus._errors import BrokerError, ConfigurationError
from bus._probe import _probe, wait_until_ready
from bus._settings import BusSettings

__all__ = ["BrokerStatus", "EmbeddedBroker", "render_server_properties", "wait_until_ready"]

POM = Path(__file__).resolve().parent.parent / "docker" / "pom.xml"
# Brokers this process started, by pid: kept so any EmbeddedBroker of this process can reap them,
# and so a detached broker outliving its EmbeddedBroker object is not reported as a leak.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_VERSION = re.compile(r"^4\.\d+\.\d+$")
_JVM_OPTIONS = ("-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")
_LOG4J2 = """\
# Written by the bus: Kafka logs to stdout, which the bus sends to server.log.
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${sys:bus.log.level:-INFO}
rootLogger.appenderRef.stdout.ref = STDOUT
"""


def render_server_properties(*, port: int, controller_port: int, data_dir: Path,
                             security: dict[str, str] | None = None) -> str:
    """The ``server.properties`` of a single-node KRaft cluster (combined broker and controller).

    Replication factors are 1 because there is one node; topics are created by the bus's topic
    specs, never implicitly. ``security`` (from :func:`bus._tls.broker_security_properties`)
    replaces the plain listeners with the secure ones.
    """
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "3",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "delete.topic.enable": "true",
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    settings |= security or {}
    lines = ["# Written by the bus (bus broker start) at every start: edit BUS_* settings instead."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BrokerStatus:
    """What ``bus broker status`` reports: is the broker up, which process, where it answers."""

    running: bool
    pid: int | None
    bootstrap: str
    version: str
    state_dir: Path


class EmbeddedBroker:
    """A single-node Apache Kafka run from jars resolved by Maven, its data under ``state_dir/kafka``.

    Start is idempotent, stop leaves no process of this state directory behind.
    """

    def __init__(self, settings: BusSettings) -> None:
        if not _VERSION.match(settings.kafka_version):
            raise ConfigurationError(
                f"unsupported Kafka version {settings.kafka_version!r}",
                hint="set BUS_KAFKA_VERSION to an Apache Kafka 4.x release such as 4.1.1",
            )
        if settings.broker_port == settings.broker_controller_port:
            raise ConfigurationError(
                f"the broker and controller ports are both {settings.broker_port}",
                hint="set BUS_BROKER_PORT and BUS_BROKER_CONTROLLER_PORT to two different free ports",
            )
        self.settings = settings
        self.version = settings.kafka_version
        self.port = settings.broker_port
        self.controller_port = settings.broker_controller_port
        self.state_dir = Path(settings.state_dir).expanduser().resolve()
        self.home = self.state_dir / "kafka"
        self.data_dir = self.home / "data"
        self.properties = self.home / "server.properties"
        self.log_file = self.home / "server.log"
        self.pid_file = self.home / "kafka.pid"
        self.dist = Path(settings.cache_dir).expanduser().resolve() / f"kafka-{self.version}"
        self.libs = self.dist / "libs"
        self.secure = settings.broker_secure
        self.secure_marker = self.home / "secure"  # written while a secure broker of this state dir runs

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    # jars --------------------------------------------------------------------------------------

    def ensure_jars(self) -> Path:
        """Resolve the Kafka jars with Maven once; return the directory holding them."""
        marker = self.dist / ".resolved"
        if marker.is_file() and self.libs.is_dir():
            return self.libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "Maven (mvn) is not on PATH; it resolves the Kafka jars of the embedded broker",
                hint="install Maven 3.8+ (apt-get install maven) or set BUS_BOOTSTRAP_SERVERS to an existing cluster",
            )
        if not POM.is_file():
            raise ConfigurationError(
                f"the broker pom is missing at {POM}",
                hint="run the embedded broker from a checkout of the bus (docker/pom.xml) or set BUS_BOOTSTRAP_SERVERS",
            )
        self.dist.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.dist.parent / f"kafka-{self.version}.lock"):
            if marker.is_file() and self.libs.is_dir():  # another process resolved while we waited
                return self.libs
            staging = self.dist / "libs.partial"
            shutil.rmtree(staging, ignore_errors=True)
            command = [
                mvn, "-q", "-B", "-f", str(POM), f"-Dkafka.version={self.version}",
                "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
            ]
            result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
            if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
                tail = _tail_text((result.stdout + result.stderr).splitlines(), 15)
                raise BrokerError(
                    f"Maven could not resolve Apache Kafka {self.version} (exit {result.returncode}):\n{tail}",
                    hint="check that Maven Central is reachable and that BUS_KAFKA_VERSION names a released 4.x version",
                    version=self.version,
                )
            shutil.rmtree(self.libs, ignore_errors=True)
            staging.rename(self.libs)
            marker.write_text(self.version + "\n")
        return self.libs

    # lifecycle ---------------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> str:
        """Start the broker unless it runs already; return its bootstrap once it answers."""
        deadline = time.monotonic() + timeout
        self.home.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.home / "start.lock"):  # two `bus broker start` at once start one Kafka
            return self._start(deadline)

    def _start(self, deadline: float) -> str:
        pid = self._live_pid()
        if pid is not None:
            if self.secure != self.secure_marker.is_file():
                running, wanted = ("secure", "plain") if self.secure_marker.is_file() else ("plain", "secure")
                raise BrokerError(f"a {running} broker of this state directory runs already (pid {pid})",
                                  hint=f"stop it (`bus broker stop`) to start it {wanted}", state_dir=self.state_dir)
            _write_atomic(self.pid_file, f"{pid}\n")
            self._wait_ready(pid, deadline)
            return self.bootstrap
        self.pid_file.unlink(missing_ok=True)  # stale: the process is gone
        self._check_ports_free()
        java = _java()
        libs = self.ensure_jars()
        env = None
        if self.secure:
            from bus._tls import broker_security

            security, env = broker_security(self.settings)
            self.secure_marker.write_text("mutual TLS and SCRAM over TLS; ACLs enforced\n")
        else:
            security = None
            self.secure_marker.unlink(missing_ok=True)
        self.properties.write_text(self._server_properties(security))
        log4j = self.home / "log4j2.properties"
        log4j.write_text(_LOG4J2)
        jvm = [java, *_JVM_OPTIONS, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]
        if not (self.data_dir / "meta.properties").is_file():
            self._format(jvm, env)
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_name("server.log.1"))
        with self.log_file.open("ab") as log:
            child = subprocess.Popen(
                [*jvm, "kafka.Kafka", str(self.properties)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.home, start_new_session=True, env=env,
            )
        _CHILDREN[child.pid] = child
        _write_atomic(self.pid_file, f"{child.pid}\n")
        try:
            self._wait_ready(child.pid, deadline)
        except BrokerError:
            self.stop()
            raise
        return self.bootstrap

    def stop(self, timeout: float = 30) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); no-op when it is not running."""
        had_pid_file = self.pid_file.exists()
        pids = set(self._pids_of_state_dir())
        live = self._live_pid()
        if live is not None:
            pids.add(live)
        stopped_some = bool(pids) or had_pid_file
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            if not pids:
                break
            for pid in pids:
                _signal_group(pid, sig)
            deadline = time.monotonic() + wait
            while pids and time.monotonic() < deadline:
                pids = {pid for pid in pids if not self._gone(pid, 0.1)}
        if pids:
            raise BrokerError(
                f"Kafka processes {sorted(pids)} survived SIGKILL", hint="check them with `ps` and kill them by hand",
                state_dir=self.state_dir,
            )
        self.pid_file.unlink(missing_ok=True)
        ports = [self.port, self.controller_port]
        if self.secure_marker.is_file():
            ports.append(self.settings.broker_sasl_port)
            self.secure_marker.unlink()
        if stopped_some:
            # The kernel frees the listening sockets when the JVM's last thread is gone, which
            # can trail the process looking dead in /proc: wait for it, so a restart can bind.
            deadline = time.monotonic() + 10
            while not all(_port_free(p) for p in ports) and time.monotonic() < deadline:
                time.sleep(0.05)

    def status(self) -> BrokerStatus:
        """Whether the broker process of this state directory runs and answers Kafka requests."""
        pid = self._live_pid()
        running = pid is not None and _probe(self.bootstrap, 2.0, self._probe_context()) is None
        return BrokerStatus(running, pid, self.bootstrap, self.version, self.state_dir)

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines Kafka wrote (empty before the first start)."""
        if not self.log_file.is_file():
            return ""
        with self.log_file.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=max(lines, 0)))

    # internals ---------------------------------------------------------------------------------

    def _server_properties(self, security: dict[str, str] | None) -> str:
        """The ``server.properties`` written at every start (a cluster node renders its own)."""
        return render_server_properties(port=self.port, controller_port=self.controller_port,
                                        data_dir=self.data_dir, security=security)

    def _format(self, jvm: list[str], env: dict[str, str] | None) -> None:
        cluster_file = self.home / "cluster.id"
        if not cluster_file.is_file():
            _write_atomic(cluster_file, _new_cluster_id() + "\n")
        cluster_id = cluster_file.read_text().strip()
        command = [*jvm, "-Dbus.log.level=WARN", "kafka.tools.StorageTool", "format",
                   "-t", cluster_id, "-c", str(self.properties), "--ignore-formatted"]
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, env=env)
        if result.returncode != 0:
            tail = _tail_text((result.stdout + result.stderr).splitlines(), 15)
            raise BrokerError(
                f"formatting the Kafka storage failed (exit {result.returncode}):\n{tail}",
                hint=f"if {self.data_dir} holds data of another cluster or version, move it away and start again",
                state_dir=self.state_dir,
            )

    def _wait_ready(self, pid: int, deadline: float) -> None:
        last = "no answer yet"
        while True:
            if not self._process_is_ours(pid):
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"Kafka exited during start-up; last lines of {self.log_file}:\n{self.logs(20).rstrip()}",
                    state_dir=self.state_dir,
                )
            problem = _probe(self.bootstrap, 2.0, self._probe_context())
            if problem is None:
                return
            last = problem
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"Kafka did not answer on {self.bootstrap} in time ({last}); last lines:\n{self.logs(20).rstrip()}",
                    hint="give it more time (bus broker start --timeout) or read `bus broker logs`",
                    state_dir=self.state_dir,
                )
            time.sleep(0.25)

    def _probe_context(self) -> ssl.SSLContext | None:
        """The broker's own TLS identity for probing itself, while a secure broker of this state dir runs."""
        from bus._tls import broker_probe_context

        return broker_probe_context(self.settings) if self.secure or self.secure_marker.is_file() else None

    def _check_ports_free(self) -> None:
        ports = [("broker", self.port), ("controller", self.controller_port)]
        if self.secure:
            ports.append(("SASL", self.settings.broker_sasl_port))
        for name, port in ports:
            try:
                if _port_free(port):
                    continue
            except OSError as exc:
                raise BrokerError(f"cannot bind the {name} port {port}: {exc}", state_dir=self.state_dir) from exc
            who = "a Kafka broker of another state directory" if _probe(f"127.0.0.1:{port}", 1.0) is None else "another process"
            setting = {"broker": "BUS_BROKER_PORT", "SASL": "BUS_BROKER_SASL_PORT"}.get(name, "BUS_BROKER_CONTROLLER_PORT")
            raise BrokerError(
                f"the {name} port 127.0.0.1:{port} is already used by {who}",
                hint=f"stop that process, or set {setting} to a free port (or BUS_STATE_DIR to that broker's directory)",
                port=port,
            )

    def _live_pid(self) -> int | None:
        """The pid of this state directory's running Kafka: the pid file's, else found in /proc."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pid_file.read_text().strip())
            if self._process_is_ours(pid):
                return pid
        servers = [pid for pid in self._pids_of_state_dir() if " kafka.Kafka " in _cmdline(pid)]
        return servers[0] if servers else None

    def _process_is_ours(self, pid: int) -> bool:
        child = _CHILDREN.get(pid)
        if child is not None:
            # our own child: the kernel's wait status is the truth, /proc can lag while it exits
            if child.poll() is None:
                return True
            del _CHILDREN[pid]
            return False
        return _alive(pid) and str(self.properties) in _cmdline(pid)

    def _pids_of_state_dir(self) -> Iterator[int]:
        """Every live process whose command line names this state directory's server.properties."""
        marker = str(self.properties)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and marker in _cmdline(int(entry.name)) and _alive(int(entry.name)):
                yield int(entry.name)

    def _gone(self, pid: int, wait: float) -> bool:
        """Whether ``pid`` has exited, waiting up to ``wait`` seconds (reaping it if it is our child)."""
        child = _CHILDREN.get(pid)
        if child is not None:
            try:
                child.wait(wait)
            except subprocess.TimeoutExpired:
                return False
            del _CHILDREN[pid]
            return True
        if _alive(pid):
            time.sleep(wait)
            return not _alive(pid)
        return True


# helpers -----------------------------------------------------------------------------------------


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").is_file() else shutil.which("java")
    if java is None:
        raise BrokerError(
            "Java is not installed (no java on PATH nor in JAVA_HOME); the embedded Kafka needs Java 17+",
            hint="install a Java 17 runtime (apt-get install openjdk-17-jre-headless) or set BUS_BOOTSTRAP_SERVERS",
        )
    return java


def _new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64, never starting with '-' (as Kafka's)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail_text(lines: list[str], count: int) -> str:
    return "\n".join(lines[-count:]) or "(no output)"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """True while any thread of ``pid`` runs; a zombie (exited, not yet reaped) counts as gone.

    Every thread is looked at because a JVM's main thread turns zombie before its other threads
    have finished exiting, and those still hold the listening sockets.
    """
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        with contextlib.suppress(OSError, IndexError):
            if (task / "stat").read_text().rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}:
                return True
    return False


def _port_free(port: int) -> bool:
    """Whether Kafka could listen on 127.0.0.1:``port`` now (it binds with SO_REUSEADDR, as here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:  # started by us with its own session: stop the whole group
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
