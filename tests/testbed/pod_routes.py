"""How pods on the real node reach Kafka and the API server: through the bed's bridge.

There is no kube-proxy, so Service ClusterIPs do not route, and pods have no way to
loopback of the host. Both services are therefore offered on the bridge address:

- Kafka gets a second listener there, advertised as itself; clients on the host keep using
  the loopback listener.
- The API server keeps serving on loopback only; a forwarder (socat) listens on the bridge
  address and passes TLS through untouched. The serving certificate names the bridge address,
  so in-cluster clients pointed there by ``KUBERNETES_SERVICE_HOST``/``_PORT`` verify it.
  Binding the API server itself to every interface would expose it beyond the bed.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from . import bridge
from .kafka import KafkaBroker
from .processes import Process, free_port
from .toolchain import require, wait_until

KAFKA_LISTENER = "BRIDGE"
START_TIMEOUT_SECONDS = 60.0


def read_properties(path: Path) -> dict[str, str]:
    """A Java properties file of ``key=value`` lines, as the bed writes Kafka's."""
    pairs = (
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def bridge_listener_settings(properties: dict[str, str], port: int) -> dict[str, str]:
    """The broker's listener settings with a plaintext listener on the bridge added."""
    listener = f"{KAFKA_LISTENER}://{bridge.ADDRESS}:{port}"
    return {
        "listeners": f"{properties['listeners']},{listener}",
        "advertised.listeners": f"{properties['advertised.listeners']},{listener}",
        "listener.security.protocol.map": (
            f"{properties['listener.security.protocol.map']},{KAFKA_LISTENER}:PLAINTEXT"
        ),
    }


def add_kafka_listener(broker: KafkaBroker) -> str:
    """Restart the broker with a listener on the bridge; return the bootstrap pods use.

    Kafka takes new listeners at runtime but not a new ``advertised.listeners`` (KRaft
    refuses it), and a listener must be advertised as itself for clients on the bridge, so
    the broker restarts with the setting in its file. Its data and loopback address stay.
    """
    port = free_port()
    properties = read_properties(broker.properties)
    properties |= bridge_listener_settings(properties, port)
    broker.properties.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
    broker.stop()
    broker.start()
    wait_until(
        lambda: listening(bridge.ADDRESS, port),
        START_TIMEOUT_SECONDS,
        f"Kafka never listened on {bridge.ADDRESS}:{port} after its restart",
    )
    return f"{bridge.ADDRESS}:{port}"


def api_forwarder(server: str, log: Path) -> tuple[Process, int]:
    """A TCP forwarder from the bridge address to the API server's loopback port."""
    target = urlsplit(server)
    port = free_port()
    process = Process(
        "api-forwarder",
        [
            require("socat", "forward the API server's port to the real node's bridge"),
            f"TCP-LISTEN:{port},bind={bridge.ADDRESS},fork,reuseaddr",
            f"TCP:{target.hostname}:{target.port}",
        ],
        log,
    )
    return process, port


def listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at ``host:port`` now."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
