"""The shipped ClusterRole grants exactly what the operator uses: proven, not reviewed.

The operator runs as in its Deployment (every namespace, periodic resync on) but as a client
certificate identity bound to nothing except the ClusterRole rendered from deploy/operator,
never as an admin. Every example is applied (adapted to the bed's addresses), reconciled,
pruned (optional parts switched off, so children get deleted) and deleted. The API server's
audit log then says which (apiGroup, resource[/subresource], verb) the operator asked for;
the test fails on any denied request and when the role grants more or less than that set.
Nothing here lists the operator's needs: they are read from the audit log, so the test stays
right as the operator grows, and its failure message proposes the rules to ship.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.operator_harness import OperatorProcess, install_crd
from tests.support import EXAMPLES, eventually, rendered_install
from tests.testbed.bed import Bed
from tests.testbed.control_plane import kubectl_run

GROUP, VERSION, PLURAL, KIND = "scalingdemo.dev", "v1alpha1", "scalingdemos", "ScalingDemo"
USER = "scalingdemo-operator-rbac-proof"
RECONCILE_SECONDS = 120
RESYNC_SECONDS = 2
Rule = tuple[str, str, str]
"""(apiGroup, resource or resource/subresource, verb), as RBAC and the audit log name them."""

NOT_EXERCISED: dict[Rule, str] = {
    ("scalingdemo.dev", "scalingdemos/finalizers", "update"): (
        "children carry blockOwnerDeletion; clusters that enable the "
        "OwnerReferencesPermissionEnforcement admission plugin (OpenShift does) then require "
        "update on the owner's finalizers. The bed's API server does not enable that plugin, "
        "and the check happens inside admission, so no audit record shows it."
    ),
}
"""Grants the bed cannot show being used, each with the reason it is still needed."""

PRUNE = {
    "api": {"enabled": False},
    "worker": {"autoscaling": {"enabled": False}, "verticalScaling": {"enabled": False}},
    "monitoring": {"serviceMonitor": {"enabled": False}, "dashboard": {"enabled": False}},
}
"""Switches every optional child off, so the operator deletes what it created."""


def cluster_role(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (role,) = [item for item in documents if item["kind"] == "ClusterRole"]
    return role


def granted(role: dict[str, Any]) -> set[Rule]:
    """Every (group, resource, verb) the role allows; wildcards and name limits are refused."""
    found: set[Rule] = set()
    for rule in role["rules"]:
        fields = (rule.get("apiGroups", []), rule.get("resources", []), rule["verbs"])
        assert not any("*" in values for values in fields), f"wildcard in {rule}"
        assert "nonResourceURLs" not in rule, f"a ClusterRole for an operator needs none: {rule}"
        found |= {(g, r, v) for g in fields[0] for r in fields[1] for v in fields[2]}
    return found


def audited(audit_log: Path, offset: int, user: str) -> tuple[set[Rule], list[str]]:
    """What `user` needed after `offset`, and the requests it was refused.

    A server-side apply is a PATCH, but when it creates the object the API server also checks
    `create` (inside the handler, so the audit record still says patch): a 201 answer, or a
    refusal saying `cannot create`, means the operator needs create as well.
    """
    used: set[Rule] = set()
    denied: list[str] = []
    with audit_log.open() as lines:
        lines.seek(offset)
        for line in lines:
            record = json.loads(line)
            target = record.get("objectRef")
            if record["user"]["username"] != user or target is None:
                continue  # another client, or discovery (granted to everyone authenticated)
            resource = target["resource"]
            if target.get("subresource"):
                resource += f"/{target['subresource']}"
            group, verb = target.get("apiGroup", ""), record["verb"]
            answer = record.get("responseStatus", {})
            message = answer.get("message", "")
            used.add((group, resource, verb))
            if verb == "patch" and (answer.get("code") == 201 or "cannot create" in message):
                used.add((group, resource, "create"))
            decision = record.get("annotations", {}).get("authorization.k8s.io/decision")
            if decision == "forbid" or f'User "{user}" cannot' in message:
                denied.append(f"{verb} {record['requestURI']}: {message}")
    return used, denied


def proposed_rules(rules: set[Rule]) -> str:
    """The rules to ship for a set of requests, as ClusterRole YAML."""
    verbs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for group, resource, verb in sorted(rules):
        verbs[(group, resource)].append(verb)
    return yaml.safe_dump(
        [
            {"apiGroups": [group], "resources": [resource], "verbs": verbs[(group, resource)]}
            for group, resource in sorted(verbs)
        ],
        default_flow_style=None,
        sort_keys=False,
    )


def adapted(document: dict[str, Any], bed: Bed) -> dict[str, Any]:
    """An example pointed at the bed's Kafka and Prometheus instead of the kind cluster's."""
    if document.get("kind") != KIND:
        return document
    spec = document["spec"]
    spec["kafka"]["bootstrapServers"] = bed.kafka_bootstrap
    prometheus = spec.get("monitoring", {}).get("prometheus")
    if prometheus is not None and bed.prometheus is not None:
        prometheus["serverAddress"] = bed.prometheus.url
    return document


@pytest.fixture
def operator_identity(bed: Bed, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig for USER, bound to the shipped ClusterRole and to nothing else."""
    if not bed.local:
        pytest.skip("the RBAC proof needs the local bed: its CA for USER and its audit log")
    role = cluster_role(rendered_install(bed.kubectl, bed.kubeconfig))
    name = role["metadata"]["name"]
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{name}-rbac-proof"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
    }
    manifest = tmp_path / "rbac.yaml"
    manifest.write_text(yaml.safe_dump_all([role, binding]))
    kubectl_run(bed.kubectl, bed.kubeconfig, "apply", "--server-side", "-f", str(manifest))
    try:
        yield bed.kubeconfig_for(USER, [])
    finally:
        kubectl_run(bed.kubectl, bed.kubeconfig, "delete", "--wait=false", "-f", str(manifest))


