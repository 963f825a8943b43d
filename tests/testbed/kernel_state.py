"""What the kubelet changes in the host kernel, recorded before it starts and put back after.

The kubelet tunes sysctls to its liking, adds iptables chains (its canaries and a firewall
rule) and creates the ``kubepods`` cgroup tree in every hierarchy. None of that is in the
bed's directories, so the bed records the state first and restores it when the node stops.
The record is also kept on disk, so a run that was killed is cleaned up by the next one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .toolchain import BedError, say

# The kubelet's "kernel tunables" (setupKernelTunables in its container manager).
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
IPTABLES = ("iptables", "ip6tables")
TABLES = ("filter", "nat", "mangle")
CGROUPS = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"
CGROUP_EMPTY_SECONDS = 20.0


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def _rules(tool: str, table: str) -> list[str]:
    """``iptables -S`` of one table: chain declarations and rules, one per line."""
    result = subprocess.run([tool, "-t", table, "-S"], capture_output=True, text=True, check=False)
    return result.stdout.splitlines() if result.returncode == 0 else []


def _kubepods() -> list[str]:
    return sorted(str(path) for path in CGROUPS.glob(f"*/{KUBEPODS}"))


@dataclass
class KernelState:
    """Sysctl values, iptables rules per (tool, table) and the kubepods cgroups there were."""

    sysctls: dict[str, str]
    rules: dict[str, list[str]]
    cgroups: list[str]

    @classmethod
    def record(cls) -> KernelState:
        sysctls = {key: _sysctl_path(key).read_text().strip() for key in SYSCTLS}
        rules = {
            f"{tool} {table}": _rules(tool, table)
            for tool in IPTABLES
            if shutil.which(tool)
            for table in TABLES
        }
        return cls(sysctls=sysctls, rules=rules, cgroups=_kubepods())

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> KernelState:
        return cls(**json.loads(path.read_text()))

    def restore(self) -> None:
        """Put back what changed since ``record``; call once the kubelet's pods are gone."""
        for key, value in self.sysctls.items():
            if _sysctl_path(key).read_text().strip() != value:
                _sysctl_path(key).write_text(value)
        for tool_table, before in self.rules.items():
            tool, table = tool_table.split()
            for command in revert_commands(before, _rules(tool, table)):
                subprocess.run([tool, "-t", table, *command], capture_output=True, check=False)
        for cgroup in sorted(set(_kubepods()) - set(self.cgroups)):
            _remove_cgroup_tree(Path(cgroup))


def revert_commands(before: list[str], after: list[str]) -> list[list[str]]:
    """iptables arguments that take the rule set ``after`` back to ``before``.

    New rules are deleted first, then the new chains are flushed (rules inside them) and
    removed, so a jump into a new chain never blocks its removal.
    """
    known = set(before)
    added = [line for line in after if line not in known]
    rules = [["-D", *shlex.split(line)[1:]] for line in added if line.startswith("-A ")]
    chains = [shlex.split(line)[1] for line in added if line.startswith("-N ")]
    return rules + [["-F", chain] for chain in chains] + [["-X", chain] for chain in chains]


def _remove_cgroup_tree(root: Path) -> None:
    """rmdir a cgroup tree bottom-up, waiting for the last tasks of killed pods to exit."""
    deadline = time.monotonic() + CGROUP_EMPTY_SECONDS
    while root.exists():
        for directory, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
            with contextlib.suppress(OSError):
                os.rmdir(directory)
        if root.exists() and time.monotonic() > deadline:
            raise BedError(f"cgroup {root} still has tasks {CGROUP_EMPTY_SECONDS:.0f}s after stop")
        time.sleep(0.2 if root.exists() else 0)
    say(f"removed cgroup {root}")
