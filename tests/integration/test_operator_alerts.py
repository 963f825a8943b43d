"""Alert rules against the real bed: the upstream PrometheusRule CRD accepts what the operator
writes, and the bed's own promtool checks every rule and runs a unit test of each one on
synthetic series (firing on the bad case, silent on the healthy one)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from scalingdemo_operator.api import Owner
from scalingdemo_operator.builders import alerts
from scalingdemo_operator.spec import parse

from tests.integration.cluster import Cluster, demo
from tests.operator_harness import OperatorProcess
from tests.support import eventually

OWNER = Owner(namespace="team", name="demo", uid="alerts")
MAX_REPLICAS = 2
LAG_TRIGGER = {"name": "taskLag", "kafkaLag": {"topic": "tasks", "lagThreshold": 5}}
WORKER = {"autoscaling": {"enabled": True, "maxReplicas": MAX_REPLICAS, "triggers": [LAG_TRIGGER]}}
WORKER_SERIES = 'namespace="team", service="demo-worker"'
LAG_LABELS = f'{WORKER_SERIES}, topic="team-demo-tasks", group="team-demo-tasks-consumer"'
KEDA_LABELS = 'exported_namespace="team", scaledObject="demo-worker", scaler="taskLag"'

# (alert, input series -> values when it must fire, the same when healthy, when to look,
# labels the alert carries beyond the rule's own)
CASES: list[tuple[str, dict[str, tuple[str, str]], str, dict[str, str]]] = [
    (
        "ScalingDemoNotReady",
        {
            'kube_customresource_scalingdemo_condition{namespace="team", scalingdemo="demo", '
            'type="Ready"}': ("0x30", "1x30")
        },
        "15m",
        {},
    ),
    (
        "ScalingDemoBacklogGrowingAtMaxReplicas",
        {
            f"scalingdemo_consumer_lag_records{{{LAG_LABELS}}}": ("0+10x40", "0x40"),
            f'up{{{WORKER_SERIES}, pod="demo-worker-0"}}': ("1x40", "1x40"),
            f'up{{{WORKER_SERIES}, pod="demo-worker-1"}}': ("1x40", "1x40"),
        },
        "30m",
        {},
    ),
    (
        "ScalingDemoKedaScalerErrors",
        {f"keda_scaler_detail_errors_total{{{KEDA_LABELS}}}": ("0+1x20", "0x20")},
        "10m",
        {"scaler": "taskLag"},
    ),
    (
        "ScalingDemoWorkerRestarts",
        {
            'kube_pod_container_status_restarts_total{namespace="team", '
            'pod="demo-worker-7d9f-x2", container="workload"}': ("0 0 0 1 1 1", "0x5")
        },
        "5m",
        {"pod": "demo-worker-7d9f-x2"},
    ),
    (
        "ScalingDemoIdleConsumers",
        {
            f'scalingdemo_consumer_assigned_partitions{{{WORKER_SERIES}, pod="a", '
            'topic="team-demo-tasks", group="g"}': ("1x30", "1x30"),
            f'scalingdemo_consumer_assigned_partitions{{{WORKER_SERIES}, pod="b", '
            'topic="team-demo-tasks", group="g"}': ("0x30", "1x30"),
        },
        "15m",
        {"topic": "team-demo-tasks"},
    ),
]


def _spec() -> Any:
    return parse(
        {
            "image": "registry.example/scalingdemo-workload:1",
            "kafka": {"bootstrapServers": "kafka:9092"},
            "worker": WORKER,
            "monitoring": {"alerts": {"enabled": True}},
        }
    )


def _rendered(template: str, labels: dict[str, str], value: str) -> str:
    """The summary as Prometheus expands it for the alert (labels and value only)."""
    found = re.sub(r"{{ \$labels\.(\w+) }}", lambda match: labels[match.group(1)], template)
    return found.replace("{{ $value }}", value)


def _unit_tests(rules: list[alerts.Rule]) -> list[dict[str, Any]]:
    summaries = {rule.alert: rule.summary for rule in rules}
    tests = []
    for alert, series, when, extra in CASES:
        own = {"severity": "warning", "namespace": "team", "scalingdemo": "demo", **extra}
        for index, expected in ((0, [own]), (1, [])):
            tests.append(
                {
                    "name": f"{alert} {'fires' if expected else 'stays silent'}",
                    "interval": "1m",
                    "input_series": [
                        {"series": name, "values": values[index]} for name, values in series.items()
                    ],
                    "alert_rule_test": [
                        {
                            "eval_time": when,
                            "alertname": alert,
                            "exp_alerts": [
                                {
                                    "exp_labels": labels,
                                    "exp_annotations": {
                                        "summary": _rendered(summaries[alert], labels, "1")
                                    },
                                }
                                for labels in expected
                            ],
                        }
                    ],
                }
            )
    return tests


def _promtool(bed: Any, *args: str) -> str:
    done = subprocess.run(
        [str(bed.promtool), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_every_rule_and_each_fires_only_on_its_case(
    bed: Any, tmp_path: Path
) -> None:
    spec = _spec()
    manifest = alerts.prometheus_rule(spec, OWNER)
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}))
    checked = _promtool(bed, "check", "rules", str(rules_file))
    rules = alerts.rules(spec, OWNER)
    assert f"SUCCESS: {len(rules)} rules found" in checked
    assert sorted({rule.alert for rule in rules}) == sorted(alert for alert, *_ in CASES)

    tests_file = tmp_path / "tests.yaml"
    tests_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [rules_file.name],
                "evaluation_interval": "1m",
                "tests": _unit_tests(rules),
            }
        )
    )
    _promtool(bed, "test", "rules", str(tests_file))


def _prometheus_rule(cluster: Cluster, name: str) -> dict[str, Any] | None:
    return cluster.custom_object("monitoring.coreos.com", "v1", "prometheusrules", name)


def test_the_upstream_crd_accepts_the_prometheus_rule_and_it_follows_the_spec(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    created = cluster.create(
        demo(
            "shop",
            worker=WORKER,
            monitoring={"alerts": {"enabled": True, "labels": {"release": "monitoring"}}},
        )
    )
    rule = eventually(lambda: _prometheus_rule(cluster, "shop-alerts"), "the PrometheusRule")
    (reference,) = rule["metadata"]["ownerReferences"]
    assert reference["uid"] == created["metadata"]["uid"]
    assert rule["metadata"]["labels"]["release"] == "monitoring"
    (group,) = rule["spec"]["groups"]
    assert {item["alert"] for item in group["rules"]} == {alert for alert, *_ in CASES}

    cluster.patch("shop", {"monitoring": {"alerts": {"notReadyFor": "45m"}}})
    eventually(
        lambda: _prometheus_rule(cluster, "shop-alerts")["spec"]["groups"][0]["rules"][0]["for"],
        "the not-Ready delay to follow the spec",
        accept=lambda found: found == "45m",
    )
    cluster.patch("shop", {"monitoring": {"alerts": {"enabled": False}}})
    eventually(lambda: _prometheus_rule(cluster, "shop-alerts") is None, "the rule to go")
