"""Ground floor: the operator's own API, its identity on the cluster, and the kinds it owns.

Every other module reads these facts from here, so a new child kind is one row in CHILD_KINDS:
the Kubernetes access learns its plural, the handlers watch it into the cache the reconcile
compares and prunes from (and reconcile its demo on its events when `watched`), and the status
knows which optional add-on's absence explains a 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

GROUP = "scalingdemo.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ScalingDemo"
PLURAL = "scalingdemos"

FIELD_MANAGER = "scalingdemo-operator"
"""The server-side apply field manager; fixed so that every reconcile owns the same fields."""

NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
APPLIED_HASH_ANNOTATION = f"{GROUP}/applied-hash"
"""Hash of the manifest last applied: notices fields the spec dropped, which a live object keeps."""
CREDENTIALS_LABEL = f"{GROUP}/kafka-credentials"
"""`"true"` on a Secret that a ScalingDemo's spec.kafka.auth names: the operator watches only
Secrets so labelled, and reads the Kafka credentials for its topic admin calls from memory."""
PAUSED_ANNOTATION = f"{GROUP}/paused"
"""`"true"` on a ScalingDemo: the operator writes nothing for it until the annotation goes."""
MANAGED = {MANAGED_BY_LABEL: FIELD_MANAGER}
"""The label every child carries: what the child watches select on."""

Manifest = dict[str, Any]


def is_paused(body: Mapping[str, Any]) -> bool:
    """Whether the ScalingDemo carries the paused annotation set to "true"."""
    annotations = body.get("metadata", {}).get("annotations") or {}
    return bool(annotations.get(PAUSED_ANNOTATION) == "true")


class AddOn(Enum):
    """Optional cluster software whose CRDs define some child kinds; absent is reported."""

    KEDA = "keda"
    VPA = "vpa"
    PROMETHEUS_OPERATOR = "prometheus-operator"
    STRIMZI = "strimzi"


class Listing(Enum):
    """Which version of a kind is watched into the cache the reconcile compares and prunes from."""

    OWNED = "owned"
    """The kind's one version."""
    SERVED = "served"
    """The version the cluster prefers, and used only while its CRD serves one of `versions`
    (Strimzi's KafkaTopic)."""


@dataclass(frozen=True)
class ChildKind:
    """One kind a ScalingDemo owns. `versions` are in order of preference."""

    group: str
    versions: tuple[str, ...]
    kind: str
    plural: str
    add_on: AddOn | None
    watched: bool
    listing: Listing = Listing.OWNED

    @property
    def version(self) -> str:
        """The version used where discovery does not choose one."""
        return self.versions[0]

    def api_version(self, version: str | None = None) -> str:
        chosen = version or self.version
        return f"{self.group}/{chosen}" if self.group else chosen


CHILD_KINDS: tuple[ChildKind, ...] = (
    ChildKind("", ("v1",), "Service", "services", None, watched=True),
    ChildKind("apps", ("v1",), "Deployment", "deployments", None, watched=True),
    ChildKind(
        "keda.sh",
        ("v1alpha1",),
        "TriggerAuthentication",
        "triggerauthentications",
        AddOn.KEDA,
        watched=False,
    ),
    ChildKind("keda.sh", ("v1alpha1",), "ScaledObject", "scaledobjects", AddOn.KEDA, watched=True),
    ChildKind(
        "autoscaling.k8s.io",
        ("v1",),
        "VerticalPodAutoscaler",
        "verticalpodautoscalers",
        AddOn.VPA,
        watched=True,
    ),
    ChildKind(
        "monitoring.coreos.com",
        ("v1",),
        "ServiceMonitor",
        "servicemonitors",
        AddOn.PROMETHEUS_OPERATOR,
        watched=True,
    ),
    ChildKind(
        "monitoring.coreos.com",
        ("v1",),
        "PrometheusRule",
        "prometheusrules",
        AddOn.PROMETHEUS_OPERATOR,
        watched=True,
    ),
    ChildKind("", ("v1",), "ConfigMap", "configmaps", None, watched=True),
    ChildKind(
        "kafka.strimzi.io",
        ("v1", "v1beta2"),
        "KafkaTopic",
        "kafkatopics",
        AddOn.STRIMZI,
        watched=False,
        listing=Listing.SERVED,
    ),
)
"""Every kind a ScalingDemo owns, in prune order; all are watched into the cache. `watched`
kinds also trigger a reconcile of their owner when edited or deleted; a TriggerAuthentication
changes only with the spec, and Strimzi reports on KafkaTopics in their status, which the
reconcile reads when it runs."""

CHILDREN: Mapping[str, ChildKind] = {child.kind: child for child in CHILD_KINDS}
"""Child kinds by kind name (kind names are unique among the children)."""
KAFKA_TOPIC = CHILDREN["KafkaTopic"]

OTHER_RESOURCES: Mapping[tuple[str, str], str] = {
    ("v1", "Secret"): "secrets",
    ("v1", "Event"): "events",
    (API_VERSION, KIND): PLURAL,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
}
"""Kinds the operator reads or writes that are not children: (apiVersion, kind) -> plural."""


def resources() -> dict[tuple[str, str], str]:
    """Plural resource names of every (apiVersion, kind) the operator reads or writes."""
    found = {
        (child.api_version(version), child.kind): child.plural
        for child in CHILD_KINDS
        for version in child.versions
    }
    return {**found, **OTHER_RESOURCES}


@dataclass(frozen=True)
class Event:
    """A Kubernetes event to post on the ScalingDemo: type Normal or Warning, CamelCase reason."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """Events to post, and whether to try again soon (Kafka could not be used)."""

    events: list[Event]
    retry: bool = False


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

    def object_reference(self) -> Manifest:
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


def controlling_owner(child: Mapping[str, Any]) -> Owner | None:
    """The ScalingDemo that controls `child` (its controller ownerReference), if any."""
    metadata = child.get("metadata", {})
    found = next(
        (
            ref
            for ref in metadata.get("ownerReferences", [])
            if ref.get("kind") == KIND and ref.get("controller")
        ),
        None,
    )
    if found is None:
        return None
    return Owner(namespace=metadata["namespace"], name=found["name"], uid=found["uid"])
