"""Autoscaling builders: exact ScaledObjects, TriggerAuthentication and VPAs."""

from __future__ import annotations

from typing import Any

import pytest
from scalingdemo_operator.assess.status import partition_caps
from scalingdemo_operator.builders import desired_children
from scalingdemo_operator.builders.keda import (
    qualified_brokers,
    scaled_object,
    trigger_authentication,
)
from scalingdemo_operator.builders.promql import preset_query
from scalingdemo_operator.builders.vpa import vertical_pod_autoscaler

from tests.unit.conftest import (
    AUTH,
    BROKERS,
    OWNER,
    PROMETHEUS,
    SEED_AUTOSCALING,
    SEED_TRIGGERS,
    child_metadata,
    unstamped,
    worker_spec,
)

pytestmark = pytest.mark.unit

SCOPE = 'namespace="team", service=~"demo-api|demo-worker"'


def test_the_seeds_three_triggers_with_its_defects_fixed() -> None:
    spec = worker_spec({"autoscaling": SEED_AUTOSCALING})
    assert unstamped(scaled_object(spec, OWNER, "worker")) == {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": child_metadata("demo-worker"),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": "demo-worker",
            },
            "minReplicaCount": 1,
            "maxReplicaCount": 6,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": 60,
                            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}],
                        }
                    }
                }
            },
            "fallback": {"failureThreshold": 3, "replicas": 2},
            "triggers": [
                {
                    "type": "kafka",
                    "name": "taskLag",
                    "metadata": {
                        "bootstrapServers": BROKERS,
                        "consumerGroup": "team-demo-tasks-consumer",
                        "topic": "team-demo-tasks",
                        "lagThreshold": "5",
                        "activationLagThreshold": "0",
                        "offsetResetPolicy": "earliest",
                        "allowIdleConsumers": "false",
                        "limitToPartitionsWithLag": "false",
                    },
                },
                {
                    "type": "prometheus",
                    "name": "queueDepth",
                    "metadata": {
                        "serverAddress": PROMETHEUS,
                        "query": (
                            "sum(max by (topic, group) (scalingdemo_consumer_lag_records{"
                            f'{SCOPE}, topic="team-demo-tasks", group="team-demo-tasks-consumer"'
                            "}))"
                        ),
                        "threshold": "20",
                        "activationThreshold": "0",
                        "ignoreNullValues": "false",
                    },
                },
                {
                    "type": "cpu",
                    "name": "cpu",
                    "metricType": "Utilization",
                    "metadata": {"value": "70", "containerName": "workload"},
                },
            ],
        },
    }


LAG_ONLY = [SEED_TRIGGERS[0]]
MODIFIERS = {"formula": "taskLag", "target": "5"}
SET = {"pollingInterval": 5, "cooldownPeriod": 60}


@pytest.mark.parametrize(
    ("autoscaling", "timing"),
    [
        ({"minReplicas": 1}, {}),
        ({"minReplicas": 1, **SET}, SET),
        ({"minReplicas": 0}, {"pollingInterval": 15, "cooldownPeriod": 300}),
        ({"minReplicas": 0, **SET}, SET),
        ({"minReplicas": 1, "scalingModifiers": MODIFIERS}, {"pollingInterval": 15}),
    ],
    ids=["min-1", "min-1-set", "min-0", "min-0-set", "min-1-formula"],
)
def test_polling_and_cooldown_only_where_keda_uses_them_or_the_user_set_them(
    autoscaling: dict[str, Any], timing: dict[str, int]
) -> None:
    """KEDA's admission webhook warns about either setting where it cannot matter."""
    worker = {"autoscaling": {"enabled": True, "triggers": LAG_ONLY, **autoscaling}}
    scaled = scaled_object(worker_spec(worker), OWNER, "worker")["spec"]
    assert {key: scaled[key] for key in SET if key in scaled} == timing


def test_every_trigger_metadata_value_is_a_string() -> None:
    spec = worker_spec({"autoscaling": {"enabled": True, "triggers": SEED_TRIGGERS}})
    for trigger in scaled_object(spec, OWNER, "worker")["spec"]["triggers"]:
        assert all(isinstance(value, str) for value in trigger["metadata"].values()), trigger


