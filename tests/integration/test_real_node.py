"""The bed's real node: a kubelet with containerd runs pods from the image built from
Dockerfile.workload, and those pods reach Kafka and the API server through the bed's bridge,
with logs and exec working as on any cluster. Pods that do not tolerate its taint stay on the
kwok nodes."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import uuid

from kubernetes import client

from tests.support import eventually, group_consumer
from tests.testbed import bridge
from tests.testbed.bed import Bed
from tests.testbed.node import NODE_NAME, NODE_SELECTOR, TAINT, TOLERATION, RealNode

PROBE = """
import asyncio, os, sys, time
from aiokafka import AIOKafkaProducer
from kubernetes import client, config

async def send():
    producer = AIOKafkaProducer(bootstrap_servers=os.environ["BOOTSTRAP"])
    await producer.start()
    await producer.send_and_wait(os.environ["TOPIC"], os.environ["HOSTNAME"].encode())
    await producer.stop()

asyncio.run(send())
config.load_incluster_config()
version = client.VersionApi().get_code()
print(f"sent to kafka; api server {version.git_version}", flush=True)
time.sleep(3600)
"""


def restricted_pod(name: str, env: dict[str, str], command: list[str]) -> dict:
    """A pod that passes the restricted Pod Security profile and asks for the real node."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": NODE_SELECTOR,
            "tolerations": [TOLERATION],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "probe",
                    "image": "scalingdemo-workload:dev",
                    "imagePullPolicy": "Never",
                    "command": command,
                    "env": [{"name": key, "value": value} for key, value in env.items()],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def kubectl(bed: Bed, *args: str) -> str:
    return subprocess.run(
        [str(bed.kubectl), f"--kubeconfig={bed.kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_real_node_is_ready_and_tainted(bed: Bed, real_node: RealNode) -> None:
    node = json.loads(kubectl(bed, "get", "node", NODE_NAME, "-o", "json"))
    assert {taint["key"]: taint["effect"] for taint in node["spec"]["taints"]} == {
        TAINT["key"]: TAINT["effect"]
    }
    addresses = {address["type"]: address["address"] for address in node["status"]["addresses"]}
    assert addresses["InternalIP"] == bridge.ADDRESS


async def test_a_pod_runs_the_workload_image_and_reaches_kafka_and_the_api_server(
    bed: Bed, real_node: RealNode, kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    topic = f"{namespace}-probe"
    env = {
        "BOOTSTRAP": real_node.kafka_bootstrap,
        "TOPIC": topic,
        "KUBERNETES_SERVICE_HOST": bridge.ADDRESS,
        "KUBERNETES_SERVICE_PORT": str(real_node.api_port),
    }
    name = f"probe-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod(namespace, restricted_pod(name, env, ["python", "-c", PROBE]))

    def logged() -> str:
        return (
            kubectl(bed, "logs", "-n", namespace, name) if _running(core, namespace, name) else ""
        )

    line = eventually(logged, "the probe pod's log line", accept=lambda text: "sent" in text)
    assert "api server v1." in line
    async with group_consumer(bed.kafka_bootstrap, topic, f"{name}-check") as consumer:
        record = await consumer.getone()
    assert record.value == name.encode()
    assert kubectl(bed, "exec", "-n", namespace, name, "--", "id", "-u").strip() != "0"
    pod = core.read_namespaced_pod(name, namespace)
    assert pod.spec.node_name == NODE_NAME
    assert ipaddress.ip_address(pod.status.pod_ip) in bridge.SUBNET


def _running(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    return core.read_namespaced_pod(name, namespace).status.phase == "Running"


def test_pods_without_the_toleration_stay_on_the_kwok_nodes(
    bed: Bed, real_node: RealNode, kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    pod = restricted_pod("plain", {}, ["python", "-c", "pass"])
    del pod["spec"]["tolerations"]
    del pod["spec"]["nodeSelector"]
    core.create_namespaced_pod(namespace, pod)
    node = eventually(
        lambda: core.read_namespaced_pod("plain", namespace).spec.node_name,
        "the plain pod's node",
    )
    assert node != NODE_NAME
