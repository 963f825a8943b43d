"""Prerequisites, the cache directory and long-running build commands.

The first bed start compiles Kubernetes and etcd from source, which takes
minutes; everything here exists so that this is visible (heartbeat lines),
repeatable (a versioned cache) and fails with a message that names what is
missing rather than a stack trace.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import versions

HEARTBEAT_SECONDS = 20.0
PR_SET_PDEATHSIG = 1


class BedError(RuntimeError):
    """A test bed failure with a message meant for a person, not a traceback."""


def say(message: str) -> None:
    """Progress goes to stderr so pytest's captured stdout does not swallow it."""
    print(f"[testbed] {message}", file=sys.stderr, flush=True)


def require(tool: str, purpose: str) -> str:
    """Return the path of ``tool`` or explain which prerequisite is missing."""
    path = shutil.which(tool)
    if path is None:
        raise BedError(
            f"prerequisite '{tool}' not found on PATH: it is needed to {purpose}. "
            "See README.md, section 'Prerequisites'."
        )
    return path


def cache_root() -> Path:
    """Versioned cache root; SCALINGDEMO_CACHE overrides the default location."""
    base = os.environ.get("SCALINGDEMO_CACHE") or Path.home() / ".cache" / "scalingdemo"
    return Path(base) / f"testbed-{versions.CACHE_LAYOUT}"


def go_env() -> dict[str, str]:
    """Environment for go commands: static binaries, the machine's own toolchain."""
    env = dict(os.environ)
    env.update({"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false"})
    return env


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path,
    what: str,
) -> None:
    """Run a build step, logging to ``log`` and printing a heartbeat while it runs.

    ``go build -v`` prints one line per package, so the heartbeat can say how far
    along a long compile is instead of leaving a silent terminal for minutes.
    """
    started = time.monotonic()
    lines = 0
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as sink:
        process = subprocess.Popen(
            [str(arg) for arg in argv],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=die_with_parent,
        )
        assert process.stdout is not None
        with _heartbeat(what, started, lambda: lines):
            for line in process.stdout:
                sink.write(line)
                lines += 1
        code = process.wait()
    if code != 0:
        raise BedError(f"{what} failed (exit {code}); last lines of {log}:\n{tail(log)}")
    say(f"{what}: done in {time.monotonic() - started:.0f}s")


def wait_until(check: Callable[[], bool], timeout: float, failure: str) -> None:
    """Poll ``check`` every 0.2 s; raise ``failure`` if it is still false after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BedError(failure)
        time.sleep(0.2)


def die_with_parent() -> None:
    """Have the kernel kill this child when its parent dies (Linux ``PR_SET_PDEATHSIG``).

    A killed test session must not leave a build running that a later session,
    taking the build lock, would race against. The signal follows the thread that
    started the child, so builds are started from the main thread.
    """
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@contextmanager
def _heartbeat(what: str, started: float, progress: Callable[[], int]) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            elapsed = time.monotonic() - started
            say(f"{what}: still running after {elapsed:.0f}s ({progress()} lines of output)")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def capture(argv: Sequence[str | Path], what: str) -> str:
    """Run a short command and return its output; failure raises with its stderr."""
    result = subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BedError(f"{what} failed: {result.stderr.strip()}")
    return result.stdout


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for error messages."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(content[-lines:])
