"""The Linux bridge the real node's pods live on: the only network besides loopback.

The bed creates it with an address of its own, so the host (Kafka's bridge listener, the
API server's forwarder, Prometheus scraping pods) and the pods reach each other. The CNI
configuration never makes it a gateway: pods get no default route and no NAT, and
``ip_forward`` is never touched, so nothing a pod sends can leave the machine.
"""

from __future__ import annotations

import ipaddress
import subprocess

from .toolchain import BedError, capture, require

NAME = "sdnode0"
SUBNET = ipaddress.ip_network("10.244.0.0/24")
ADDRESS = "10.244.0.1"
POD_RANGE = ("10.244.0.10", "10.244.0.250")


def exists() -> bool:
    return (
        subprocess.run(
            ["ip", "link", "show", "dev", NAME], capture_output=True, check=False
        ).returncode
        == 0
    )


def create() -> None:
    """Add the bridge with the host's address on it; refuse if it is already there."""
    ip = require("ip", "create the real node's bridge (iproute2)")
    if exists():
        raise BedError(
            f"the bridge {NAME} exists already: another bed runs a real node on this machine "
            "(stop it first, e.g. make demo-down), or one was left behind (ip link del "
            f"{NAME})"
        )
    capture([ip, "link", "add", NAME, "type", "bridge"], f"ip link add {NAME}")
    capture(
        [ip, "addr", "add", f"{ADDRESS}/{SUBNET.prefixlen}", "dev", NAME], f"ip addr add {NAME}"
    )
    capture([ip, "link", "set", NAME, "up"], f"ip link set {NAME} up")


def delete() -> None:
    """Remove the bridge (its route goes with it); nothing to do when it is gone."""
    if exists():
        capture(["ip", "link", "del", NAME], f"ip link del {NAME}")
