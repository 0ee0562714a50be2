"""Every command fails with one line on stderr and exit 2: no broker, a missing file, a usage error.

"No broker" is real: the commands are pointed at a TCP port nothing listens on (or at a listener
that never answers), no mock stands in for the network.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus._errors import BrokerUnavailableError
from bus._settings import BusSettings
from bus.client import probe_broker

BUS = [sys.executable, "-c", "from bus.cli import main; main()"]
HINT = "start one with `bus broker start` or set BUS_BOOTSTRAP_SERVERS"


def closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (bound, then released, nothing listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bus(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BUS, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def one_line(out: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (asserting exit 2, nothing else on stderr)."""
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and "Unclosed" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("bus: error: ")
    return lines[0]


@pytest.fixture
def no_broker(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {"BUS_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}", "BUS_STATE_DIR": str(tmp_path / "state"),
           "BUS_SOURCE": "urn:siren:219990017:test"}


@pytest.fixture
def document(tmp_path: Path) -> Path:
    """A file for `bus publish` (which connects before it reads the file)."""
    path = tmp_path / "unite_legale.json"
    path.write_text('{"uniteLegale": {"siren": "026280206"}}')
    return path


@pytest.mark.parametrize("command", [
    ["tail", "invoices"],
    ["tail", "invoices", "--follow"],
    ["verify"],
    ["replay", "invoices"],
    ["trace", "contract:2024-0042"],
    ["dlq", "list"],
    ["dlq", "show", "0"],
    ["dlq", "redrive"],
    ["topics"],
    ["publish", "DOCUMENT"],
    ["evidence", "build", "contract:2024-0042", "--out", "OUT/e.zip"],
    ["ledger", "run"],
    ["ledger", "checkpoint"],
    ["worker"],
    ["worker", "--workers", "2"],
    ["demo"],
    ["keys", "publish"],
    ["keys", "generate", "219990017"],
], ids=" ".join)
def test_no_broker_is_one_line_and_exit_2(command, no_broker, document, tmp_path):
    args = [str(document) if a == "DOCUMENT" else a.replace("OUT", str(tmp_path)) for a in command]
    line = one_line(bus(*args, env=no_broker))
    assert line == f"bus: error: no broker at {no_broker['BUS_BOOTSTRAP_SERVERS']} — {HINT}"


async def test_a_listener_that_never_answers_is_no_broker():
    """Something listens but never speaks Kafka: the probe gives up instead of aiokafka's 40 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = "127.0.0.1:%d" % silent.getsockname()[1]
        with pytest.raises(BrokerUnavailableError) as info:
            await probe_broker(BusSettings(bootstrap_servers=address), timeout_s=0.5)
    assert str(info.value) == f"no broker at {address} — {HINT}"


async def test_the_probe_tries_every_bootstrap_server():
    first, second = closed_port(), closed_port()
    with pytest.raises(BrokerUnavailableError, match=f"127.0.0.1:{first},127.0.0.1:{second}"):
        await probe_broker(BusSettings(bootstrap_servers=f"127.0.0.1:{first},127.0.0.1:{second}"), timeout_s=0.5)


@pytest.mark.parametrize("command", [
    ["adapt", "MISSING"],
    ["adapt", "--terms", "MISSING"],
    ["validate", "MISSING"],
    ["export", "decp", "MISSING"],
    ["publish", "MISSING"],
    ["evidence", "verify", "MISSING"],
], ids=" ".join)
def test_a_missing_file_is_one_line_and_exit_2(command, tmp_path, no_broker):
    missing = tmp_path / "nowhere" / "facture.xml"
    line = one_line(bus(*[str(missing) if a == "MISSING" else a for a in command], env=no_broker))
    assert str(missing) in line and "does not exist" in line


def test_a_directory_given_as_a_file_is_one_line(tmp_path):
    assert "is a directory" in one_line(bus("adapt", str(tmp_path)))


@pytest.mark.parametrize("args", [["adapt", "--bogus"], ["no-such-command"], ["dlq", "show"]], ids=" ".join)
def test_usage_errors_are_one_line(args):
    line = one_line(bus(*args))
    assert "--help" in line


def test_half_a_gateway_tls_configuration_is_one_line(tmp_path, no_broker):
    """A server certificate without the site CA would serve plain HTTP: refused before anything starts."""
    line = one_line(bus("gateway", env={**no_broker, "BUS_GATEWAY_TLS_CERTFILE": str(tmp_path / "gateway.crt")}))
    assert "BUS_GATEWAY_TLS_CERTFILE and BUS_GATEWAY_TLS_CAFILE go together" in line


def test_unreadable_gateway_tls_files_are_one_line(tmp_path, no_broker):
    from bus._pki import CertificateAuthority

    ca = CertificateAuthority.init(tmp_path / "pki")
    issued = ca.issue_server("gateway", tmp_path / "gateway", hosts=("127.0.0.1",))
    env = {**no_broker, "BUS_GATEWAY_TLS_CERTFILE": str(issued.certfile),
           "BUS_GATEWAY_TLS_KEYFILE": str(tmp_path / "missing.key"), "BUS_GATEWAY_TLS_CAFILE": str(ca.cafile)}
    line = one_line(bus("gateway", "--host", "0.0.0.0", env=env))
    assert "TLS files cannot be loaded" in line and "BUS_GATEWAY_TLS_CERTFILE" in line


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("BUS_BROKER_PORT", "abc", "valid integer"),
    ("BUS_RECIPIENT_POLICY", "payroll=130000001", "the flows are acts"),
    ("BUS_RECIPIENT_POLICY", "archives=12", "SIRENs of 9 digits"),
    ("BUS_FETCH_MAX_BYTES", "10", "greater than or equal to 1024"),
])
def test_a_setting_that_does_not_parse_is_one_line_naming_it(name, value, expected):
    line = one_line(bus("topics", env={name: value}))
    assert line.startswith(f"bus: error: {name}: ") and expected in line and repr(value) in line


def test_a_secret_setting_that_does_not_parse_is_not_echoed():
    line = one_line(bus("topics", env={"BUS_SASL_MECHANISM": "SCRAM-SHA-512", "BUS_SSL_KEY_PASSWORD": "",
                                       "BUS_BROKER_SASL_PORT": "x", "BUS_SASL_PASSWORD": "hunter2"}))
    assert "BUS_BROKER_SASL_PORT" in line and "hunter2" not in line
