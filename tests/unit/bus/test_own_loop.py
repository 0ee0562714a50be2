"""``bus._tls.run_own_loop``: a private event loop that closes the TLS sockets aiokafka leaves shutting down.

A TLS peer that never answers the close_notify (a broker that has just refused a login) keeps a
closed connection in its shutdown for up to 30 s. ``asyncio.run`` closes the loop over it and leaves
the socket open until a garbage collection (a ResourceWarning that failed an unrelated test in CI);
``run_own_loop`` closes it before returning.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bus._pki import CertificateAuthority
from bus._tls import run_own_loop


def _open_sockets() -> set[str]:
    found = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:"):
            found.add(link)
    return found


@pytest.fixture
def silent_tls_peer(tmp_path) -> Iterator[tuple[int, ssl.SSLContext, Callable[[], set[str]]]]:
    """A TLS server on loopback that completes the handshake, then never reads nor answers again;
    (its port, a client context, and the server's own sockets, to tell them from the client's)."""
    ca = CertificateAuthority.init(tmp_path / "ca")
    server = ca.issue_server("peer", tmp_path / "peer", hosts=("127.0.0.1",))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server.certfile, server.keyfile)
    listener = socket.create_server(("127.0.0.1", 0))
    kept: list[socket.socket] = []
    done = threading.Event()

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            if done.is_set():
                raw.close()
                return
            try:
                kept.append(context.wrap_socket(raw, server_side=True))  # handshake, then silence
            except OSError:
                raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = ssl.create_default_context(cafile=str(server.cafile))

    def own() -> set[str]:
        return {f"socket:[{os.fstat(sock.fileno()).st_ino}]" for sock in (listener, *kept) if sock.fileno() != -1}

    try:
        yield listener.getsockname()[1], client, own
    finally:
        done.set()
        socket.create_connection(listener.getsockname()).close()  # wakes the accept() to see it is done
        thread.join(10)
        listener.close()
        for sock in kept:
            sock.close()


async def _connect_and_close(port: int, context: ssl.SSLContext) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
    writer.close()  # as aiokafka's close(): the TLS shutdown starts, nobody waits for it


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning", "ignore::ResourceWarning")
def test_asyncio_run_leaves_the_socket_of_a_shutting_down_tls_connection_open(silent_tls_peer):
    """The defect, shown: what run_own_loop is for."""
    port, context, server_side = silent_tls_peer
    gc.disable()
    try:
        before = _open_sockets()
        asyncio.run(_connect_and_close(port, context))
        left = _open_sockets() - before - server_side()
        assert left, "asyncio.run closed the socket: the peer answered the shutdown"
    finally:
        gc.enable()
        gc.collect()  # the ResourceWarning of that socket, here and now (filtered below)


def test_run_own_loop_closes_it_before_returning(silent_tls_peer):
    port, context, server_side = silent_tls_peer
    gc.disable()
    try:
        before = _open_sockets()
        run_own_loop(_connect_and_close(port, context))
        assert _open_sockets() - before - server_side() == set()
    finally:
        gc.enable()
