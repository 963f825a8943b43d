"""Monitoring builders: ServiceMonitors, scrape annotations and the Grafana dashboard."""

from __future__ import annotations

from typing import Any

import pytest
from scalingdemo_operator.api import APPLIED_HASH_ANNOTATION, Owner
from scalingdemo_operator.assess.conditions import MONITORING, scaling_condition
from scalingdemo_operator.builders import desired_children
from scalingdemo_operator.builders.dashboard import (
    THRESHOLD_REF,
    UID_LIMIT,
    config_map,
    dashboard,
    uid,
)
from scalingdemo_operator.builders.monitoring import service_monitor
from scalingdemo_operator.builders.promql import scope
from scalingdemo_operator.builders.workload import deployment
from scalingdemo_operator.quantities import amount
from scalingdemo_operator.spec import SpecError, parse

from tests.unit.conftest import (
    MINIMAL,
    OWNER,
    PROMETHEUS,
    SCRAPE_ANNOTATIONS,
    SEED_TRIGGERS,
    SELECTOR,
    child_metadata,
    model_of,
    targets,
    unstamped,
    worker_spec,
)

pytestmark = pytest.mark.unit

RELEASE = {"release": "kube-prometheus-stack"}
ROWS = ["Traffic", "Kafka", "Processing", "Resources", "Scaling", "KEDA"]
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _thresholds(model: dict[str, Any]) -> dict[str, str]:
    return {
        title: target["expr"]
        for title, target in targets(model)
        if target["refId"] == THRESHOLD_REF
    }


def test_a_service_monitor_scrapes_the_components_service_with_the_spec_labels() -> None:
    spec = parse(
        {
            **MINIMAL,
            "monitoring": {
                "serviceMonitor": {
                    "labels": {**RELEASE, "app.kubernetes.io/managed-by": "someone-else"},
                    "interval": "30s",
                }
            },
        }
    )
    built = unstamped(service_monitor(spec, OWNER, "worker"))
    assert built == {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            **child_metadata("demo-worker"),
            "labels": {**RELEASE, **child_metadata("demo-worker")["labels"]},
        },
        "spec": {
            "selector": {"matchLabels": SELECTOR},
            "namespaceSelector": {"matchNames": ["team"]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
        },
    }


def test_the_service_monitor_selects_what_the_service_is_labelled_and_named() -> None:
    spec = parse(MINIMAL)
    children = {
        (item["kind"], item["metadata"]["name"]): item for item in desired_children(spec, OWNER)
    }
    monitor = children[("ServiceMonitor", "demo-api")]
    service = children[("Service", "demo-api")]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert monitor["spec"]["endpoints"][0]["port"] == port["name"]


def test_pod_annotations_follow_the_spec() -> None:
    on = deployment(parse(MINIMAL), OWNER, "api")["spec"]["template"]["metadata"]
    assert on["annotations"] == SCRAPE_ANNOTATIONS
    off = parse({**MINIMAL, "monitoring": {"podAnnotations": False}})
    assert "annotations" not in deployment(off, OWNER, "api")["spec"]["template"]["metadata"]


def test_switched_off_there_are_no_service_monitors_and_no_dashboard() -> None:
    spec = parse(
        {
            **MINIMAL,
            "monitoring": {"serviceMonitor": {"enabled": False}, "dashboard": {"enabled": False}},
        }
    )
    kinds = {item["kind"] for item in desired_children(spec, OWNER)}
    assert kinds == {"Service", "Deployment"}


def test_the_dashboard_config_map_is_labelled_owned_and_foldered_for_the_sidecar() -> None:
    spec = parse(
        {
            **MINIMAL,
            "monitoring": {
                "dashboard": {
                    "labels": {"grafana_dashboard": "yes"},
                    "folder": "Demos",
                    "folderAnnotation": "grafana_folder",
                }
            },
        }
    )
    built = config_map(spec, OWNER)
    data = built.pop("data")
    annotations = built["metadata"].pop("annotations")
    assert built == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            **child_metadata("demo-dashboard", "dashboard"),
            "labels": {"grafana_dashboard": "yes", **child_metadata("x", "dashboard")["labels"]},
        },
    }
    assert set(annotations) == {"grafana_folder", APPLIED_HASH_ANNOTATION}
    assert annotations["grafana_folder"] == "Demos"
    assert list(data) == ["scalingdemo-team-demo.json"]


