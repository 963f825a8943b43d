"""KEDA's admission webhook judges every KEDA object the bed's API server is asked to store.

The examples' test reads no warning from it; these show that its warnings are read at
all, and that its refusals reach the client with KEDA's own words.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from tests.support import apply_reading_warnings, deployment

WORKLOAD = "work"


def scaled_object(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    """A ScaledObject for the Deployment WORKLOAD, on a cron trigger that needs no service."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"name": WORKLOAD},
            "minReplicaCount": 1,
            "maxReplicaCount": 2,
            "triggers": [
                {
                    "type": "cron",
                    "metadata": {
                        "timezone": "UTC",
                        "start": "0 8 * * *",
                        "end": "0 18 * * *",
                        "desiredReplicas": "2",
                    },
                }
            ],
            **spec,
        },
    }


@pytest.fixture
def dynamic(kube_api: client.ApiClient, namespace: str) -> DynamicClient:
    """A client for a namespace that holds the Deployment WORKLOAD."""
    found = DynamicClient(kube_api)
    workload = deployment(WORKLOAD, 1)
    workload["metadata"]["namespace"] = namespace
    apply_reading_warnings(found, workload)
    return found


def test_a_setting_that_does_not_apply_draws_kedas_warning(
    dynamic: DynamicClient, namespace: str
) -> None:
    _, warnings = apply_reading_warnings(
        dynamic, scaled_object(namespace, "polled", pollingInterval=5)
    )
    assert len(warnings) == 1, warnings
    assert "PollingInterval is configured but is not relevant for scaling" in warnings[0]


def test_a_second_scaled_object_for_one_workload_is_refused_in_kedas_words(
    dynamic: DynamicClient, namespace: str
) -> None:
    assert apply_reading_warnings(dynamic, scaled_object(namespace, "first"))[1] == []
    with pytest.raises(ApiException) as refused:
        apply_reading_warnings(dynamic, scaled_object(namespace, "second"))
    message = json.loads(refused.value.body)["message"]
    assert message == (
        'admission webhook "vscaledobject.kb.io" denied the request: '
        f"the workload '{WORKLOAD}' of type 'apps/v1.Deployment' is already managed by the "
        "ScaledObject 'first'"
    )
