"""Deciding whether to write: defaults, quantities, dropped fields, and which errors to retry."""

from __future__ import annotations

import copy

import pytest
from kubernetes.client.exceptions import ApiException
from scalingdemo_operator.api import APPLIED_HASH_ANNOTATION
from scalingdemo_operator.diff import differences, needs_apply
from scalingdemo_operator.kube import is_transient

pytestmark = pytest.mark.unit

DESIRED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "demo-api",
        "labels": {"app": "demo"},
        "annotations": {APPLIED_HASH_ANNOTATION: "abc"},
    },
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "workload",
                        "env": [{"name": "A", "value": "1"}],
                        "resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}},
                    }
                ]
            }
        },
    },
}


def _live() -> dict:
    """What the API server returns: defaults added, quantities normalised, extra metadata."""
    live = copy.deepcopy(DESIRED)
    live["metadata"].update(uid="u", resourceVersion="7", generation=3)
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    container = live["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["requests"] = {"cpu": "500m", "memory": "1Gi"}
    container["terminationMessagePath"] = "/dev/termination-log"
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    live["status"] = {"replicas": 2}
    return live


def test_a_defaulted_and_normalised_live_object_needs_nothing() -> None:
    assert needs_apply(DESIRED, _live()) == []


def test_changed_values_are_reported_by_path_with_list_items_by_name() -> None:
    live = _live()
    live["spec"]["replicas"] = 5
    live["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "2"
    assert differences(DESIRED, live) == [
        "spec.replicas",
        "spec.template.spec.containers[workload].env[A].value",
    ]


def test_a_list_of_another_length_is_one_difference() -> None:
    live = _live()
    live["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "B", "value": "x"})
    assert differences(DESIRED, live) == ["spec.template.spec.containers[workload].env"]


def test_labels_count_but_foreign_annotations_do_not() -> None:
    live = _live()
    live["metadata"]["labels"]["app"] = "other"
    assert differences(DESIRED, live) == ["metadata.labels.app"]


def test_a_field_the_spec_dropped_shows_up_through_the_hash() -> None:
    desired = copy.deepcopy(DESIRED)
    del desired["spec"]["replicas"]
    desired["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = "def"
    assert needs_apply(desired, _live()) == [f"metadata.annotations[{APPLIED_HASH_ANNOTATION}]"]


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ApiException(status=429), True),
        (ApiException(status=503), True),
        (ApiException(status=0), True),
        (ConnectionResetError(), True),
        (ApiException(status=422), False),
        (ApiException(status=403), False),
        (ApiException(status=404), False),
        (ValueError("bug"), False),
    ],
)
def test_only_throttling_server_and_connection_errors_are_retried(
    error: BaseException, transient: bool
) -> None:
    assert is_transient(error) is transient
