"""`helm install`, `helm upgrade` and `helm uninstall` of the chart on the bed.

Until the bed runs real pods, kwok's nodes stand in for the kubelet: the chart's Deployment
becomes Available there, and the operator itself runs out of cluster with the arguments of
the installed Deployment and the identity of the installed ServiceAccount (a token the API
server issues for it), so only the installed roles authorize it.

The release starts in the namespaced mode: that start used to wait out kopf's retries of a
refused namespace listing (1+1+2+3+5+8+13+21 = 54 s of backoff) before it served anything. The
first reconcile must now come well inside that, so the wait below is bounded at
NAMESPACED_START_SECONDS: generous for a reconcile that takes about a second, yet short of
the 54 s the retries alone would take. The operator's log must hold no refused request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests import chart
from tests.demos import GROUP, PLURAL, VERSION, adapted, reconciled, status_of
from tests.operator_harness import OperatorProcess
from tests.support import REPOSITORY, eventually
from tests.testbed.bed import Bed
from tests.testbed.control_plane import kubectl_run

MINIMAL = REPOSITORY / "examples" / "minimal.yaml"
CRD_NAME = "scalingdemos.scalingdemo.dev"
INSTALL_SECONDS = 180
NAMESPACED_START_SECONDS = 30
RECONCILE_SECONDS = 120
TOKEN_SECONDS = 3600
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
REFUSALS = ("forbidden", "not enough permissions")
"""How kopf and the API server word a refused request in the operator's log (lower case)."""


class Release:
    """One release of the chart on the bed, named after the test's namespace: its
    cluster-scoped objects (ClusterRole, binding) then never meet another run's."""

    def __init__(self, helm: Path, bed: Bed, namespace: str) -> None:
        self.helm, self.bed, self.namespace = helm, bed, namespace
        self.name = f"op-{namespace.rsplit('-', 1)[-1]}"
        self.fullname = f"{self.name}-scalingdemo-operator"

    def run(self, *args: str) -> str:
        return chart.run_helm(
            self.helm, *args, "--namespace", self.namespace, kubeconfig=self.bed.kubeconfig
        )

    def install(self, command: str, values: dict[str, Any]) -> str:
        """`helm install` or `helm upgrade`, waiting until the Deployment is Available."""
        return self.run(
            command,
            self.name,
            str(chart.CHART),
            "--wait",
            f"--timeout={INSTALL_SECONDS}s",
            *chart.value_flags(values),
        )

    def deployment(self, apps: client.AppsV1Api) -> client.V1Deployment:
        return apps.read_namespaced_deployment(self.fullname, self.namespace)

    def reconciles(
        self,
        kube_api: client.ApiClient,
        log: Path,
        change: Callable[[], object],
        name: str,
        seconds: float,
    ) -> None:
        """Run the operator as installed, make ``change``, and wait ``seconds`` at the most
        for the demo ``name`` to be reconciled, without a single refused request, and counted
        in the operator's own metrics."""
        operator = self.operator(kube_api, log)
        custom = client.CustomObjectsApi(kube_api)
        operator.start()
        try:
            change()
            eventually(
                lambda: status_of(custom, self.namespace, name),
                f"{name} to be reconciled by the operator of {self.name}",
                seconds,
                accept=reconciled,
            )
            # What the chart's ServiceMonitor and scrape annotations point Prometheus at.
            assert operator.metric("scalingdemo_operator_reconciles_total") >= 1
        finally:
            operator.stop()
        assert not refusals(log), refusals(log)

    def operator(self, kube_api: client.ApiClient, log: Path) -> OperatorProcess:
        """The operator as the installed Deployment runs it, on local ports, as its account."""
        pod = self.deployment(client.AppsV1Api(kube_api)).spec.template.spec
        (container,) = pod.containers
        arguments = tuple(
            argument
            for argument in container.args
            if not argument.startswith(("--metrics-port", "--liveness"))
        )
        kubeconfig = self.account_kubeconfig(kube_api, pod.service_account_name, log)
        return OperatorProcess(kubeconfig, [], log, 0, arguments)

    def account_kubeconfig(self, kube_api: client.ApiClient, account: str, beside: Path) -> Path:
        """A kubeconfig holding a token of the ServiceAccount, as its pod would mount one."""
        request = {"spec": {"expirationSeconds": TOKEN_SECONDS}}
        token = (
            client.CoreV1Api(kube_api)
            .create_namespaced_service_account_token(account, self.namespace, request)
            .status.token
        )
        config = yaml.safe_load(self.bed.kubeconfig.read_text())
        config["users"] = [{"name": account, "user": {"token": token}}]
        for context in config["contexts"]:
            context["context"]["user"] = account
        path = beside.with_suffix(".kubeconfig")
        path.write_text(yaml.safe_dump(config))
        return path


