"""KEDA's operator, metrics adapter and admission webhooks, run out of cluster against the bed.

The adapter serves ``external.metrics.k8s.io`` through the API server's
aggregation layer. With no kube-proxy there is no ClusterIP routing, so the
APIService points at an ExternalName Service whose name is ``localhost``: the
aggregator dials ExternalName services by their DNS name and the APIService's
port. The operator and the adapter talk gRPC over mutual TLS with one
certificate that serves both ends. The admission webhooks are registered by URL
on loopback, so they need no Service either.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import yaml

from . import pki
from .component import Component, Stack
from .control_plane import kubectl_run, kubectl_succeeds
from .processes import free_port, http_ok, serves_tls
from .toolchain import BedError, say, wait_until

NAMESPACE = "keda"
ADAPTER_SERVICE = "keda-metrics-apiserver"
EXTERNAL_METRICS_API = "v1beta1.external.metrics.k8s.io"
WEBHOOK_CONFIGURATION = "keda-admission"
# What KEDA's own configuration (config/webhooks) registers, one validating webhook per
# kind: (API group, resource, webhook name, the path controller-runtime serves it on).
VALIDATED_KINDS = (
    ("keda.sh", "scaledobjects", "vscaledobject.kb.io", "keda-sh-v1alpha1-scaledobject"),
    ("keda.sh", "scaledjobs", "vscaledjob.kb.io", "keda-sh-v1alpha1-scaledjob"),
    (
        "keda.sh",
        "triggerauthentications",
        "vstriggerauthentication.kb.io",
        "keda-sh-v1alpha1-triggerauthentication",
    ),
    (
        "keda.sh",
        "clustertriggerauthentications",
        "vsclustertriggerauthentication.kb.io",
        "keda-sh-v1alpha1-clustertriggerauthentication",
    ),
    (
        "eventing.keda.sh",
        "cloudeventsources",
        "vcloudeventsource.kb.io",
        "eventing-keda-sh-v1alpha1-cloudeventsource",
    ),
    (
        "eventing.keda.sh",
        "clustercloudeventsources",
        "vclustercloudeventsource.kb.io",
        "eventing-keda-sh-v1alpha1-clustercloudeventsource",
    ),
)
# KEDA ships 10 s. The first request of a run waits for the webhook's informers to sync,
# which on a loaded machine can take longer; a timeout still fails the request.
WEBHOOK_TIMEOUT_SECONDS = 30
WEBHOOK_ENFORCED_SECONDS = 60.0
# A ScaledObject the CRD's schema accepts and KEDA's webhook refuses (a scaling formula that
# names no trigger): once the API server refuses it, the webhook is in the path of every apply.
REFUSED_SCALED_OBJECT = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "ScaledObject",
    "metadata": {"name": "webhook-probe", "namespace": "default"},
    "spec": {
        "scaleTargetRef": {"name": "webhook-probe"},
        "advanced": {"scalingModifiers": {"formula": "unknown", "target": "1"}},
        "triggers": [{"type": "cron", "name": "known", "metadata": {}}],
    },
}


class _KedaProcess(Component):
    """Shared by KEDA's two binaries: the bed's kubeconfig and the pod identity KEDA expects."""

    def __init__(self, run_dir: Path, binary: Path, kubeconfig: Path) -> None:
        super().__init__(run_dir)
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.certs = self.directory / "certs"

    @property
    def directory(self) -> Path:
        return self.run_dir / "keda"

    def command(self) -> list[str | Path]:
        return [self.binary]

    def env(self) -> dict[str, str]:
        return dict(os.environ) | {
            "KUBECONFIG": str(self.kubeconfig),
            "WATCH_NAMESPACE": "",
            "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
            "POD_NAMESPACE": NAMESPACE,
            "POD_NAME": "keda-operator-testbed",
            "OPERATOR_NAME": "keda-operator",
        }


class KedaOperator(_KedaProcess):
    """Reconciles ScaledObjects into HPAs and serves metric values to the adapter over gRPC."""

    name = "keda-operator"

    def __init__(self, run_dir: Path, binary: Path, kubeconfig: Path) -> None:
        super().__init__(run_dir, binary, kubeconfig)
        self.grpc_port = free_port()
        self.probe_port = free_port()
        self.metrics_address = f"127.0.0.1:{free_port()}"
        """Plain HTTP /metrics: KEDA's own series (keda_scaler_*) beside controller-runtime's."""

    def default_flags(self) -> dict[str, str | None]:
        return {
            "--kubeconfig": str(self.kubeconfig),
            "--leader-elect": "false",
            "--metrics-bind-address": self.metrics_address,
            "--health-probe-bind-address": f"127.0.0.1:{self.probe_port}",
            "--metrics-service-bind-address": f"127.0.0.1:{self.grpc_port}",
            "--cert-dir": str(self.certs),
            "--enable-cert-rotation": "false",
            "--enable-webhook-patching": "false",
            "--enable-apiservice-patching": "false",
            "--zap-log-level": "info",
        }

    def ready(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.probe_port}/healthz")()


class KedaAdapter(_KedaProcess):
    """Serves external.metrics.k8s.io; ready once the aggregator routes that API to it."""

    name = "keda-adapter"

    def __init__(
        self, run_dir: Path, binary: Path, kubeconfig: Path, kubectl: Path, operator: KedaOperator
    ) -> None:
        super().__init__(run_dir, binary, kubeconfig)
        self.kubectl = kubectl
        self.operator = operator
        self.port = free_port()

    def default_flags(self) -> dict[str, str | None]:
        return {
            "--kubeconfig": str(self.kubeconfig),
            "--lister-kubeconfig": str(self.kubeconfig),
            "--authentication-kubeconfig": str(self.kubeconfig),
            "--authorization-kubeconfig": str(self.kubeconfig),
            "--secure-port": str(self.port),
            "--bind-address": "127.0.0.1",
            "--cert-dir": str(self.certs),
            "--tls-cert-file": str(self.certs / "tls.crt"),
            "--tls-private-key-file": str(self.certs / "tls.key"),
            "--metrics-service-address": f"127.0.0.1:{self.operator.grpc_port}",
            "--metrics-service-grpc-authority": "127.0.0.1",
            "--port": str(free_port()),
        }

    def ready(self) -> bool:
        return kubectl_succeeds(
            self.kubectl, self.kubeconfig, "get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"
        )


class Keda:
    """The two KEDA processes and the API objects that wire them into the bed."""

    def __init__(
        self, operator: Path, adapter: Path, kubectl: Path, kubeconfig: Path, run_dir: Path
    ) -> None:
        self.kubectl = kubectl
        self.kubeconfig = kubeconfig
        self.directory = run_dir / "keda"
        self.certs = self.directory / "certs"
        self.operator = KedaOperator(run_dir, operator, kubeconfig)
        self.adapter = KedaAdapter(run_dir, adapter, kubeconfig, kubectl, self.operator)

    def start(self, stack: Stack) -> None:
        """Start operator and adapter onto ``stack``, register the adapter, wait for the API."""
        pki.service_certificate(
            pki.Pki.at(self.kubeconfig.parent / "pki"),
            self.certs,
            "keda",
            [f"{ADAPTER_SERVICE}.{NAMESPACE}.svc", f"keda-operator.{NAMESPACE}.svc"],
        )
        self._register(self.adapter.port)
        stack.start(self.operator, self.adapter)

    def _register(self, adapter_port: int) -> None:
        ca_bundle = base64.b64encode((self.certs / "ca.crt").read_bytes()).decode()
        objects = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": ADAPTER_SERVICE, "namespace": NAMESPACE},
                "spec": {
                    "type": "ExternalName",
                    "externalName": "localhost",
                    "ports": [{"name": "https", "port": adapter_port}],
                },
            },
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": EXTERNAL_METRICS_API},
                "spec": {
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                    "caBundle": ca_bundle,
                    "service": {
                        "namespace": NAMESPACE,
                        "name": ADAPTER_SERVICE,
                        "port": adapter_port,
                    },
                },
            },
        ]
        manifest = self.directory / "registration.yaml"
        manifest.write_text(yaml.safe_dump_all(objects))
        kubectl_run(self.kubectl, self.kubeconfig, "apply", "--server-side", "-f", str(manifest))


class KedaWebhooks(_KedaProcess):
    """KEDA's admission webhook server, which warns about and refuses KEDA objects.

    It reads the scale target, HPAs and other ScaledObjects through the bed's
    kubeconfig. The webhook port has no bind-address flag, so it listens on every
    interface; the API server reaches it on 127.0.0.1 only.
    """

    name = "keda-webhooks"

    def __init__(self, run_dir: Path, binary: Path, kubeconfig: Path) -> None:
        super().__init__(run_dir, binary, kubeconfig)
        self.port = free_port()
        self.probe_port = free_port()

    @property
    def directory(self) -> Path:
        return self.run_dir / self.name

    def prepare(self) -> None:
        pki.service_certificate(
            pki.Pki.at(self.kubeconfig.parent / "pki"), self.certs, self.name, []
        )

    def default_flags(self) -> dict[str, str | None]:
        return {
            "--kubeconfig": str(self.kubeconfig),
            "--port": str(self.port),
            "--cert-dir": str(self.certs),
            "--health-probe-bind-address": f"127.0.0.1:{self.probe_port}",
            "--metrics-bind-address": "0",
            # A workload created just before its ScaledObject may not be in the webhook's
            # informer cache yet; without this, the cpu/memory check refuses it as not found.
            "--cache-miss-to-direct-client": "true",
            "--zap-log-level": "info",
        }

    def ready(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.probe_port}/readyz")() and serves_tls(
            self.port, self.certs / "ca.crt"
        )

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}/validate-{path}"


def register_webhooks(webhooks: KedaWebhooks, kubectl: Path) -> None:
    """Point the API server at ``webhooks`` and wait until it really asks them.

    failurePolicy is Fail, where KEDA's own configuration says Ignore: a webhook that
    is down must fail the test that depends on it rather than let the apply through.
    The API server picks up a new configuration asynchronously, so registration ends
    only once a ScaledObject that KEDA refuses is refused.
    """
    started = time.monotonic()
    manifest = webhooks.directory / "registration.yaml"
    manifest.write_text(yaml.safe_dump(_webhook_configuration(webhooks)))
    kubectl_run(kubectl, webhooks.kubeconfig, "apply", "--server-side", "-f", str(manifest))
    probe = webhooks.directory / "refused.yaml"
    probe.write_text(yaml.safe_dump(REFUSED_SCALED_OBJECT))
    dry_run = ("create", "--dry-run=server", "-f", str(probe))
    answers: list[str] = []

    def refused() -> bool:
        try:
            kubectl_run(kubectl, webhooks.kubeconfig, *dry_run)
        except BedError as error:
            answers.append(str(error))
            return f'admission webhook "{VALIDATED_KINDS[0][2]}" denied' in str(error)
        answers.append("accepted")
        return False

    try:
        wait_until(refused, WEBHOOK_ENFORCED_SECONDS, "")
    except BedError:
        raise BedError(
            f"the API server never let KEDA's webhook refuse {probe}; last answer: {answers[-1]}"
        ) from None
    say(f"{webhooks.name} registered and refusing in {time.monotonic() - started:.1f}s")


def _webhook_configuration(webhooks: KedaWebhooks) -> dict:
    """KEDA's ValidatingWebhookConfiguration, by URL on loopback instead of by Service."""
    ca_bundle = base64.b64encode((webhooks.certs / "ca.crt").read_bytes()).decode()
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIGURATION},
        "webhooks": [
            {
                "name": name,
                "admissionReviewVersions": ["v1"],
                "clientConfig": {"url": webhooks.url(path), "caBundle": ca_bundle},
                "failurePolicy": "Fail",
                "matchPolicy": "Equivalent",
                "sideEffects": "None",
                "timeoutSeconds": WEBHOOK_TIMEOUT_SECONDS,
                "rules": [
                    {
                        "apiGroups": [group],
                        "apiVersions": ["v1alpha1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [resource],
                    }
                ],
            }
            for group, resource, name, path in VALIDATED_KINDS
        ],
    }
