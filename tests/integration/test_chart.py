"""charts/scalingdemo-operator: lint clean, rendered as the operator and deploy/operator expect.

These run the real `helm` (built by the bed) and, for the comparison with the kustomize install,
the bed's `kubectl kustomize`; they need no running operator. What the rendered objects do on a
cluster is tested in test_chart_install.py and test_rbac.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from scalingdemo_operator.__main__ import _arguments

from tests import chart
from tests.support import rendered_install
from tests.testbed.bed import Bed
from tests.testbed.toolchain import BedError

NAMESPACED = {"watchNamespaces": ["team-a", "team-b"]}
RULES_SOURCE = chart.CHART / "files" / "rbac" / "clusterrole.yaml"


def source_rules() -> list[dict[str, Any]]:
    return yaml.safe_load(RULES_SOURCE.read_text())["rules"]


def container(manifests: list[chart.Manifest]) -> dict[str, Any]:
    (found,) = chart.only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return found


@pytest.mark.parametrize("values", [{}, NAMESPACED], ids=["cluster-wide", "namespaced"])
def test_lint_is_clean(helm: Path, values: dict[str, Any]) -> None:
    output = chart.run_helm(helm, "lint", "--strict", str(chart.CHART), *chart.value_flags(values))
    assert "0 chart(s) failed" in output, output


def test_every_namespace_is_granted_by_one_cluster_role(helm: Path) -> None:
    manifests = chart.template(helm)
    assert chart.only(manifests, "ClusterRole")["rules"] == source_rules()
    assert not chart.of_kind(manifests, "Role")
    assert "--namespace" not in " ".join(container(manifests)["args"])


def test_a_namespace_list_is_granted_by_roles_in_those_namespaces(helm: Path) -> None:
    manifests = chart.template(helm, NAMESPACED)
    roles = chart.of_kind(manifests, "Role")
    bindings = chart.of_kind(manifests, "RoleBinding")
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["team-a", "team-b"]
    assert sorted(item["metadata"]["namespace"] for item in bindings) == ["team-a", "team-b"]
    cluster_rules = chart.only(manifests, "ClusterRole")["rules"]
    # Only what a Role cannot grant: cluster-scoped reads, for kopf's discovery.
    assert {resource for rule in cluster_rules for resource in rule["resources"]} == {
        "customresourcedefinitions",
        "namespaces",
    }
    assert all(set(rule["verbs"]) == {"list", "watch"} for rule in cluster_rules)
    # Between them, the roles grant every rule of the one source, nothing more.
    namespaced_rules = roles[0]["rules"]
    assert all(role["rules"] == namespaced_rules for role in roles)
    shipped = [rule for rule in cluster_rules if "namespaces" not in rule["resources"]]
    assert sorted(map(str, shipped + namespaced_rules)) == sorted(map(str, source_rules()))


def test_values_reach_the_operator_command_line(helm: Path) -> None:
    values = {
        "watchNamespaces": ["team-a"],
        "resyncSeconds": 60,
        "topicDeleteAttempts": 9,
        "logLevel": "debug",
        "metrics.port": 9100,
        "healthPort": 8181,
    }
    found = container(chart.template(helm, values))
    flags = _arguments(found["args"])
    assert flags.namespace == ["team-a"]
    assert (flags.resync_seconds, flags.topic_delete_attempts, flags.verbose) == (60, 9, True)
    assert flags.metrics_port == 9100
    assert flags.liveness == "http://0.0.0.0:8181/healthz"
    ports = {port["name"]: port["containerPort"] for port in found["ports"]}
    assert ports == {"metrics": 9100, "healthz": 8181}


def test_pod_settings_come_from_values(helm: Path) -> None:
    values = {
        "image": {"repository": "registry.example/op", "tag": "1.2", "pullPolicy": "Always"},
        "nodeSelector": {"pool": "system"},
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "priorityClassName": "system-cluster-critical",
        "labels": {"team": "platform"},
        "annotations": {"owner": "platform@example.com"},
        "podAnnotations": {"extra": "yes"},
    }
    manifests = chart.template(helm, values)
    deployment = chart.only(manifests, "Deployment")
    pod = deployment["spec"]["template"]
    found = container(manifests)
    assert (found["image"], found["imagePullPolicy"]) == ("registry.example/op:1.2", "Always")
    assert pod["spec"]["nodeSelector"] == values["nodeSelector"]
    assert pod["spec"]["tolerations"] == values["tolerations"]
    assert pod["spec"]["affinity"] == values["affinity"]
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["metadata"]["labels"]["team"] == "platform"
    assert pod["metadata"]["annotations"]["extra"] == "yes"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9090"
    for item in manifests:
        if item["kind"] != "CustomResourceDefinition":
            assert item["metadata"]["labels"]["team"] == "platform", item["kind"]
            assert item["metadata"]["annotations"]["owner"] == "platform@example.com"


def test_the_service_monitor_is_off_by_default_and_scrapes_metrics_when_on(helm: Path) -> None:
    assert not chart.of_kind(chart.template(helm), "ServiceMonitor")
    values = {"metrics.serviceMonitor.enabled": True, "metrics.serviceMonitor.labels": {"a": "b"}}
    manifests = chart.template(helm, values)
    monitor = chart.only(manifests, "ServiceMonitor")
    service = chart.only(manifests, "Service")
    assert monitor["metadata"]["labels"]["a"] == "b"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    (port,) = service["spec"]["ports"]
    assert (endpoint["port"], endpoint["path"], port["targetPort"]) == (
        "metrics",
        "/metrics",
        "metrics",
    )
    pod_labels = chart.only(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--set", "logLevel=loud"], "logLevel"),
        (["--set-json", 'watchNamespaces=["Not_A_Namespace"]'], "watchNamespaces"),
        (["--set", "resyncSeconds=-1"], "resyncSeconds"),
        (["--set", "topicDeleteAttempts=0"], "topicDeleteAttempts"),
        (["--set", "image.pullPolicy=Sometimes"], "image"),
        (["--set", "metrics.serviceMonitor.interval=30 seconds"], "interval"),
        (["--set", "watchNamespace=typo"], "watchNamespace"),
    ],
)
def test_bad_values_are_refused_naming_the_field(helm: Path, flags: list[str], field: str) -> None:
    with pytest.raises(BedError, match=field):
        chart.run_helm(helm, "template", "x", str(chart.CHART), *flags)


def test_notes_give_the_next_step(helm: Path) -> None:
    output = chart.run_helm(
        helm, "install", "x", str(chart.CHART), "--dry-run=client", "--namespace", "ops"
    )
    assert "kubectl -n ops rollout status deployment/x-scalingdemo-operator" in output
    assert "examples/minimal.yaml" in output


def comparable(deployment: dict[str, Any]) -> dict[str, Any]:
    """What the operator runs with: the pod spec and strategy, arguments as the operator
    parses them (flags at their default value may be spelled out or left out); labels, which
    Helm adds to, are left out."""
    spec = deployment["spec"]
    pod = dict(spec["template"]["spec"])
    (container,) = pod.pop("containers")
    container = dict(container)
    arguments = vars(_arguments(container.pop("args")))
    return {
        "replicas": spec["replicas"],
        "strategy": spec["strategy"],
        "annotations": spec["template"]["metadata"]["annotations"],
        "pod": pod,
        "container": container,
        "arguments": arguments,
    }


def test_chart_and_kustomize_install_the_same_operator(helm: Path, bed: Bed) -> None:
    """With the release named as deploy/operator names its objects, in its namespace."""
    from_chart = chart.template(helm)
    from_kustomize = rendered_install(bed.kubectl, bed.kubeconfig)

    for kind in ("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"):
        ours, theirs = chart.only(from_chart, kind), chart.only(from_kustomize, kind)
        for document in (ours, theirs):
            document["metadata"].pop("labels", None)  # each install labels its own way
        assert ours == theirs, kind
    assert not chart.of_kind(from_chart, "Role")

    assert comparable(chart.only(from_chart, "Deployment")) == comparable(
        chart.only(from_kustomize, "Deployment")
    )
