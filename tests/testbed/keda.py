"""KEDA's operator and metrics adapter, run out of cluster against the bed.

The adapter serves ``external.metrics.k8s.io`` through the API server's
aggregation layer. With no kube-proxy there is no ClusterIP routing, so the
APIService points at an ExternalName Service whose name is ``localhost``: the
aggregator dials ExternalName services by their DNS name and the APIService's
port. The operator and the adapter talk gRPC over mutual TLS with one
certificate that serves both ends.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from . import pki
from .control_plane import kubectl_run, kubectl_succeeds
from .processes import Process, free_port, http_ok

NAMESPACE = "keda"
ADAPTER_SERVICE = "keda-metrics-apiserver"
EXTERNAL_METRICS_API = "v1beta1.external.metrics.k8s.io"
START_TIMEOUT_SECONDS = 90.0


class Keda:
    """The two KEDA processes and the API objects that wire them into the bed."""

    def __init__(
        self, operator: Path, adapter: Path, kubectl: Path, kubeconfig: Path, run_dir: Path
    ) -> None:
        self.operator_binary = operator
        self.adapter_binary = adapter
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig
        self.directory = run_dir / "keda"
        self.certs = self.directory / "certs"
        self.processes: list[Process] = []

    def start(self) -> list[Process]:
        """Start operator and adapter, register the adapter, wait until the API is served."""
        pki.service_certificate(
            pki.Pki.at(self.kubeconfig.parent / "pki"),
            self.certs,
            "keda",
            [f"{ADAPTER_SERVICE}.{NAMESPACE}.svc", f"keda-operator.{NAMESPACE}.svc"],
        )
        env = dict(os.environ) | {
            "KUBECONFIG": str(self.kubeconfig),
            "WATCH_NAMESPACE": "",
            "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
            "POD_NAMESPACE": NAMESPACE,
            "POD_NAME": "keda-operator-testbed",
            "OPERATOR_NAME": "keda-operator",
        }
        grpc_port, probe_port, adapter_port = free_port(), free_port(), free_port()
        operator = Process(
            "keda-operator",
            [
                self.operator_binary,
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                f"--metrics-bind-address=127.0.0.1:{free_port()}",
                f"--health-probe-bind-address=127.0.0.1:{probe_port}",
                f"--metrics-service-bind-address=127.0.0.1:{grpc_port}",
                f"--cert-dir={self.certs}",
                "--enable-cert-rotation=false",
                "--enable-webhook-patching=false",
                "--enable-apiservice-patching=false",
                "--zap-log-level=info",
            ],
            self.directory / "keda-operator.log",
            env=env,
        )
        adapter = Process(
            "keda-adapter",
            [
                self.adapter_binary,
                f"--kubeconfig={self.kubeconfig}",
                f"--lister-kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--secure-port={adapter_port}",
                "--bind-address=127.0.0.1",
                f"--cert-dir={self.certs}",
                f"--tls-cert-file={self.certs / 'tls.crt'}",
                f"--tls-private-key-file={self.certs / 'tls.key'}",
                f"--metrics-service-address=127.0.0.1:{grpc_port}",
                "--metrics-service-grpc-authority=127.0.0.1",
                f"--port={free_port()}",
            ],
            self.directory / "keda-adapter.log",
            env=env,
        )
        self._register(adapter_port)
        for process in (operator, adapter):
            self.processes.append(process.start())
        operator.wait_ready(
            http_ok(f"http://127.0.0.1:{probe_port}/healthz"), START_TIMEOUT_SECONDS
        )
        adapter.wait_ready(self._api_available, START_TIMEOUT_SECONDS)
        return self.processes

    def _register(self, adapter_port: int) -> None:
        ca_bundle = base64.b64encode((self.certs / "ca.crt").read_bytes()).decode()
        objects = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": ADAPTER_SERVICE, "namespace": NAMESPACE},
                "spec": {
                    "type": "ExternalName",
                    "externalName": "localhost",
                    "ports": [{"name": "https", "port": adapter_port}],
                },
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": EXTERNAL_METRICS_API},
                "spec": {
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                    "caBundle": ca_bundle,
                    "service": {
                        "namespace": NAMESPACE,
                        "name": ADAPTER_SERVICE,
                        "port": adapter_port,
                    },
                },
            },
        ]
        manifest = self.directory / "registration.yaml"
        manifest.write_text(yaml.safe_dump_all(objects))
        kubectl_run(self.kubectl, self.kubeconfig, "apply", "--server-side", "-f", str(manifest))

    def _api_available(self) -> bool:
        return kubectl_succeeds(
            self.kubectl, self.kubeconfig, "get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"
        )
