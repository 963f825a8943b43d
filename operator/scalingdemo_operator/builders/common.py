"""Names, labels and ownership shared by every child a ScalingDemo owns."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GROUP = "scalingdemo.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ScalingDemo"
PLURAL = "scalingdemos"

FIELD_MANAGER = "scalingdemo-operator"
"""The server-side apply field manager; fixed so that every reconcile owns the same fields."""

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
APPLIED_HASH_ANNOTATION = f"{GROUP}/applied-hash"
"""Hash of the manifest last applied: notices fields the spec dropped, which a live object keeps."""

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Owner:
    """Identity of the ScalingDemo a child belongs to: all a builder needs besides the spec."""

    namespace: str
    name: str
    uid: str

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Owner:
        metadata = body["metadata"]
        return cls(namespace=metadata["namespace"], name=metadata["name"], uid=metadata["uid"])

    def child_name(self, component: str) -> str:
        return f"{self.name}-{component}"

    def object_reference(self) -> dict[str, Any]:
        """The ScalingDemo as a minimal object (what posting an event about it needs)."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }

    def reference(self) -> dict[str, Any]:
        """ownerReference that lets the garbage collector delete the child with its demo."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def selector_labels(owner: Owner, component: str) -> dict[str, str]:
    """The immutable part of the labels: Deployment selectors and Service selectors use these."""
    return {
        "app.kubernetes.io/name": "scalingdemo",
        INSTANCE_LABEL: owner.name,
        COMPONENT_LABEL: component,
    }


def labels(owner: Owner, component: str) -> dict[str, str]:
    """Recommended app.kubernetes.io labels of every child and pod."""
    return {
        **selector_labels(owner, component),
        "app.kubernetes.io/part-of": "scalingdemo",
        MANAGED_BY_LABEL: FIELD_MANAGER,
    }


def ownership_selector(owner: Owner) -> str:
    """Label selector that finds every child of one demo (to prune what it no longer wants)."""
    return f"{MANAGED_BY_LABEL}={FIELD_MANAGER},{INSTANCE_LABEL}={owner.name}"


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
