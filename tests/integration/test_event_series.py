"""Repeated events are counted on the event already posted, as client-go's recorder does.

A flapping source (KEDA's Ready while its HPA catches up with a failing trigger) must not
flood `kubectl describe` with the same Warning: the repeat raises `count` on the first one.
The recorder runs against the bed's API server; only its clock is the test's, so that the end
of a series' window need not be waited for.
"""

from __future__ import annotations

from typing import Any

import kubernetes
from scalingdemo_operator.api import Event
from scalingdemo_operator.kube import Kube
from scalingdemo_operator.reconcile import now
from scalingdemo_operator.recorder import SERIES_SECONDS, Recorder


class Clock:
    """Monotonic seconds the test moves on by hand."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def _reference(core: kubernetes.client.CoreV1Api, namespace: str) -> dict[str, Any]:
    """Events need an object to be about: a ConfigMap stands in for the ScalingDemo."""
    subject = kubernetes.client.V1ConfigMap(metadata=kubernetes.client.V1ObjectMeta(name="subject"))
    made = core.create_namespaced_config_map(namespace, subject)
    assert made.metadata is not None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "subject", "namespace": namespace, "uid": made.metadata.uid},
    }


def _posted(core: kubernetes.client.CoreV1Api, namespace: str) -> list[tuple[str, int]]:
    found = core.list_namespaced_event(namespace, field_selector="involvedObject.name=subject")
    return sorted((str(item.message), int(item.count or 0)) for item in found.items)


async def test_a_repeat_is_counted_and_a_new_message_or_an_old_series_is_posted(
    kube_api: kubernetes.client.ApiClient, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(kube_api)
    reference = _reference(core, namespace)
    clock = Clock()
    recorder = Recorder(Kube(kube_api), clock, now)
    broken = Event("Warning", "ScaledObjectNotReady", "trigger broken failing")

    await recorder.post(reference, [broken, broken])
    clock.seconds += SERIES_SECONDS / 2
    await recorder.post(reference, [broken])
    assert _posted(core, namespace) == [("trigger broken failing", 3)]

    other = Event("Warning", "ScaledObjectNotReady", "trigger other failing")
    await recorder.post(reference, [other])
    assert _posted(core, namespace) == [("trigger broken failing", 3), ("trigger other failing", 1)]

    clock.seconds += SERIES_SECONDS + 1
    await recorder.post(reference, [broken])
    assert _posted(core, namespace) == [
        ("trigger broken failing", 1),
        ("trigger broken failing", 3),
        ("trigger other failing", 1),
    ]

    core.delete_collection_namespaced_event(namespace)
    await recorder.post(reference, [broken])
    assert _posted(core, namespace) == [("trigger broken failing", 1)]
