"""Monitoring against the real bed: the upstream ServiceMonitor CRD, a real Prometheus, real KEDA.

The operator's ServiceMonitors must pass the prometheus-operator CRD's schema; its dashboard
ConfigMap must follow the spec. Then every PromQL expression the operator generates (every
dashboard target, every Prometheus trigger preset, every alert rule) is evaluated by a real
Prometheus that scrapes real workload processes, configured by the operator's own environment
builder and labelled as Kubernetes discovery would label them, and the real KEDA operator,
which scales the demo's ScaledObject (built by the operator's builders) on the bed.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, get_args

import aiohttp
import pytest
from aiokafka.admin import NewTopic
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from scalingdemo_operator.api import Owner
from scalingdemo_operator.builders import alerts, desired_children, env
from scalingdemo_operator.builders.dashboard import ACTIVATION_REF, THRESHOLD_REF, dashboard
from scalingdemo_operator.builders.promql import (
    KEDA_COMPOSITE_SCALER,
    KEDA_SCALER_VALUE,
    KUBE_STATE_METRICS,
    keda_active,
    preset_query,
    scope,
)
from scalingdemo_operator.builders.promql import keda as keda_series
from scalingdemo_operator.spec import PrometheusPreset, ScalingDemoSpec, parse
from scalingdemo_workload.contract import Env, Metric

from tests.integration.cluster import Cluster, RemovedCrd, demo, removing_crd
from tests.operator_harness import OperatorProcess, scale_to_zero_example_on_the_bed
from tests.support import (
    SCALE_TIMEOUT,
    WorkloadProcess,
    eventually,
    eventually_async,
    kafka_admin,
    produce,
    wait_for_topics,
)
from tests.unit.conftest import SEED_TRIGGERS, model_of, targets

MONITORING = ("monitoring.coreos.com", "v1")
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"
PRESETS: tuple[str, ...] = get_args(PrometheusPreset)
LAG = SEED_TRIGGERS[0]
PARTITIONS = 3
LOAD = 30
"""Messages and tasks posted: enough for every rate and histogram to move."""
SCRAPES = 5
"""Samples per target before queries run: a 1m rate needs two, quantiles a few more."""
PROMETHEUS = "http://prometheus.monitoring.svc.cluster.local:9090"
FORMULA = {"formula": "requests + busy", "target": "5"}
READINGS = {"worker": 1 + len(PRESETS), "api": 3}
"""keda_scaler_metrics_value series per ScaledObject: one per kafkaLag and prometheus trigger,
and the scalingModifiers formula's (scaler composite-metric) on the API."""


def _service_monitor(cluster: Cluster, name: str) -> dict[str, Any] | None:
    return cluster.custom_object(*MONITORING, "servicemonitors", name)


