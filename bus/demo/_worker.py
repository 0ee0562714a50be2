"""The processors of the demo: ``bus worker`` as a child process with the demo's settings.

:class:`DemoWorker` starts ``bus worker`` (every core of :data:`processors.CORES`) on the
demo's cluster and topic prefix, signing as the bus operator, with a demo pseudonymisation
secret, the archives service added to the addressed events of the archives flow
(``BUS_RECIPIENT_POLICY``), with the archiving profile bank (``BUS_ARCHIVE_PROFILE_BANK``), on event time (``--clock event``): the demo plays 2025, so each state's timers follow
the stream's dates (a payment deadline is announced on its day, late interest is computed at
the payment), and once the demo's stream falls silent (``--idle 20``, 5 for the fault trials) time catches up with the
wall clock day by day, which is when the retention periods of the dossiers closed in 2025 start
and their archive transfers are requested. ``start`` returns once the worker's consumer group
is stable with a member, and fails early with the worker's log when the process exits; ``stop``
sends SIGTERM and waits, killing the process only when it does not stop in time. Used as an async context manager, an
error in the demo still stops (or kills) the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from aiokafka.errors import KafkaError

from bus._errors import BusError, DeliveryError
from bus._settings import BusSettings
from bus._wire import Record

from ._data import ADMINISTRATIONS

__all__ = ["DEMO_PSEUDONYMISATION_SECRET", "DemoWorker", "WorkerError"]

#: Seconds a stream stays silent before the worker's time follows the wall clock (the fault trials' worker).
IDLE_SECONDS = 5
#: The demo's: its phases wait for the worker's answers, and on a loaded machine such a wait passed 5 s; time
#: then followed the wall clock mid-demo, an act executory in 2025 was dated today, its retention started at
#: the end of this year, and its transfer never came (seen: 2 dossiers archived of 3).
DEMO_IDLE_SECONDS = 20

#: The demo's secret for pseudonymising names in published acts: fictional data, public secret.
DEMO_PSEUDONYMISATION_SECRET = "demo-only-secret-of-saint-exemple-sur-loire-0123456789abcdef"
POLL_SECONDS = 0.5  # interval between two checks of a condition on the broker


class WorkerError(BusError):
    """The demo's worker did not start, stopped unexpectedly, or did not handle a record in time."""

    default_hint = "read the worker's log quoted above"


