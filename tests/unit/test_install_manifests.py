"""deploy/operator: the Deployment agrees with the operator's command line and runs it safely.

The API server checks schemas and Pod Security (tests/integration/test_examples.py); this checks
what it cannot know: the probe and the metrics port are where the operator's flags put them,
one replica is ever running, and the image is the one kustomize's `images:` entry replaces.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from scalingdemo_operator.__main__ import _arguments

from tests.support import INSTALL_DIRECTORY

pytestmark = pytest.mark.unit


def load(name: str) -> list[dict[str, Any]]:
    return [item for item in yaml.safe_load_all((INSTALL_DIRECTORY / name).read_text()) if item]


@pytest.fixture
def deployment() -> dict[str, Any]:
    (found,) = load("deployment.yaml")
    return found


def test_one_replica_at_a_time(deployment: dict[str, Any]) -> None:
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_probe_and_ports_match_the_operator_flags(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    flags = _arguments(container["args"])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    liveness = urlsplit(flags.liveness)
    assert ports == {"metrics": flags.metrics_port, "healthz": liveness.port}
    probe = container["livenessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == (liveness.path, "healthz")
    assert flags.namespace == [], "the install watches every namespace, as its ClusterRole allows"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(flags.metrics_port)


def test_the_container_is_locked_down(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    assert pod["serviceAccountName"] == load("rbac.yaml")[0]["metadata"]["name"]


def test_the_image_is_the_one_kustomize_sets(deployment: dict[str, Any]) -> None:
    (kustomization,) = load("kustomization.yaml")
    (image,) = kustomization["images"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image["name"]
    assert (image["newName"], image["newTag"]) == ("scalingdemo-operator", "dev")
    assert "../../crds" in kustomization["resources"]
