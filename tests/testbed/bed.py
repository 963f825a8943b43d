"""The whole bed: control plane, fake nodes, upstream CRDs and Kafka, as one object.

``start`` is used by the pytest session fixture and by ``python -m tests.testbed up``;
``connect_existing`` points the same tests at a cluster and broker the user already
runs (kind, for instance) when SCALINGDEMO_TEST_EXISTING_CLUSTER is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import assets, control_plane, images, pki
from .component import Stack
from .kafka import KafkaBroker
from .keda import NAMESPACE as KEDA_NAMESPACE
from .keda import Keda, KedaWebhooks, register_webhooks
from .node import BedEndpoints, RealNode, restore_leftovers
from .processes import STOP_GRACE_SECONDS, kill, reap_orphans, terminate, wait_gone
from .prometheus import PrometheusServer
from .toolchain import BedError, say, wait_until

EXISTING_CLUSTER_ENV = "SCALINGDEMO_TEST_EXISTING_CLUSTER"
EXISTING_KAFKA_ENV = "SCALINGDEMO_TEST_KAFKA_BOOTSTRAP"
STATE_FILE = "state.json"
CRD_TIMEOUT_SECONDS = 60.0


@dataclass
class Bed:
    """Connection details of a running bed, and the handles to stop it."""

    kubeconfig: Path
    kubectl: Path
    kafka_bootstrap: str
    local: bool
    server: str = ""
    run_dir: Path | None = None
    audit_log: Path | None = None
    kafka: KafkaBroker | None = None
    prometheus: PrometheusServer | None = None
    promtool: Path | None = None
    keda: Keda | None = None
    node: RealNode | None = None
    stack: Stack = field(default_factory=Stack)

    def kubeconfig_for(self, user: str, groups: list[str]) -> Path:
        """A kubeconfig for a non-admin identity, to test what RBAC really allows.

        The file is named after the user with every character outside ``[A-Za-z0-9._-]``
        replaced: KUBECONFIG is a colon-separated list, and a ServiceAccount's user name
        (``system:serviceaccount:NS:NAME``) is full of colons.
        """
        if not self.local or self.run_dir is None:
            raise BedError("non-admin identities need the local bed (its CA key)")
        certs = pki.Pki.at(self.run_dir / "pki")
        cert, key = pki.client_certificate(certs, certs.ca_cert.parent, user, groups)
        name = re.sub(r"[^A-Za-z0-9._-]", "-", user)
        return control_plane.write_kubeconfig(
            self.run_dir / f"kubeconfig-{name}", self.server, certs.ca_cert, cert, key, user
        )

    def start_keda(self) -> Keda:
        """Start KEDA's operator and metrics adapter once; only scaling tests need them.

        The bed's Prometheus scrapes the operator from then on, as the quickstart's does."""
        if self.keda is None:
            if self.run_dir is None:
                raise BedError("KEDA can only be started on the local bed")
            operator, adapter = assets.keda()
            keda = Keda(operator, adapter, self.kubectl, self.kubeconfig, self.run_dir)
            keda.start(self.stack)
            self.keda = keda
            if self.prometheus is not None:
                # Labelled as a Prometheus Operator scrape of KEDA's chart labels it: without
                # honorLabels, KEDA's own `namespace` label arrives as `exported_namespace`.
                self.prometheus.scrape(
                    "keda-operator",
                    [keda.operator.metrics_address],
                    {"namespace": KEDA_NAMESPACE, "service": "keda-operator"},
                )
            _write_state(self)
        return self.keda

    def start_node(self) -> RealNode:
        """Start the real node once: only tests that run real pods pay for it.

        The images are built (or found in buildah's layer cache) from this working tree first,
        so pods run the code under test.
        """
        if self.node is None:
            if self.run_dir is None or self.kafka is None or self.prometheus is None:
                raise BedError("a real node can only join the local bed")
            kubelet = assets.kubelet()
            sandbox = images.pause_image()
            built = images.build_images(self.run_dir / "images")
            started_at = time.monotonic()
            node = RealNode(kubelet, self.kubectl, self.kubeconfig, self.run_dir)
            before = list(self.stack.components)
            try:
                endpoints = BedEndpoints(self.server, self.kafka, self.prometheus.targets)
                node.start(list(built.values()), sandbox, endpoints, self.stack)
            except BaseException:
                self.stack.stop_part(c for c in self.stack.components if c not in before)
                node.release()
                raise
            say(f"real node up in {time.monotonic() - started_at:.1f}s")
            self.node = node
            _write_state(self)
        return self.node

    def stop_node(self) -> None:
        """Stop the real node and undo what it changed; ``start_node`` starts a fresh one.

        For a test that needs the machine's one real node for a bed of its own (make demo).
        """
        if self.node is None:
            return
        self.stack.stop_part(self.node.components)
        self.node.release()
        self.node = None
        _write_state(self)

    def logs(self) -> list[Path]:
        """Every process log, for printing when something failed."""
        return self.stack.logs()

    def stop(self) -> None:
        """Stop every process, last started first; then undo what the real node changed."""
        self.stack.stop()
        if self.node is not None:
            self.node.release()


def start(run_dir: Path) -> Bed:
    """Build what is missing, then start everything; on failure stop what started."""
    started_at = time.monotonic()
    reap_orphans()
    restore_leftovers()
    resolved = assets.prepare()
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    stack = Stack()
    broker = KafkaBroker(run_dir, resolved.kafka_libs)
    prometheus = PrometheusServer(run_dir, resolved.binaries.prometheus)
    try:
        # The JVM and Prometheus boot while the control plane comes up.
        stack.launch(broker, prometheus)
        plane = control_plane.start(resolved.binaries, run_dir, stack)
        install_crds(resolved.binaries.kubectl, plane.kubeconfig, resolved.crds)
        # KEDA's webhooks index ScaledObjects at start, so they need the CRDs; every
        # test that applies a KEDA object goes through them, with or without KEDA itself.
        webhooks = KedaWebhooks(run_dir, resolved.binaries.keda_webhooks, plane.kubeconfig)
        stack.launch(webhooks)
        broker.wait_ready()
        prometheus.wait_ready()
        webhooks.wait_ready()
        register_webhooks(webhooks, resolved.binaries.kubectl)
    except BaseException:
        stack.stop()
        raise
    bed = Bed(
        kubeconfig=plane.kubeconfig,
        kubectl=resolved.binaries.kubectl,
        kafka_bootstrap=broker.bootstrap,
        local=True,
        server=plane.server,
        run_dir=run_dir,
        audit_log=plane.audit_log,
        kafka=broker,
        prometheus=prometheus,
        promtool=resolved.binaries.promtool,
        stack=stack,
    )
    _write_state(bed)
    say(
        f"bed up in {time.monotonic() - started_at:.1f}s: kubeconfig {bed.kubeconfig}, "
        f"kafka {bed.kafka_bootstrap}"
    )
    return bed


def install_crds(kubectl: Path, kubeconfig: Path, crds: tuple[Path, ...]) -> None:
    """Apply CRD files and wait until the API server serves every CRD it has."""
    args = ["apply", "--server-side"]
    for crd in crds:
        args += ["-f", str(crd)]
    control_plane.kubectl_run(kubectl, kubeconfig, *args)

    # Not `kubectl wait --all`: right after creation a CRD may have no status yet,
    # which that command reports as an error instead of waiting.
    def established() -> bool:
        listing = json.loads(
            control_plane.kubectl_run(kubectl, kubeconfig, "get", "crd", "-o", "json")
        )
        return all(
            any(
                c["type"] == "Established" and c["status"] == "True"
                for c in (item.get("status") or {}).get("conditions") or []
            )
            for item in listing["items"]
        )

    wait_until(established, CRD_TIMEOUT_SECONDS, "CRDs were not Established in time")
    say(f"installed {len(crds)} CRD files")


def _write_state(bed: Bed) -> None:
    assert bed.run_dir is not None
    state = {
        "server": bed.server,
        "kubeconfig": str(bed.kubeconfig),
        "kubectl": str(bed.kubectl),
        "kafka_bootstrap": bed.kafka_bootstrap,
        "prometheus": bed.prometheus.url if bed.prometheus else None,
        "pids": bed.stack.pids(),
    }
    (bed.run_dir / STATE_FILE).write_text(json.dumps(state, indent=2))


def stop_detached(run_dir: Path) -> bool:
    """Stop a bed started by another process (the CLI), from its state file."""
    state_file = run_dir / STATE_FILE
    if not state_file.exists():
        return False
    pids = json.loads(state_file.read_text())["pids"]
    for pid in reversed(pids):
        terminate(pid)
    for pid in wait_gone(pids, STOP_GRACE_SECONDS):
        kill(pid)
    if survivors := wait_gone(pids, STOP_GRACE_SECONDS):
        raise BedError(f"pids {survivors} of the bed in {run_dir} survived SIGKILL")
    state_file.unlink()
    restore_leftovers()
    return True


def connect_existing() -> Bed:
    """Use the cluster of KUBECONFIG and the broker of SCALINGDEMO_TEST_KAFKA_BOOTSTRAP."""
    bootstrap = os.environ.get(EXISTING_KAFKA_ENV)
    if not bootstrap:
        raise BedError(
            f"{EXISTING_CLUSTER_ENV} is set, so {EXISTING_KAFKA_ENV} must name "
            "the Kafka bootstrap servers of that cluster"
        )
    kubeconfig = Path(os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config")
    if not kubeconfig.is_file():
        raise BedError(f"{EXISTING_CLUSTER_ENV} is set but no kubeconfig at {kubeconfig}")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise BedError(f"{EXISTING_CLUSTER_ENV} is set but kubectl is not on PATH")
    return Bed(kubeconfig=kubeconfig, kubectl=Path(kubectl), kafka_bootstrap=bootstrap, local=False)
