"""Names, labels and ownership shared by every child a ScalingDemo owns."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ..api import (
    APPLIED_HASH_ANNOTATION,
    COMPONENT_LABEL,
    FIELD_MANAGER,
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    PART_OF_LABEL,
    Manifest,
    Owner,
)


def selector_labels(owner: Owner, component: str) -> dict[str, str]:
    """The immutable part of the labels: Deployment selectors and Service selectors use these."""
    return {
        NAME_LABEL: "scalingdemo",
        INSTANCE_LABEL: owner.name,
        COMPONENT_LABEL: component,
    }


def labels(owner: Owner, component: str) -> dict[str, str]:
    """Recommended app.kubernetes.io labels of every child and pod."""
    return {
        **selector_labels(owner, component),
        PART_OF_LABEL: "scalingdemo",
        MANAGED_BY_LABEL: FIELD_MANAGER,
    }


def metadata(
    owner: Owner, component: str, name: str, extra_labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Name, labels and owner of a child; labels from the spec can never replace ours.

    Finding and pruning the children relies on the operator's own labels, so `extra_labels`
    (a Prometheus or Grafana selector chosen by the user) are overridden by them.
    """
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": {**(extra_labels or {}), **labels(owner, component)},
        "ownerReferences": [owner.reference()],
    }


def api_shape(model: BaseModel) -> Any:
    """A spec section in the API's shape: camelCase, unset fields and empty lists left out."""
    return {
        key: value
        for key, value in model.model_dump(by_alias=True, exclude_none=True).items()
        if value != []
    }


def stamp(manifest: Manifest) -> Manifest:
    """Add the applied-hash annotation, computed over the manifest without it."""
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    annotations = manifest["metadata"].setdefault("annotations", {})
    annotations[APPLIED_HASH_ANNOTATION] = digest
    return manifest


EVENT_MESSAGE_LIMIT = 1024
"""Longer messages are cut: `kubectl describe` shows events in one line each."""


def event(
    reference: Mapping[str, Any], kind: str, reason: str, message: str, instance: str, now: str
) -> Manifest:
    """A core/v1 Event about the object in `reference` (apiVersion, kind and metadata)."""
    metadata = reference["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
        "involvedObject": {
            "apiVersion": reference["apiVersion"],
            "kind": reference["kind"],
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
        },
        "type": kind,
        "reason": reason,
        "message": message[:EVENT_MESSAGE_LIMIT],
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
