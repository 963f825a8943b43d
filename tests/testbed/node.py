"""A real node beside the kwok ones: containerd + runc, the CNI bridge and a kubelet.

containerd runs as process 1 of private mount and PID namespaces (see ``namespaces``); the
kubelet joins both. Every path these tools hard-code lands in the node's directory, every
mount they make vanishes with the namespace, and when containerd dies the kernel kills what
it started, pods included. What they change in the host kernel (sysctls, iptables, cgroups)
is recorded before and put back after (``kernel_state``). The node is tainted: only pods that
tolerate ``TAINT`` run here, so tests that do not ask for real pods keep the kwok nodes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import yaml

from . import bridge, namespaces, pod_routes, pod_targets
from .component import Component, Stack
from .control_plane import kubectl_run, kubectl_succeeds
from .images import Built
from .kafka import KafkaBroker
from .kernel_state import KernelState
from .processes import free_port
from .toolchain import BedError, cache_root, capture, require, say, wait_until

NODE_NAME = "localhost"
"""The API server reaches the kubelet by the node's hostname: ``localhost`` keeps its
traffic (logs, exec, port-forward) on loopback, where the kubelet listens."""
TAINT = {"key": "scalingdemo.dev/real-node", "value": "true", "effect": "NoSchedule"}
TOLERATION = {"key": TAINT["key"], "operator": "Equal", "value": "true", "effect": "NoSchedule"}
NODE_SELECTOR = {"kubernetes.io/hostname": NODE_NAME}
START_TIMEOUT_SECONDS = 120.0
SOCKET_PATH_LIMIT = 104
EVICTION_FREE_PERCENT = 1
"""The kubelet's disk eviction threshold: below it the node reports DiskPressure and takes no
pod, so a node is refused up front when it would start that close to a full disk."""
STORE_BYTES = 3 * 2**30
"""Room for containerd's store: both images unpacked took 1.4 GiB, and pods write beside."""
K8S_NAMESPACE = "k8s.io"
"""containerd's namespace for the images and containers of the CRI (the kubelet's)."""


def placement_annotations() -> dict[str, str]:
    """Namespace annotations that put every pod of the namespace on the real node.

    The API server's PodNodeSelector and PodTolerationRestriction admission plugins add the
    selector and the toleration to each pod, so Deployments someone else generates (the
    operator's) run here unchanged.
    """
    return {
        "scheduler.alpha.kubernetes.io/node-selector": ",".join(
            f"{key}={value}" for key, value in NODE_SELECTOR.items()
        ),
        "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([TOLERATION]),
    }


def owner_file() -> Path:
    """One real node per machine (one bridge): who runs it, and the kernel state before."""
    return cache_root() / "real-node.json"


def containerd_config(directory: Path, sandbox_image: str) -> str:
    """containerd 1.6's config: its state in ``directory``, the CRI on the bed's CNI bridge.

    ``restrict_oom_score_adj``: root here may lack CAP_SYS_RESOURCE, and runc then fails
    every sandbox with "can't get final child's PID from pipe: EOF".
    ``netns_mounts_under_state_dir``: pod network namespaces live under the node directory.
    """
    state = directory / "containerd"
    return f"""version = 2
root = "{state / "root"}"
state = "{state / "state"}"
[grpc]
  address = "{state / "containerd.sock"}"
[ttrpc]
  address = "{state / "containerd.sock.ttrpc"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{require("runc", "run containers")}"
        Root = "{state / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{directory / "cni" / "net.d"}"
    max_conf_num = 1
"""


def cni_config(directory: Path) -> dict:
    """The bridge plugin on the bed's bridge: no gateway, no masquerading, hence no route out."""
    first, last = bridge.POD_RANGE
    return {
        "cniVersion": "1.0.0",
        "name": "sdnode",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge.NAME,
                "isGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [
                        [{"subnet": str(bridge.SUBNET), "rangeStart": first, "rangeEnd": last}]
                    ],
                    "dataDir": str(directory / "cni" / "ipam"),
                },
            }
        ],
    }


def kubelet_config(directory: Path, port: int, healthz_port: int) -> dict:
    """Serving on loopback only; anonymous and AlwaysAllow because the bed's API server has no
    kubelet client certificate, and cgroup v1 is accepted (1.35+ refuse it by default)."""
    socket = f"unix://{directory / 'containerd' / 'containerd.sock'}"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": "127.0.0.1",
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "containerRuntimeEndpoint": socket,
        "imageServiceEndpoint": socket,
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "podLogsDir": str(directory / "kubelet" / "pod-logs"),
        "resolvConf": str(directory / "kubelet" / "resolv.conf"),
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": f"{EVICTION_FREE_PERCENT}%",
            "imagefs.available": f"{EVICTION_FREE_PERCENT}%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "registerWithTaints": [TAINT],
    }


