"""Reading and writing ScalingDemos and their children on the bed, for the operator tests.

Waits are bounded polls (a deadline is a failure bound, never a timing assertion).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from scalingdemo_operator.api import GROUP, KIND, PLURAL, VERSION

from tests.support import eventually

WAIT_SECONDS = 60
AUDIT_WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


QUIET_SECONDS = 5


def settle(read: Callable[[], float], what: str) -> float:
    """Wait until read() stops changing for QUIET_SECONDS; fail if it never does."""
    readings = [read()]

    def last_two() -> tuple[float, float]:
        time.sleep(QUIET_SECONDS)
        readings.append(read())
        return readings[-2], readings[-1]

    eventually(
        last_two, f"{what} to stop changing", WAIT_SECONDS, accept=lambda two: two[0] == two[1]
    )
    return readings[-1]


def demo(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {
            "image": "registry.example/scalingdemo-workload:1",
            # The workload's children are the subject here; topics have their own tests
            # (test_operator_topics.py), so nothing reaches for this unresolvable broker.
            "kafka": {
                "bootstrapServers": "kafka.kafka.svc.cluster.local:9092",
                "topicManagement": "None",
            },
            **spec,
        },
    }


class Cluster:
    """Small reads and writes the tests share, all through the real API."""

    def __init__(
        self,
        custom: client.CustomObjectsApi,
        apps: client.AppsV1Api,
        core: client.CoreV1Api,
        namespace: str,
    ) -> None:
        self.custom, self.apps, self.core, self.namespace = custom, apps, core, namespace

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )

    def custom_object(
        self, group: str, version: str, plural: str, name: str
    ) -> dict[str, Any] | None:
        """A custom object in the test's namespace, or None while it does not exist."""
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                group, version, self.namespace, plural, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def patch(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def condition(self, name: str, kind: str = "Ready") -> dict[str, Any]:
        conditions = self.get(name).get("status", {}).get("conditions", [])
        return next((item for item in conditions if item["type"] == kind), {})

    def converged(self, name: str) -> bool:
        body = self.get(name)
        status = body.get("status", {})
        ready = self.condition(name)
        return (
            status.get("observedGeneration") == body["metadata"]["generation"]
            and ready.get("status") == "True"
        )

    def deployments(self) -> dict[str, Any]:
        return {
            item.metadata.name: item
            for item in self.apps.list_namespaced_deployment(self.namespace).items
        }

    def services(self) -> dict[str, Any]:
        return {
            item.metadata.name: item
            for item in self.core.list_namespaced_service(self.namespace).items
        }

    def events(self, name: str) -> list[tuple[str, str, str]]:
        return [(item.type, item.reason, item.message) for item in self._events(name)]

    def times_said(self, name: str, message: str) -> int:
        """How often the operator said `message` about the demo: a repeat within minutes is
        counted on the event already posted, not posted again."""
        return sum(item.count or 1 for item in self._events(name) if item.message == message)

    def _events(self, name: str) -> list[client.CoreV1Event]:
        found = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        )
        return [item for item in found.items if item.involved_object.kind == KIND]


def _crd_exists(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    try:
        extensions.read_custom_resource_definition(name)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def _established(extensions: client.ApiextensionsV1Api, name: str) -> bool:
    found = extensions.read_custom_resource_definition(name)
    return any(
        item.type == "Established" and item.status == "True"
        for item in found.status.conditions or []
    )


class RemovedCrd:
    """A real upstream CRD, removed from the bed; `restore` puts the same one back."""

    def __init__(self, extensions: client.ApiextensionsV1Api, saved: dict[str, Any]) -> None:
        self.extensions, self.saved = extensions, saved
        self.name = saved["metadata"]["name"]

    def restore(self) -> None:
        if _crd_exists(self.extensions, self.name):
            return
        metadata = {
            key: self.saved["metadata"][key]
            for key in ("name", "labels", "annotations")
            if key in self.saved["metadata"]
        }
        body = {key: self.saved[key] for key in ("apiVersion", "kind", "spec")}
        self.extensions.create_custom_resource_definition({**body, "metadata": metadata})
        eventually(lambda: _established(self.extensions, self.name), f"{self.name} to be served")


@contextmanager
def removing_crd(kube_api: client.ApiClient, name: str) -> Iterator[RemovedCrd]:
    """No CRD `name` inside the block; it is back afterwards whatever happened."""
    extensions = client.ApiextensionsV1Api(kube_api)
    saved = kube_api.sanitize_for_serialization(extensions.read_custom_resource_definition(name))
    extensions.delete_custom_resource_definition(name)
    eventually(lambda: not _crd_exists(extensions, name), f"{name} to be gone")
    crd = RemovedCrd(extensions, saved)
    try:
        yield crd
    finally:
        crd.restore()


def audit_requests(log: Path, offset: int, wanted: Callable[[dict[str, Any]], bool]) -> list[str]:
    """ "verb resource/name" of the completed requests the audit log recorded after `offset`
    that `wanted` picks."""
    found = []
    with log.open() as records:
        records.seek(offset)
        for line in records:
            record = json.loads(line)
            if record.get("stage") == "ResponseComplete" and wanted(record):
                target = record.get("objectRef", {})
                found.append(f"{record['verb']} {target.get('resource')}/{target.get('name')}")
    return found


def _audit_writes(log: Path, offset: int, namespace: str) -> list[str]:
    """Completed write requests in `namespace` that the audit log recorded after `offset`."""
    return audit_requests(
        log,
        offset,
        lambda record: (
            record.get("verb") in AUDIT_WRITE_VERBS
            and record.get("objectRef", {}).get("namespace") == namespace
        ),
    )


def _resource_versions(cluster: Cluster) -> dict[str, str]:
    """resourceVersion of every object a demo involves in the namespace, events included."""
    found = {
        f"ScalingDemo/{item['metadata']['name']}": item["metadata"]["resourceVersion"]
        for item in cluster.custom.list_namespaced_custom_object(
            GROUP, VERSION, cluster.namespace, PLURAL
        )["items"]
    }
    for kind, objects in (("Deployment", cluster.deployments()), ("Service", cluster.services())):
        found.update(
            {f"{kind}/{name}": item.metadata.resource_version for name, item in objects.items()}
        )
    for event in cluster.core.list_namespaced_event(cluster.namespace).items:
        found[f"Event/{event.metadata.name}"] = event.metadata.resource_version
    return found


def count_writes(bed: Any, cluster: Cluster) -> Callable[[], list[str]]:
    """Start counting writes in the test's namespace; the returned function lists those since.

    The bed's audit log records every request; on an existing cluster without one, changed or
    new resourceVersions are the fallback (it misses only no-op writes, which the operator's own
    request counters catch).
    """
    if bed.audit_log is not None:
        offset = bed.audit_log.stat().st_size
        return lambda: _audit_writes(bed.audit_log, offset, cluster.namespace)
    before = _resource_versions(cluster)
    return lambda: [
        f"{key}: {before.get(key)} -> {version}"
        for key, version in _resource_versions(cluster).items()
        if before.get(key) != version
    ]