@pytest.mark.parametrize(
    ("preset", "query"),
    [
        ("tasksInProgress", f"sum(scalingdemo_tasks_in_progress{{{SCOPE}}})"),
        ("requestRate", f"sum(rate(scalingdemo_http_requests_total{{{SCOPE}}}[1m]))"),
        (
            "p95Latency",
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(scalingdemo_http_request_duration_seconds_bucket{{{SCOPE}}}[1m])))",
        ),
    ],
)
def test_presets_are_aggregated_and_scoped_to_the_demo(preset: str, query: str) -> None:
    assert preset_query(worker_spec({}), OWNER, preset) == query


def test_a_raw_query_and_modifiers_pass_through() -> None:
    spec = worker_spec(
        {
            "autoscaling": {
                "enabled": True,
                "triggers": [
                    {"name": "lag", "kafkaLag": {"topic": "messages", "allowIdleConsumers": True}},
                    {"name": "busy", "prometheus": {"query": "sum(up)", "threshold": "1.5"}},
                ],
                "scalingModifiers": {"formula": "lag + busy", "target": "10"},
            }
        },
        kafka={"bootstrapServers": BROKERS, "consumerGroups": {"messages": "readers"}},
    )
    built = scaled_object(spec, OWNER, "worker")["spec"]
    assert built["advanced"] == {"scalingModifiers": {"formula": "lag + busy", "target": "10"}}
    lag, busy = built["triggers"]
    assert (lag["metadata"]["consumerGroup"], lag["metadata"]["topic"]) == (
        "readers",
        "team-demo-messages",
    )
    assert lag["metadata"]["allowIdleConsumers"] == "true"
    assert busy["metadata"]["query"] == "sum(up)"
    assert busy["metadata"]["threshold"] == "1.5"


def test_kafka_auth_is_a_trigger_authentication_referencing_the_secrets() -> None:
    spec = worker_spec(
        {"autoscaling": {"enabled": True, "triggers": SEED_TRIGGERS[:1]}},
        kafka={"bootstrapServers": BROKERS, "auth": AUTH},
    )
    assert unstamped(trigger_authentication(spec, OWNER)) == {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": child_metadata("demo-kafka", "kafka"),
        "spec": {
            "secretTargetRef": [
                {"parameter": "username", "name": "kafka-user", "key": "username"},
                {"parameter": "password", "name": "kafka-user", "key": "password"},
                {"parameter": "ca", "name": "kafka-ca", "key": "ca.crt"},
            ]
        },
    }
    (trigger,) = scaled_object(spec, OWNER, "worker")["spec"]["triggers"]
    assert trigger["authenticationRef"] == {"name": "demo-kafka"}
    assert (trigger["metadata"]["sasl"], trigger["metadata"]["tls"]) == ("scram_sha512", "enable")
    kinds = [item["kind"] for item in desired_children(spec, OWNER)]
    assert kinds.count("TriggerAuthentication") == 1


def test_no_trigger_authentication_without_auth_or_autoscaling() -> None:
    without_auth = worker_spec({"autoscaling": {"enabled": True, "triggers": SEED_TRIGGERS[:1]}})
    without_scaling = worker_spec({}, kafka={"bootstrapServers": BROKERS, "auth": AUTH})
    for spec in (without_auth, without_scaling):
        kinds = {item["kind"] for item in desired_children(spec, OWNER)}
        assert kinds == {"Service", "Deployment", "ServiceMonitor", "ConfigMap"} | (
            {"ScaledObject"} if spec.worker.autoscaling.enabled else set()
        )


def test_a_vertical_pod_autoscaler_per_component() -> None:
    spec = worker_spec(
        {
            "verticalScaling": {
                "enabled": True,
                "updateMode": "Off",
                "minAllowed": {"cpu": "50m"},
                "maxAllowed": {"cpu": 2, "memory": "1Gi"},
            }
        }
    )
    assert unstamped(vertical_pod_autoscaler(spec, OWNER, "worker")) == {
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": child_metadata("demo-worker"),
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo-worker"},
            "updatePolicy": {"updateMode": "Off"},
            "resourcePolicy": {
                "containerPolicies": [
                    {
                        "containerName": "workload",
                        "controlledResources": ["cpu", "memory"],
                        "controlledValues": "RequestsAndLimits",
                        "minAllowed": {"cpu": "50m"},
                        "maxAllowed": {"cpu": "2", "memory": "1Gi"},
                    }
                ]
            },
        },
    }


