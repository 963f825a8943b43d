"""Each install grants exactly what the operator uses: proven, not reviewed.

Three installs are proven: deploy/operator (kustomize), and the Helm chart watching every
namespace and watching a namespace list. Each one's roles and bindings are rendered and applied
as they are; the operator then runs as that install runs it (its namespaces, periodic resync
on) but out of cluster, as a client certificate identity with the name of the install's
ServiceAccount, so the install's own bindings, and nothing else, authorize it. Every
example is applied (adapted to the bed's addresses), reconciled,
pruned (optional parts switched off, so children get deleted) and deleted. The API server's
audit log then says which (apiGroup, resource[/subresource], verb) the operator asked for;
the test fails on any denied request and when the roles grant more or less than that set:
a ClusterRole against every request, or, with a namespace list, the ClusterRole against the
cluster-scoped requests and the Role against the requests inside the watched namespace.
Nothing here lists the operator's needs: they are read from the audit log, so the test stays
right as the operator grows, and its failure message proposes the rules to ship.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests import chart
from tests.demos import GROUP, KIND, PLURAL, VERSION, adapted, gone, reconciled, status_of
from tests.operator_harness import OperatorProcess, install_crd
from tests.support import EXAMPLES, eventually, rendered_install
from tests.testbed.bed import Bed
from tests.testbed.control_plane import kubectl_run

RECONCILE_SECONDS = 120
RESYNC_SECONDS = 2
Rule = tuple[str, str, str]
"""(apiGroup, resource or resource/subresource, verb), as RBAC and the audit log name them."""
CLUSTER, NAMESPACE = "cluster", "namespace"
"""Scopes of a request: cluster-wide (no namespace in its path) or inside one namespace."""

NOT_EXERCISED: dict[Rule, str] = {
    ("scalingdemo.dev", "scalingdemos/finalizers", "update"): (
        "children carry blockOwnerDeletion; clusters that enable the "
        "OwnerReferencesPermissionEnforcement admission plugin (OpenShift does) then require "
        "update on the owner's finalizers. The bed's API server does not enable that plugin, "
        "and the check happens inside admission, so no audit record shows it."
    ),
    ("scalingdemo.dev", "scalingdemos", "patch"): (
        "kopf patches a ScalingDemo only for the topic finalizer: to add and remove it on a demo "
        "with deletionPolicy Delete and the operator's topics, and to record the progress of a "
        "topic deletion it retries. No example asks for that (their topics outlive the demo), "
        "and kopf keeps everything else it records in memory."
    ),
}
"""Grants the bed cannot show being used, each with the reason it is still needed."""
MAY_BE_EXERCISED: dict[Rule, str] = {
    ("", "events", "patch"): (
        "an event repeated within minutes is counted on the one already posted; whether a "
        "condition (KEDA's Ready above all) flips back within the exercise depends on timing."
    ),
}
"""Grants whose use depends on timing: needed, whether or not this run shows them used."""

PRUNE = {
    "api": {"enabled": False},
    "worker": {"autoscaling": {"enabled": False}, "verticalScaling": {"enabled": False}},
    "monitoring": {
        "serviceMonitor": {"enabled": False},
        "dashboard": {"enabled": False},
        "alerts": {"enabled": False},
    },
}
"""Switches every optional child off, so the operator deletes what it created."""


def granted(roles: list[dict[str, Any]]) -> set[Rule]:
    """Every (group, resource, verb) the roles allow; wildcards and name limits are refused."""
    found: set[Rule] = set()
    for rule in (rule for role in roles for rule in role["rules"]):
        fields = (rule.get("apiGroups", []), rule.get("resources", []), rule["verbs"])
        assert not any("*" in values for values in fields), f"wildcard in {rule}"
        assert "nonResourceURLs" not in rule, f"a ClusterRole for an operator needs none: {rule}"
        found |= {(g, r, v) for g in fields[0] for r in fields[1] for v in fields[2]}
    return found


def audited(audit_log: Path, offset: int, user: str) -> tuple[dict[str, set[Rule]], list[str]]:
    """What `user` needed after `offset` in each scope, and the requests it was refused.

    A server-side apply is a PATCH, but when it creates the object the API server also checks
    `create` (inside the handler, so the audit record still says patch): a 201 answer, or a
    refusal saying `cannot create`, means the operator needs create as well.
    """
    used: dict[str, set[Rule]] = {CLUSTER: set(), NAMESPACE: set()}
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
            scope = used[NAMESPACE if target.get("namespace") else CLUSTER]
            scope.add((group, resource, verb))
            if verb == "patch" and (answer.get("code") == 201 or "cannot create" in message):
                scope.add((group, resource, "create"))
            decision = record.get("annotations", {}).get("authorization.k8s.io/decision")
            if decision == "forbid" or f'User "{user}" cannot' in message:
                denied.append(f"{verb} {record['requestURI']}: {message}")
    return used, denied


def proposed_rules(rules: set[Rule]) -> str:
    """The rules to ship for a set of requests, as role YAML."""
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


@dataclass(frozen=True)
class Install:
    """The roles and bindings of one install, and the operator's identity and namespaces."""

    objects: list[dict[str, Any]]
    user: str
    namespaces: list[str]

    def rules(self, kind: str) -> set[Rule]:
        return granted([item for item in self.objects if item["kind"] == kind])


