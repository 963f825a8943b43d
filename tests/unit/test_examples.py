"""Every example is a spec the operator accepts and can build, and says what it means.

The server-side dry run (tests/integration/test_examples.py) checks the CRD's view; this
checks the operator's: the spec model, its cross-field rules and the builders. An example
that makes the operator warn (a partition cap) would teach the wrong thing, and a Secret
an example refers to must come with it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from scalingdemo_operator.api import Owner
from scalingdemo_operator.assess.status import partition_caps, zero_notes
from scalingdemo_operator.builders import desired_children
from scalingdemo_operator.builders.promql import (
    KSM_DEMO_CONDITION,
    KSM_VPA_RECOMMENDATION,
    VPA_BOUNDS,
)
from scalingdemo_operator.spec import parse
from scalingdemo_workload.contract import Defaults
from scalingdemo_workload.loadgen import parse_args

from tests.support import EXAMPLES, REPOSITORY

pytestmark = pytest.mark.unit


def documents(path: Path) -> list[dict[str, Any]]:
    return [item for item in yaml.safe_load_all(path.read_text()) if item]


def test_the_examples_are_there() -> None:
    names = {path.name for path in EXAMPLES}
    assert {
        "basic.yaml",
        "minimal.yaml",
        "multi-trigger.yaml",
        "kafka-auth.yaml",
        "strimzi.yaml",
        "scale-to-zero.yaml",
    } <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.name)
def test_example_parses_and_builds_without_notes(example: Path) -> None:
    found = documents(example)
    demos = [item for item in found if item["kind"] == "ScalingDemo"]
    assert demos, "an example holds at least one ScalingDemo"
    assert example.read_text().startswith("#"), "an example opens with a comment saying why"
    for demo in demos:
        spec = parse(demo["spec"])
        owner = Owner(namespace="demo", name=demo["metadata"]["name"], uid="uid-1")
        assert desired_children(spec, owner)
        assert partition_caps(spec, owner) == []
        assert zero_notes(spec, owner) == []
        auth = spec.kafka.auth
        wanted = []
        if auth and auth.sasl:
            wanted.append((auth.sasl.secret_name, auth.sasl.username_key))
            wanted.append((auth.sasl.secret_name, auth.sasl.password_key))
        if auth and auth.tls and auth.tls.ca_secret_name:
            wanted.append((auth.tls.ca_secret_name, auth.tls.ca_key))
        secrets = {
            item["metadata"]["name"]: {**item.get("data", {}), **item.get("stringData", {})}
            for item in found
            if item["kind"] == "Secret"
        }
        for name, key in wanted:
            assert key in secrets.get(name, {}), f"Secret {name} with key {key} in {example.name}"


def test_the_examples_point_at_what_the_kind_quickstart_installs() -> None:
    """basic, minimal and multi-trigger run on the quickstart's stack unchanged."""
    quickstart = REPOSITORY / "examples" / "kind"
    release, namespace = re.search(
        r"^chart (\S+) (\S+) prometheus-community/kube-prometheus-stack",
        (quickstart / "up.sh").read_text(),
        re.MULTILINE,
    ).groups()
    kafka = next(item for item in documents(quickstart / "kafka.yaml") if item["kind"] == "Service")
    (port,) = [entry["port"] for entry in kafka["spec"]["ports"]]
    bootstrap = f"{kafka['metadata']['name']}.{kafka['metadata']['namespace']}.svc.cluster.local"
    prometheus = f"http://{release}-prometheus.{namespace}.svc.cluster.local:9090"
    for name in ("basic.yaml", "minimal.yaml", "multi-trigger.yaml"):
        (demo,) = documents(REPOSITORY / "examples" / name)
        spec = parse(demo["spec"])
        assert spec.kafka.bootstrap_servers == f"{bootstrap}:{port}", name
        assert spec.image == "scalingdemo-workload:dev", name
        if spec.monitoring.prometheus is not None:
            assert spec.monitoring.prometheus.server_address == prometheus, name
            assert spec.monitoring.service_monitor.labels == {"release": release}, name
        if spec.monitoring.alerts.enabled:
            assert spec.monitoring.alerts.labels == {"release": release}, name


QUICKSTART = REPOSITORY / "examples" / "kind"
KSM_PREFIX = "kube_customresource_"
"""kube-state-metrics' metric name prefix where a customResourceState resource sets none."""


def _exported(resource: dict[str, Any]) -> dict[str, set[str]]:
    """Metric name -> labels of one customResourceState resource."""
    found: dict[str, set[str]] = {}
    for metric in resource["metrics"]:
        labels = {*resource["labelsFromPath"], *metric.get("commonLabels", {})}
        labels |= set(metric["each"]["gauge"].get("labelsFromPath", {}))
        found.setdefault(f"{KSM_PREFIX}{metric['name']}", set()).update(labels)
    return found


def test_kube_state_metrics_exports_what_the_dashboard_and_the_alerts_query() -> None:
    values = yaml.safe_load((QUICKSTART / "values" / "kube-prometheus-stack.yaml").read_text())
    ksm = values["kube-state-metrics"]
    state = ksm["customResourceState"]
    assert state["enabled"] is True
    resources = {
        item["groupVersionKind"]["kind"]: item for item in state["config"]["spec"]["resources"]
    }
    vpa = _exported(resources["VerticalPodAutoscaler"])
    for bound in VPA_BOUNDS:
        assert vpa[f"{KSM_VPA_RECOMMENDATION}{bound}"] >= {
            "namespace",
            "verticalpodautoscaler",
            "container",
            "resource",
        }
    demo = _exported(resources["ScalingDemo"])
    assert demo[KSM_DEMO_CONDITION] >= {"namespace", "scalingdemo", "type"}
    readable = {
        (group, resource)
        for rule in ksm["rbac"]["extraRules"]
        if {"list", "watch"} <= set(rule["verbs"])
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert readable >= {
        ("autoscaling.k8s.io", "verticalpodautoscalers"),
        ("scalingdemo.dev", "scalingdemos"),
    }


def test_the_quickstart_scrapes_keda_after_installing_the_service_monitor_crd() -> None:
    script = (QUICKSTART / "up.sh").read_text()
    release = re.search(
        r"^chart (\S+) \S+ prometheus-community/kube-prometheus-stack", script, re.MULTILINE
    ).group(1)
    assert script.index("prometheus-community/kube-prometheus-stack") < script.index(
        "chart keda keda kedacore/keda"
    )
    assert '--values "${here}/values/keda.yaml"' in script
    operator = yaml.safe_load((QUICKSTART / "values" / "keda.yaml").read_text())["prometheus"][
        "operator"
    ]
    assert operator["enabled"] is True
    assert operator["serviceMonitor"]["enabled"] is True
    assert operator["serviceMonitor"]["additionalLabels"] == {"release": release}


def test_the_load_job_loads_the_basic_demos_api_with_a_profile() -> None:
    """examples/load-job.yaml: the workload image, the api Service of examples/basic.yaml, and
    arguments scalingdemo-load accepts."""
    (job,) = documents(REPOSITORY / "examples" / "load-job.yaml")
    (demo,) = documents(REPOSITORY / "examples" / "basic.yaml")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == demo["spec"]["image"]
    assert container["command"] == ["scalingdemo-load"]
    args = parse_args(container["args"])
    assert args.url == f"http://{demo['metadata']['name']}-api:{Defaults.PORT}"
    assert args.profile.seconds == 360
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
