"""Proof that the bed is real: KEDA and Strimzi schemas, garbage collection, scheduling, RBAC
and Kafka."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, Counter, generate_latest, start_http_server

from tests.support import deployment, eventually, group_consumer, kafka_admin
from tests.testbed.bed import Bed

FIELD_MANAGER = "scalingdemo-testbed-smoke"


def scaled_object(name: str, min_replicas: int, max_replicas: int) -> dict:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"name": "worker"},
            "minReplicaCount": min_replicas,
            "maxReplicaCount": max_replicas,
            "triggers": [
                {
                    "type": "kafka",
                    "metadata": {
                        "bootstrapServers": "kafka.kafka.svc.cluster.local:9092",
                        "consumerGroup": "tasks-consumer",
                        "topic": "app-tasks",
                        "lagThreshold": "10",
                    },
                }
            ],
        },
    }


def server_side_apply(kube_api: client.ApiClient, namespace: str, plural: str, body: dict) -> dict:
    group, version = body["apiVersion"].split("/")
    return client.CustomObjectsApi(kube_api).patch_namespaced_custom_object(
        group,
        version,
        namespace,
        plural,
        body["metadata"]["name"],
        body,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
    )


def kafka_topic(name: str, spec: dict) -> dict:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": name, "labels": {"strimzi.io/cluster": "demo"}},
        "spec": spec,
    }


def test_namespace_and_configmap(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="greeting"), data={"hello": "bed"}),
    )
    assert core.read_namespaced_config_map("greeting", namespace).data == {"hello": "bed"}
    assert core.read_namespace(namespace).status.phase == "Active"


def test_keda_schema_rejects_invalid_scaled_object(
    kube_api: client.ApiClient, namespace: str
) -> None:
    with pytest.raises(ApiException) as rejected:
        server_side_apply(kube_api, namespace, "scaledobjects", scaled_object("too-small", 5, 2))
    assert rejected.value.status == 422
    assert "minReplicaCount must be less than or equal to maxReplicaCount" in rejected.value.body

    server_side_apply(kube_api, namespace, "scaledobjects", scaled_object("worker", 1, 4))
    stored = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "keda.sh", "v1alpha1", namespace, "scaledobjects", "worker"
    )
    assert stored["spec"]["maxReplicaCount"] == 4
    assert stored["spec"]["triggers"][0]["metadata"]["lagThreshold"] == "10"
    managers = {entry["manager"] for entry in stored["metadata"]["managedFields"]}
    assert FIELD_MANAGER in managers


def test_strimzi_schema_accepts_a_kafka_topic(kube_api: client.ApiClient, namespace: str) -> None:
    spec = {"partitions": 3, "replicas": 1, "config": {"retention.ms": "3600000"}}
    server_side_apply(kube_api, namespace, "kafkatopics", kafka_topic("app-tasks", spec))
    stored = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
        "kafka.strimzi.io", "v1", namespace, "kafkatopics", "app-tasks"
    )
    assert stored["spec"] == spec
    assert stored["metadata"]["labels"] == {"strimzi.io/cluster": "demo"}


# A value of the wrong type fails server-side apply's typed conversion before
# validation, which the API server reports as a 500, not a 422.
@pytest.mark.parametrize(
    ("field", "value", "status", "message"),
    [
        ("partitions", 0, 422, "spec.partitions in body should be greater than or equal to 1"),
        ("partitions", "x", 500, ".spec.partitions: expected numeric (int or float), got string"),
        ("replicas", 40000, 422, "spec.replicas in body should be less than or equal to 32767"),
    ],
)
def test_strimzi_schema_rejects_an_invalid_kafka_topic(
    kube_api: client.ApiClient,
    namespace: str,
    field: str,
    value: object,
    status: int,
    message: str,
) -> None:
    spec = {"partitions": 3, "replicas": 1} | {field: value}
    with pytest.raises(ApiException) as rejected:
        server_side_apply(kube_api, namespace, "kafkatopics", kafka_topic("invalid", spec))
    assert rejected.value.status == status
    assert message in rejected.value.body


def test_garbage_collector_deletes_owned_objects(
    kube_api: client.ApiClient, namespace: str
) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
    }
    apps.create_namespaced_deployment(namespace, deployment("owned", 1, [reference]))
    core.delete_namespaced_config_map("owner", namespace)

    def deployment_gone() -> bool:
        names = [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items]
        return "owned" not in names

    eventually(deployment_gone, "the garbage collector to delete the owned Deployment")


def test_deployment_becomes_available_on_fake_nodes(
    kube_api: client.ApiClient, namespace: str
) -> None:
    core, apps = client.CoreV1Api(kube_api), client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(namespace, deployment("web", 3))

    def running_pods() -> list[client.V1Pod]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        return [
            p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp
        ]

    def available(replicas: int) -> Callable[[], bool]:
        def check() -> bool:
            status = apps.read_namespaced_deployment_status("web", namespace).status
            return status.available_replicas == replicas and len(running_pods()) == replicas

        return check

    eventually(available(3), "3 available replicas")
    pods = running_pods()
    assert all(p.spec.node_name.startswith("kwok-node-") for p in pods)
    assert all(c.status == "True" for p in pods for c in p.status.conditions if c.type == "Ready")

    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 1}})
    eventually(available(1), "the Deployment to scale down to 1")
    eventually(
        lambda: len(core.list_namespaced_pod(namespace, label_selector="app=web").items) == 1,
        "two pods to be deleted",
    )


def test_rbac_is_enforced_for_non_admins(bed: Bed) -> None:
    if not bed.local:
        pytest.skip("needs the local bed's CA to issue a non-admin certificate")
    kubeconfig = bed.kubeconfig_for("smoke-nobody", ["smoke-group"])
    with (
        config.new_client_from_config(config_file=str(kubeconfig)) as api,
        pytest.raises(ApiException) as denied,
    ):
        client.CoreV1Api(api).list_namespaced_secret("default")
    assert denied.value.status == 403
    assert "smoke-nobody" in denied.value.body


async def produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def test_kafka_produce_consume_and_committed_offset(kafka_bootstrap: str) -> None:
    topic, group = f"smoke-{uuid.uuid4().hex[:8]}", f"smoke-group-{uuid.uuid4().hex[:8]}"
    await produce(kafka_bootstrap, topic, b"k1", b"hello")

    async with group_consumer(kafka_bootstrap, topic, group) as consumer:
        record = await consumer.getone()
        assert (record.key, record.value) == (b"k1", b"hello")
        await consumer.commit()

    async with kafka_admin(kafka_bootstrap) as admin:
        offsets = await admin.list_consumer_group_offsets(group)
    assert offsets[TopicPartition(topic, 0)].offset == 1


async def test_kafka_restart_keeps_address_and_data(bed: Bed) -> None:
    if bed.kafka is None:
        pytest.skip("an existing broker cannot be restarted by the tests")
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    await produce(bed.kafka_bootstrap, topic, b"before", b"restart")
    bed.kafka.stop()
    bed.kafka.start()
    assert bed.kafka.pid in bed.stack.pids(), (
        "stopping the bed would leave the restarted broker running"
    )
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bed.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"before", b"restart")


def test_prometheus_scrapes_registered_targets(bed: Bed) -> None:
    if bed.prometheus is None or bed.promtool is None:
        pytest.skip("the existing cluster's Prometheus discovers its own targets")
    registry = CollectorRegistry()
    Counter("smoke_requests", "Requests seen by the smoke test.", registry=registry).inc(3)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        address = f"127.0.0.1:{server.server_port}"
        bed.prometheus.scrape("smoke", [address], {"namespace": "smoke-ns"})

        def scraped() -> bool:
            query = urllib.parse.urlencode(
                {"query": 'sum(smoke_requests_total{namespace="smoke-ns"})'}
            )
            with urllib.request.urlopen(f"{bed.prometheus.url}/api/v1/query?{query}") as response:
                result = json.load(response)["data"]["result"]
            return bool(result) and result[0]["value"][1] == "3"

        eventually(scraped, "Prometheus to scrape the registered target")
        exposition = generate_latest(registry)
        check = subprocess.run(
            [str(bed.promtool), "check", "metrics"], input=exposition, capture_output=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        bed.prometheus.forget("smoke")
        server.shutdown()
        thread.join()
