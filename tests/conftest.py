"""Shared fixtures: the real test bed, API clients and a namespace per test.

The bed starts once per session, only when an integration test asks for it, so
``pytest -m unit`` needs neither Go nor Java. There is no skip path: if the bed
cannot start, every test that needs it errors with the reason.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.support import eventually
from tests.testbed import assets
from tests.testbed import bed as testbed
from tests.testbed.node import RealNode
from tests.testbed.toolchain import tail

NAMESPACE_READY_SECONDS = 60

_started: list[testbed.Bed] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs the bed; mark it so ``-m`` can select."""
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testbed.Bed]:
    """The real control plane and Kafka, or an existing cluster when the user opts in."""
    if os.environ.get(testbed.EXISTING_CLUSTER_ENV):
        yield testbed.connect_existing()
        return
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    started = testbed.start(tmp_path_factory.mktemp("bed"))
    _started.append(started)
    try:
        yield started
    finally:
        started.stop()
        signal.signal(signal.SIGTERM, previous)


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    """A CI timeout sends SIGTERM: unwind like Ctrl-C so the bed is stopped."""
    raise KeyboardInterrupt


@pytest.fixture(scope="session")
def keda(bed: testbed.Bed) -> None:
    """KEDA's operator and metrics adapter, running (an existing cluster brings its own)."""
    if bed.local:
        bed.start_keda()


@pytest.fixture
def real_node(bed: testbed.Bed) -> RealNode:
    """The bed's real node (containerd and a kubelet), started on first use and kept for the
    session (a test that stops it, for the machine's one node, has the next one start anew).

    Its pods need the node's toleration (``tests.testbed.node.TOLERATION``) and reach the
    API server and Kafka through the bridge (``real_node.api_port``,
    ``real_node.kafka_bootstrap``).
    """
    if not bed.local:
        pytest.skip("the real node joins the local bed only; an existing cluster has its own")
    return bed.start_node()


@pytest.fixture(scope="session")
def helm() -> Path:
    """The `helm` command (Helm 4), built into the bed's cache the first time a test needs it."""
    return assets.helm()


@pytest.fixture(scope="session")
def kafka_bootstrap(bed: testbed.Bed) -> str:
    return bed.kafka_bootstrap


@pytest.fixture(scope="session")
def kube_api(bed: testbed.Bed) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(bed.kubeconfig))
    yield api
    api.close()


@pytest.fixture
def namespace(kube_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace, ready for pods (its default ServiceAccount exists)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    eventually(
        lambda: (
            core.list_namespaced_service_account(name, field_selector="metadata.name=default").items
        ),
        f"namespace {name}: the default ServiceAccount",
        NAMESPACE_READY_SECONDS,
    )
    yield name
    core.delete_namespace(name)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After failures, show the end of every bed process log: the usual first clue."""
    if not _started or (
        not terminalreporter.stats.get("failed") and not terminalreporter.stats.get("error")
    ):
        return
    for log in _started[0].logs():
        terminalreporter.write_sep("-", f"test bed log: {log}")
        terminalreporter.write_line(tail(log, 25))
