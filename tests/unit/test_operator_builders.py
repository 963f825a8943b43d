"""Builders are pure: exact manifests for representative specs."""

from __future__ import annotations

import copy

import pytest
from scalingdemo_operator.api import APPLIED_HASH_ANNOTATION
from scalingdemo_operator.assess.status import endpoint
from scalingdemo_operator.builders import desired_children
from scalingdemo_operator.builders.common import EVENT_MESSAGE_LIMIT, event
from scalingdemo_operator.builders.workload import deployment, service
from scalingdemo_operator.spec import parse

from tests.unit.conftest import (
    LABELS,
    MINIMAL,
    OWNER,
    OWNER_REFERENCE,
    SCRAPE_ANNOTATIONS,
    SELECTOR,
)

pytestmark = pytest.mark.unit

AUTOSCALING = {"enabled": True, "triggers": [{"name": "lag", "kafkaLag": {}}]}


METADATA = {
    "name": "demo-worker",
    "namespace": "team",
    "labels": LABELS,
    "ownerReferences": [OWNER_REFERENCE],
}


def _without_hash(manifest: dict) -> dict:
    manifest = copy.deepcopy(manifest)
    annotations = manifest["metadata"].pop("annotations")
    assert set(annotations) == {APPLIED_HASH_ANNOTATION}
    return manifest


