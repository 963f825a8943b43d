"""KEDA's view, the VPA's, the consumer group's and the alert rules: what the SDK-built dashboard
and the PrometheusRule contain, checked by property (no snapshots)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from scalingdemo_operator.builders import alerts, dashboard, desired_children
from scalingdemo_operator.builders.dashboard import ACTIVATION_REF, THRESHOLD_REF
from scalingdemo_operator.spec import SpecError

from tests.unit.conftest import OWNER, PROMETHEUS, SEED_TRIGGERS, worker_spec

pytestmark = pytest.mark.unit

MODIFIERS = {"formula": "taskLag + queueDepth", "target": "30"}


def _spec(**worker: Any) -> Any:
    autoscaling = {"enabled": True, "maxReplicas": 4, "triggers": SEED_TRIGGERS}
    return worker_spec(
        {"autoscaling": {**autoscaling, **worker.pop("autoscaling", {})}, **worker},
        monitoring={
            "prometheus": {"serverAddress": PROMETHEUS},
            "alerts": {"enabled": True, "labels": {"release": "kps"}},
        },
    )


def _panels(spec: Any) -> dict[str, dict[str, Any]]:
    model = dashboard.dashboard(spec, OWNER)
    return {panel["title"]: panel for panel in model["panels"] if panel["type"] != "row"}


def _exprs(panel: dict[str, Any]) -> dict[str, str]:
    return {target["refId"]: target["expr"] for target in panel["targets"]}


def test_the_dashboard_is_the_sdks_model_with_stable_ids_and_no_hand_written_json() -> None:
    spec = _spec()
    model = dashboard.dashboard(spec, OWNER)
    assert model == dashboard.dashboard(spec, OWNER)
    assert model["uid"] == dashboard.uid(OWNER)
    assert model["schemaVersion"] >= 41
    ids = [panel["id"] for panel in model["panels"]]
    assert ids == list(range(1, len(ids) + 1))
    assert {panel["type"] for panel in model["panels"]} == {"row", "timeseries"}
    for panel in model["panels"]:
        assert panel["gridPos"]["w"] == (24 if panel["type"] == "row" else 12)
    source = inspect.getsource(dashboard)
    for key in ('"gridPos"', '"targets"', '"fieldConfig"', '"templating"', '"refId"'):
        assert key not in source, key


def test_the_keda_row_shows_each_scaled_objects_decision() -> None:
    panels = _panels(_spec())
    active = _exprs(panels["demo-worker: KEDA scaler active"])["A"]
    assert active.startswith("max by (scaler) ((keda_scaler_active{")
    assert 'exported_namespace="team", scaledObject="demo-worker"' in active
    errors = _exprs(panels["demo-worker: KEDA scaler errors"])["A"]
    assert errors.count("increase(keda_scaler_detail_errors_total{") == 2
    hpa = _exprs(panels["demo-worker: HPA desired vs current replicas"])
    assert 'horizontalpodautoscaler=~"keda-hpa-demo-worker"' in hpa["A"]
    assert hpa["A"].startswith("max(kube_horizontalpodautoscaler_status_desired_replicas{")
    assert hpa["B"].startswith("max(kube_horizontalpodautoscaler_status_current_replicas{")
    assert hpa[f"{THRESHOLD_REF}-worker"] == "vector(4)"
    lag = _exprs(panels["demo-worker: KEDA trigger taskLag"])
    assert 'scaler="taskLag"' in lag["A"]
    assert lag[THRESHOLD_REF].startswith("5 * (count(up{")
    assert lag[THRESHOLD_REF].endswith(" or vector(0))")
    assert lag[ACTIVATION_REF] == "vector(0)"
    queue = _exprs(panels["demo-worker: KEDA trigger queueDepth"])
    assert queue[THRESHOLD_REF].startswith("20 * ")
    assert not any("KEDA trigger cpu" in title for title in panels)


def test_activation_lines_and_the_scaling_modifiers_formula_follow_the_spec() -> None:
    triggers = [
        {"name": "taskLag", "kafkaLag": {"topic": "tasks", "activationLagThreshold": 7}},
        {"name": "queueDepth", "prometheus": {"preset": "queueDepth", "threshold": "20"}},
    ]
    panels = _panels(_spec(autoscaling={"triggers": triggers, "scalingModifiers": MODIFIERS}))
    assert _exprs(panels["demo-worker: KEDA trigger taskLag"])[ACTIVATION_REF] == "vector(7)"
    formula = _exprs(panels["demo-worker: KEDA scalingModifiers (taskLag + queueDepth)"])
    assert 'scaler="composite-metric"' in formula["A"]
    assert formula[THRESHOLD_REF].startswith("30 * ")
    overrides = panels["demo-worker: KEDA trigger taskLag"]["fieldConfig"]["overrides"]
    colors = {item["matcher"]["options"]: item["properties"][0]["value"] for item in overrides}
    assert colors[ACTIVATION_REF]["fixedColor"] == "orange"
    assert colors[THRESHOLD_REF]["fixedColor"] == "red"


def test_lag_has_keda_s_reading_which_stays_at_zero_replicas() -> None:
    lag = _exprs(_panels(_spec())["Consumer lag by topic"])
    assert set(lag) == {"A", "B"}
    assert "scalingdemo_consumer_lag_records" in lag["A"]
    assert lag["B"].startswith("max((keda_scaler_metrics_value{")
    assert "/ count(" not in lag["B"]


def test_partitions_and_rebalances_are_drawn_per_pod() -> None:
    panels = _panels(_spec())
    partitions = _exprs(panels["Partitions assigned per pod"])
    assert partitions["A"].startswith("sum by (pod, topic) (scalingdemo_consumer_assigned_")
    assert partitions["B"].endswith("== bool 0)")
    (rebalances,) = _exprs(panels["Consumer-group rebalances"]).values()
    assert "increase(scalingdemo_consumer_rebalances_total{" in rebalances


def test_the_vpa_row_draws_target_and_bounds_against_usage() -> None:
    spec = _spec(verticalScaling={"enabled": True, "controlledResources": ["memory"]})
    panels = _panels(spec)
    (title,) = [title for title in panels if "VPA" in title]
    assert title == "demo-worker: VPA memory recommendation vs usage"
    found = _exprs(panels[title])
    for ref, bound in zip("ABC", ("target", "lowerbound", "upperbound"), strict=True):
        assert found[ref].startswith(
            f"max(kube_customresource_verticalpodautoscaler_recommendation_{bound}{{"
        )
        assert 'container="workload", resource="memory"' in found[ref]
    assert found["D"].startswith("max by (pod) (scalingdemo_process_resident_memory_bytes{")
    assert panels[title]["fieldConfig"]["defaults"]["unit"] == "bytes"


def test_alerts_are_off_by_default() -> None:
    kinds = {item["kind"] for item in desired_children(worker_spec({}), OWNER)}
    assert "PrometheusRule" not in kinds


def test_the_prometheus_rule_holds_every_rule_scoped_to_the_demo() -> None:
    spec = _spec()
    (rule,) = [item for item in desired_children(spec, OWNER) if item["kind"] == "PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"] == "demo-alerts"
    assert rule["metadata"]["labels"]["release"] == "kps"
    (group,) = rule["spec"]["groups"]
    assert group["name"] == "scalingdemo.team.demo"
    names = [item["alert"] for item in group["rules"]]
    assert names == [
        "ScalingDemoNotReady",
        "ScalingDemoBacklogGrowingAtMaxReplicas",
        "ScalingDemoKedaScalerErrors",
        "ScalingDemoWorkerRestarts",
        "ScalingDemoIdleConsumers",
    ]
    for item in group["rules"]:
        assert 'namespace="team"' in item["expr"], item
        assert item["labels"] == {"severity": "warning", "namespace": "team", "scalingdemo": "demo"}
        assert item["annotations"]["summary"]
    rules = {item["alert"]: item for item in group["rules"]}
    assert rules["ScalingDemoNotReady"]["for"] == "10m"
    assert "count(up{" in rules["ScalingDemoBacklogGrowingAtMaxReplicas"]["expr"]
    assert rules["ScalingDemoBacklogGrowingAtMaxReplicas"]["expr"].endswith(" >= 4")


def test_the_not_ready_delay_follows_the_spec_and_is_checked() -> None:
    spec = worker_spec({}, monitoring={"alerts": {"enabled": True, "notReadyFor": "1h30m"}})
    assert alerts.rules(spec, OWNER)[0].duration == "1h30m"
    with pytest.raises(SpecError, match=r"spec\.monitoring\.alerts\.notReadyFor"):
        worker_spec({}, monitoring={"alerts": {"notReadyFor": "30m1h"}})
