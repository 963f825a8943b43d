"""Run the real operator as a subprocess and install the CRD: for tests, and for the benchmarks
(which depend on tests, never the reverse).

The operator is started exactly as a user would start it (`python -m scalingdemo_operator`),
restricted to given namespaces so concurrent tests do not see each other's resources, with its
/metrics and kopf liveness endpoints on free local ports.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.testbed.control_plane import kubectl_run, kubectl_succeeds
from tests.testbed.processes import Process, free_port, http_ok
from tests.testbed.toolchain import wait_until

REPOSITORY = Path(__file__).resolve().parents[1]
CRD_DIRECTORY = REPOSITORY / "crds"
BASIC_EXAMPLE = REPOSITORY / "examples" / "basic.yaml"
SCALE_TO_ZERO_EXAMPLE = REPOSITORY / "examples" / "scale-to-zero.yaml"
STARTUP_SECONDS = 60
STOP_SECONDS = 30


def install_crd(kubectl: Path, kubeconfig: Path) -> None:
    """Apply crds/ server-side (idempotent) and wait until the API serves the resource."""
    kubectl_run(
        kubectl, kubeconfig, "apply", "--server-side", "--force-conflicts", "-k", str(CRD_DIRECTORY)
    )
    wait_until(
        lambda: kubectl_succeeds(kubectl, kubeconfig, "get", "scalingdemos", "--all-namespaces"),
        STARTUP_SECONDS,
        "the API server never started serving scalingdemos",
    )


class OperatorProcess:
    """One operator process; start/stop may be repeated (a restart keeps the same ports)."""

    def __init__(
        self,
        kubeconfig: Path,
        namespaces: list[str],
        log: Path,
        resync_seconds: float = 0,
        extra_arguments: tuple[str, ...] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = namespaces
        self.log = log
        # Off unless asked for: a periodic pass would blur the reconcile counts measured.
        self.resync_seconds = resync_seconds
        self.extra_arguments = extra_arguments
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.process: Process | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "scalingdemo_operator"]
        for namespace in self.namespaces:
            argv += ["--namespace", namespace]
        argv += [
            "--metrics-address",
            "127.0.0.1",
            "--metrics-port",
            str(self.metrics_port),
            "--liveness",
            f"http://127.0.0.1:{self.liveness_port}/healthz",
            "--resync-seconds",
            str(self.resync_seconds),
            *self.extra_arguments,
        ]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        # kopf stops gracefully on SIGTERM; it gets STOP_SECONDS before SIGKILL.
        self.process = Process("operator", argv, self.log, env, STOP_SECONDS).start()
        self.process.wait_ready(
            http_ok(f"http://127.0.0.1:{self.liveness_port}/healthz"), STARTUP_SECONDS
        )

    def wait_listed(self) -> None:
        """Until the operator has listed every watched kind into memory (its watches run)."""
        wait_until(
            lambda: self.metric("scalingdemo_operator_cache_complete") == 1,
            STARTUP_SECONDS,
            "the operator never finished listing what it watches",
        )

    def stop(self) -> None:
        """SIGTERM (kopf stops gracefully), SIGKILL if it does not."""
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        """Stop abruptly, like a crashed or evicted pod."""
        if self.process is not None:
            self.process.kill()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 when absent)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    total += sample.value
        return total


def basic_example_on_the_bed(
    namespace: str,
    kafka_bootstrap: str,
    prometheus_url: str,
    polling_interval: int,
    scale_down_window: int,
) -> dict[str, Any]:
    """examples/basic.yaml changed only where the bed differs from the cluster it was written for.

    The broker and Prometheus live at the bed's addresses; topic names get the namespace as a
    prefix because one broker serves every test and benchmark run of a session; the polling
    interval and the scale-down window are shortened so a scaling cycle fits in a test. The
    triggers, thresholds, replica bounds, partitions and consumer group are the example's.
    """
    body = yaml.safe_load(BASIC_EXAMPLE.read_text())
    spec = body["spec"]
    spec["kafka"]["bootstrapServers"] = kafka_bootstrap
    for topic in spec["kafka"]["topics"].values():
        topic["name"] = f"{namespace}-{topic['name']}"
    spec["monitoring"]["prometheus"]["serverAddress"] = prometheus_url
    autoscaling = spec["worker"]["autoscaling"]
    autoscaling["pollingInterval"] = polling_interval
    autoscaling["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = scale_down_window
    return body


def scale_to_zero_example_on_the_bed(
    namespace: str, kafka_bootstrap: str, polling_interval: int, cooldown_period: int
) -> dict[str, Any]:
    """examples/scale-to-zero.yaml changed only where the bed differs from its cluster.

    The broker is the bed's; topics and the tasks group get the namespace as a prefix (one
    broker serves every run of a session); pollingInterval and cooldownPeriod are the caller's,
    so a cycle fits in a test. Bounds, thresholds and partitions are the example's.
    """
    body = yaml.safe_load(SCALE_TO_ZERO_EXAMPLE.read_text())
    kafka = body["spec"]["kafka"]
    kafka["bootstrapServers"] = kafka_bootstrap
    for topic in kafka["topics"].values():
        topic["name"] = f"{namespace}-{topic['name']}"
    kafka["consumerGroups"]["tasks"] = f"{namespace}-{kafka['consumerGroups']['tasks']}"
    autoscaling = body["spec"]["worker"]["autoscaling"]
    autoscaling["pollingInterval"] = polling_interval
    autoscaling["cooldownPeriod"] = cooldown_period
    return body


def without_running_workers(body: dict[str, Any]) -> dict[str, Any]:
    """The demo for a bed whose worker pods run no process (kwok's nodes).

    No worker reports queue depth there, so a Prometheus trigger's query has no value; KEDA
    then reports an error for it, and an HPA with a metric it cannot read never scales down.
    ignoreNullValues makes KEDA read the missing series as 0, as the workers' empty queue would.
    """
    for trigger in body["spec"]["worker"]["autoscaling"]["triggers"]:
        if "prometheus" in trigger:
            trigger["prometheus"]["ignoreNullValues"] = True
    return body