@dataclass(frozen=True)
class BedEndpoints:
    """What the node connects to pods: the API server's URL, the bed's Kafka broker and the
    directory of Prometheus's file-discovered targets."""

    server: str
    kafka: KafkaBroker
    scrape_targets: Path


class Containerd(Component):
    """containerd as process 1 of private mount and PID namespaces: the node's lifetime."""

    name = "containerd"

    def __init__(self, run_dir: Path, node_directory: Path) -> None:
        super().__init__(run_dir)
        self.node_directory = node_directory
        self.socket = node_directory / "containerd" / "containerd.sock"

    def command(self) -> list[str | Path]:
        return list(
            namespaces.private(
                namespaces.host_paths_under(self.node_directory / "host"),
                [require("containerd", "run the real node's containers")],
                own_pids=True,
            )
        )

    def default_flags(self) -> dict[str, str | None]:
        return {"--config": str(self.node_directory / "containerd" / "config.toml")}

    def ctr(self, *args: str | Path) -> list[str | Path]:
        return [require("ctr", "load images into containerd"), f"--address={self.socket}", *args]

    def ready(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            capture(self.ctr("version"), "ctr version")
        except BedError:
            return False
        return True

    def namespace_init(self) -> int:
        """The pid of containerd itself: the child ``unshare`` forked into the namespaces."""
        assert self.pid is not None
        pid = self.pid
        children: list[psutil.Process] = []

        def forked() -> bool:
            children[:] = psutil.Process(pid).children()
            return bool(children)

        wait_until(forked, START_TIMEOUT_SECONDS, "containerd's namespace never started")
        return children[0].pid


class Kubelet(Component):
    """The kubelet, inside containerd's namespaces; ready once its node is schedulable."""

    name = "kubelet"
    start_timeout = START_TIMEOUT_SECONDS

    def __init__(
        self,
        run_dir: Path,
        binary: Path,
        kubectl: Path,
        kubeconfig: Path,
        node_directory: Path,
        containerd: Containerd,
    ) -> None:
        super().__init__(run_dir)
        self.binary = binary
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig
        self.node_directory = node_directory
        self.containerd = containerd

    def command(self) -> list[str | Path]:
        target = self.containerd.namespace_init()
        return ["nsenter", f"--target={target}", "--mount", "--pid", "--", self.binary]

    def default_flags(self) -> dict[str, str | None]:
        kubelet = self.node_directory / "kubelet"
        return {
            "--config": str(kubelet / "config.yaml"),
            "--kubeconfig": str(self.kubeconfig),
            "--root-dir": str(kubelet / "root"),
            "--cert-dir": str(kubelet / "pki"),
            "--hostname-override": NODE_NAME,
            "--node-ip": bridge.ADDRESS,
            "--v": "2",
        }

    def ready(self) -> bool:
        """Ready, and the node-lifecycle controller has lifted its not-ready taint."""
        if not kubectl_succeeds(self.kubectl, self.kubeconfig, "get", "node", NODE_NAME):
            return False
        node = json.loads(
            kubectl_run(self.kubectl, self.kubeconfig, "get", "node", NODE_NAME, "-o", "json")
        )
        ready = any(
            condition["type"] == "Ready" and condition["status"] == "True"
            for condition in node["status"].get("conditions") or []
        )
        taints = {taint["key"] for taint in node["spec"].get("taints") or []}
        return ready and taints == {TAINT["key"]}


@dataclass
class RealNode:
    """containerd and the kubelet of one bed, and the kernel state to put back."""

    kubelet_binary: Path
    kubectl: Path
    kubeconfig: Path
    run_dir: Path
    kernel: KernelState | None = None
    components: tuple[Component, ...] = ()
    api_port: int = 0
    """Where pods reach the API server: ``bridge.ADDRESS`` at this port."""
    kafka_bootstrap: str = ""
    """Kafka's listener on the bridge, for pods."""

    @property
    def directory(self) -> Path:
        return self.run_dir / "node"

    def start(self, images: list[Built], sandbox: Built, bed: BedEndpoints, stack: Stack) -> None:
        """Bridge, routes to the API server and Kafka, containerd, images, kubelet, and the
        discovery of its pods for Prometheus, each started onto ``stack`` for the caller to
        stop."""
        _check_socket_room(self.directory)
        _check_disk_room(self.run_dir)
        restore_leftovers()
        self.kernel = KernelState.record()
        _claim(psutil.Process(), self.kernel)
        bridge.create()
        first = len(stack.components)
        api = urlsplit(bed.server)
        self.api_port = free_port()
        self.kafka_bootstrap = bed.kafka.pod_bootstrap
        stack.start(
            pod_routes.Forwarder(
                self.run_dir, "api-forwarder", self.api_port, f"{api.hostname}:{api.port or 443}"
            ),
            pod_routes.Forwarder(
                self.run_dir,
                "kafka-forwarder",
                int(bed.kafka.pod_bootstrap.rsplit(":", 1)[1]),
                f"127.0.0.1:{bed.kafka.pod_listener_port}",
            ),
        )
        self._write_configs(sandbox.reference)
        containerd = Containerd(self.run_dir, self.directory)
        stack.launch(containerd)
        assert containerd.pid is not None
        # The node lives as long as containerd: a bed left running by the CLI outlives us.
        _claim(psutil.Process(containerd.pid), self.kernel)
        containerd.wait_ready()
        for image in (sandbox, *images):
            self._import(containerd, image)
        stack.start(
            Kubelet(
                self.run_dir,
                self.kubelet_binary,
                self.kubectl,
                self.kubeconfig,
                self.directory,
                containerd,
            )
        )
        stack.start(pod_targets.PodTargets(self.run_dir, self.kubeconfig, bed.scrape_targets))
        self.components = tuple(stack.components[first:])

    def _write_configs(self, sandbox_image: str) -> None:
        for sub in ("containerd", "cni/net.d", "kubelet", "logs"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        (self.directory / "containerd" / "config.toml").write_text(
            containerd_config(self.directory, sandbox_image)
        )
        (self.directory / "cni" / "net.d" / "10-sdnode.conflist").write_text(
            json.dumps(cni_config(self.directory), indent=2)
        )
        # No nameserver: a lookup inside a pod fails at once instead of leaving the machine.
        (self.directory / "kubelet" / "resolv.conf").write_text("options ndots:1\n")
        (self.directory / "kubelet" / "config.yaml").write_text(
            yaml.safe_dump(kubelet_config(self.directory, free_port(), free_port()))
        )

    def _import(self, containerd: Containerd, image: Built) -> None:
        started = time.monotonic()
        capture(
            containerd.ctr("--namespace", K8S_NAMESPACE, "images", "import", image.archive),
            f"ctr images import {image.archive}",
        )
        say(f"loaded {image.reference} into containerd in {time.monotonic() - started:.1f}s")

    def release(self) -> None:
        """Once its processes are stopped (containerd's namespace takes every pod with it):
        put the kernel state back, remove the bridge and containerd's store (its images
        unpacked: gigabytes no later run reads)."""
        if self.kernel is not None:
            self.kernel.restore()
        bridge.delete()
        owner_file().unlink(missing_ok=True)
        store = self.directory / "containerd"
        if store.exists():
            try:
                shutil.rmtree(store)
            except OSError as error:
                say(f"could not remove containerd's store {store}: {error}")


def _check_socket_room(directory: Path) -> None:
    """Refuse a node directory too deep for containerd's sockets, naming the directory.

    A unix socket path holds at most 107 bytes (104 on some systems, which containerd
    enforces); otherwise containerd exits with a message that names neither the bed's run
    directory nor what to change.
    """
    longest = Containerd(directory.parent, directory).socket.with_suffix(".sock.ttrpc")
    if len(str(longest).encode()) > SOCKET_PATH_LIMIT:
        raise BedError(
            f"the run directory {directory.parent} is too deep for a real node: containerd's "
            f"socket {longest} would exceed {SOCKET_PATH_LIMIT} bytes; use a shorter "
            "--run-dir (or DEMO_DIR for make demo)"
        )


def _check_disk_room(run_dir: Path) -> None:
    """Refuse to start a node whose kubelet would soon call the disk full.

    Under disk pressure the node stays tainted and every wait for a pod times out, with
    nothing in the failure naming the disk.
    """
    usage = shutil.disk_usage(run_dir)
    needed = STORE_BYTES + usage.total * EVICTION_FREE_PERCENT // 100
    if usage.free < needed:
        raise BedError(
            f"{usage.free / 2**30:.1f} GiB free on the filesystem of {run_dir}, and a real node "
            f"needs {needed / 2**30:.1f} GiB: {STORE_BYTES / 2**30:.0f} GiB for containerd's "
            f"store plus the {EVICTION_FREE_PERCENT}% its kubelet keeps free; free some space"
        )


def _claim(owner: psutil.Process, kernel: KernelState) -> None:
    """Record ``owner`` as the node's, with the kernel state to restore once it is gone."""
    record = {"pid": owner.pid, "created": owner.create_time(), "kernel": kernel.__dict__}
    owner_file().parent.mkdir(parents=True, exist_ok=True)
    owner_file().write_text(json.dumps(record, indent=2))


def restore_leftovers() -> None:
    """Clean up after a run that was killed while it had a node: the orphan reaper stopped
    its processes, this puts its kernel state back and removes its bridge."""
    path = owner_file()
    if not path.exists():
        return
    record = json.loads(path.read_text())
    with contextlib.suppress(psutil.NoSuchProcess):
        if psutil.Process(record["pid"]).create_time() == record["created"]:
            raise BedError(
                f"process {record['pid']} runs a real node on this machine already "
                f"(owner file {path}); stop that bed first"
            )
    say(f"restoring the kernel state left by the real node of process {record['pid']}")
    KernelState(**record["kernel"]).restore()
    bridge.delete()
    path.unlink()
