"""The pure assessment: observations -> status and events, like the builders, without I/O."""

from __future__ import annotations

from typing import Any

import pytest
from scalingdemo_operator.api import Event
from scalingdemo_operator.assess.conditions import failing_triggers
from scalingdemo_operator.assess.status import (
    Failure,
    Observation,
    assess,
    failed,
    invalid,
    zero_notes,
)
from scalingdemo_operator.kafka.model import (
    TopicsObserved,
    TopicsResult,
    TopicStatus,
    TopicsUnavailable,
)
from scalingdemo_operator.spec import parse

from tests.unit.conftest import OWNER

pytestmark = pytest.mark.unit

NOW = "2026-01-01T00:00:00Z"
NAMES = {"messages": "team-demo-messages", "tasks": "team-demo-tasks"}
SPEC = {"image": "registry.example/workload:1", "kafka": {"bootstrapServers": "kafka:9092"}}


def _body(status: dict[str, Any] | None = None, generation: int = 2) -> dict[str, Any]:
    return {"metadata": {"name": "demo", "generation": generation}, "status": status or {}}


def _deployment(name: str) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "generation": 1},
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "availableReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }


def _conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {item["type"]: (item["status"], item["reason"]) for item in status["conditions"]}


def _topics(**kwargs: Any) -> TopicsObserved:
    return TopicsObserved(NAMES, **kwargs)


HEALTHY = TopicsResult(tuple(TopicStatus(name, 6, 1) for name in NAMES.values()))
RUNNING = [_deployment("demo-api"), _deployment("demo-worker")]
DOWN = TopicsUnavailable("BrokerUnreachable", "kafka:9092: refused")
LAG_SCALED = {"autoscaling": {"enabled": True, "triggers": [{"name": "lag", "kafkaLag": {}}]}}


def _seen(
    topics: TopicsObserved,
    status: dict[str, Any] | None = None,
    failures: tuple[Failure, ...] = (),
    **spec: Any,
) -> Observation:
    """A reconcile of a two-component demo whose Deployments are available."""
    return Observation(OWNER, parse({**SPEC, **spec}), _body(status), RUNNING, failures, topics)


def test_a_healthy_demo_is_ready_and_says_nothing() -> None:
    assessment = assess(_seen(_topics(result=HEALTHY)), NOW)
    assert _conditions(assessment.status)["Ready"] == ("True", "Ready")
    assert assessment.status["observedGeneration"] == 2
    assert assessment.status["topics"] == [
        {"role": "messages", "name": "team-demo-messages", "partitions": 6, "replicationFactor": 1},
        {"role": "tasks", "name": "team-demo-tasks", "partitions": 6, "replicationFactor": 1},
    ]
    assert assessment.status["endpoint"] == "http://demo-api.team.svc:8080"
    assert assessment.events == []
    assert not assessment.retry
    assert assessment.result == "applied"


def test_an_unusable_broker_asks_for_a_retry_and_keeps_the_known_topics() -> None:
    known = [{"role": "tasks", "name": "team-demo-tasks", "partitions": 6}]
    unavailable = TopicsUnavailable("BrokerUnreachable", "kafka:9092: refused")
    seen = Observation(
        OWNER,
        parse(SPEC),
        _body({"topics": known}),
        RUNNING,
        topics=_topics(unavailable=unavailable),
    )
    assessment = assess(seen, NOW)
    assert assessment.retry
    assert _conditions(assessment.status)["TopicsReady"] == ("False", "BrokerUnreachable")
    assert _conditions(assessment.status)["Ready"] == ("False", "BrokerUnreachable")
    assert "topics" not in assessment.status
    assert assessment.events == [Event("Warning", DOWN.reason, DOWN.detail)]


def test_the_same_problem_is_announced_once() -> None:
    unavailable = TopicsUnavailable("BrokerUnreachable", "kafka:9092: refused")
    first = assess(
        Observation(OWNER, parse(SPEC), _body(), RUNNING, topics=_topics(unavailable=unavailable)),
        NOW,
    )
    again = assess(
        Observation(
            OWNER,
            parse(SPEC),
            _body(first.status),
            RUNNING,
            topics=_topics(unavailable=unavailable),
        ),
        NOW,
    )
    assert first.events
    assert again.events == []
    assert again.retry


def test_a_missing_keda_is_a_warning_and_holds_the_generation() -> None:
    spec = parse(
        {
            **SPEC,
            "worker": {
                "autoscaling": {"enabled": True, "triggers": [{"name": "lag", "kafkaLag": {}}]}
            },
        }
    )
    failure = Failure("ScaledObject", "ScaledObject demo-worker: not found", missing=True)
    seen = Observation(
        OWNER,
        spec,
        _body({"observedGeneration": 1}),
        RUNNING,
        [failure],
        topics=_topics(result=HEALTHY),
    )
    assessment = assess(seen, NOW)
    assert _conditions(assessment.status)["AutoscalingReady"] == ("False", "KEDANotInstalled")
    assert [event.reason for event in assessment.events] == ["KEDANotInstalled"]
    assert assessment.status["observedGeneration"] == 1
    assert assessment.result == "failed"


