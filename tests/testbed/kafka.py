"""A single-node Apache Kafka broker in KRaft mode (combined broker and controller).

Storage is formatted fresh for every bed; ``stop``/``start`` keep the address
and the data so tests can take the broker away and bring it back.
"""

from __future__ import annotations

import socket
from pathlib import Path

from . import bridge
from .processes import Process, free_port
from .toolchain import BedError, capture

START_TIMEOUT_SECONDS = 120.0
HEAP = "-Xmx512m"


class KafkaBroker:
    """One broker process with a stable address across restarts."""

    def __init__(self, libs: Path, run_dir: Path) -> None:
        self.libs = libs
        self.directory = run_dir / "kafka"
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        # Pods on the real node reach the broker at ``pod_bootstrap``, a forwarder on the bed's
        # bridge (see pod_routes) in front of this loopback listener. Kafka never binds the
        # bridge itself, so it starts and restarts whether or not a real node runs.
        self.pod_listener_port = free_port()
        self.pod_bootstrap = f"{bridge.ADDRESS}:{free_port()}"
        self.properties = self.directory / "server.properties"
        self.log = self.directory / "kafka.log"
        self.process = Process("kafka", self._java("kafka.Kafka", str(self.properties)), self.log)
        self._log_offset = 0

    def _java(self, main_class: str, *args: str) -> list[str]:
        return ["java", HEAP, "-cp", f"{self.libs}/*", main_class, *args]

    def format(self) -> None:
        """Write the broker config and format its log directory with a new cluster id."""
        self.directory.mkdir(parents=True, exist_ok=True)
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
        self.properties.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        cluster_id = self._tool("random-uuid").strip()
        self._tool("format", "-t", cluster_id, "-c", str(self.properties))

    def _tool(self, *args: str) -> str:
        return capture(self._java("kafka.tools.StorageTool", *args), f"kafka StorageTool {args[0]}")

    def launch(self) -> Process:
        """Start the broker process without waiting, so the JVM boots while other work runs.

        A restart reuses the one ``Process`` the bed holds, so stopping the bed stops
        the restarted broker too.
        """
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        return self.process.start()

    def wait_ready(self) -> None:
        if self.process.popen is None:
            raise BedError("kafka was never launched")
        self.process.wait_ready(self._listening, START_TIMEOUT_SECONDS)

    def start(self) -> None:
        """Start the broker (again) and wait until it accepts connections."""
        self.launch()
        self.wait_ready()

    def stop(self) -> None:
        """Stop the broker (data kept); the address stays reserved for ``start``."""
        self.process.stop()

    def _listening(self) -> bool:
        with self.log.open("rb") as log:
            log.seek(self._log_offset)
            if b"Kafka Server started" not in log.read():
                return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False
