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
from .processes import Process, free_port
from .toolchain import require

START_TIMEOUT_SECONDS = 60.0


def forwarder(name: str, listen_port: int, target: str, log: Path) -> Process:
    """A TCP forwarder from ``bridge.ADDRESS:listen_port`` to ``target`` (host:port)."""
    return Process(
        name,
        [
            require("socat", "forward ports to the real node's bridge"),
            f"TCP-LISTEN:{listen_port},bind={bridge.ADDRESS},fork,reuseaddr",
            f"TCP:{target}",
        ],
        log,
    )


def start_forwarders(
    api_server: tuple[str, int], kafka: tuple[int, int], logs: Path, started: list[Process]
) -> int:
    """Forward the API server (host, port) and Kafka (bridge port, loopback port) to the
    bridge, appending each process to ``started``; return the API server's bridge port."""
    api_port = free_port()
    host, port = api_server
    kafka_port, kafka_listener = kafka
    routes = (
        (
            forwarder("api-forwarder", api_port, f"{host}:{port}", logs / "api-forwarder.log"),
            api_port,
        ),
        (
            forwarder(
                "kafka-forwarder",
                kafka_port,
                f"127.0.0.1:{kafka_listener}",
                logs / "kafka-forwarder.log",
            ),
            kafka_port,
        ),
    )
    for process, listen_port in routes:
        started.append(process.start())
        process.wait_ready(
            lambda listen_port=listen_port: listening(bridge.ADDRESS, listen_port),
            START_TIMEOUT_SECONDS,
        )
    return api_port


def listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at ``host:port`` now."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
