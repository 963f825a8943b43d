"""Operator convergence for N ScalingDemos against a bare client applying the same children.

For each N: `kubectl apply` N ScalingDemos into a fresh namespace watched by a freshly started
operator, and time until every one reports status.observedGeneration == metadata.generation.
The baseline, in the same run and against the same API server: `kubectl apply` the same N demos
into another fresh namespace with no operator, then a bare client (the official Python client,
sequential server-side apply) applies exactly the children our builders produce and writes the
same status field. The ratio operator/baseline is the figure to watch; absolute seconds depend
on the machine. Operator RSS is sampled idle and after the largest N.

Usage (against a running bed, e.g. `python -m tests.testbed up`):
    KUBECONFIG=.testbed/manual/kubeconfig python -m benchmarks.operator_convergence \
        --kubectl <bed kubectl> --sizes 1,20,100
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import kubernetes
import psutil
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from scalingdemo_operator.api import FIELD_MANAGER, GROUP, PLURAL, VERSION, Owner
from scalingdemo_operator.builders import desired_children
from scalingdemo_operator.spec import parse

from tests.operator_harness import OperatorProcess, install_crd

TIMEOUT_SECONDS = 600
POLL_SECONDS = 0.2
MIB = 1024 * 1024


def _demos(count: int) -> list[dict]:
    spec = {
        "image": "registry.example/scalingdemo-workload:1",
        "kafka": {
            "bootstrapServers": "kafka.kafka.svc.cluster.local:9092",
            "topicManagement": "None",
        },
    }
    return [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ScalingDemo",
            "metadata": {"name": f"demo{index}"},
            "spec": spec,
        }
        for index in range(count)
    ]


class Bench:
    def __init__(self, kubectl: Path, kubeconfig: Path, workdir: Path) -> None:
        self.kubectl, self.kubeconfig, self.workdir = kubectl, kubeconfig, workdir
        self.api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        self.custom = client.CustomObjectsApi(self.api)
        self.dynamic = DynamicClient(self.api)

    def kubectl_run(self, *argv: str) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        subprocess.run([str(self.kubectl), *argv], env=env, check=True, capture_output=True)

    def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.kubectl_run("create", "namespace", name)
        return name

    def drop(self, namespace: str) -> None:
        """Delete a namespace and wait, so its Services give their cluster IPs back."""
        self.kubectl_run("delete", "namespace", namespace, f"--timeout={TIMEOUT_SECONDS}s")

    def apply_demos(self, namespace: str, count: int) -> None:
        manifest = self.workdir / f"{namespace}.yaml"
        manifest.write_text(yaml.safe_dump_all(_demos(count)))
        self.kubectl_run("apply", "-n", namespace, "-f", str(manifest))

    def wait(self, namespace: str, count: int, done: Callable[[dict], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            items = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
            if sum(1 for item in items["items"] if done(item)) == count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{namespace}: not converged after {TIMEOUT_SECONDS}s")
            time.sleep(POLL_SECONDS)

    def bare_client(self, namespace: str) -> int:
        """Apply every demo's children and observedGeneration, sequentially, no operator.

        Returns the number of requests sent (the list included).
        """
        sent = 1
        items = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        for body in items["items"]:
            for child in desired_children(parse(body["spec"]), Owner.from_body(body)):
                kind = self.dynamic.resources.get(
                    api_version=child["apiVersion"], kind=child["kind"]
                )
                self.dynamic.server_side_apply(
                    kind,
                    body=child,
                    namespace=namespace,
                    field_manager=FIELD_MANAGER,
                    force_conflicts=True,
                )
                sent += 1
            self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                body["metadata"]["name"],
                {"status": {"observedGeneration": body["metadata"]["generation"]}},
            )
            sent += 1
        return sent


def _observed(item: dict) -> bool:
    return item.get("status", {}).get("observedGeneration") == item["metadata"]["generation"]


def _ready(item: dict) -> bool:
    conditions = item.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def run(bench: Bench, sizes: list[int]) -> None:
    print(
        f"{'N':>4} {'operator s':>11} {'bare client s':>14} {'ratio':>7} {'all Ready s':>12} "
        f"{'requests/demo operator':>23} {'bare':>5}"
    )
    rss: list[tuple[int, float, float]] = []
    for count in sizes:
        namespace = bench.namespace(f"bench-op-{count}")
        operator = OperatorProcess(bench.kubeconfig, [namespace], bench.workdir / "operator.log")
        operator.start()
        idle = psutil.Process(operator.process.pid).memory_info().rss
        started = time.monotonic()
        bench.apply_demos(namespace, count)
        bench.wait(namespace, count, _observed)
        operator_seconds = time.monotonic() - started
        requests = operator.metric("scalingdemo_operator_api_requests_total")
        bench.wait(namespace, count, _ready)
        ready_seconds = time.monotonic() - started
        rss.append(
            (count, idle / MIB, psutil.Process(operator.process.pid).memory_info().rss / MIB)
        )
        operator.stop()
        bench.drop(namespace)  # the bed's Service IP range (/24) cannot hold both runs at N=100

        baseline_namespace = bench.namespace(f"bench-bare-{count}")
        started = time.monotonic()
        bench.apply_demos(baseline_namespace, count)
        bare_requests = bench.bare_client(baseline_namespace)
        bench.wait(baseline_namespace, count, _observed)
        bare_seconds = time.monotonic() - started
        print(
            f"{count:>4} {operator_seconds:>11.2f} {bare_seconds:>14.2f} "
            f"{operator_seconds / bare_seconds:>6.2f}x {ready_seconds:>12.2f} "
            f"{requests / count:>23.1f} {bare_requests / count:>5.1f}",
            flush=True,
        )
        bench.drop(baseline_namespace)
    for count, idle, loaded in rss:
        per = (loaded - idle) / count
        print(
            f"operator RSS N={count}: idle {idle:.1f} MiB, converged {loaded:.1f} MiB "
            f"(ratio {loaded / idle:.2f}x, {per:.3f} MiB per ScalingDemo)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, default=Path(os.environ.get("KUBECONFIG", "")))
    parser.add_argument("--kubectl", type=Path, default=Path("kubectl"))
    parser.add_argument("--sizes", default="1,20,100")
    arguments = parser.parse_args()
    install_crd(arguments.kubectl, arguments.kubeconfig)
    with tempfile.TemporaryDirectory() as workdir:
        bench = Bench(arguments.kubectl, arguments.kubeconfig, Path(workdir))
        run(bench, [int(size) for size in arguments.sizes.split(",")])


if __name__ == "__main__":
    main()
