"""etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.

Flags follow how controller-runtime's envtest and kwokctl run these binaries
out of cluster, plus the controllers our operator relies on (garbage
collection, Deployments, service accounts) and an audit log so tests can count
the write requests a component makes.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import pki as pki_module
from .assets import Binaries
from .component import Component, Stack
from .processes import free_port, http_ok, insecure_tls
from .toolchain import BedError, capture, wait_until

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/20"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
HPA_SYNC_SECONDS = 5
"""Short so scaling tests and benchmarks see the HPA act within seconds (default 15 s)."""
CONTROLLERS = (
    "garbage-collector-controller",
    "namespace-controller",
    "deployment-controller",
    "replicaset-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "node-lifecycle-controller",
    "horizontal-pod-autoscaler-controller",
)
FAKE_NODE_COUNT = 2
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
START_TIMEOUT_SECONDS = 90.0
Flags = Mapping[str, str | None] | None

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


@dataclass(frozen=True)
class ControlPlane:
    """Where a running control plane can be reached."""

    server: str
    kubeconfig: Path
    audit_log: Path


def write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path, user: str) -> Path:
    """A kubeconfig with file references, usable by kubectl, client-go and Python."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "testbed", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": user}}],
        "current-context": "testbed",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class Etcd(Component):
    """The API server's store; fsync is off because a bed's data never outlives it."""

    name = "etcd"

    def __init__(self, run_dir: Path, binary: Path, flags: Flags = None) -> None:
        super().__init__(run_dir, flags)
        self.binary = binary
        self.client_url = f"http://127.0.0.1:{free_port()}"
        self.peer_url = f"http://127.0.0.1:{free_port()}"

    def command(self) -> list[str | Path]:
        return [self.binary]

    def default_flags(self) -> dict[str, str | None]:
        return {
            "--data-dir": str(self.directory / "data"),
            "--listen-client-urls": self.client_url,
            "--advertise-client-urls": self.client_url,
            "--listen-peer-urls": self.peer_url,
            "--initial-advertise-peer-urls": self.peer_url,
            "--initial-cluster": f"default={self.peer_url}",
            "--unsafe-no-fsync": "true",
            "--quota-backend-bytes": "4294967296",
        }

    def ready(self) -> bool:
        return http_ok(f"{self.client_url}/health")()


class KubeApiServer(Component):
    """RBAC, service-account tokens, the aggregation layer and a JSON audit log."""

    name = "kube-apiserver"

    def __init__(
        self, run_dir: Path, binary: Path, etcd: Etcd, certs: pki_module.Pki, flags: Flags = None
    ) -> None:
        super().__init__(run_dir, flags)
        self.binary = binary
        self.etcd = etcd
        self.certs = certs
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.audit_log = self.log.with_name("audit.log")

    def command(self) -> list[str | Path]:
        return [self.binary]

    def default_flags(self) -> dict[str, str | None]:
        certs = self.certs
        return {
            "--etcd-servers": self.etcd.client_url,
            "--cert-dir": str(self.directory / "certs"),
            "--tls-cert-file": str(certs.serving_cert),
            "--tls-private-key-file": str(certs.serving_key),
            "--client-ca-file": str(certs.ca_cert),
            "--secure-port": str(self.port),
            "--bind-address": "127.0.0.1",
            "--advertise-address": "127.0.0.1",
            "--service-cluster-ip-range": SERVICE_CLUSTER_IP_RANGE,
            "--allow-privileged": "true",
            # A namespace can then place its pods on the real node (node selector and
            # toleration from its annotations) without the pods' owners knowing about it.
            "--enable-admission-plugins": "PodNodeSelector,PodTolerationRestriction",
            "--authorization-mode": "RBAC",
            "--service-account-issuer": SERVICE_ACCOUNT_ISSUER,
            "--service-account-key-file": str(certs.service_account_public_key),
            "--service-account-signing-key-file": str(certs.service_account_key),
            "--requestheader-client-ca-file": str(certs.ca_cert),
            "--requestheader-allowed-names": pki_module.FRONT_PROXY_USER,
            "--requestheader-username-headers": "X-Remote-User",
            "--requestheader-group-headers": "X-Remote-Group",
            "--requestheader-extra-headers-prefix": "X-Remote-Extra-",
            "--proxy-client-cert-file": str(certs.front_proxy_cert),
            "--proxy-client-key-file": str(certs.front_proxy_key),
            "--audit-policy-file": str(self.directory / "audit-policy.yaml"),
            "--audit-log-path": str(self.audit_log),
            "--audit-log-format": "json",
        }

    def prepare(self) -> None:
        (self.directory / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))

    def ready(self) -> bool:
        return http_ok(f"{self.server}/readyz", _admin_tls(self.certs))()


class _ClusterClient(Component):
    """A controller that reaches the API server as the bed's admin and serves /healthz."""

    def __init__(self, run_dir: Path, binary: Path, kubeconfig: Path, flags: Flags = None) -> None:
        super().__init__(run_dir, flags)
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.port = free_port()

    def command(self) -> list[str | Path]:
        return [self.binary]

    def default_flags(self) -> dict[str, str | None]:
        return {
            "--kubeconfig": str(self.kubeconfig),
            "--authentication-kubeconfig": str(self.kubeconfig),
            "--authorization-kubeconfig": str(self.kubeconfig),
            "--leader-elect": "false",
            "--bind-address": "127.0.0.1",
            "--secure-port": str(self.port),
            "--cert-dir": str(self.directory / "certs"),
        }

    def ready(self) -> bool:
        return http_ok(f"https://127.0.0.1:{self.port}/healthz", insecure_tls())()


