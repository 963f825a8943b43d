"""A ScaledObject and the HPA KEDA makes for it, as the API returns them: the unit tests of
status.scaling read these."""

from typing import Any

LAG_METRIC = "s0-kafka-demo-tasks"
DEPTH_METRIC = "s1-prometheus"


def scaled_object(active: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": "demo-worker", "namespace": "ns"},
        "spec": {
            "triggers": [
                {"type": "kafka", "name": "taskLag", "metadata": {"lagThreshold": "10"}},
                {"type": "prometheus", "name": "queueDepth", "metadata": {"threshold": "5"}},
                {"type": "cpu", "metadata": {"value": "60"}, "metricType": "Utilization"},
            ]
        },
        "status": {
            "externalMetricNames": [LAG_METRIC, DEPTH_METRIC],
            "resourceMetricNames": ["cpu"],
            "triggersActivity": {
                LAG_METRIC: {"isActive": active},
                DEPTH_METRIC: {"isActive": False},
            },
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "ScaledObjectReady", "message": ""},
                {"type": "Active", "status": str(active), "reason": "ScalerActive",
                 "message": "Scaling is performed because triggers are active"},
                {"type": "Fallback", "status": "False", "reason": "NoFallbackFound",
                 "message": "No fallbacks are active on this scaled object"},
                {"type": "Paused", "status": "False", "reason": "ScaledObjectUnpaused",
                 "message": "pause annotation removed for ScaledObject"},
            ],
        },
    }  # fmt: skip


def external(name: str, part: str, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "External", "external": {"metric": {"name": name}, part: block}}


def hpa(current: int, desired: int, lag: str, scaled_at: str | None) -> dict[str, Any]:
    return {
        "metadata": {"name": "keda-hpa-demo-worker", "namespace": "ns"},
        "spec": {
            "metrics": [
                external(LAG_METRIC, "target", {"type": "AverageValue", "averageValue": "10"}),
                external(DEPTH_METRIC, "target", {"type": "AverageValue", "averageValue": "5"}),
                {"type": "Resource", "resource": {"name": "cpu",
                 "target": {"type": "Utilization", "averageUtilization": 60}}},
            ]
        },
        "status": {
            "currentReplicas": current,
            "desiredReplicas": desired,
            **({"lastScaleTime": scaled_at} if scaled_at else {}),
            "currentMetrics": [
                external(LAG_METRIC, "current", {"averageValue": lag}),
                external(DEPTH_METRIC, "current", {"averageValue": "0"}),
                {"type": "Resource", "resource": {"name": "cpu",
                 "current": {"averageUtilization": 12, "averageValue": "12m"}}},
            ],
            "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                 "message": "the HPA controller was able to update the target scale to 4",
                 "lastTransitionTime": "2026-11-29T22:00:00Z"},
                {"type": "ScalingLimited", "status": "True", "reason": "TooManyReplicas",
                 "message": "the desired replica count is more than the maximum replica count"},
            ],
        },
    }  # fmt: skip
