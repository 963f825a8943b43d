"""Every manifest the project ships is accepted by the real API server, with the real
third-party CRDs (KEDA, VPA, prometheus-operator) installed: the operator install as
`kubectl apply -k deploy/operator` renders it, the examples, and the kind quickstart's own
manifests (Helm values and the kind cluster config are not Kubernetes objects and are left out).

A server-side dry run checks schemas, defaults, CEL rules and admission, Pod Security included:
the namespaces that enforce the restricted profile warn about a pod template that breaks it,
and any warning fails the test.

The objects the operator builds from each example are applied for real, in the operator's
order, so KEDA's admission webhook judges the ScaledObjects it would write: a warning from
it (a setting that does not apply) would teach the wrong thing too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from scalingdemo_operator.api import KAFKA_TOPIC, Owner
from scalingdemo_operator.builders import desired_children
from scalingdemo_operator.spec import parse

from tests.operator_harness import install_crd
from tests.support import EXAMPLES, REPOSITORY, apply_reading_warnings, rendered_install
from tests.testbed.bed import Bed
from tests.testbed.control_plane import kubectl_run

QUICKSTART = REPOSITORY / "examples" / "kind"


def is_object(document: Any) -> bool:
    """A Kubernetes object, as opposed to Helm values or a kind cluster config."""
    return isinstance(document, dict) and "metadata" in document and "kind" in document


def quickstart_manifests() -> list[Path]:
    return [
        path
        for path in sorted(QUICKSTART.rglob("*.yaml"))
        if any(is_object(item) for item in yaml.safe_load_all(path.read_text()))
    ]


def dry_run(bed: Bed, documents: list[dict[str, Any]], directory: Path, *args: str) -> str:
    """`kubectl apply --dry-run=server` of the documents; kubectl's warnings fail the test.

    Namespaces the documents create are created for real first: the API server refuses to
    dry-run objects into a namespace that does not exist yet.
    """
    namespaces = [item for item in documents if item["kind"] == "Namespace"]
    if namespaces:
        created = directory / "namespaces.yaml"
        created.write_text(yaml.safe_dump_all(namespaces))
        kubectl_run(bed.kubectl, bed.kubeconfig, "apply", "--server-side", "-f", str(created))
    manifest = directory / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(documents))
    result = subprocess.run(
        [
            str(bed.kubectl),
            f"--kubeconfig={bed.kubeconfig}",
            "apply",
            "--server-side",
            "--dry-run=server",
            *args,
            "-f",
            str(manifest),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    return result.stdout


def test_the_quickstart_manifests_are_found() -> None:
    assert [path.name for path in quickstart_manifests()] == ["kafka.yaml"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_passes_server_side_dry_run(
    bed: Bed, namespace: str, example: Path, tmp_path: Path
) -> None:
    install_crd(bed.kubectl, bed.kubeconfig)
    documents = [item for item in yaml.safe_load_all(example.read_text()) if item]
    output = dry_run(bed, documents, tmp_path, "-n", namespace)
    assert output.count("(server dry run)") == len(documents)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_the_objects_built_from_an_example_draw_no_admission_warning(
    bed: Bed, kube_api: client.ApiClient, namespace: str, example: Path
) -> None:
    """The example's own documents, then each demo's children built from its spec as the
    API server stored it (defaults filled in), which is what the operator reads."""
    install_crd(bed.kubectl, bed.kubeconfig)
    dynamic = DynamicClient(kube_api)
    warnings: dict[str, list[str]] = {}

    def apply(manifest: dict[str, Any]) -> dict[str, Any]:
        applied, warnings[f"{manifest['kind']} {manifest['metadata']['name']}"] = (
            apply_reading_warnings(dynamic, manifest)
        )
        return applied

    for document in (item for item in yaml.safe_load_all(example.read_text()) if item):
        document["metadata"]["namespace"] = namespace
        applied = apply(document)
        if applied["kind"] == "ScalingDemo":
            owner = Owner.from_body(applied)
            for child in desired_children(parse(applied["spec"]), owner, KAFKA_TOPIC.versions[0]):
                apply(child)
    assert {name: found for name, found in warnings.items() if found} == {}, sorted(warnings)


def test_the_operator_install_passes_server_side_dry_run(bed: Bed, tmp_path: Path) -> None:
    documents = rendered_install(bed.kubectl, bed.kubeconfig)
    kinds = sorted(item["kind"] for item in documents)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "Deployment",
        "Namespace",
        "ServiceAccount",
    ]
    output = dry_run(bed, documents, tmp_path)
    assert output.count("(server dry run)") == len(documents)


@pytest.mark.parametrize("manifest", quickstart_manifests(), ids=lambda path: path.name)
def test_quickstart_manifest_passes_server_side_dry_run(
    bed: Bed, manifest: Path, tmp_path: Path
) -> None:
    documents = [item for item in yaml.safe_load_all(manifest.read_text()) if is_object(item)]
    output = dry_run(bed, documents, tmp_path)
    assert output.count("(server dry run)") == len(documents)


def test_the_load_job_passes_server_side_dry_run(bed: Bed, namespace: str, tmp_path: Path) -> None:
    """examples/load-job.yaml: a Job the API server accepts, Pod Security included."""
    job = REPOSITORY / "examples" / "load-job.yaml"
    documents = [item for item in yaml.safe_load_all(job.read_text()) if item]
    output = dry_run(bed, documents, tmp_path, "-n", namespace)
    assert output.count("(server dry run)") == 1