class KubeControllerManager(_ClusterClient):
    """The controllers our operator relies on, and a fast HPA for scaling tests."""

    name = "kube-controller-manager"

    def __init__(
        self,
        run_dir: Path,
        binary: Path,
        kubeconfig: Path,
        certs: pki_module.Pki,
        flags: Flags = None,
    ) -> None:
        super().__init__(run_dir, binary, kubeconfig, flags)
        self.certs = certs

    def default_flags(self) -> dict[str, str | None]:
        return super().default_flags() | {
            "--controllers": ",".join(CONTROLLERS),
            "--service-account-private-key-file": str(self.certs.service_account_key),
            "--root-ca-file": str(self.certs.ca_cert),
            "--use-service-account-credentials": "false",
            "--cluster-signing-cert-file": str(self.certs.ca_cert),
            "--cluster-signing-key-file": str(self.certs.ca_key),
            "--horizontal-pod-autoscaler-sync-period": f"{HPA_SYNC_SECONDS}s",
        }


class KubeScheduler(_ClusterClient):
    name = "kube-scheduler"


class Kwok(Component):
    """Runs the fake nodes: pods scheduled there are reported Running and Ready."""

    name = "kwok"

    def __init__(self, run_dir: Path, binary: Path, kubeconfig: Path, flags: Flags = None) -> None:
        super().__init__(run_dir, flags)
        self.binary = binary
        self.kubeconfig = kubeconfig

    def command(self) -> list[str | Path]:
        return [self.binary]

    def default_flags(self) -> dict[str, str | None]:
        return {
            "--kubeconfig": str(self.kubeconfig),
            "--manage-nodes-with-annotation-selector": f"{KWOK_NODE_ANNOTATION}=fake",
            "--node-lease-duration-seconds": "40",
            "--server-address": f"127.0.0.1:{free_port()}",
            "--cidr": "10.1.0.0/16",
            "--node-ip": "127.0.0.1",
        }

    def ready(self) -> bool:
        """kwok serves no health check; the fake nodes turning Ready is the bed's real probe."""
        return True


def start(binaries: Binaries, run_dir: Path, stack: Stack) -> ControlPlane:
    """Start every component in dependency order onto ``stack``.

    ``stack`` is the caller's so that a failure halfway leaves the caller able to
    stop what did come up.
    """
    certs = pki_module.generate(run_dir / "pki")
    etcd = Etcd(run_dir, binaries.etcd)
    stack.start(etcd)
    apiserver = KubeApiServer(run_dir, binaries.kube_apiserver, etcd, certs)
    stack.start(apiserver)
    kubeconfig = write_kubeconfig(
        run_dir / "kubeconfig",
        apiserver.server,
        certs.ca_cert,
        certs.admin_cert,
        certs.admin_key,
        pki_module.ADMIN_USER,
    )
    stack.start(
        KubeControllerManager(run_dir, binaries.kube_controller_manager, kubeconfig, certs),
        KubeScheduler(run_dir, binaries.kube_scheduler, kubeconfig),
        Kwok(run_dir, binaries.kwok, kubeconfig),
    )
    _create_fake_nodes(binaries.kubectl, kubeconfig, run_dir)
    return ControlPlane(
        server=apiserver.server, kubeconfig=kubeconfig, audit_log=apiserver.audit_log
    )


def _admin_tls(certs: pki_module.Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    context.load_cert_chain(str(certs.admin_cert), str(certs.admin_key))
    return context


def fake_node(name: str) -> dict:
    """A Node that kwok manages: it reports Ready and runs whatever is scheduled.

    Room for the benchmark's 1,000 demos on two of them, the operator's and the bare client's
    at once (the operator's stay while the baseline runs): 4,000 pods of 100m and 128Mi.
    """
    capacity = {"cpu": "256", "memory": "1Ti", "pods": "2500"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def _create_fake_nodes(kubectl: Path, kubeconfig: Path, run_dir: Path) -> None:
    manifest = run_dir / "nodes.yaml"
    nodes = [fake_node(f"kwok-node-{index}") for index in range(FAKE_NODE_COUNT)]
    manifest.write_text(yaml.safe_dump_all(nodes))
    kubectl_run(kubectl, kubeconfig, "apply", "--server-side", "-f", str(manifest))
    kubectl_run(
        kubectl,
        kubeconfig,
        "wait",
        "--for=condition=Ready",
        "node",
        "--all",
        f"--timeout={int(START_TIMEOUT_SECONDS)}s",
    )
    # Nodes are born with the not-ready NoSchedule taint; the node lifecycle
    # controller lifts it shortly after Ready. Wait, so the first pod of a test
    # is scheduled at once rather than after a back-off.
    wait_until(
        lambda: (
            not kubectl_run(
                kubectl, kubeconfig, "get", "nodes", "-o", "jsonpath={.items[*].spec.taints}"
            )
        ),
        START_TIMEOUT_SECONDS,
        "fake nodes kept their not-ready taint; see kube-controller-manager.log",
    )


def kubectl_run(kubectl: Path, kubeconfig: Path, *args: str) -> str:
    """Run kubectl against the bed; a failure raises with kubectl's own message."""
    return capture([kubectl, f"--kubeconfig={kubeconfig}", *args], f"kubectl {' '.join(args)}")


def kubectl_succeeds(kubectl: Path, kubeconfig: Path, *args: str) -> bool:
    """Whether a kubectl command succeeds now: a readiness probe for what the API serves."""
    try:
        kubectl_run(kubectl, kubeconfig, *args)
    except BedError:
        return False
    return True