def test_the_default_labels_are_the_sidecars_defaults() -> None:
    metadata = config_map(parse(MINIMAL), OWNER)["metadata"]
    assert metadata["labels"]["grafana_dashboard"] == "1"
    assert metadata["annotations"]["k8s-sidecar-target-directory"] == "ScalingDemo"


def test_the_uid_is_stable_short_and_unique_per_namespace_and_name() -> None:
    uids = {
        uid(Owner(namespace, name, "any"))
        for namespace, name in (("team", "demo"), ("team", "demo2"), ("team2", "demo"))
    }
    assert len(uids) == 3
    long = Owner("n" * 63, "d" * 253, "1")
    assert len(uid(long)) <= UID_LIMIT
    assert uid(long) == uid(Owner("n" * 63, "d" * 253, "2"))
    assert model_of(config_map(parse(MINIMAL), OWNER))["uid"] == uid(OWNER)


def _autoscaled_spec(*triggers: dict[str, Any]) -> Any:
    return worker_spec({"autoscaling": {"enabled": True, "triggers": list(triggers)}})


def test_every_query_uses_the_datasource_variable_and_is_scoped_to_the_demo() -> None:
    model = dashboard(_autoscaled_spec(*SEED_TRIGGERS), OWNER)
    variables = {item["name"]: item for item in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert [panel["title"] for panel in model["panels"] if panel["type"] == "row"] == ROWS
    found = list(targets(model))
    assert len(found) > 20
    for title, target in found:
        assert target["datasource"] == DATASOURCE
        expression = target["expr"]
        if not expression.startswith("vector("):
            assert 'namespace="team"' in expression, (title, expression)
    scoped = [target["expr"] for _, target in found if "scalingdemo_" in target["expr"]]
    assert all(scope(OWNER) in expression or 'service=~"demo-worker"' in expression
               for expression in scoped)  # fmt: skip
    assert len({panel["id"] for panel in model["panels"]}) == len(model["panels"])


def test_lag_is_deduplicated_and_quantiles_sum_buckets_first() -> None:
    expressions = {title: [t["expr"] for t in found] for title, found in _by_panel(SEED_TRIGGERS)}
    lag, keda_lag = expressions["Consumer lag by topic"]
    assert lag == (
        "sum by (topic) (max by (topic, group) "
        f"(scalingdemo_consumer_lag_records{{{scope(OWNER)}}}))"
    )
    assert keda_lag == (
        'max((keda_scaler_metrics_value{namespace="team", scaledObject="demo-worker", '
        'scaler="taskLag"} or keda_scaler_metrics_value{exported_namespace="team", '
        'scaledObject="demo-worker", scaler="taskLag"}))'
    )
    p50, *_ = expressions["Request latency"]
    assert p50 == (
        "histogram_quantile(0.5, sum by (le) (rate(scalingdemo_http_request_duration_seconds_"
        f"bucket{{{scope(OWNER)}}}[1m])))"
    )


def _by_panel(triggers: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    model = dashboard(_autoscaled_spec(*triggers), OWNER)
    return [(panel["title"], panel["targets"]) for panel in model["panels"] if "targets" in panel]


def test_each_trigger_is_drawn_per_replica_against_its_threshold() -> None:
    triggers = [
        *SEED_TRIGGERS,
        {"name": "mem", "memory": {"metricType": "AverageValue", "value": "256Mi"}},
    ]
    panels = dict(_by_panel(triggers))
    replicas = 'count(up{namespace="team", service=~"demo-worker"})'
    lag = panels["demo-worker: trigger taskLag (kafkaLag)"]
    assert [target["refId"] for target in lag] == ["A", "B", THRESHOLD_REF]
    assert lag[0]["expr"].endswith(f") / {replicas}")
    assert 'topic="team-demo-tasks", group="team-demo-tasks-consumer"' in lag[0]["expr"]
    assert 'scaledObject="demo-worker", scaler="taskLag"' in lag[1]["expr"]
    assert lag[2]["expr"] == "vector(5)"
    queue = panels["demo-worker: trigger queueDepth (prometheus)"]
    assert queue[2]["expr"] == "vector(20)"
    cpu = panels["demo-worker: trigger cpu (cpu)"]
    assert [target["expr"] for target in cpu] == [
        '100 * avg(scalingdemo_process_cpu_utilization_ratio{namespace="team", '
        'service=~"demo-worker"}) / 0.1',
        "vector(70)",
    ]
    memory = panels["demo-worker: trigger mem (memory)"]
    assert memory[-1]["expr"] == f"vector({256.0 * 2**20})"
    replicas_panel = panels["Replicas"]
    assert replicas_panel[-1] == {
        "datasource": DATASOURCE,
        "expr": "vector(10)",
        "legendFormat": "demo-worker maxReplicas",
        "refId": f"{THRESHOLD_REF}-worker",
    }


def test_threshold_lines_are_drawn_as_dashed_lines() -> None:
    model = dashboard(_autoscaled_spec(*SEED_TRIGGERS), OWNER)
    for panel in model["panels"]:
        lines = {t["refId"] for t in panel.get("targets", []) if t["refId"].startswith("threshold")}
        styled = {item["matcher"]["options"] for item in panel.get("fieldConfig", {}).get(
            "overrides", []
        )}  # fmt: skip
        assert lines == styled


def test_a_changed_threshold_moves_its_line() -> None:
    before = config_map(_autoscaled_spec(SEED_TRIGGERS[0]), OWNER)
    moved = {**SEED_TRIGGERS[0], "kafkaLag": {"topic": "tasks", "lagThreshold": 50}}
    after = config_map(_autoscaled_spec(moved), OWNER)
    title = "demo-worker: trigger taskLag (kafkaLag)"
    assert _thresholds(model_of(before))[title] == "vector(5)"
    assert _thresholds(model_of(after))[title] == "vector(50)"
    assert before["metadata"]["annotations"] != after["metadata"]["annotations"]


def test_without_autoscaling_the_scaling_row_shows_replicas_only() -> None:
    model = dashboard(
        parse({**MINIMAL, "monitoring": {"prometheus": {"serverAddress": PROMETHEUS}}}), OWNER
    )
    scaling = [title for title, _ in targets(model) if title.startswith("demo-")]
    assert scaling == []
    assert not _thresholds(model)


@pytest.mark.parametrize(
    ("text", "value"),
    [("100m", 0.1), ("2", 2.0), ("1.5", 1.5), ("256Mi", 268435456.0), ("1G", 1e9), ("1e3", 1e3)],
)
def test_resource_quantities(text: str, value: float) -> None:
    assert float(amount(text)) == pytest.approx(value)


def test_a_bad_quantity_is_named() -> None:
    with pytest.raises(ValueError, match="'12Q'"):
        amount("12Q")


def test_without_the_prometheus_operator_monitoring_says_why_and_what_still_works() -> None:
    missing = scaling_condition(MONITORING, ["demo-api"], [], missing=True, failures=[])
    assert (missing.type, missing.status, missing.reason) == (
        "MonitoringReady",
        "False",
        "PrometheusOperatorNotInstalled",
    )
    assert "prometheus.io annotations" in missing.message
    applied = scaling_condition(MONITORING, ["demo-api"], [], missing=False, failures=[])
    assert (applied.status, applied.message) == ("True", "ServiceMonitor(s) demo-api applied")
    unwanted = scaling_condition(MONITORING, [], [], missing=True, failures=[])
    assert (unwanted.status, unwanted.reason) == ("True", "NotRequested")


@pytest.mark.parametrize(
    ("interval", "valid"),
    [("1m30s", True), ("500ms", True), ("30s1m", False), ("", False), ("15", False)],
)
def test_scrape_intervals_are_written_as_the_prometheus_operator_accepts_them(
    interval: str, valid: bool
) -> None:
    """The upstream ServiceMonitor schema refuses other forms, which would fail the apply."""
    raw = {
        "image": "i",
        "kafka": {"bootstrapServers": "k:9092"},
        "monitoring": {"serviceMonitor": {"interval": interval}},
    }
    if valid:
        assert parse(raw).monitoring.service_monitor.interval == interval
    else:
        with pytest.raises(SpecError, match=r"spec\.monitoring\.serviceMonitor\.interval"):
            parse(raw)
