"""The Helm chart as the tests use it: rendered by the real `helm`, its objects picked apart.

`helm` is built by the bed on first use (tests/testbed/assets.py), so only tests that need it
pay for the build, and `pytest -m unit` needs no Go.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support import REPOSITORY
from tests.testbed.toolchain import capture

CHART = REPOSITORY / "charts" / "scalingdemo-operator"
RELEASE = "scalingdemo-operator"
"""The release name whose objects are named as deploy/operator names them."""
NAMESPACE = "scalingdemo-system"
RBAC_KINDS = frozenset({"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})

Manifest = dict[str, Any]


def value_flags(values: Mapping[str, Any]) -> list[str]:
    """`--set-json` flags for values given by dotted path, e.g. {"metrics.port": 9100}."""
    flags = []
    for path, value in values.items():
        flags += ["--set-json", f"{path}={json.dumps(value)}"]
    return flags


def run_helm(binary: Path, *args: str, kubeconfig: Path | None = None) -> str:
    """Run helm; a failure raises with helm's own message."""
    context = [f"--kubeconfig={kubeconfig}"] if kubeconfig else []
    return capture([binary, *context, *args], f"helm {' '.join(args)}")


def template(
    binary: Path,
    values: Mapping[str, Any] | None = None,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> list[Manifest]:
    """The chart's objects as `helm install` would send them, the CRD included."""
    output = run_helm(
        binary,
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--include-crds",
        *value_flags(values or {}),
    )
    return [document for document in yaml.safe_load_all(output) if document]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [item for item in manifests if item["kind"] == kind]


def only(manifests: list[Manifest], kind: str) -> Manifest:
    (found,) = of_kind(manifests, kind)
    return found


def rbac(manifests: list[Manifest]) -> list[Manifest]:
    """The roles and bindings among ``manifests``."""
    return [item for item in manifests if item["kind"] in RBAC_KINDS]
