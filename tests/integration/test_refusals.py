"""Specs that cannot work are refused on the bed, each naming its field; failures always end
in a status.

The CRD refuses what its schema and CEL rules can see (the API server answers 422 naming the
field); the operator refuses what needs the spec model (Ready=False, InvalidSpec, one Warning).
A reconcile that fails in a way nobody foresaw ends the same way: a condition with a reason,
one Warning, and retries that back off instead of spinning.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.integration.cluster import Cluster, demo
from tests.operator_harness import OperatorProcess
from tests.support import SCALE_TIMEOUT, eventually

PROMETHEUS = "http://prometheus.monitoring.svc.cluster.local:9090"
PRESET = {"name": "queue", "prometheus": {"preset": "queueDepth", "threshold": "5"}}
LAG = {"name": "lag", "kafkaLag": {}}
CPU = {"name": "busy", "cpu": {"value": 70}}
RETRY_SECONDS = 1
MAX_RETRY_SECONDS = 4
WINDOW_SECONDS = 15
ATTEMPTS_BOUND = 20
"""Reconciles allowed in WINDOW_SECONDS: the backoff of 1, 2, 4, 4... s makes about 5, and each
status change of the children's rollout triggers one more (a watched child changed); a spin
makes hundreds."""


def _worker(**worker: Any) -> dict[str, Any]:
    return demo("bad", monitoring={"prometheus": {"serverAddress": PROMETHEUS}}, worker=worker)


def _refused_by_the_api_server(cluster: Cluster, body: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        cluster.custom.create_namespaced_custom_object(
            "scalingdemo.dev", "v1alpha1", cluster.namespace, "scalingdemos", body, dry_run="All"
        )
    assert caught.value.status == 422, caught.value.body
    return str(caught.value.body)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        pytest.param(
            _worker(autoscaling={"enabled": True, "minReplicas": 0, "triggers": [PRESET]}),
            "spec.worker.autoscaling.minReplicas",
            "minReplicas 0 needs a kafkaLag trigger or a prometheus query",
            id="zero-on-presets",
        ),
        pytest.param(
            _worker(
                verticalScaling={
                    "enabled": True,
                    "minAllowed": {"memory": "1Gi"},
                    "maxAllowed": {"memory": "512Mi"},
                }
            ),
            "spec.worker.verticalScaling.minAllowed.memory",
            "minAllowed.memory must not exceed maxAllowed.memory",
            id="vpa-bounds",
        ),
        pytest.param(
            demo("bad", kafka={"bootstrapServers": "kafka:99999", "topicManagement": "None"}),
            "spec.kafka.bootstrapServers",
            "between 1 and 65535",
            id="port",
        ),
    ],
)
def test_the_crd_refuses_naming_the_field(
    cluster: Cluster, body: dict[str, Any], field: str, words: str
) -> None:
    message = _refused_by_the_api_server(cluster, body)
    assert field in message, message
    assert words in message, message


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        pytest.param(
            _worker(
                autoscaling={
                    "enabled": True,
                    "triggers": [LAG, CPU],
                    "scalingModifiers": {"formula": "lag + queue", "target": "5"},
                }
            ),
            "spec.worker.autoscaling",
            "scalingModifiers.formula names queue",
            id="formula",
        ),
        pytest.param(
            _worker(
                resources={"requests": {"cpu": "0"}},
                autoscaling={"enabled": True, "triggers": [CPU]},
            ),
            "spec.worker.autoscaling.triggers[0].cpu",
            "spec.worker.resources.requests.cpu above 0",
            id="cpu-request-0",
        ),
        pytest.param(
            _worker(
                resources={"requests": {"memory": 0}},
                autoscaling={"enabled": True, "triggers": [{"name": "m", "memory": {"value": 70}}]},
            ),
            "spec.worker.autoscaling.triggers[0].memory",
            "spec.worker.resources.requests.memory above 0",
            id="memory-request-0",
        ),
    ],
)
def test_the_operator_refuses_naming_the_field_once(
    cluster: Cluster, operator: OperatorProcess, body: dict[str, Any], field: str, words: str
) -> None:
    cluster.create(body)
    ready = eventually(
        lambda: cluster.condition("bad"),
        "Ready=False with reason InvalidSpec",
        accept=lambda found: found.get("reason") == "InvalidSpec",
    )
    assert field in ready["message"], ready["message"]
    assert words in ready["message"], ready["message"]
    warnings = eventually(
        lambda: [event for event in cluster.events("bad") if event[0] == "Warning"],
        "the InvalidSpec Warning",
    )
    assert [reason for _, reason, _ in warnings] == ["InvalidSpec"]


def test_a_null_request_is_defaulted_so_a_cpu_trigger_has_a_request(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    """The schema has no nullable quantities: the API server drops a null and the default
    request applies, which the trigger then scales against."""
    created = cluster.create(
        _worker(
            resources={"requests": {"cpu": None}},
            autoscaling={"enabled": True, "triggers": [CPU]},
        )
    )
    assert created["spec"]["worker"]["resources"]["requests"]["cpu"] == "100m"


def test_zero_on_a_raw_query_is_accepted_with_a_warning(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    query = {"name": "backlog", "prometheus": {"query": "sum(queue_depth)", "threshold": "5"}}
    cluster.create(_worker(autoscaling={"enabled": True, "minReplicas": 0, "triggers": [query]}))
    warnings = eventually(
        lambda: [event for event in cluster.events("bad") if event[0] == "Warning"],
        "the ScaleFromZeroUnverified Warning",
    )
    ((_, reason, message),) = warnings
    assert reason == "ScaleFromZeroUnverified"
    assert "bad-worker" in message
    assert cluster.get("bad")["spec"]["worker"]["autoscaling"]["minReplicas"] == 0


@pytest.fixture
def backing_off(bed: Any, crd: None, namespace: str, tmp_path: Path) -> OperatorProcess:
    process = OperatorProcess(
        bed.kubeconfig,
        [namespace],
        tmp_path / "operator.log",
        extra_arguments=(
            "--retry-seconds",
            str(RETRY_SECONDS),
            "--max-retry-seconds",
            str(MAX_RETRY_SECONDS),
        ),
    )
    process.start()
    yield process
    process.stop()


def test_an_unforeseen_failure_ends_in_a_condition_one_warning_and_backoff(
    cluster: Cluster, backing_off: OperatorProcess
) -> None:
    """A broker host name with a 64+ character label passes every rule, and the Kafka client
    then raises UnicodeError (IDNA: label too long) from the topic step: an error nobody
    classified. It must not leave the demo without a status, nor spin."""
    host = "b" * 70
    cluster.create(demo("bad", kafka={"bootstrapServers": f"{host}:9092"}))
    ready = eventually(
        lambda: cluster.condition("bad"),
        "Ready=False with reason ReconcileFailed",
        accept=lambda found: found.get("reason") == "ReconcileFailed",
    )
    assert ready["status"] == "False"
    assert "UnicodeError" in ready["message"], ready["message"]
    attempts = backing_off.metric("scalingdemo_operator_reconciles_total", result="error")
    patches = backing_off.metric(
        "scalingdemo_operator_api_requests_total", verb="patch", kind="ScalingDemo"
    )
    time.sleep(WINDOW_SECONDS)
    retried = backing_off.metric("scalingdemo_operator_reconciles_total", result="error")
    assert 1 <= retried - attempts <= ATTEMPTS_BOUND, (attempts, retried)
    assert (
        backing_off.metric(
            "scalingdemo_operator_api_requests_total", verb="patch", kind="ScalingDemo"
        )
        == patches
    ), "the unchanged status is not written again"
    warnings = [event for event in cluster.events("bad") if event[0] == "Warning"]
    assert [reason for _, reason, _ in warnings] == ["ReconcileFailed"]


@pytest.mark.usefixtures("keda")
def test_keda_not_ready_over_a_broken_query_is_one_warning_naming_the_trigger(
    bed: Any, cluster: Cluster, operator: OperatorProcess
) -> None:
    """The query does not parse, so Prometheus refuses it and KEDA calls the ScaledObject not
    Ready (TriggerError) without saying which trigger: the operator names it."""
    broken = {"name": "broken", "prometheus": {"query": "sum(", "threshold": "5"}}
    cluster.create(
        demo(
            "bad",
            monitoring={"prometheus": {"serverAddress": bed.prometheus.url}},
            worker={"autoscaling": {"enabled": True, "triggers": [broken]}},
        )
    )
    condition = eventually(
        lambda: cluster.condition("bad", "AutoscalingReady"),
        "AutoscalingReady=False with KEDA's verdict",
        SCALE_TIMEOUT,
        accept=lambda found: found.get("reason") == "ScaledObjectNotReady",
    )
    assert "failing trigger(s): broken" in condition["message"], condition["message"]
    eventually(
        lambda: [event for event in cluster.events("bad") if event[0] == "Warning"],
        "the ScaledObjectNotReady Warning",
    )
    time.sleep(WINDOW_SECONDS)
    warnings = [event for event in cluster.events("bad") if event[0] == "Warning"]
    assert [reason for _, reason, _ in warnings] == ["ScaledObjectNotReady"], warnings
    assert "failing trigger(s): broken" in warnings[0][2]
