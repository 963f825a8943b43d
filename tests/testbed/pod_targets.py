"""Prometheus targets for the real node's pods, as a cluster's Prometheus discovers them.

The bed's Prometheus is built without Kubernetes service discovery, so this small process
stands in for it: every second it lists the pods that ask to be scraped (the
``prometheus.io/scrape`` and ``prometheus.io/port`` annotations the operator sets) and writes
them, with the labels Kubernetes discovery and the usual relabelling give (namespace, pod,
service), into the file that Prometheus's file discovery reads. Pod IPs are on the bed's
bridge, which the host reaches.

Run as ``python -m tests.testbed.pod_targets KUBECONFIG TARGETS_DIR``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

from . import bridge
from .component import Component

REPOSITORY = Path(__file__).resolve().parents[2]
TARGETS_FILE = "real-node-pods.json"
REFRESH_SECONDS = 1.0


def service_of(pod: Any, services: list[Any]) -> str | None:
    """The first Service in the pod's namespace whose selector matches the pod's labels."""
    labels = pod.metadata.labels or {}
    for service in services:
        selector = service.spec.selector or {}
        if (
            service.metadata.namespace == pod.metadata.namespace
            and selector
            and selector.items() <= labels.items()
        ):
            return service.metadata.name
    return None


def on_the_bridge(pod: Any) -> bool:
    """Only pods with an address on the bed's bridge: kwok's fake pods have addresses that
    exist nowhere, and nothing may be sent anywhere but loopback and the bridge."""
    address = pod.status.pod_ip
    return bool(address) and ipaddress.ip_address(address) in bridge.SUBNET


def targets(pods: list[Any], services: list[Any]) -> list[dict]:
    """File discovery entries for the running pods on the bridge that ask to be scraped."""
    found = []
    for pod in pods:
        annotations = pod.metadata.annotations or {}
        if annotations.get("prometheus.io/scrape") != "true" or not on_the_bridge(pod):
            continue
        if pod.status.phase != "Running" or pod.metadata.deletion_timestamp is not None:
            continue
        labels = {"namespace": pod.metadata.namespace, "pod": pod.metadata.name}
        service = service_of(pod, services)
        if service:
            labels["service"] = service
        port = annotations.get("prometheus.io/port", "8080")
        found.append({"targets": [f"{pod.status.pod_ip}:{port}"], "labels": labels})
    return found


def main(kubeconfig: str, directory: str) -> None:
    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    path = Path(directory) / TARGETS_FILE
    partial = path.with_suffix(".tmp")
    while True:
        found = targets(
            api.list_pod_for_all_namespaces().items, api.list_service_for_all_namespaces().items
        )
        partial.write_text(json.dumps(found))
        partial.replace(path)
        time.sleep(REFRESH_SECONDS)


class PodTargets(Component):
    """The discovery loop as a bed component, stopped with the bed."""

    name = "pod-targets"

    def __init__(self, run_dir: Path, kubeconfig: Path, targets: Path) -> None:
        super().__init__(run_dir)
        self.kubeconfig = kubeconfig
        self.targets = targets

    def command(self) -> list[str | Path]:
        return [sys.executable, "-m", "tests.testbed.pod_targets", self.kubeconfig, self.targets]

    def env(self) -> dict[str, str]:
        return dict(os.environ) | {"PYTHONPATH": str(REPOSITORY)}

    def ready(self) -> bool:
        """It only writes a file Prometheus reads when it appears: nothing waits on it."""
        return True


if __name__ == "__main__":
    main(*sys.argv[1:3])
