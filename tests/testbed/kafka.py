"""A single-node Apache Kafka broker in KRaft mode (combined broker and controller).

Storage is formatted fresh for every bed; ``stop``/``start`` keep the address
and the data so tests can take the broker away and bring it back.
"""

from __future__ import annotations

import socket
from pathlib import Path

from . import bridge
from .component import Component
from .processes import free_port
from .toolchain import capture

HEAP = "-Xmx512m"


class KafkaBroker(Component):
    """One broker process with a stable address and data across restarts."""

    name = "kafka"
    start_timeout = 120.0

    def __init__(self, run_dir: Path, libs: Path) -> None:
        super().__init__(run_dir)
        self.libs = libs
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        # Pods on the real node reach the broker at ``pod_bootstrap``, a forwarder on the bed's
        # bridge (see pod_routes) in front of this loopback listener. Kafka never binds the
        # bridge itself, so it starts and restarts whether or not a real node runs.
        self.pod_listener_port = free_port()
        self.pod_bootstrap = f"{bridge.ADDRESS}:{free_port()}"
        self.properties = self.directory / "server.properties"
        self._log_offset = 0

    def _java(self, main_class: str, *args: str) -> list[str | Path]:
        return ["java", HEAP, "-cp", f"{self.libs}/*", main_class, *args]

    def command(self) -> list[str | Path]:
        return self._java("kafka.Kafka", str(self.properties))

    def prepare(self) -> None:
        """Write the config and format storage with a new cluster id, once per bed.

        A restart (``stop`` then ``start``) finds the storage formatted and keeps it,
        so tests can take the broker away and bring back the same topics.
        """
        if self.properties.exists():
            return
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.bootstrap},CONTROLLER://127.0.0.1:{self.controller_port}"
            f",PODS://127.0.0.1:{self.pod_listener_port}",
            "advertised.listeners": f"PLAINTEXT://{self.bootstrap},PODS://{self.pod_bootstrap}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
            ",PODS:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.directory / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        partial = self.properties.with_suffix(".partial")
        partial.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        cluster_id = self._tool("random-uuid").strip()
        self._tool("format", "-t", cluster_id, "-c", str(partial))
        partial.replace(self.properties)

    def _tool(self, *args: str) -> str:
        return capture(self._java("kafka.tools.StorageTool", *args), f"kafka StorageTool {args[0]}")

    def launch(self) -> KafkaBroker:
        """Start without waiting, so the JVM boots while the control plane starts.

        Readiness is read from the log written after this launch, so a restart is
        not taken as ready on the strength of the previous run's lines.
        """
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        super().launch()
        return self

    def ready(self) -> bool:
        with self.log.open("rb") as log:
            log.seek(self._log_offset)
            if b"Kafka Server started" not in log.read():
                return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False
