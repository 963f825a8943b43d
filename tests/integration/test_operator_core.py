"""The operator core against the real bed: a real API server, controllers, kwok nodes.

The operator runs as a subprocess restricted to the test's namespace, exactly as a user starts
it. Waits are bounded polls (a deadline is a failure bound, never a timing assertion).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from scalingdemo_operator.api import CREDENTIALS_LABEL, MANAGED_BY_LABEL

from tests.integration.cluster import Cluster, audit_requests, count_writes, demo, settle
from tests.operator_harness import OperatorProcess
from tests.support import eventually

GROUP, VERSION, PLURAL = "scalingdemo.dev", "v1alpha1", "scalingdemos"
MANAGER = "scalingdemo-operator"
WRITE_VERBS = ("apply", "patch", "delete")


def env_of(deployment: Any) -> dict[str, str | None]:
    (container,) = deployment.spec.template.spec.containers
    return {item.name: item.value for item in container.env}


def test_a_demo_gets_owned_deployments_and_services_configured_by_the_contract(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    created = cluster.create(demo("shop", worker={"concurrency": 3}))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready")

    deployments, services = cluster.deployments(), cluster.services()
    assert set(deployments) == {"shop-api", "shop-worker"}
    assert set(services) == {"shop-api", "shop-worker"}
    for child in [*deployments.values(), *services.values()]:
        (reference,) = child.metadata.owner_references
        assert (reference.kind, reference.name, reference.uid, reference.controller) == (
            "ScalingDemo",
            "shop",
            created["metadata"]["uid"],
            True,
        )
        assert child.metadata.labels["app.kubernetes.io/managed-by"] == MANAGER
    worker_env = env_of(deployments["shop-worker"])
    assert worker_env["SCALINGDEMO_ROLE"] == "worker"
    assert worker_env["SCALINGDEMO_TASK_CONCURRENCY"] == "3"
    assert worker_env["SCALINGDEMO_KAFKA_BOOTSTRAP_SERVERS"] == (
        "kafka.kafka.svc.cluster.local:9092"
    )
    assert env_of(deployments["shop-api"])["SCALINGDEMO_ROLE"] == "api"
    pod = deployments["shop-api"].spec.template.spec
    assert pod.security_context.run_as_non_root is True
    assert pod.containers[0].security_context.read_only_root_filesystem is True
    assert pod.containers[0].readiness_probe.http_get.path == "/readyz"

    status = cluster.get("shop")["status"]
    assert status["endpoint"] == f"http://shop-api.{cluster.namespace}.svc:8080"
    assert status["api"]["readyReplicas"] == 1
    assert status["worker"]["readyReplicas"] == 1
    assert cluster.condition("shop", "WorkloadAvailable")["status"] == "True"
    reasons = sorted(reason for _, reason, _ in cluster.events("shop"))
    assert reasons == ["Created"] * 7, "two Services, Deployments, ServiceMonitors; a dashboard"


def test_editing_the_spec_changes_the_children_and_records_an_event(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.create(demo("shop"))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready")

    cluster.patch("shop", {"worker": {"concurrency": 9, "replicas": 2}})
    eventually(
        lambda: env_of(cluster.deployments()["shop-worker"])["SCALINGDEMO_TASK_CONCURRENCY"] == "9",
        "the worker Deployment to get the new concurrency",
    )
    assert cluster.deployments()["shop-worker"].spec.replicas == 2
    eventually(lambda: cluster.converged("shop"), "shop to converge on generation 2")
    updates = [message for _, reason, message in cluster.events("shop") if reason == "Updated"]
    assert len(updates) == 1, updates
    assert "Deployment shop-worker" in updates[0]
    assert "spec.replicas" in updates[0]
    assert "env[SCALINGDEMO_TASK_CONCURRENCY]" in updates[0]


def test_disabling_the_worker_deletes_it_and_the_api_takes_the_combined_role(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.create(demo("shop"))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready")

    cluster.patch("shop", {"worker": {"enabled": False}})
    eventually(lambda: set(cluster.deployments()) == {"shop-api"}, "the worker to be deleted")
    eventually(lambda: set(cluster.services()) == {"shop-api"}, "the worker Service to go")
    assert env_of(cluster.deployments()["shop-api"])["SCALINGDEMO_ROLE"] == "all"
    eventually(lambda: cluster.converged("shop"), "shop to converge without a worker")
    assert "worker" not in cluster.get("shop")["status"]
    deleted = {message for _, reason, message in cluster.events("shop") if reason == "Deleted"}
    assert deleted == {
        "Deleted Deployment shop-worker: the spec no longer wants it",
        "Deleted Service shop-worker: the spec no longer wants it",
        "Deleted ServiceMonitor shop-worker: the spec no longer wants it",
    }


def test_autoscaling_leaves_the_replica_count_to_another_manager(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.create(demo("shop", worker={"replicas": 2}))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready")

    def owned_by_operator(deployment: Any) -> set[str]:
        fields: set[str] = set()
        for entry in deployment.metadata.managed_fields:
            if entry.manager == MANAGER and entry.operation == "Apply":
                fields |= set(entry.fields_v1.get("f:spec", {}))
        return fields

    assert "f:replicas" in owned_by_operator(cluster.deployments()["shop-worker"])
    lag = {"name": "lag", "kafkaLag": {}}
    cluster.patch("shop", {"worker": {"autoscaling": {"enabled": True, "triggers": [lag]}}})
    eventually(
        lambda: "f:replicas" not in owned_by_operator(cluster.deployments()["shop-worker"]),
        "the operator to give up spec.replicas",
    )
    # Another manager (KEDA's HPA in production) now scales without a fight.
    cluster.apps.patch_namespaced_deployment_scale(
        "shop-worker", cluster.namespace, {"spec": {"replicas": 4}}
    )
    cluster.patch("shop", {"worker": {"concurrency": 5}})
    eventually(
        lambda: env_of(cluster.deployments()["shop-worker"])["SCALINGDEMO_TASK_CONCURRENCY"] == "5",
        "the next change to be applied",
    )
    assert cluster.deployments()["shop-worker"].spec.replicas == 4


def test_a_deleted_child_comes_back(cluster: Cluster, operator: OperatorProcess) -> None:
    cluster.create(demo("shop"))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready")
    old = cluster.deployments()["shop-api"].metadata.uid

    cluster.apps.delete_namespaced_deployment("shop-api", cluster.namespace)
    cluster.core.delete_namespaced_service("shop-worker", cluster.namespace)
    eventually(
        lambda: (
            "shop-api" in (found := cluster.deployments()) and found["shop-api"].metadata.uid != old
        ),
        "the deleted Deployment to be recreated",
    )
    eventually(lambda: "shop-worker" in cluster.services(), "the deleted Service to be recreated")


def test_a_periodic_resync_repairs_drift_that_no_event_announced(
    bed: Any, crd: None, cluster: Cluster, tmp_path: Path
) -> None:
    operator = OperatorProcess(
        bed.kubeconfig, [cluster.namespace], tmp_path / "operator.log", resync_seconds=1
    )
    operator.start()
    try:
        cluster.create(demo("shop"))
        eventually(lambda: cluster.converged("shop"), "shop to become Ready")
        # Without its managed-by label the Deployment drops out of the operator's watch,
        # so only the periodic resync can notice the drift and repair it.
        cluster.apps.patch_namespaced_deployment(
            "shop-api", cluster.namespace, {"metadata": {"labels": {MANAGED_BY_LABEL: None}}}
        )
        eventually(
            lambda: MANAGED_BY_LABEL in (cluster.deployments()["shop-api"].metadata.labels or {}),
            "the resync to restore the managed-by label",
        )
        # The resync found no labelled Deployment and applied it afresh: it says so too.
        eventually(
            lambda: cluster.times_said("shop", "Created Deployment shop-api") == 2,
            "the resync's own event about the repair",
        )
    finally:
        operator.stop()


def test_deleting_the_demo_lets_the_garbage_collector_remove_the_children(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.create(demo("shop"))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready")
    assert not cluster.get("shop")["metadata"].get("finalizers")

    cluster.delete("shop")
    eventually(
        lambda: not cluster.deployments() and not cluster.services(),
        "the garbage collector to delete every child",
    )


def test_an_invalid_combination_sets_ready_false_once_and_does_not_hot_loop(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    cluster.create(demo("shop"))
    eventually(lambda: cluster.converged("shop"), "shop to become Ready")

    cluster.patch("shop", {"api": {"env": [{"name": "SCALINGDEMO_ROLE", "value": "worker"}]}})
    ready = eventually(
        lambda: (found := cluster.condition("shop")).get("reason") == "InvalidSpec" and found,
        "Ready=False with reason InvalidSpec",
    )
    assert ready["status"] == "False"
    assert "spec.api.env[0].name" in ready["message"]
    settle(
        lambda: operator.metric("scalingdemo_operator_reconciles_total"),
        "the number of reconciles (a hot loop never settles)",
    )
    warnings = [event for event in cluster.events("shop") if event[0] == "Warning"]
    assert [reason for _, reason, _ in warnings] == ["InvalidSpec"]
    assert env_of(cluster.deployments()["shop-api"])["SCALINGDEMO_ROLE"] == "api"

    cluster.patch("shop", {"api": {"env": [{"name": "SCALINGDEMO_TASK_UNIT_MS", "value": "5"}]}})
    eventually(lambda: cluster.converged("shop"), "shop to recover once the spec is fixed")


def test_an_operator_restarted_midway_converges_without_duplicates(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    names = [f"shop{index}" for index in range(6)]
    for name in names:
        cluster.create(demo(name))
    eventually(lambda: cluster.deployments(), "the operator to start creating children")
    operator.kill()
    operator.start()
    for name in names:
        eventually(lambda name=name: cluster.converged(name), f"{name} to become Ready")
    expected = {f"{name}-{component}" for name in names for component in ("api", "worker")}
    assert set(cluster.deployments()) == expected
    assert set(cluster.services()) == expected
    replica_sets = cluster.apps.list_namespaced_replica_set(cluster.namespace).items
    assert len(replica_sets) == len(expected)


def test_steady_state_reconciles_send_no_write_requests(
    bed: Any, cluster: Cluster, operator: OperatorProcess
) -> None:
    names = ["shop", "cart"]
    for name in names:
        cluster.create(demo(name))
    for name in names:
        eventually(lambda name=name: cluster.converged(name), f"{name} to become Ready")
    settle(
        lambda: operator.metric("scalingdemo_operator_reconciles_total"),
        "reconciles after the rollout",
    )

    writes = count_writes(bed, cluster)
    operator.stop()
    operator.start()  # resume: every demo is reconciled again, with nothing to change
    eventually(
        lambda: (
            operator.metric("scalingdemo_operator_reconciles_total", result="applied") >= len(names)
        ),
        "the restarted operator to reconcile every demo",
    )
    settle(
        lambda: operator.metric("scalingdemo_operator_reconciles_total"),
        "reconciles after the restart",
    )

    for verb in (*WRITE_VERBS, "list", "get"):
        assert operator.metric("scalingdemo_operator_api_requests_total", verb=verb) == 0, verb
    assert writes() == []


OPERATOR_AGENTS = (MANAGER, "kopf/")
"""User agents of the operator's requests: its own client's and kopf's (its watches)."""
RESYNC_SECONDS = 1


