"""VerticalPodAutoscalers.

A VPA never controls a resource that a cpu/memory trigger scales on: both would act on the same
requests and fight (`Component.resources_left_to_triggers`).
"""

from __future__ import annotations

from typing import Any

from ..api import CHILDREN, Manifest, Owner
from ..spec import ScalingDemoSpec
from .common import api_shape, metadata, stamp
from .workload import CONTAINER

VPA_API_VERSION = CHILDREN["VerticalPodAutoscaler"].api_version()


def vertical_pod_autoscaler(spec: ScalingDemoSpec, owner: Owner, name: str) -> Manifest:
    """The component's VPA; a container policy with mode Off when nothing is left to control."""
    component = spec.component(name)
    vertical = component.vertical_scaling
    dropped = component.resources_left_to_triggers()
    controlled = [item for item in vertical.controlled_resources if item not in dropped]
    policy: dict[str, Any] = {"containerName": CONTAINER}
    if controlled:
        policy["controlledResources"] = controlled
        policy["controlledValues"] = vertical.controlled_values
        for key, bounds in (
            ("minAllowed", vertical.min_allowed),
            ("maxAllowed", vertical.max_allowed),
        ):
            present = api_shape(bounds) if bounds is not None else {}
            if present:
                policy[key] = present
    else:
        policy["mode"] = "Off"
    return stamp(
        {
            "apiVersion": VPA_API_VERSION,
            "kind": "VerticalPodAutoscaler",
            "metadata": metadata(owner, name, owner.child_name(name)),
            "spec": {
                "targetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": owner.child_name(name),
                },
                "updatePolicy": {"updateMode": vertical.update_mode},
                "resourcePolicy": {"containerPolicies": [policy]},
            },
        }
    )
