"""Supervised local processes: start with a log file, wait until ready, stop.

Each process runs in its own session so that a Ctrl-C in the terminal reaches
only the test runner, which then stops the bed in order; a crashed or slow
process is reported with the end of its log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .toolchain import BedError, cache_root, say, tail

STOP_GRACE_SECONDS = 10.0
_detached = False


def keep_running_after_exit() -> None:
    """For ``python -m tests.testbed up``: what it starts must outlive it.

    Otherwise every process is recorded under the pid of the process that started
    it, and ``reap_orphans`` stops those whose starter is gone, so a test session
    that was killed outright leaves no stray control plane or broker behind.
    """
    global _detached
    _detached = True


def _owners() -> Path:
    return cache_root() / "owners"


def _record(pid: int) -> None:
    """Remember a child as ours, with its start time so a reused pid is never taken for it."""
    owners = _owners()
    owners.mkdir(parents=True, exist_ok=True)
    with (owners / f"{os.getpid()}.json").open("a") as record:
        record.write(json.dumps({"pid": pid, "created": psutil.Process(pid).create_time()}) + "\n")


def reap_orphans() -> None:
    """Stop the process groups of earlier sessions that died without stopping their bed."""
    for record in _owners().glob("*.json"):
        if psutil.pid_exists(int(record.stem)):
            continue
        for line in record.read_text().splitlines():
            child = json.loads(line)
            with contextlib.suppress(psutil.NoSuchProcess):
                if psutil.Process(child["pid"]).create_time() == child["created"]:
                    say(f"stopping pid {child['pid']}, left behind by session {record.stem}")
                    kill(child["pid"])
        record.unlink(missing_ok=True)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_ok(url: str, context: ssl.SSLContext | None = None) -> Callable[[], bool]:
    """A readiness probe: true once ``url`` answers 200."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
            return False

    return probe


def serves_tls(port: int, ca: Path) -> bool:
    """Whether 127.0.0.1:``port`` completes a TLS handshake with a certificate ``ca`` signed."""
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as sock,
            context.wrap_socket(sock, server_hostname="127.0.0.1"),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


def insecure_tls() -> ssl.SSLContext:
    """Controllers serve health checks on self-signed certs; only liveness matters here."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class Process:
    """One long-running component of the bed."""

    name: str
    argv: Sequence[str | Path]
    log: Path
    env: dict[str, str] | None = None
    grace_seconds: float = STOP_GRACE_SECONDS
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as sink:
            self.popen = subprocess.Popen(
                [str(arg) for arg in self.argv],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        if not _detached:
            _record(self.popen.pid)
        return self

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> Process:
        """Poll ``probe`` until it passes; fail early if the process dies."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.popen is not None and self.popen.poll() is not None:
                raise BedError(
                    f"{self.name} exited with code {self.popen.returncode} while starting; "
                    f"last lines of {self.log}:\n{tail(self.log)}"
                )
            if probe():
                say(f"{self.name} ready in {time.monotonic() - started:.1f}s")
                return self
            time.sleep(0.2)
        raise BedError(
            f"{self.name} was not ready after {timeout:.0f}s; last lines of {self.log}:\n"
            f"{tail(self.log)}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; safe to call twice."""
        if self.popen is None or self.popen.poll() is not None:
            return
        terminate(self.popen.pid)
        try:
            self.popen.wait(timeout=self.grace_seconds)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL at once, like a crashed or evicted pod; safe to call twice."""
        if self.popen is None or self.popen.poll() is not None:
            return
        kill(self.popen.pid)
        self.popen.wait()


def terminate(pid: int) -> None:
    """Send SIGTERM to a process group, ignoring one that is already gone."""
    _signal_group(pid, signal.SIGTERM)


def kill(pid: int) -> None:
    """Send SIGKILL to a process group, ignoring one that is already gone."""
    _signal_group(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs: a zombie nobody has reaped yet has stopped running.

    A bed started by the CLI outlives its starter, so its processes end as orphans, and
    whoever adopts them may reap them late or never.
    """
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for ``pids`` to stop; return those still running."""
    deadline = time.monotonic() + timeout
    while (running := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return running


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)