def _operator_requests(log: Path, offset: int) -> list[str]:
    """The operator's completed requests that the audit log recorded after `offset`."""
    return audit_requests(
        log, offset, lambda record: record.get("userAgent", "").startswith(OPERATOR_AGENTS)
    )


def test_a_resync_pass_reads_memory_only_and_writes_nothing(
    bed: Any, crd: None, cluster: Cluster, tmp_path: Path
) -> None:
    """Every pass reconciles every demo from the watch-fed cache: no LIST, no GET, no write;
    the watches are all the operator keeps open."""
    assert bed.audit_log is not None, "the bed's audit log shows what the operator sends"
    log, start = bed.audit_log, bed.audit_log.stat().st_size
    resyncing = OperatorProcess(
        bed.kubeconfig,
        [cluster.namespace],
        tmp_path / "operator.log",
        resync_seconds=RESYNC_SECONDS,
    )
    resyncing.start()
    try:
        names = ["shop", "cart"]
        for name in names:
            cluster.create(demo(name))
        for name in names:
            eventually(lambda name=name: cluster.converged(name), f"{name} to become Ready")
        settle(
            lambda: len(_not_watches(_operator_requests(log, start))),
            "the operator's requests after the rollout",
        )

        offset = log.stat().st_size
        passes = resyncing.metric("scalingdemo_operator_reconciles_total")
        eventually(
            lambda: (
                resyncing.metric("scalingdemo_operator_reconciles_total") >= passes + 3 * len(names)
            ),
            "three resync passes",
        )
        sent = _operator_requests(log, offset)
    finally:
        resyncing.stop()
    assert _not_watches(sent) == []


