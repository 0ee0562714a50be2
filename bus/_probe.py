"""Is a Kafka broker there? A real Kafka request, spoken on a plain (or TLS) socket, or aiokafka.

:func:`wait_until_ready` polls ``bootstrap`` until a broker answers ApiVersions then Metadata
listing a live broker (the embedded broker's start-up, external clusters, the test session);
with SSL or SASL settings it asks through aiokafka with those credentials, and a refusal (a
certificate, a password) fails at once with the setting to check instead of waiting.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time

from bus._errors import BrokerError, ConfigurationError
from bus._settings import BusSettings

__all__ = ["wait_until_ready"]


def wait_until_ready(bootstrap: str, timeout: float = 60, *, settings: BusSettings | None = None) -> None:
    """Poll ``bootstrap`` (``host:port,...``) until a Kafka broker answers, or raise BrokerError.

    With ``settings`` using SSL or SASL the check goes through aiokafka with those credentials;
    otherwise a Metadata request is spoken on a plain socket.
    """
    secured = settings is not None and settings.security_protocol != "PLAINTEXT"
    deadline = time.monotonic() + timeout
    while True:
        problem = _probe_secured(bootstrap, settings) if secured and settings else _probe_any(bootstrap)
        if problem is None:
            return
        if secured and settings:
            from bus._tls import explain_failure

            refused = explain_failure(settings.model_copy(update={"bootstrap_servers": bootstrap}))
            if refused is not None:  # a refusal does not heal by waiting
                raise refused
        if time.monotonic() >= deadline:
            raise BrokerError(
                f"no Kafka broker answered at {bootstrap} within {timeout:g}s ({problem})",
                hint="start it with `bus broker start`, or check BUS_BOOTSTRAP_SERVERS and the network",
                bootstrap=bootstrap,
            )
        time.sleep(0.25)


# helpers -----------------------------------------------------------------------------------------


def _split_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for item in filter(None, (part.strip() for part in bootstrap.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(f"bad bootstrap server {item!r}", hint="write it host:port, several separated by commas")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ConfigurationError("no bootstrap server given", hint="set BUS_BOOTSTRAP_SERVERS to host:port[,host:port]")
    return out


def _probe_any(bootstrap: str) -> str | None:
    problems = [_probe(f"{host}:{port}", 2.0) for host, port in _split_bootstrap(bootstrap)]
    return None if None in problems else "; ".join(p for p in problems if p)


def _probe(address: str, timeout: float, context: ssl.SSLContext | None = None) -> str | None:
    """None when a Kafka broker at ``address`` answers ApiVersions and Metadata; else what failed.

    With ``context`` the request goes over TLS (the secure broker's SSL listener).
    """
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw, \
                (context.wrap_socket(raw, server_hostname=host.strip("[]")) if context else raw) as sock:
            versions = _api_versions(sock)
            low, high = versions.get(3, (0, -1))  # 3 = Metadata
            usable = [v for v in range(1, 9) if low <= v <= high]
            if usable and _metadata_brokers(sock, max(usable)) == 0:
                return "the broker reports no live broker yet"
            return None
    except (OSError, struct.error, ValueError) as exc:
        return f"{address}: {exc or type(exc).__name__}"


def _request(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    client = b"dcant-bus-probe"
    header = struct.pack(">hhih", api_key, version, 7, len(client)) + client
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", _read(sock, 4))
    response = _read(sock, size)
    if struct.unpack(">i", response[:4])[0] != 7:
        raise ValueError("the answer does not match the request")
    return response[4:]


def _read(sock: socket.socket, size: int) -> bytes:
    if size < 0 or size > 64 * 1024 * 1024:
        raise ValueError("not a Kafka answer")
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 65536))
        if not chunk:
            raise ValueError("connection closed by the server")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _api_versions(sock: socket.socket) -> dict[int, tuple[int, int]]:
    body = _request(sock, 18, 0, b"")
    error, count = struct.unpack_from(">hi", body, 0)
    if error:
        raise ValueError(f"ApiVersions error code {error}")
    return {key: (low, high) for key, low, high in struct.iter_unpack(">hhh", body[6 : 6 + 6 * count])}


def _metadata_brokers(sock: socket.socket, version: int) -> int:
    """Send Metadata (v1..v8, no topics) and return how many brokers the answer lists."""
    body = struct.pack(">i", 0)  # an empty topic list: cluster metadata only
    if version >= 4:
        body += b"\x00"  # allow_auto_topic_creation
    if version >= 8:
        body += b"\x00\x00"  # include authorized operations
    answer = _request(sock, 3, version, body)
    offset = 4 if version >= 3 else 0  # throttle_time_ms
    (count,) = struct.unpack_from(">i", answer, offset)
    return count


def _probe_secured(bootstrap: str, settings: BusSettings) -> str | None:
    """Probe through aiokafka (SSL / SASL), on a private event loop in its own thread."""
    outcome: list[str | None] = []

    async def describe() -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        from bus._tls import client_ssl_context

        options = settings.kafka_security()
        options["ssl_context"] = client_ssl_context(settings)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
        try:
            await admin.start()
            await admin.describe_cluster()
            outcome.append(None)
        finally:
            await admin.close()

    def run() -> None:
        from bus._tls import run_own_loop

        try:
            run_own_loop(describe())
        except Exception as exc:  # any failure means "not ready yet"; only its class is kept (no secrets)
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=run, name="bus-kafka-probe", daemon=True)
    thread.start()
    thread.join(30)
    return outcome[0] if outcome else "no answer within 30s"
