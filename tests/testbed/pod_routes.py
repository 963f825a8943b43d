"""How pods on the real node reach Kafka and the API server: through the bed's bridge.

There is no kube-proxy, so Service ClusterIPs do not route, and a pod's loopback is its own.
Both services keep listening on the host's loopback only; a forwarder (socat) on the bridge
address passes each connection through untouched, so nothing is exposed beyond the bed:

- Kafka has a listener for pods on loopback that advertises the forwarder's address
  (``KafkaBroker.pod_bootstrap``), so clients on the bridge are sent back to the bridge.
- The API server's serving certificate names the bridge address, so in-cluster clients
  pointed there by ``KUBERNETES_SERVICE_HOST``/``_PORT`` verify it as usual. Binding the API
  server itself to every interface would expose it beyond the bed.
"""

from __future__ import annotations

import socket
from pathlib import Path

from . import bridge
from .component import Component
from .toolchain import require


class Forwarder(Component):
    """A TCP forwarder from ``bridge.ADDRESS:listen_port`` to ``target`` (host:port)."""

    start_timeout = 60.0

    def __init__(self, run_dir: Path, name: str, listen_port: int, target: str) -> None:
        self.name = name
        super().__init__(run_dir)
        self.listen_port = listen_port
        self.target = target

    def command(self) -> list[str | Path]:
        return [
            require("socat", "forward ports to the real node's bridge"),
            f"TCP-LISTEN:{self.listen_port},bind={bridge.ADDRESS},fork,reuseaddr",
            f"TCP:{self.target}",
        ]

    def ready(self) -> bool:
        return listening(bridge.ADDRESS, self.listen_port)


def listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at ``host:port`` now."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