def _not_watches(requests: list[str]) -> list[str]:
    return [request for request in requests if not request.startswith("watch ")]


INVALID = [
    ("name-too-long", demo("a" * 41), "metadata.name"),
    ("name-not-dns", demo("Shop"), "metadata.name"),
    ("no-image", {**demo("x"), "spec": {"kafka": {"bootstrapServers": "k:9092"}}}, "spec.image"),
    ("empty-image", demo("x", image=""), "spec.image"),
    ("no-kafka", {**demo("x"), "spec": {"image": "i"}}, "spec.kafka"),
    (
        "bad-bootstrap",
        demo("x", kafka={"bootstrapServers": "kafka"}),
        "spec.kafka.bootstrapServers",
    ),
    ("bad-pull-policy", demo("x", imagePullPolicy="Sometimes"), "spec.imagePullPolicy"),
    ("bad-log-level", demo("x", logLevel="LOUD"), "spec.logLevel"),
    (
        "bad-offset-reset",
        demo("x", kafka={"bootstrapServers": "k:9092", "offsetReset": "middle"}),
        "spec.kafka.offsetReset",
    ),
    (
        "zero-partitions",
        demo("x", kafka={"bootstrapServers": "k:9092", "topics": {"tasks": {"partitions": 0}}}),
        "spec.kafka.topics.tasks.partitions",
    ),
    (
        "bad-topic-name",
        demo("x", kafka={"bootstrapServers": "k:9092", "topics": {"messages": {"name": "a b"}}}),
        "spec.kafka.topics.messages.name",
    ),
    (
        "same-topics",
        demo(
            "x",
            kafka={
                "bootstrapServers": "k:9092",
                "topics": {"messages": {"name": "t"}, "tasks": {"name": "t"}},
            },
        ),
        "spec.kafka.topics.tasks.name",
    ),
    (
        "bad-sasl-mechanism",
        demo(
            "x",
            kafka={
                "bootstrapServers": "k:9092",
                "auth": {"sasl": {"mechanism": "MD5", "secretName": "s"}},
            },
        ),
        "spec.kafka.auth.sasl.mechanism",
    ),
    (
        "sasl-without-secret",
        demo("x", kafka={"bootstrapServers": "k:9092", "auth": {"sasl": {"mechanism": "PLAIN"}}}),
        "spec.kafka.auth.sasl.secretName",
    ),
    ("too-many-replicas", demo("x", api={"replicas": 101}), "spec.api.replicas"),
    ("negative-replicas", demo("x", worker={"replicas": -1}), "spec.worker.replicas"),
    ("zero-concurrency", demo("x", worker={"concurrency": 0}), "spec.worker.concurrency"),
    (
        "nothing-enabled",
        demo("x", api={"enabled": False}, worker={"enabled": False}),
        "spec.api.enabled",
    ),
    (
        "bad-quantity",
        demo("x", api={"resources": {"requests": {"cpu": "lots"}}}),
        "spec.api.resources.requests.cpu",
    ),
    (
        "request-above-limit",
        demo(
            "x",
            worker={"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}},
        ),
        "spec.worker.resources.requests.memory",
    ),
    (
        "bad-env-name",
        demo("x", api={"env": [{"name": "1X", "value": "v"}]}),
        "spec.api.env[0].name",
    ),
    ("duplicate-env", demo("x", api={"env": [{"name": "A"}, {"name": "A"}]}), "spec.api.env[1]"),
    (
        "bad-prometheus-url",
        demo("x", monitoring={"prometheus": {"serverAddress": "prometheus"}}),
        "spec.monitoring.prometheus.serverAddress",
    ),
]


@pytest.mark.parametrize(
    ("body", "field"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_the_api_server_rejects_invalid_demos_naming_the_field(
    cluster: Cluster, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(ApiException) as caught:
        cluster.create(body)
    assert caught.value.status == 422, caught.value.body
    assert field in caught.value.body, caught.value.body


def test_kafka_credentials_come_from_the_labelled_secrets_the_operator_watches(
    bed: Any, crd: None, cluster: Cluster, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A Secret without the label is not there for the operator, and the condition says which
    label would change that; once labelled, the watch brings it and the demo is reconciled at
    once (the retry is an hour away), with the credentials read from memory: no GET of a
    Secret, ever. The bed's broker has no SASL listener, so they are then refused there."""
    assert bed.audit_log is not None, "the bed's audit log shows what the operator sends"
    start = bed.audit_log.stat().st_size
    operator = OperatorProcess(
        bed.kubeconfig,
        [cluster.namespace],
        tmp_path / "operator.log",
        extra_arguments=("--retry-seconds", "3600", "--max-retry-seconds", "3600"),
    )
    operator.start()
    try:
        secret = {
            "metadata": {"name": "kafka-user"},
            "stringData": {"username": "u", "password": "p"},
        }
        cluster.core.create_namespaced_secret(cluster.namespace, secret)
        body = demo("auth")
        body["spec"]["kafka"] = {
            "bootstrapServers": kafka_bootstrap,
            "topics": {"messages": {"name": f"{cluster.namespace}-m"}},
            "auth": {"sasl": {"mechanism": "PLAIN", "secretName": "kafka-user"}},
        }
        cluster.create(body)
        unlabelled = _topics_ready_with(cluster, "auth", "CredentialsUnavailable")
        assert f"kubectl label secret -n {cluster.namespace} kafka-user" in unlabelled["message"]

        cluster.core.patch_namespaced_secret(
            "kafka-user", cluster.namespace, {"metadata": {"labels": {CREDENTIALS_LABEL: "true"}}}
        )
        refused = _topics_ready_with(cluster, "auth", "AuthenticationFailed")
        assert refused["status"] == "False"
    finally:
        operator.stop()
    on_secrets = {
        request.split()[0]
        for request in _operator_requests(bed.audit_log, start)
        if request.split()[1].startswith("secrets/")
    }
    assert on_secrets <= {"list", "watch"}


def _topics_ready_with(cluster: Cluster, name: str, reason: str) -> dict[str, Any]:
    """The demo's TopicsReady condition once its reason is `reason`."""
    found: dict[str, Any] = eventually(
        lambda: (
            (condition := cluster.condition(name, "TopicsReady")).get("reason") == reason
            and condition
        ),
        f"TopicsReady with reason {reason}",
    )
    return found