def _env(manifest: dict) -> dict[str, object]:
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_worker_deployment_of_a_minimal_spec() -> None:
    built = _without_hash(deployment(parse(MINIMAL), OWNER, "worker"))
    probe = {"httpGet": {"port": "http"}, "timeoutSeconds": 2}
    assert built == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": METADATA,
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": SELECTOR},
            "template": {
                "metadata": {"labels": LABELS, "annotations": SCRAPE_ANNOTATIONS},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "workload",
                            "image": "registry.example/workload:1",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "env": [
                                {"name": "SCALINGDEMO_ROLE", "value": "worker"},
                                {"name": "SCALINGDEMO_PORT", "value": "8080"},
                                {"name": "SCALINGDEMO_SERVICE_NAME", "value": "demo-worker"},
                                {
                                    "name": "SCALINGDEMO_POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                                {"name": "SCALINGDEMO_LOG_LEVEL", "value": "INFO"},
                                {
                                    "name": "SCALINGDEMO_KAFKA_BOOTSTRAP_SERVERS",
                                    "value": "kafka:9092",
                                },
                                {
                                    "name": "SCALINGDEMO_MESSAGES_TOPIC",
                                    "value": "team-demo-messages",
                                },
                                {"name": "SCALINGDEMO_TASKS_TOPIC", "value": "team-demo-tasks"},
                                {
                                    "name": "SCALINGDEMO_MESSAGES_GROUP",
                                    "value": "team-demo-messages-consumer",
                                },
                                {
                                    "name": "SCALINGDEMO_TASKS_GROUP",
                                    "value": "team-demo-tasks-consumer",
                                },
                                {"name": "SCALINGDEMO_OFFSET_RESET", "value": "earliest"},
                                {
                                    "name": "SCALINGDEMO_KAFKA_SECURITY_PROTOCOL",
                                    "value": "PLAINTEXT",
                                },
                                {"name": "SCALINGDEMO_TASK_CONCURRENCY", "value": "4"},
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                            "readinessProbe": {
                                **probe,
                                "httpGet": {"path": "/readyz", "port": "http"},
                                "periodSeconds": 5,
                                "failureThreshold": 3,
                            },
                            "livenessProbe": {
                                **probe,
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 10,
                                "failureThreshold": 6,
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def test_worker_service() -> None:
    assert _without_hash(service(OWNER, "worker")) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": METADATA,
        "spec": {
            "type": "ClusterIP",
            "selector": SELECTOR,
            "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def test_autoscaling_leaves_replicas_to_keda() -> None:
    spec = parse({**MINIMAL, "worker": {"replicas": 3, "autoscaling": AUTOSCALING}})
    assert "replicas" not in deployment(spec, OWNER, "worker")["spec"]
    assert deployment(spec, OWNER, "api")["spec"]["replicas"] == 1


def test_without_a_worker_the_api_runs_the_combined_role() -> None:
    spec = parse({**MINIMAL, "worker": {"enabled": False, "concurrency": 7}})
    children = desired_children(spec, OWNER)
    assert [(item["kind"], item["metadata"]["name"]) for item in children] == [
        ("Service", "demo-api"),
        ("Deployment", "demo-api"),
        ("ServiceMonitor", "demo-api"),
        ("ConfigMap", "demo-dashboard"),
    ]
    env = _env(children[1])
    assert (env["SCALINGDEMO_ROLE"], env["SCALINGDEMO_TASK_CONCURRENCY"]) == ("all", "7")
    assert endpoint(OWNER, spec) == "http://demo-api.team.svc:8080"


def test_the_api_alone_has_no_task_concurrency_and_a_worker_alone_no_endpoint() -> None:
    both = parse(MINIMAL)
    assert "SCALINGDEMO_TASK_CONCURRENCY" not in _env(deployment(both, OWNER, "api"))
    worker_only = parse({**MINIMAL, "api": {"enabled": False}})
    assert [item["metadata"]["name"] for item in desired_children(worker_only, OWNER)] == [
        "demo-worker",
        "demo-worker",
        "demo-worker",
        "demo-dashboard",
    ]
    assert endpoint(OWNER, worker_only) == ""


def test_explicit_kafka_names_and_user_env_are_passed_through() -> None:
    spec = parse(
        {
            **MINIMAL,
            "kafka": {
                "bootstrapServers": "kafka:9092",
                "offsetReset": "latest",
                "topics": {"messages": {"name": "in"}, "tasks": {"name": "work"}},
                "consumerGroups": {"tasks": "workers"},
            },
            "worker": {"env": [{"name": "SCALINGDEMO_TASK_UNIT_MS", "value": "20"}]},
        }
    )
    env = _env(deployment(spec, OWNER, "worker"))
    assert env["SCALINGDEMO_MESSAGES_TOPIC"] == "in"
    assert env["SCALINGDEMO_TASKS_TOPIC"] == "work"
    assert env["SCALINGDEMO_TASKS_GROUP"] == "workers"
    assert env["SCALINGDEMO_MESSAGES_GROUP"] == "team-demo-messages-consumer"
    assert env["SCALINGDEMO_OFFSET_RESET"] == "latest"
    assert list(env)[-1] == "SCALINGDEMO_TASK_UNIT_MS"


def test_kafka_credentials_are_mounted_from_secrets_never_inlined() -> None:
    spec = parse(
        {
            **MINIMAL,
            "kafka": {
                "bootstrapServers": "kafka:9093",
                "auth": {
                    "sasl": {"mechanism": "SCRAM-SHA-512", "secretName": "kafka-user"},
                    "tls": {"caSecretName": "kafka-ca", "caKey": "root.pem"},
                },
            },
        }
    )
    built = deployment(spec, OWNER, "worker")
    pod = built["spec"]["template"]["spec"]
    assert pod["volumes"][1:] == [
        {
            "name": "kafka-sasl",
            "secret": {
                "secretName": "kafka-user",
                "items": [
                    {"key": "username", "path": "username"},
                    {"key": "password", "path": "password"},
                ],
            },
        },
        {
            "name": "kafka-ca",
            "secret": {"secretName": "kafka-ca", "items": [{"key": "root.pem", "path": "ca.crt"}]},
        },
    ]
    assert [mount["mountPath"] for mount in pod["containers"][0]["volumeMounts"]] == [
        "/tmp",
        "/var/run/secrets/scalingdemo/kafka-sasl",
        "/var/run/secrets/scalingdemo/kafka-ca",
    ]
    env = _env(built)
    assert env["SCALINGDEMO_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["SCALINGDEMO_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["SCALINGDEMO_KAFKA_SASL_PASSWORD_FILE"] == (
        "/var/run/secrets/scalingdemo/kafka-sasl/password"
    )
    assert env["SCALINGDEMO_KAFKA_TLS_CA_FILE"] == "/var/run/secrets/scalingdemo/kafka-ca/ca.crt"
    assert "SCALINGDEMO_KAFKA_SASL_PASSWORD" not in env


def test_the_applied_hash_is_stable_and_follows_the_spec() -> None:
    first = deployment(parse(MINIMAL), OWNER, "api")
    again = deployment(parse(MINIMAL), OWNER, "api")
    changed = deployment(parse({**MINIMAL, "logLevel": "DEBUG"}), OWNER, "api")

    def digest(manifest: dict) -> str:
        return manifest["metadata"]["annotations"][APPLIED_HASH_ANNOTATION]

    assert digest(first) == digest(again) != digest(changed)


def test_events_name_the_demo_and_cut_long_messages() -> None:
    posted = event(OWNER.object_reference(), "Warning", "Why", "x" * 5000, "host-1", "T")
    assert posted["metadata"] == {"generateName": "demo.", "namespace": "team"}
    assert posted["involvedObject"] == {
        "apiVersion": "scalingdemo.dev/v1alpha1",
        "kind": "ScalingDemo",
        "name": "demo",
        "namespace": "team",
        "uid": "1234",
    }
    assert (posted["type"], posted["reason"]) == ("Warning", "Why")
    assert len(posted["message"]) == EVENT_MESSAGE_LIMIT
    assert (posted["reportingInstance"], posted["firstTimestamp"]) == ("host-1", "T")