def _config_map(cluster: Cluster, name: str) -> Any:
    try:
        return cluster.core.read_namespaced_config_map(name, cluster.namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _threshold(config_map: Any, title: str) -> str | None:
    model = model_of({"data": config_map.data})
    return next(
        (
            target["expr"]
            for found, target in targets(model)
            if found == title and target["refId"] == THRESHOLD_REF
        ),
        None,
    )


def test_service_monitors_pass_the_upstream_schema_and_the_dashboard_follows_the_spec(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    created = cluster.create(
        demo(
            "shop",
            monitoring={"serviceMonitor": {"labels": {"release": "monitoring"}, "interval": "30s"}},
            worker={"autoscaling": {"enabled": True, "maxReplicas": 6, "triggers": [LAG]}},
        )
    )
    condition = eventually(
        lambda: cluster.condition("shop", "MonitoringReady"),
        "MonitoringReady=True",
        accept=lambda found: found.get("status") == "True",
    )
    assert condition["message"] == "ServiceMonitor(s) shop-api, shop-worker applied"

    services = cluster.services()
    for name in ("shop-api", "shop-worker"):
        monitor = _service_monitor(cluster, name)
        assert monitor is not None
        (reference,) = monitor["metadata"]["ownerReferences"]
        assert reference["uid"] == created["metadata"]["uid"]
        assert monitor["metadata"]["labels"]["release"] == "monitoring"
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint == {"port": "http", "path": "/metrics", "interval": "30s"}
        service = services[name]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service.metadata.labels.items()
        assert endpoint["port"] in {port.name for port in service.spec.ports}
    template = cluster.deployments()["shop-worker"].spec.template.metadata
    assert template.annotations["prometheus.io/scrape"] == "true"
    assert template.annotations["prometheus.io/port"] == "8080"

    title = "shop-worker: trigger taskLag (kafkaLag)"
    config_map = eventually(lambda: _config_map(cluster, "shop-dashboard"), "the dashboard")
    assert config_map.metadata.labels["grafana_dashboard"] == "1"
    assert config_map.metadata.annotations["k8s-sidecar-target-directory"] == "ScalingDemo"
    assert config_map.metadata.owner_references[0].uid == created["metadata"]["uid"]
    assert _threshold(config_map, title) == "vector(5)"

    edited = {**LAG, "kafkaLag": {"topic": "tasks", "lagThreshold": 50}}
    cluster.patch("shop", {"worker": {"autoscaling": {"triggers": [edited]}}})
    eventually(
        lambda: _threshold(_config_map(cluster, "shop-dashboard"), title),
        "the threshold line to move to 50",
        accept=lambda found: found == "vector(50)",
    )

    cluster.patch("shop", {"monitoring": {"serviceMonitor": {"enabled": False}}})
    eventually(lambda: _service_monitor(cluster, "shop-api") is None, "the ServiceMonitors to go")
    eventually(
        lambda: cluster.condition("shop", "MonitoringReady").get("reason") == "NotRequested",
        "MonitoringReady to say ServiceMonitors are not requested",
    )


@pytest.fixture
def without_service_monitors(kube_api: client.ApiClient) -> Iterator[RemovedCrd]:
    """No ServiceMonitor CRD during the test."""
    with removing_crd(kube_api, SERVICE_MONITOR_CRD) as crd:
        yield crd


def test_without_the_prometheus_operator_the_demo_is_ready_and_nobody_is_warned(
    bed: Any,
    crd: None,
    cluster: Cluster,
    tmp_path: Path,
    without_service_monitors: RemovedCrd,
) -> None:
    resyncing = OperatorProcess(
        bed.kubeconfig, [cluster.namespace], tmp_path / "operator.log", resync_seconds=1
    )
    resyncing.start()
    try:
        cluster.create(demo("shop"))
        condition = eventually(
            lambda: cluster.condition("shop", "MonitoringReady"),
            "MonitoringReady=False with reason PrometheusOperatorNotInstalled",
            accept=lambda found: found.get("reason") == "PrometheusOperatorNotInstalled",
        )
        assert condition["status"] == "False"
        assert "prometheus.io annotations" in condition["message"]
        eventually(lambda: cluster.converged("shop"), "Ready=True without ServiceMonitors")
        assert _config_map(cluster, "shop-dashboard") is not None
        template = cluster.deployments()["shop-api"].spec.template.metadata
        assert template.annotations["prometheus.io/scrape"] == "true"
        assert [kind for kind, _, _ in cluster.events("shop")].count("Warning") == 0

        without_service_monitors.restore()
        eventually(
            lambda: (
                _service_monitor(cluster, "shop-worker") is not None
                and cluster.condition("shop", "MonitoringReady").get("status") == "True"
            ),
            f"recovery once {SERVICE_MONITOR_CRD} is back",
        )
        assert cluster.condition("shop")["status"] == "True"
        assert [kind for kind, _, _ in cluster.events("shop")].count("Warning") == 0
    finally:
        resyncing.stop()


# The PromQL proof ------------------------------------------------------------------------------


def _every_trigger_kind() -> dict[str, Any]:
    """A spec whose dashboard has a panel of every trigger kind and every preset."""
    presets = [
        {"name": preset, "prometheus": {"preset": preset, "threshold": "5"}} for preset in PRESETS
    ]
    triggers = [
        LAG,
        *presets,
        {"name": "cpu", "cpu": {"value": 70}},
        {"name": "memory", "memory": {"metricType": "AverageValue", "value": "200Mi"}},
    ]
    return {
        "image": "registry.example/scalingdemo-workload:1",
        "monitoring": {"prometheus": {"serverAddress": PROMETHEUS}},
        # A VPA on the API, for the dashboard's VPA row, and a scaling formula, for KEDA's
        # composite reading.
        "api": {
            "verticalScaling": {"enabled": True},
            "autoscaling": {
                "enabled": True,
                "maxReplicas": 2,
                "triggers": [
                    {"name": "requests", "prometheus": {"preset": "requestRate", "threshold": "5"}},
                    {"name": "busy", "prometheus": {"preset": "tasksInProgress", "threshold": "5"}},
                ],
                "scalingModifiers": FORMULA,
            },
        },
        "worker": {"autoscaling": {"enabled": True, "maxReplicas": 3, "triggers": triggers}},
    }


def _process_env(spec: ScalingDemoSpec, owner: Owner, component: str) -> dict[str, str]:
    """The container environment the operator builds, with the pod name the kubelet would fill."""
    found = {}
    for item in env.environment(spec, owner, component):
        if "valueFrom" in item:
            assert item["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, item
            found[item["name"]] = f"{owner.child_name(component)}-0"
        else:
            found[item["name"]] = item["value"]
    return {
        **found,
        Env.LAG_INTERVAL_SECONDS: "0.5",
        Env.PROBE_INTERVAL_SECONDS: "0.5",
        Env.TASK_UNIT_MS: "5",
        # The demo's requests must land however loaded the machine is (KEDA and the control
        # plane share its cores): what a slow broker answers is tested elsewhere.
        Env.PRODUCE_TIMEOUT_SECONDS: "30",
    }


class Demo:
    """The workload of one ScalingDemo, run as processes and scraped like pods in a cluster."""

    def __init__(self, spec: ScalingDemoSpec, owner: Owner, processes: dict[str, WorkloadProcess]):
        self.spec, self.owner, self.processes = spec, owner, processes


@pytest.fixture
async def scraped_demo(
    bed: Any, kafka_bootstrap: str, namespace: str, tmp_path: Path
) -> AsyncIterator[Demo]:
    owner = Owner(namespace=namespace, name="shop", uid="promql")
    raw = _every_trigger_kind()
    raw["monitoring"] = {"prometheus": {"serverAddress": bed.prometheus.url}}
    spec = parse({**raw, "kafka": {"bootstrapServers": kafka_bootstrap}})
    topics = list(spec.kafka_names(owner).topics.values())
    async with kafka_admin(kafka_bootstrap) as admin:
        processes: dict[str, WorkloadProcess] = {}
        try:
            await admin.create_topics([NewTopic(topic, PARTITIONS, 1) for topic in topics])
            for component in spec.components():
                process = WorkloadProcess(
                    _process_env(spec, owner, component), tmp_path / f"{component}.log"
                )
                processes[component] = process
                bed.prometheus.scrape(
                    f"{owner.namespace}-{component}",
                    [process.address],
                    {
                        "namespace": owner.namespace,
                        "service": owner.child_name(component),
                        "pod": f"{owner.child_name(component)}-0",
                        "container": "workload",
                        "endpoint": env.PORT_NAME,
                    },
                )
            for process in processes.values():
                await process.wait_ready()
            yield Demo(spec, owner, processes)
        finally:
            for component, process in processes.items():
                bed.prometheus.forget(f"{owner.namespace}-{component}")
                process.stop(signal.SIGTERM)
            await admin.delete_topics(topics)


def _query(server: str, expression: str) -> list[dict[str, Any]]:
    """Evaluate an instant query; a parse error fails with Prometheus' own message."""
    url = f"{server}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    try:
        with urllib.request.urlopen(url) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:
        pytest.fail(f"Prometheus refused {expression!r}: {error.read().decode()}")
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


async def _post(address: str, path: str) -> None:
    """Post until the API accepts, as a client honouring its 503 + Retry-After would: on a
    loaded machine its Kafka check or a produce may miss a deadline, which is not the subject."""

    async def accepted() -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://{address}{path}") as got,
        ):
            return got.status, await got.text()

    await eventually_async(
        accepted, f"the API to accept POST {path}", accept=lambda found: found[0] == 202
    )


SELECTED = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{")
"""The metric name of every selector: each query names its series with label matchers."""


def _kube_state(expression: str) -> bool:
    """Whether every series the expression reads is kube-state-metrics' (absent from the bed):
    a query mixing in a series the bed has must return data."""
    names = SELECTED.findall(expression)
    return bool(names) and all(name.startswith(KUBE_STATE_METRICS) for name in names)


@pytest.fixture
def scaled_by_keda(keda: None, kube_api: client.ApiClient, scraped_demo: Demo) -> Demo:
    """The Deployments (pods on kwok's nodes) and ScaledObjects, from the operator's builders,
    without ownerReferences (no ScalingDemo owns them here): the real KEDA measures the
    workers' group on the bed's broker and asks the bed's Prometheus, as in a cluster."""
    built = desired_children(scraped_demo.spec, scraped_demo.owner)
    namespace = scraped_demo.owner.namespace
    for kind in ("Deployment", "ScaledObject"):
        for item in (found for found in built if found["kind"] == kind):
            del item["metadata"]["ownerReferences"]
            if kind == "Deployment":
                client.AppsV1Api(kube_api).create_namespaced_deployment(namespace, item)
            else:
                client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
                    "keda.sh", "v1alpha1", namespace, "scaledobjects", item
                )
    return scraped_demo


def _active_scalers(spec: ScalingDemoSpec, component: str) -> set[str]:
    """The `scaler` labels KEDA says active or not for: every trigger's name, or the formula's
    alone where scalingModifiers combine them."""
    autoscaling = spec.component(component).autoscaling
    if autoscaling.scaling_modifiers is not None:
        return {KEDA_COMPOSITE_SCALER}
    return {trigger.name for trigger in autoscaling.triggers}


async def _load(server: str, demo: Demo, waves: int = 2) -> None:
    """Messages and tasks through the API in waves, each seen processed by Prometheus.

    Counter series appear with their first increment, so a rate needs a second one: after the
    second wave every rate and quantile over the window has something to show, for as long as
    the window still holds the last wave.
    """
    api = demo.processes["api"]
    labels = scope(demo.owner)

    def processed() -> float:
        found = _query(server, f"sum({Metric.RECORDS_PROCESSED}{{{labels}}})")
        return float(found[0]["value"][1]) if found else 0.0

    before = processed()
    for wave in range(1, waves + 1):
        await _post(api.address, f"/messages?count={LOAD}")
        await _post(api.address, f"/tasks?count={LOAD}")
        wanted = before + 2 * LOAD * wave
        eventually(
            processed,
            f"Prometheus to see {wanted:.0f} processed records",
            120,
            accept=lambda count, wanted=wanted: count >= wanted,
        )


async def test_every_generated_query_parses_and_returns_what_its_consumer_needs(
    bed: Any, scaled_by_keda: Demo
) -> None:
    demo = scaled_by_keda
    server = bed.prometheus.url
    await _load(server, demo)
    labels = scope(demo.owner)
    scrapes = f"min(count_over_time(up{{{labels}}}[1m]))"
    eventually(
        lambda: _query(server, scrapes),
        f"{SCRAPES} scrapes of every target",
        accept=lambda found: bool(found) and float(found[0]["value"][1]) >= SCRAPES,
    )
    for component, count in READINGS.items():
        readings = f"count({keda_series(KEDA_SCALER_VALUE, demo.owner, component)})"
        eventually(
            lambda readings=readings: _query(server, readings),
            f"KEDA's {count} readings of the {component}'s triggers",
            SCALE_TIMEOUT,
            accept=lambda found, count=count: bool(found) and float(found[0]["value"][1]) == count,
        )
        # KEDA's operator loop says active on its own schedule, apart from the readings the HPA
        # asks for, and only for a trigger it read without error in that poll: a poll before
        # the workload's first series leaves those triggers out until the next one.
        active = keda_active(demo.owner, component)
        everyone = _active_scalers(demo.spec, component)
        eventually(
            lambda active=active: {item["metric"]["scaler"] for item in _query(server, active)},
            f"KEDA's operator loop to say whether each of {sorted(everyone)} is active",
            SCALE_TIMEOUT,
            accept=lambda found, everyone=everyone: found == everyone,
        )
    # KEDA may have taken longer than the rates' window: one more wave for them to show.
    await _load(server, demo, waves=1)

    for preset in PRESETS:
        expression = preset_query(demo.spec, demo.owner, preset)
        result = _query(server, expression)
        assert len(result) == 1, (preset, expression, result)

    model = dashboard(demo.spec, demo.owner)
    rules = alerts.rules(demo.spec, demo.owner)
    queries = [(title, target["refId"], target["expr"]) for title, target in targets(model)]
    queries += [(rule.alert, "query", rule.query) for rule in rules]
    allowed_empty = []
    for title, ref, expression in queries:
        result = _query(server, expression)
        print(f"{title} / {ref}: {len(result)} series {[item['metric'] for item in result][:3]}")
        if _kube_state(expression):
            allowed_empty.append((title, ref))
            continue
        assert result, f"{title} / {ref}: no data for {expression}"
        values = [float(item["value"][1]) for item in result]
        assert not any(math.isnan(value) for value in values), (title, ref, expression, result)
        if ref.startswith(THRESHOLD_REF) or (": trigger " in title and ref == "A"):
            assert len(result) == 1, (title, ref, expression, result)
    for rule in rules:
        _query(server, rule.expr)
    assert len(queries) > 40
    assert sorted(allowed_empty) == sorted(
        [
            ("Replicas", "B"),
            ("ScalingDemoNotReady", "query"),
            ("ScalingDemoWorkerRestarts", "query"),
        ]
        + [
            (f"shop-{component}: HPA desired vs current replicas", ref)
            for component in ("api", "worker")
            for ref in "AB"
        ]
        + [
            (f"shop-api: VPA {resource} recommendation vs usage", ref)
            for resource in ("cpu", "memory")
            for ref in "ABC"
        ]
    )

    # No consumer left: the workers' own lag series goes, KEDA's reading of the lag stays.
    demo.processes["worker"].stop(signal.SIGTERM)
    bed.prometheus.forget(f"{demo.owner.namespace}-worker")
    tasks = demo.spec.kafka_names(demo.owner).topics["tasks"]
    await produce(bed.kafka_bootstrap, tasks, [b"{}"] * LOAD, partitions=PARTITIONS)
    own, by_keda = (
        target["expr"] for title, target in targets(model) if title == "Consumer lag by topic"
    )
    eventually(
        lambda: (_query(server, own), _query(server, by_keda)),
        "the lag panel to show KEDA's reading of the backlog with no consumer running",
        SCALE_TIMEOUT,
        accept=lambda found: not found[0] and bool(found[1]) and float(found[1][0]["value"][1]) > 0,
    )


def _panel(model: dict[str, Any], title: str) -> dict[str, str]:
    """The queries of one dashboard panel, by refId."""
    return {target["refId"]: target["expr"] for found, target in targets(model) if found == title}


def _deployment_replicas(cluster: Cluster, name: str) -> tuple[int, int]:
    """(spec.replicas, status.replicas) of a Deployment: pods wanted and pods there."""
    found = cluster.apps.read_namespaced_deployment(name, cluster.namespace)
    return found.spec.replicas, found.status.replicas or 0


@pytest.mark.usefixtures("keda")
async def test_at_zero_replicas_the_lag_panel_shows_the_backlog_keda_reads(
    bed: Any, cluster: Cluster, operator: OperatorProcess
) -> None:
    """examples/scale-to-zero.yaml through the operator: KEDA takes the workers to 0 and keeps
    them there while the backlog is no more than the activation threshold; no worker runs, so
    no workload series exists, and the dashboard the operator wrote still draws the backlog,
    from KEDA's own reading of the group's lag in Kafka."""
    body = scale_to_zero_example_on_the_bed(
        cluster.namespace, bed.kafka_bootstrap, polling_interval=1, cooldown_period=0
    )
    name = body["metadata"]["name"]
    worker = f"{name}-worker"
    topics = body["spec"]["kafka"]["topics"]
    tasks = topics["tasks"]
    (trigger,) = body["spec"]["worker"]["autoscaling"]["triggers"]
    backlog = trigger["kafkaLag"]["activationLagThreshold"]
    assert backlog > 0, "the example must wake its workers above some backlog, not at any"
    cluster.create(body)
    await wait_for_topics(
        bed.kafka_bootstrap, [topic["name"] for topic in topics.values()], tasks["partitions"]
    )
    eventually(
        lambda: _deployment_replicas(cluster, worker),
        "KEDA to take the worker Deployment to 0 replicas",
        SCALE_TIMEOUT,
        accept=lambda found: found == (0, 0),
    )
    await produce(bed.kafka_bootstrap, tasks["name"], [b"{}"] * backlog, tasks["partitions"])

    config_map = eventually(lambda: _config_map(cluster, f"{name}-dashboard"), "the dashboard")
    model = model_of({"data": config_map.data})
    own, by_keda = _panel(model, "Consumer lag by topic").values()
    server = bed.prometheus.url
    eventually(
        lambda: (_query(server, own), _query(server, by_keda)),
        f"the lag panel to show KEDA's reading of the {backlog} waiting tasks at 0 replicas",
        SCALE_TIMEOUT,
        accept=lambda found: (
            not found[0] and len(found[1]) == 1 and float(found[1][0]["value"][1]) == backlog
        ),
    )
    reading = _panel(model, f"{worker}: KEDA trigger {trigger['name']}")
    lines = {ref: _query(server, expression) for ref, expression in reading.items()}
    print({ref: [item["value"][1] for item in found] for ref, found in lines.items()})
    assert {ref: [float(item["value"][1]) for item in found] for ref, found in lines.items()} == {
        "A": [backlog],
        THRESHOLD_REF: [0.0],
        ACTIVATION_REF: [backlog],
    }, "the value at the activation line, and no replica to take any of it"
    (active,) = _query(server, _panel(model, f"{worker}: KEDA scaler active")["A"])
    assert (active["metric"]["scaler"], float(active["value"][1])) == (trigger["name"], 0.0)
    assert _deployment_replicas(cluster, worker) == (0, 0), "KEDA kept the workers at 0 throughout"


async def test_promtool_finds_no_problem_in_the_metrics_of_a_busy_workload(
    bed: Any, scraped_demo: Demo
) -> None:
    await _load(bed.prometheus.url, scraped_demo)
    for component, process in scraped_demo.processes.items():
        status, exposition = await process.get("/metrics")
        assert status == 200
        check = await asyncio.create_subprocess_exec(
            str(bed.promtool),
            "check",
            "metrics",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await check.communicate(exposition.encode())
        assert (check.returncode, out, err) == (0, b"", b""), component
