"""Run a command in a private mount namespace, with host paths redirected into the bed.

buildah, containerd and the kubelet write to paths they hard-code (``/var/lib/containers``,
``/run/containerd``, ``/var/lib/kubelet``, ``/var/log/containers``...) even when told where
their state lives. Binding directories of the bed over ``/var/lib``, ``/var/log`` and ``/run``
inside a private mount namespace keeps every such write in the bed, and every mount these
tools make disappears with the namespace instead of leaking into the host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

# Each (source, target) pair is bound in order; "--" ends the pairs and the rest is exec'd.
# Sources are created first, so a fresh bed needs no preparation of its own.
_BIND_THEN_EXEC = (
    'set -e; while [ "$1" != -- ]; do mkdir -p "$1"; mount --bind "$1" "$2"; shift 2; done; '
    'shift; exec "$@"'
)


def host_paths_under(directory: Path) -> dict[Path, Path]:
    """Where ``/var/lib``, ``/var/log`` and ``/run`` point inside the namespace."""
    return {
        directory / "var-lib": Path("/var/lib"),
        directory / "var-log": Path("/var/log"),
        directory / "run": Path("/run"),
    }


def private(
    binds: Mapping[Path, Path], argv: Sequence[str | Path], *, own_pids: bool = False
) -> list[str]:
    """``argv`` wrapped to run in a new mount namespace with ``binds`` (source -> target).

    With ``own_pids`` the command also becomes process 1 of a new PID namespace: when it
    dies, the kernel kills everything started inside (containerd's shims and the pods'
    processes, which detach from their parent), so a killed test run leaves nothing behind.
    """
    flags = ["--mount", "--propagation", "private"]
    if own_pids:
        flags += ["--pid", "--fork", "--kill-child", "--mount-proc"]
    pairs = [str(path) for source, target in binds.items() for path in (source, target)]
    return [
        "unshare",
        *flags,
        "--",
        "sh",
        "-c",
        _BIND_THEN_EXEC,
        "sh",
        *pairs,
        "--",
        *map(str, argv),
    ]