class DemoWorker:
    """``bus worker`` in a child process for the time of the demo."""

    def __init__(self, settings: BusSettings, *, source: str, log_path: Path, metrics_port: int | None = None,
                 profile_bank: bool = False, idle: float = IDLE_SECONDS) -> None:
        self.settings = settings
        self.profile_bank = profile_bank  # the demo publishes and approves its profiles first (bus.demo._profiles)
        self.idle = idle
        self.metrics_port = metrics_port  # `bus demo --metrics-port`: the worker serves /metrics there
        self.source = source
        self.log_path = log_path
        self.group = f"{settings.topic_prefix}{settings.consumer_group}"  # faust's app id is its group
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_status: int | None = None
        self.killed = False  # True when it had to be killed rather than stopped
        self._log: IO[bytes] | None = None

    def environment(self) -> dict[str, str]:
        """The worker's environment: the caller's, with the demo's cluster, identity and secret."""
        s = self.settings
        env = {**os.environ,
               "BUS_TOPIC_PREFIX": s.topic_prefix, "BUS_STATE_DIR": str(s.state_dir),
               "BUS_KEYS_DIR": str(s.resolved_keys_dir), "BUS_CONTENT_STORE": s.resolved_content_store,
               "BUS_SOURCE": self.source, "BUS_CONSUMER_GROUP": s.consumer_group,
               "BUS_PSEUDONYMISATION_SECRET": DEMO_PSEUDONYMISATION_SECRET,
               # What the worker derives from an addressed dossier for the archives flow (the closing, the
               # transfer) is encrypted to the archives service as well: the demo's flow policy.
               "BUS_RECIPIENT_POLICY": f"archives={ADMINISTRATIONS['archives']['siren']}",
               # Transfers follow the profile version the archives service approved on the bank and go to the
               # service the directory assigns to the collectivity (published by bus.demo._profiles).
               "BUS_ARCHIVE_PROFILE_BANK": "true" if self.profile_bank else "false"}
        # The embedded broker is reached through its port; the child must aim at the same cluster.
        env["BUS_BOOTSTRAP_SERVERS"] = s.bootstrap
        env.pop("BUS_KEY_ID", None)  # the worker signs with the operator's newest key
        if s.security_protocol != "PLAINTEXT":  # its own certificate (User:worker) on the secure broker
            env["BUS_SECURITY_PROTOCOL"] = s.security_protocol
            env |= {f"BUS_SSL_{name.upper()}": str(value) for name, value in
                    (("cafile", s.ssl_cafile), ("certfile", s.ssl_certfile), ("keyfile", s.ssl_keyfile))
                    if value is not None}
            if s.ssl_key_password is not None:
                env["BUS_SSL_KEY_PASSWORD"] = s.ssl_key_password.get_secret_value()
        return env

    def command(self) -> list[str]:
        metrics = ["--metrics-port", str(self.metrics_port)] if self.metrics_port is not None else []
        return [sys.executable, "-m", "bus.cli._worker", "worker", "--clock", "event", "--timer-interval", "1",
                "--idle", f"{self.idle:g}", *metrics]

    async def __aenter__(self) -> DemoWorker:
        await self.start()
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        await self.stop(kill=exc_type is not None)

    async def start(self, *, timeout: float = 180) -> None:
        """Start the worker and return once it has joined its consumer group."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        # A worker killed by an earlier run stays a member until its session times out: the new
        # one has joined when the group is stable with members that were not there before.
        earlier = (await self._members())[1]
        self.process = subprocess.Popen(self.command(), env=self.environment(), stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

        async def joined() -> bool:
            state, members = await self._members()
            return state == "Stable" and bool(members) and not members & earlier

        try:
            await self._poll(joined, "the worker to join its consumer group", timeout)
        except BaseException:  # a timeout, Ctrl-C, SIGTERM: ``async with`` calls no __aexit__ when entering fails
            await self.stop(kill=True)
            raise

    async def _members(self) -> tuple[str | None, set[str]]:
        """The group's state and member ids (None and nothing when the coordinator does not answer)."""
        from bus.client import admin_client

        admin = admin_client(self.settings)
        try:
            await admin.start()
            described = await admin.describe_consumer_groups([self.group])
        except KafkaError:
            return None, set()  # the coordinator may not be ready yet: ask again
        finally:
            await admin.close()
        for response in described:
            for group in getattr(response, "groups", ()):
                # DescribeGroups v0-v5: (error_code, group_id, state, protocol_type, protocol, members, ...)
                if group[1] == self.group:
                    return group[2], {member[0] for member in group[5]}
        return None, set()

    async def handled(self, record: Record, what: str, *, timeout: float = 180) -> None:
        """Wait until the worker committed past ``record``: it handled the event (and its outputs are out)."""
        from ._stage import committed

        async def done() -> bool:
            try:
                return await committed(self.settings, self.group, record)
            except DeliveryError:
                return False  # the coordinator may be moving: ask again

        await self._poll(done, what, timeout)

    async def _poll(self, check, what: str, timeout: float) -> None:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await check():
            self.assert_alive()
            if loop.time() > deadline:
                raise WorkerError(f"timed out after {timeout:.0f} s waiting for {what}", log=str(self.log_path))
            await asyncio.sleep(POLL_SECONDS)  # poll interval of a condition on the broker

    def assert_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise WorkerError(f"the worker exited with status {self.process.returncode}:\n{self.log_tail()}",
                              log=str(self.log_path))

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    async def stop(self, *, kill: bool = False, timeout: float = 30) -> int | None:
        """SIGTERM and wait (kill after ``timeout``, or at once with ``kill``); the exit status."""
        process, self.process = self.process, None
        try:
            if process is None:
                return None
            if process.poll() is None:
                if kill:
                    process.kill()
                else:
                    process.send_signal(signal.SIGTERM)
            self.killed = kill
            try:
                self.exit_status = await asyncio.to_thread(process.wait, timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                process.kill()
                self.exit_status = await asyncio.to_thread(process.wait, 30)
            return self.exit_status
        finally:
            if self._log is not None:
                with contextlib.suppress(OSError):
                    self._log.close()
                self._log = None