def available(deployment: client.V1Deployment) -> bool:
    conditions = deployment.status.conditions or []
    return any(c.type == "Available" and c.status == "True" for c in conditions)


def refusals(log: Path) -> list[str]:
    lines = log.read_text().splitlines()
    return [line for line in lines if any(refusal in line.lower() for refusal in REFUSALS)]


def minimal_demo(bed: Bed, namespace: str) -> dict[str, Any]:
    """examples/minimal.yaml on the bed's Kafka, its topics named apart from other tests'."""
    body = adapted(yaml.safe_load(MINIMAL.read_text()), bed)
    for topic in body["spec"]["kafka"]["topics"].values():
        topic["name"] = f"{namespace}-{topic['name']}"
    return body


def kinds_present(release: Release, kinds: str) -> set[str]:
    output = kubectl_run(
        release.bed.kubectl,
        release.bed.kubeconfig,
        "get",
        kinds,
        "--all-namespaces",
        "--selector",
        f"app.kubernetes.io/instance={release.name},app.kubernetes.io/name=scalingdemo-operator",
        "--output",
        "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}{'\\n'}{end}",
    )
    return set(output.split())


def test_install_upgrade_uninstall(
    helm: Path, bed: Bed, kube_api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    apps = client.AppsV1Api(kube_api)
    custom = client.CustomObjectsApi(kube_api)
    release = Release(helm, bed, namespace)
    # As in deploy/operator's namespace: a pod of the chart that breaks the profile is refused.
    client.CoreV1Api(kube_api).patch_namespace(namespace, {"metadata": {"labels": RESTRICTED}})
    try:
        notes = release.install("install", {"watchNamespaces": [namespace]})
        assert f"watching the namespaces {namespace}" in notes
        assert available(release.deployment(apps))
        assert kinds_present(release, "roles,rolebindings") == {
            f"Role/{namespace}",
            f"RoleBinding/{namespace}",
        }
        # Helm created the CRD from crds/ (or found it there already, from another test).
        kubectl_run(bed.kubectl, bed.kubeconfig, "get", "crd", CRD_NAME)

        demo = minimal_demo(bed, namespace)
        name = demo["metadata"]["name"]
        release.reconciles(
            kube_api,
            tmp_path / "namespaced.log",
            lambda: custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, demo),
            name,
            NAMESPACED_START_SECONDS,
        )

        values = {
            "watchNamespaces": [],
            "resyncSeconds": 60,
            "logLevel": "debug",
            "metrics.serviceMonitor.enabled": True,
        }
        release.install("upgrade", values)
        deployment = release.deployment(apps)
        assert available(deployment)
        (container,) = deployment.spec.template.spec.containers
        assert "--resync-seconds=60" in container.args
        assert "--verbose" in container.args
        assert not [argument for argument in container.args if argument.startswith("--namespace")]
        assert not kinds_present(release, "roles,rolebindings"), "a namespace list no longer"
        assert kinds_present(release, "servicemonitors,services") == {
            f"ServiceMonitor/{namespace}",
            f"Service/{namespace}",
        }

        release.reconciles(
            kube_api,
            tmp_path / "cluster-wide.log",
            lambda: custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"spec": {"worker": {"replicas": 3}}}
            ),
            name,
            RECONCILE_SECONDS,
        )

        release.run("uninstall", release.name, "--wait", f"--timeout={INSTALL_SECONDS}s")
        assert not kinds_present(
            release,
            "deployments,serviceaccounts,services,servicemonitors,clusterroles,clusterrolebindings",
        )
        # Helm never deletes what it installed from crds/: the CRD, so every ScalingDemo, stays.
        kubectl_run(bed.kubectl, bed.kubeconfig, "get", "crd", CRD_NAME)
        assert status_of(custom, namespace, name)["at"] == 2
    finally:
        release.run("uninstall", release.name, "--ignore-not-found")
