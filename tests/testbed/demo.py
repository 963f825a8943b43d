"""The demo on the project's own local cluster, for machines without kind or Docker.

``make demo DEMO=local`` (the default where kind or docker is missing) starts a bed with its
real node, KEDA and Prometheus, installs the operator as a pod with ``kubectl apply -k`` of
an overlay of deploy/operator, applies examples/basic.yaml with only the addresses changed,
and leaves it all running; ``make demo-down`` stops it. The overlay is also what the
end-to-end test applies, so the demo a user gets is the one CI proves.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

from . import bed as testbed
from . import bridge, processes
from .control_plane import kubectl_run
from .node import placement_annotations
from .toolchain import say

REPOSITORY = Path(__file__).resolve().parents[2]
INSTALL = REPOSITORY / "deploy" / "operator"
EXAMPLE = REPOSITORY / "examples" / "basic.yaml"
OPERATOR = "scalingdemo-operator"
OPERATOR_NAMESPACE = "scalingdemo-system"
DEMO_NAMESPACE = "default"
ROLLOUT_TIMEOUT = "300s"


def operator_overlay(directory: Path, api_port: int) -> Path:
    """deploy/operator as shipped, plus only what this cluster needs.

    The image name already is the one built locally (scalingdemo-operator:dev, loaded into
    containerd), so ``images`` repeats it to show where another one goes. The namespace sends
    its pods to the real node; the operator's container is pointed at the API server's
    forwarder on the bridge, since no kube-proxy routes the ``kubernetes`` Service here.
    """
    directory.mkdir(parents=True, exist_ok=True)
    namespace_patch = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": OPERATOR_NAMESPACE, "annotations": placement_annotations()},
    }
    api_route = [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/env",
            "value": [
                {"name": "KUBERNETES_SERVICE_HOST", "value": bridge.ADDRESS},
                {"name": "KUBERNETES_SERVICE_PORT", "value": str(api_port)},
            ],
        }
    ]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(INSTALL, directory)],
        "images": [{"name": OPERATOR, "newName": OPERATOR, "newTag": "dev"}],
        "patches": [
            {
                "target": {"kind": "Namespace", "name": OPERATOR_NAMESPACE},
                "patch": yaml.safe_dump(namespace_patch),
            },
            {"target": {"kind": "Deployment", "name": OPERATOR}, "patch": json.dumps(api_route)},
        ],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return directory


def example_with_addresses(kafka_bootstrap: str, prometheus_url: str) -> dict:
    """examples/basic.yaml with the broker and Prometheus of this cluster, nothing else."""
    body = yaml.safe_load(EXAMPLE.read_text())
    body["spec"]["kafka"]["bootstrapServers"] = kafka_bootstrap
    body["spec"]["monitoring"]["prometheus"]["serverAddress"] = prometheus_url
    return body


def up(run_dir: Path) -> int:
    processes.keep_running_after_exit()
    started = testbed.start(run_dir)
    try:
        node = started.start_node()
        started.start_keda()
        assert started.prometheus is not None
        kubectl = (started.kubectl, started.kubeconfig)
        say("installing the operator (kubectl apply -k)")
        kubectl_run(
            *kubectl,
            "apply",
            "-k",
            str(operator_overlay(run_dir / "operator", node.api_port)),
        )
        kubectl_run(
            *kubectl,
            "-n",
            OPERATOR_NAMESPACE,
            "rollout",
            "status",
            f"deployment/{OPERATOR}",
            f"--timeout={ROLLOUT_TIMEOUT}",
        )
        kubectl_run(
            *kubectl,
            "annotate",
            "--overwrite",
            "namespace",
            DEMO_NAMESPACE,
            *(f"{key}={value}" for key, value in placement_annotations().items()),
        )
        manifest = run_dir / "basic.yaml"
        manifest.write_text(
            yaml.safe_dump(example_with_addresses(node.kafka_bootstrap, started.prometheus.url))
        )
        say("applying examples/basic.yaml")
        kubectl_run(*kubectl, "apply", "-n", DEMO_NAMESPACE, "-f", str(manifest))
        kubectl_run(
            *kubectl,
            "-n",
            DEMO_NAMESPACE,
            "wait",
            "--for=condition=Ready",
            "scalingdemo/basic",
            f"--timeout={ROLLOUT_TIMEOUT}",
        )
    except BaseException:
        started.stop()
        raise
    load = Path(sys.executable).parent / "scalingdemo-load"
    print(
        f"""
The demo is running on the local cluster (a bed with one real node, KEDA and Prometheus).

  export KUBECONFIG={started.kubeconfig}
  export PATH={started.kubectl.parent}:$PATH      # kubectl of the same release

  The API (run the load generator against it):
    kubectl port-forward -n {DEMO_NAMESPACE} svc/basic-api 8080:8080 &
    {load} http://127.0.0.1:8080 --kind tasks --complexity 5 --rate 20 --duration 120

  Watch it scale:
    kubectl get scalingdemo -w
    kubectl get hpa,scaledobject -n {DEMO_NAMESPACE}
    kubectl describe scalingdemo basic

  Prometheus: {started.prometheus.url}

  Tear down: make demo-down
"""
    )
    return 0
