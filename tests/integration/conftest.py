"""Fixtures of the operator's integration tests: the CRD, API clients, an operator process and
the `Cluster` view of the test's namespace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.cluster import Cluster
from tests.operator_harness import OperatorProcess, install_crd


@pytest.fixture(scope="module")
def crd(bed: Any) -> None:
    install_crd(bed.kubectl, bed.kubeconfig)


@pytest.fixture
def custom(kube_api: client.ApiClient, crd: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


@pytest.fixture
def apps(kube_api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(kube_api)


@pytest.fixture
def core(kube_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


@pytest.fixture
def operator(bed: Any, crd: None, namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(bed.kubeconfig, [namespace], tmp_path / "operator.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def cluster(
    custom: client.CustomObjectsApi, apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> Cluster:
    return Cluster(custom, apps, core, namespace)
