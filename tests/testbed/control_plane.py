"""etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.

Flags follow how controller-runtime's envtest and kwokctl run these binaries
out of cluster, plus the controllers our operator relies on (garbage
collection, Deployments, service accounts) and an audit log so tests can count
the write requests a component makes.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import pki as pki_module
from .assets import Binaries
from .processes import Process, free_port, http_ok, insecure_tls
from .toolchain import BedError, capture, wait_until

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
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
    processes: tuple[Process, ...]


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


def start(binaries: Binaries, run_dir: Path, started: list[Process]) -> ControlPlane:
    """Start every component in dependency order, appending each to ``started``.

    ``started`` is the caller's list so that a failure halfway leaves the caller
    able to stop what did come up.
    """
    certs = pki_module.generate(run_dir / "pki")
    logs = run_dir / "logs"

    etcd_port, etcd_peer_port = free_port(), free_port()
    etcd = Process(
        "etcd",
        [
            binaries.etcd,
            f"--data-dir={run_dir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{etcd_peer_port}",
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296",
        ],
        logs / "etcd.log",
    )
    started.append(etcd.start())
    etcd.wait_ready(http_ok(f"http://127.0.0.1:{etcd_port}/health"), START_TIMEOUT_SECONDS)

    api_port = free_port()
    server = f"https://127.0.0.1:{api_port}"
    audit_policy = run_dir / "audit-policy.yaml"
    audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    audit_log = logs / "audit.log"
    apiserver = Process(
        "kube-apiserver",
        [
            binaries.kube_apiserver,
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--cert-dir={run_dir / 'apiserver-certs'}",
            f"--tls-cert-file={certs.serving_cert}",
            f"--tls-private-key-file={certs.serving_key}",
            f"--client-ca-file={certs.ca_cert}",
            f"--secure-port={api_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            # A namespace can then place its pods on the real node (node selector and
            # toleration from its annotations) without the pods' owners knowing about it.
            "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={certs.service_account_public_key}",
            f"--service-account-signing-key-file={certs.service_account_key}",
            f"--requestheader-client-ca-file={certs.ca_cert}",
            f"--requestheader-allowed-names={pki_module.FRONT_PROXY_USER}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={certs.front_proxy_cert}",
            f"--proxy-client-key-file={certs.front_proxy_key}",
            f"--audit-policy-file={audit_policy}",
            f"--audit-log-path={audit_log}",
            "--audit-log-format=json",
        ],
        logs / "kube-apiserver.log",
    )
    started.append(apiserver.start())
    apiserver.wait_ready(http_ok(f"{server}/readyz", _admin_tls(certs)), START_TIMEOUT_SECONDS)

    kubeconfig = write_kubeconfig(
        run_dir / "kubeconfig",
        server,
        certs.ca_cert,
        certs.admin_cert,
        certs.admin_key,
        pki_module.ADMIN_USER,
    )

    controller_manager_port = free_port()
    controller_manager = Process(
        "kube-controller-manager",
        [
            binaries.kube_controller_manager,
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={certs.service_account_key}",
            f"--root-ca-file={certs.ca_cert}",
            "--use-service-account-credentials=false",
            f"--cluster-signing-cert-file={certs.ca_cert}",
            f"--cluster-signing-key-file={certs.ca_key}",
            "--bind-address=127.0.0.1",
            f"--secure-port={controller_manager_port}",
            f"--cert-dir={run_dir / 'controller-manager-certs'}",
            f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_SECONDS}s",
        ],
        logs / "kube-controller-manager.log",
    )
    scheduler_port = free_port()
    scheduler = Process(
        "kube-scheduler",
        [
            binaries.kube_scheduler,
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={scheduler_port}",
            f"--cert-dir={run_dir / 'scheduler-certs'}",
        ],
        logs / "kube-scheduler.log",
    )
    kwok = Process(
        "kwok",
        [
            binaries.kwok,
            f"--kubeconfig={kubeconfig}",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            "--node-lease-duration-seconds=40",
            f"--server-address=127.0.0.1:{free_port()}",
            "--cidr=10.1.0.0/16",
            "--node-ip=127.0.0.1",
        ],
        logs / "kwok.log",
    )
    for process in (controller_manager, scheduler, kwok):
        started.append(process.start())
    controller_manager.wait_ready(
        http_ok(f"https://127.0.0.1:{controller_manager_port}/healthz", insecure_tls()),
        START_TIMEOUT_SECONDS,
    )
    scheduler.wait_ready(
        http_ok(f"https://127.0.0.1:{scheduler_port}/healthz", insecure_tls()),
        START_TIMEOUT_SECONDS,
    )
    _create_fake_nodes(binaries.kubectl, kubeconfig, run_dir)
    return ControlPlane(
        server=server,
        kubeconfig=kubeconfig,
        audit_log=audit_log,
        processes=(etcd, apiserver, controller_manager, scheduler, kwok),
    )


def _admin_tls(certs: pki_module.Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    context.load_cert_chain(str(certs.admin_cert), str(certs.admin_key))
    return context


def fake_node(name: str) -> dict:
    """A Node that kwok manages: it reports Ready and runs whatever is scheduled."""
    capacity = {"cpu": "32", "memory": "128Gi", "pods": "110"}
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