def install_of(documents: list[dict[str, Any]], namespaces: list[str]) -> Install:
    """An install's RBAC, and the user name of its ServiceAccount."""
    (account,) = [item for item in documents if item["kind"] == "ServiceAccount"]
    metadata = account["metadata"]
    user = f"system:serviceaccount:{metadata['namespace']}:{metadata['name']}"
    return Install(chart.rbac(documents), user, namespaces)


def chart_install(helm: Path, namespaces: list[str]) -> Install:
    """The chart's RBAC, from a release whose names collide with no other install's. The names
    are short: the identity's user name is a certificate's common name, of 64 characters at
    the most."""
    release = "rpn" if namespaces else "rp"
    values = {"watchNamespaces": namespaces}
    return install_of(chart.template(helm, values, release, namespace=release), namespaces)


@pytest.fixture(params=["kustomize", "chart", "chart-namespaced"])
def install(
    request: pytest.FixtureRequest, bed: Bed, namespace: str, tmp_path: Path
) -> Iterator[Install]:
    """One install's roles and bindings, applied to the bed for the length of the test."""
    if not bed.local:
        pytest.skip("the RBAC proof needs the local bed: its CA for the identity and its audit log")
    if request.param == "kustomize":
        chosen = install_of(rendered_install(bed.kubectl, bed.kubeconfig), [])
    else:
        helm = request.getfixturevalue("helm")
        chosen = chart_install(helm, [namespace] if request.param == "chart-namespaced" else [])
    manifest = tmp_path / "rbac.yaml"
    manifest.write_text(yaml.safe_dump_all(chosen.objects))
    kubectl_run(bed.kubectl, bed.kubeconfig, "apply", "--server-side", "-f", str(manifest))
    try:
        yield chosen
    finally:
        kubectl_run(bed.kubectl, bed.kubeconfig, "delete", "--wait=false", "-f", str(manifest))


class Exercise:
    """Drives the demos through their life and waits for the operator at each step.

    A wait also ends as soon as the audit log shows a refused request: the operator then
    retries forever, and the refusal, not a timeout, is what the test must report.
    """

    def __init__(
        self, custom: client.CustomObjectsApi, namespace: str, audit_log: Path, user: str
    ) -> None:
        self.custom, self.namespace, self.audit_log, self.user = custom, namespace, audit_log, user
        self.offset = audit_log.stat().st_size

    def audit(self) -> tuple[dict[str, set[Rule]], list[str]]:
        return audited(self.audit_log, self.offset, self.user)

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


def expected_grants(install: Install, used: dict[str, set[Rule]]) -> dict[str, set[Rule]]:
    """What each kind of role should grant, from what the operator used.

    A ClusterRole alone serves every request. Beside Roles, it serves only the cluster-scoped
    ones, and the Roles the rest. The grants the bed cannot exercise belong with the rest.
    """
    exercised = set(NOT_EXERCISED) | set(MAY_BE_EXERCISED)
    if not install.rules("Role"):
        return {"ClusterRole": used[CLUSTER] | used[NAMESPACE] | exercised}
    return {"ClusterRole": used[CLUSTER], "Role": used[NAMESPACE] | exercised}


def test_the_install_grants_exactly_what_the_operator_uses(
    bed: Bed,
    kube_api: client.ApiClient,
    namespace: str,
    install: Install,
    tmp_path: Path,
) -> None:
    assert bed.audit_log is not None
    install_crd(bed.kubectl, bed.kubeconfig)
    exercise = Exercise(client.CustomObjectsApi(kube_api), namespace, bed.audit_log, install.user)
    operator = OperatorProcess(
        bed.kubeconfig_for(install.user, []),
        install.namespaces,
        tmp_path / "operator.log",
        resync_seconds=RESYNC_SECONDS,
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
    everything = install.rules("ClusterRole") | install.rules("Role")
    stale = {
        rule
        for rule in NOT_EXERCISED
        if rule in used[CLUSTER] | used[NAMESPACE] or rule not in everything
    } | {rule for rule in MAY_BE_EXERCISED if rule not in everything}
    assert not stale, f"allowed as not exercised, but used or not granted: {sorted(stale)}"
    expected = expected_grants(install, used)
    # A refusal ends the exercise early, so what was not used then proves nothing: report the
    # refusals and what they need, and judge unused grants only on a run without refusals.
    assert not denied, (
        "the operator was refused:\n"
        + "\n".join(sorted(set(denied)))
        + "".join(
            f"\nthe {kind} lacks {sorted(needed - install.rules(kind))}"
            for kind, needed in expected.items()
        )
    )
    for kind, needed in expected.items():
        shipped = install.rules(kind)
        assert shipped == needed, (
            f"{kind} grants unused: {sorted(shipped - needed)}; "
            f"lacks: {sorted(needed - shipped)}. Rules matching the audit log:\n"
            + proposed_rules(needed)
        )