def test_a_missing_prometheus_operator_holds_nothing_back() -> None:
    failure = Failure("ServiceMonitor", "ServiceMonitor demo-api: not found", missing=True)
    seen = Observation(
        OWNER, parse(SPEC), _body(), RUNNING, [failure], topics=_topics(result=HEALTHY)
    )
    assessment = assess(seen, NOW)
    conditions = _conditions(assessment.status)
    assert conditions["MonitoringReady"] == ("False", "PrometheusOperatorNotInstalled")
    assert conditions["Ready"] == ("True", "Ready")
    assert assessment.status["observedGeneration"] == 2
    assert assessment.events == []


def test_an_invalid_spec_is_said_once() -> None:
    first = invalid(_body(), "spec.image: required", NOW)
    assert _conditions(first.status) == {"Ready": ("False", "InvalidSpec")}
    assert first.events == [Event("Warning", "InvalidSpec", "spec.image: required")]
    assert invalid(_body(first.status), "spec.image: required", NOW).events == []
    assert first.result == "invalid"


def test_an_unforeseen_failure_is_said_once_and_retried() -> None:
    problem = "unexpected UnicodeError: label too long"
    first = failed(_body(), problem, NOW)
    assert _conditions(first.status) == {"Ready": ("False", "ReconcileFailed")}
    ((kind, reason, message),) = [(e.type, e.reason, e.message) for e in first.events]
    assert (kind, reason) == ("Warning", "ReconcileFailed")
    assert message.startswith(problem)
    assert (first.retry, first.result) == (True, "error")
    again = failed(_body(first.status), problem, NOW)
    assert again.events == []
    assert again.retry


def _scaled_object(ready: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "kind": "ScaledObject",
        "metadata": {"name": "demo-worker"},
        "spec": {"triggers": [{"name": "lag"}, {"name": "queue"}]},
        "status": {"conditions": [ready], **status},
    }


def test_keda_not_ready_is_a_warning_naming_the_failing_trigger_said_once() -> None:
    not_ready = {"type": "Ready", "status": "False", "reason": "TriggerError", "message": "bad"}
    hpa = {
        "type": "HPAActive",
        "status": "False",
        "reason": "FailedGetExternalMetric",
        "message": "HPA is not actively scaling: unable to get external metric "
        "team/s1-prometheus/nil: query failed",
    }
    scaled = _scaled_object(not_ready)
    scaled["status"]["conditions"].append(hpa)
    spec = parse({**SPEC, "worker": LAG_SCALED})
    first = assess(
        Observation(OWNER, spec, _body(), [*RUNNING, scaled], topics=_topics(result=HEALTHY)), NOW
    )
    assert _conditions(first.status)["AutoscalingReady"] == ("False", "ScaledObjectNotReady")
    ((reason, message),) = [(event.reason, event.message) for event in first.events]
    assert reason == "ScaledObjectNotReady"
    assert message == "ScaledObject demo-worker: bad (failing trigger(s): queue)"
    again = assess(
        Observation(
            OWNER, spec, _body(first.status), [*RUNNING, scaled], topics=_topics(result=HEALTHY)
        ),
        NOW,
    )
    assert again.events == []


def test_keda_health_names_failing_triggers_too() -> None:
    not_ready = {"type": "Ready", "status": "False", "reason": "TriggerError"}
    health = {"s0-kafka-tasks": {"status": "Failing"}, "s1-prometheus": {"status": "Happy"}}
    assert failing_triggers(_scaled_object(not_ready, health=health)) == ["lag"]
    assert failing_triggers(_scaled_object(not_ready)) == []
    single = _scaled_object(not_ready)
    single["spec"]["triggers"] = [{"name": "lag"}]
    assert failing_triggers(single) == ["lag"]


@pytest.mark.parametrize(
    ("kafka", "triggers", "reasons"),
    [
        ({}, [{"name": "lag", "kafkaLag": {}}], []),
        ({"offsetReset": "latest"}, [{"name": "lag", "kafkaLag": {}}], ["ScaleToZeroHeldAtOne"]),
        (
            {},
            [{"name": "q", "prometheus": {"query": "sum(up)", "threshold": "1"}}],
            ["ScaleFromZeroUnverified"],
        ),
    ],
)
def test_scale_to_zero_notes(kafka: dict, triggers: list, reasons: list[str]) -> None:
    spec = parse(
        {
            **SPEC,
            "kafka": {**SPEC["kafka"], **kafka},
            "monitoring": {"prometheus": {"serverAddress": "http://prometheus:9090"}},
            "worker": {"autoscaling": {"enabled": True, "minReplicas": 0, "triggers": triggers}},
        }
    )
    assert [note.reason for note in zero_notes(spec, OWNER)] == reasons