def reconciled(status: dict[str, Any]) -> bool:
    """The operator has handled the current generation: status and conditions written."""
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
    return status.get("observedGeneration") == ready.get("observedGeneration") == status["at"]


def status_of(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    """The status, with the generation it should have observed under "at"."""
    body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return {**(body.get("status") or {}), "at": body["metadata"]["generation"]}


def gone(custom: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    names = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    return all(item["metadata"]["name"] != name for item in names)


class Exercise:
    """Drives the demos through their life and waits for the operator at each step.

    A wait also ends as soon as the audit log shows a refused request: the operator then
    retries forever, and the refusal, not a timeout, is what the test must report.
    """

    def __init__(self, custom: client.CustomObjectsApi, namespace: str, audit_log: Path) -> None:
        self.custom, self.namespace, self.audit_log = custom, namespace, audit_log
        self.offset = audit_log.stat().st_size

    def audit(self) -> tuple[set[Rule], list[str]]:
        return audited(self.audit_log, self.offset, USER)

    def wait(
        self,
        names: list[str],
        probe: Callable[[client.CustomObjectsApi, str, str], Any],
        accept: Callable[[Any], bool],
        what: str,
    ) -> None:
        for name in names:
            eventually(
                lambda name=name: probe(self.custom, self.namespace, name),
                f"{name} {what}",
                RECONCILE_SECONDS,
                accept=lambda value: accept(value) or bool(self.audit()[1]),
            )

    def run(self, demos: list[str]) -> None:
        """Reconcile, prune every optional child, delete."""
        self.wait(demos, status_of, reconciled, "to be reconciled once created")
        for name in demos:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, {"spec": PRUNE}
            )
        self.wait(demos, status_of, reconciled, "to be reconciled after pruning")
        for name in demos:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        self.wait(demos, gone, bool, "to be deleted")


def test_the_cluster_role_grants_exactly_what_the_operator_uses(
    bed: Bed,
    kube_api: client.ApiClient,
    namespace: str,
    operator_identity: Path,
    tmp_path: Path,
) -> None:
    assert bed.audit_log is not None
    install_crd(bed.kubectl, bed.kubeconfig)
    exercise = Exercise(client.CustomObjectsApi(kube_api), namespace, bed.audit_log)
    operator = OperatorProcess(
        operator_identity, [], tmp_path / "operator.log", resync_seconds=RESYNC_SECONDS
    )
    operator.start()
    try:
        demos = []
        for example in EXAMPLES:
            documents = [adapted(item, bed) for item in yaml.safe_load_all(example.read_text())]
            manifest = tmp_path / example.name
            manifest.write_text(yaml.safe_dump_all(documents))
            kubectl_run(bed.kubectl, bed.kubeconfig, "apply", "-n", namespace, "-f", str(manifest))
            demos += [item["metadata"]["name"] for item in documents if item["kind"] == KIND]
        exercise.run(demos)
    finally:
        operator.stop()

    used, denied = exercise.audit()
    shipped = granted(cluster_role(rendered_install(bed.kubectl, bed.kubeconfig)))
    stale = {rule for rule in NOT_EXERCISED if rule in used or rule not in shipped}
    assert not stale, f"allowed as not exercised, but used or not granted: {sorted(stale)}"
    needed = used | set(NOT_EXERCISED)
    # A refusal ends the exercise early, so what was not used then proves nothing: report the
    # refusals and what they need, and judge unused grants only on a run without refusals.
    assert not denied, (
        "the operator was refused:\n"
        + "\n".join(sorted(set(denied)))
        + f"\nthe ClusterRole lacks {sorted(needed - shipped)}"
    )
    assert shipped == needed, (
        f"ClusterRole grants unused: {sorted(shipped - needed)}; "
        f"lacks: {sorted(needed - shipped)}. Rules matching the audit log:\n"
        + proposed_rules(needed)
    )