def test_the_vpa_leaves_triggered_resources_to_keda() -> None:
    cpu_only = worker_spec(
        {
            "autoscaling": {"enabled": True, "triggers": SEED_TRIGGERS},
            "verticalScaling": {"enabled": True},
        }
    )
    assert cpu_only.worker.resources_left_to_triggers() == ["cpu"]
    (policy,) = vertical_pod_autoscaler(cpu_only, OWNER, "worker")["spec"]["resourcePolicy"][
        "containerPolicies"
    ]
    assert policy["controlledResources"] == ["memory"]

    both = worker_spec(
        {
            "autoscaling": {
                "enabled": True,
                "triggers": [
                    {"name": "c", "cpu": {"value": 70}},
                    {"name": "m", "memory": {"value": 80}},
                ],
            },
            "verticalScaling": {"enabled": True},
        }
    )
    (policy,) = vertical_pod_autoscaler(both, OWNER, "worker")["spec"]["resourcePolicy"][
        "containerPolicies"
    ]
    assert policy == {"containerName": "workload", "mode": "Off"}


def test_children_in_apply_order() -> None:
    spec = worker_spec(
        {
            "autoscaling": {"enabled": True, "triggers": SEED_TRIGGERS},
            "verticalScaling": {"enabled": True},
        }
    )
    assert [(item["kind"], item["metadata"]["name"]) for item in desired_children(spec, OWNER)] == [
        ("Service", "demo-api"),
        ("Deployment", "demo-api"),
        ("Service", "demo-worker"),
        ("Deployment", "demo-worker"),
        ("ScaledObject", "demo-worker"),
        ("VerticalPodAutoscaler", "demo-worker"),
        ("ServiceMonitor", "demo-api"),
        ("ServiceMonitor", "demo-worker"),
        ("ConfigMap", "demo-dashboard"),
    ]


@pytest.mark.parametrize(
    ("lag", "max_replicas", "capped"),
    [({}, 10, True), ({}, 6, False), ({"allowIdleConsumers": True}, 10, False)],
)
def test_max_replicas_above_the_partitions_is_flagged(
    lag: dict, max_replicas: int, capped: bool
) -> None:
    trigger = {"name": "taskLag", "kafkaLag": lag}
    autoscaling = {"enabled": True, "maxReplicas": max_replicas, "triggers": [trigger]}
    found = partition_caps(worker_spec({"autoscaling": autoscaling}), OWNER)
    expected = (
        "demo-worker trigger taskLag scales to at most the 6 partitions of topic "
        "team-demo-tasks, not maxReplicas 10: add partitions or set allowIdleConsumers"
    )
    assert found == ([expected] if capped else [])


def test_the_partitions_on_the_broker_decide_the_cap() -> None:
    """A topic the spec would shrink keeps its partitions, and KEDA counts those."""
    trigger = {"name": "taskLag", "kafkaLag": {}}
    spec = worker_spec({"autoscaling": {"enabled": True, "maxReplicas": 8, "triggers": [trigger]}})
    assert partition_caps(spec, OWNER, {"team-demo-tasks": 8}) == []
    (found,) = partition_caps(spec, OWNER, {"team-demo-tasks": 2})
    assert "at most the 2 partitions of topic team-demo-tasks" in found


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("kafka:9092", "kafka.shop-ns.svc:9092"),
        ("kafka.infra:9092", "kafka.infra.svc:9092"),
        ("kafka.infra.svc:9092", "kafka.infra.svc:9092"),
        ("kafka.infra.svc.cluster.local:9092", "kafka.infra.svc.cluster.local:9092"),
        ("broker.example.com:9093", "broker.example.com:9093"),
        ("10.1.2.3:9092, b1:9092", "10.1.2.3:9092,b1.shop-ns.svc:9092"),
        ("127.0.0.1:19092", "127.0.0.1:19092"),
    ],
)
def test_short_broker_names_are_qualified_for_keda(given: str, expected: str) -> None:
    assert qualified_brokers(given, "shop-ns") == expected
